"""Settings of one Discord application in one server (``type = "discord"``).

The keys every provider type shares come from
:class:`~chatops_core.providers.config.ProviderSettingsBase`; the rest is Discord's own:

- ``application_id``: the application's id (General Information in the developer portal);
  interaction follow-ups go to ``{api_url}/webhooks/{application_id}/{token}``.
- ``public_key``: the application's Ed25519 public key, 64 hex characters; every
  interaction is signed with its private half
  (https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint).
- ``bot_token``: the bot user's token, sent as ``Authorization: Bot <token>``.
- ``api_url``: the REST API, ``https://discord.com/api/v10`` (a local server in tests).
- ``guild_id``: the server where incident channels are created and channel names are
  looked up.
- ``default_channel``: a channel id (a snowflake) or a channel name in the guild.
- ``archive_category_id``: a category closed incident channels are moved to (optional).

Channels are written as ids (17 to 20 digits) or names (``incidents`` or ``#incidents``).
Errors never repeat an input value, so a secret in the wrong place is not echoed.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator

from chatops_core.providers.config import ProviderSettingsBase

DEFAULT_API_URL = "https://discord.com/api/v10"
# Discord ids are snowflakes: 64-bit integers written in decimal.
SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")
_PUBLIC_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
# A channel name as Discord writes text channels: lowercase, no spaces, at most 100.
_CHANNEL_NAME = re.compile(r"^[^\s#<>@]{1,100}$")


def _snowflake(value: str, what: str) -> str:
    text = value.strip()
    if not SNOWFLAKE.match(text):
        raise ValueError(f"{what} must be a Discord id (a snowflake: 15 to 21 digits)")
    return text


def channel_ref(value: str, what: str) -> str:
    """``value`` as a channel id or a channel name without its ``#``."""
    ref = value.strip().lstrip("#")
    if SNOWFLAKE.match(ref):
        return ref
    if not _CHANNEL_NAME.match(ref):
        raise ValueError(f"{what} must be a channel id or a channel name such as 'incidents'")
    return ref.lower()


class DiscordSettings(ProviderSettingsBase):
    """One Discord application, its bot and the guild (server) it runs incidents in."""

    model_config = ConfigDict(title="Discord")

    type: Literal["discord"] = Field(default="discord", description="Provider type; always 'discord'.")
    application_id: str = Field(description="The application's id (developer portal, General Information).")
    public_key: str = Field(
        description="The application's Ed25519 public key in hex (64 characters); verifies interactions."
    )
    bot_token: SecretStr = Field(description="The bot's token, sent as 'Authorization: Bot <token>'.")
    api_url: str = Field(
        default=DEFAULT_API_URL,
        description="Discord's REST API base URL; point it at a local server in tests.",
    )
    guild_id: str = Field(
        description="Id of the server where incident channels are created and names looked up."
    )
    default_channel: str | None = Field(
        default=None,
        description="Channel id, or a channel name in the guild, for notifications no other entry routes.",
    )
    archive_category_id: str | None = Field(
        default=None,
        description="Category a closed incident's channel is moved to (it is locked either way).",
    )
    interaction_ttl_seconds: float = Field(
        default=15 * 60,
        gt=0,
        description="How long an interaction's token may be used to answer (Discord: 15 minutes).",
    )

    @field_validator("application_id")
    @classmethod
    def _application_id(cls, value: str) -> str:
        return _snowflake(value, "application_id")

    @field_validator("guild_id")
    @classmethod
    def _guild_id(cls, value: str) -> str:
        return _snowflake(value, "guild_id")

    @field_validator("archive_category_id")
    @classmethod
    def _archive(cls, value: str | None) -> str | None:
        return None if value is None else _snowflake(value, "archive_category_id")

    @field_validator("bot_user_id")
    @classmethod
    def _bot_user_id(cls, value: str | None) -> str | None:
        return None if value is None else _snowflake(value, "bot_user_id")

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        key = value.strip()
        if not _PUBLIC_KEY.match(key):
            raise ValueError("public_key must be the application's public key: 64 hex characters")
        return key.lower()

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        if not text:
            raise ValueError("bot_token is empty")
        return SecretStr(text)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("api_url must be an http:// or https:// URL, e.g. https://discord.com/api/v10")
        if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            raise ValueError("api_url must not carry a user, password, query or fragment")
        return url

    @field_validator("default_channel")
    @classmethod
    def _default_channel(cls, value: str | None) -> str | None:
        return None if value is None else channel_ref(value, "default_channel")

    @field_validator("notification_channels")
    @classmethod
    def _notification_channels(cls, value: dict) -> dict:  # type: ignore[type-arg]
        return {sev: channel_ref(ch, f"notification_channels[{sev}]") for sev, ch in value.items()}

    @property
    def bot_id(self) -> str:
        """The bot user's id: ``bot_user_id`` when set, else the application's id (a bot
        user created with its application shares the application's id)."""
        return self.bot_user_id or self.application_id
