"""Settings of one Microsoft Teams instance (a ``[providers.<name>]`` table with ``type = "teams"``).

The keys every provider type shares come from
:class:`~chatops_core.providers.config.ProviderSettingsBase`; the rest is Teams' own. An
instance runs in one or both of two modes:

- **Webhook mode** (no Azure registration): ``outgoing_webhook_secret`` is the security token
  Teams shows when an outgoing webhook is created; commands arrive as the bot's mention in a
  channel and are answered in the HTTP response
  (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-outgoing-webhook).
  Notifications go to each channel alias's ``webhook_url``: a Workflows "When a Teams webhook
  request is received" URL (``format = "adaptive"``) or a legacy connector URL
  (``format = "messagecard"``).
- **Bot mode** (Bot Framework): ``app_id`` and ``app_password`` of the bot's Azure
  registration; activities arrive with a JWT checked against the keys the OpenID metadata
  names, and cards are posted to and updated in each channel alias's ``conversation_id``
  through its ``service_url``
  (https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-authentication).

Channels are aliases (``incidents``) defined under ``[providers.<name>.channels.<alias>]``;
``default_channel`` and ``notification_channels`` name aliases. A webhook URL is a secret
(whoever holds it can post): it lives only in its alias's table, is never a key, a log field
or part of an answer, and validation errors never repeat it.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from chatops_core.models import Severity
from chatops_core.providers.config import ProviderSettingsBase

BOT_ISSUER = "https://api.botframework.com"
BOT_SCOPE = "https://api.botframework.com/.default"
OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
TOKEN_URL = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
# Teams gives an outgoing webhook 5 s to answer; the ingress waits at most this long for the
# worker's answer, leaving time to send it.
MAX_ANSWER_WAIT_SECONDS = 4.5

# A channel alias: what notification_channels and default_channel name.
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _http_url(value: str, what: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not contain a user name or password")
    return url


def _alias(value: str, what: str) -> str:
    alias = value.strip().lstrip("#")
    if not _ALIAS.match(alias):
        raise ValueError(
            f"{what} must be a channel alias defined under [providers.<name>.channels] (letters, "
            "digits, '-', '_' and '.', at most 64 characters), e.g. 'incidents'"
        )
    return alias


class TeamsChannel(BaseModel):
    """How one channel alias is reached: an incoming webhook, a bot conversation, or both."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhook_url: SecretStr | None = Field(
        default=None,
        description=(
            "Incoming webhook of the channel: a Workflows 'When a Teams webhook request is received' "
            "URL (format 'adaptive') or a legacy connector URL (format 'messagecard'). A secret: "
            "never logged."
        ),
    )
    format: Literal["adaptive", "messagecard"] = Field(
        default="adaptive",
        description="What webhook_url takes: 'adaptive' (Workflows) or 'messagecard' (legacy connector).",
    )
    conversation_id: str | None = Field(
        default=None,
        description="Bot mode: the conversation (channel) id, e.g. '19:...@thread.tacv2'.",
    )
    service_url: str | None = Field(
        default=None,
        description="Bot mode: the serviceUrl of the conversation's activities, e.g. 'https://smba.trafficmanager.net/teams/'.",
    )

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(_http_url(value.get_secret_value(), "webhook_url"))

    @field_validator("service_url")
    @classmethod
    def _service_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = _http_url(value, "service_url")
        return url if url.endswith("/") else url + "/"

    @field_validator("conversation_id")
    @classmethod
    def _conversation_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cid = value.strip()
        if not cid or any(c.isspace() for c in cid):
            raise ValueError("conversation_id must be a Teams conversation id such as '19:...@thread.tacv2'")
        return cid

    @model_validator(mode="after")
    def _reachable(self) -> TeamsChannel:
        if self.webhook_url is None and self.conversation_id is None:
            raise ValueError("a channel needs webhook_url (webhook mode) or conversation_id (bot mode)")
        if (self.conversation_id is None) != (self.service_url is None):
            raise ValueError("conversation_id and service_url go together (bot mode)")
        return self

    @property
    def bot(self) -> bool:
        """Reached through the Bot Connector (cards can be updated in place)."""
        return self.conversation_id is not None


class TeamsSettings(ProviderSettingsBase):
    """One Microsoft Teams tenant, reached by an outgoing webhook and incoming webhooks, a bot, or both."""

    model_config = ConfigDict(title="Microsoft Teams")

    type: Literal["teams"] = Field(
        default="teams", description="Provider type of this instance; always 'teams'."
    )
    outgoing_webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Webhook mode: the security token (base64) Teams shows when the outgoing webhook is "
            "created; a request whose 'Authorization: HMAC' does not verify is refused (401)."
        ),
    )
    app_id: str | None = Field(
        default=None, description="Bot mode: the bot's Microsoft App ID (the audience of inbound tokens)."
    )
    app_password: SecretStr | None = Field(
        default=None, description="Bot mode: the bot's client secret, for tokens from token_url."
    )
    openid_metadata_url: str = Field(
        default=OPENID_METADATA_URL,
        description="Bot mode: the Bot Framework's OpenID metadata, whose jwks_uri lists the signing keys.",
    )
    token_url: str = Field(
        default=TOKEN_URL, description="Bot mode: the OAuth2 token endpoint (client credentials)."
    )
    default_channel: str | None = Field(
        default="incidents",
        description="Channel alias for notifications that no notification_channels entry routes.",
    )
    channels: dict[str, TeamsChannel] = Field(
        default_factory=dict,
        description=(
            "Channel aliases, each with its webhook_url and format, or conversation_id and service_url."
        ),
    )
    answer_wait_seconds: float = Field(
        default=4.0,
        gt=0,
        le=MAX_ANSWER_WAIT_SECONDS,
        description=(
            "Webhook mode: how long the ingress waits for the worker's answer before telling Teams "
            "the result will follow (Teams gives up after 5 s)."
        ),
    )
    timeout: float = Field(default=10.0, gt=0, description="Seconds allowed for each call to Teams.")

    @field_validator("outgoing_webhook_secret")
    @classmethod
    def _outgoing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                "outgoing_webhook_secret must be the base64 security token Teams shows when the "
                "outgoing webhook is created"
            ) from None
        if len(key) < 16:
            raise ValueError("outgoing_webhook_secret is too short to be the token Teams shows")
        return SecretStr(text)

    @field_validator("app_password")
    @classmethod
    def _app_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        if not text:
            raise ValueError("app_password is empty")
        return SecretStr(text)

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        app_id = value.strip()
        if not app_id or any(c.isspace() for c in app_id):
            raise ValueError("app_id must be the bot's Microsoft App ID (a GUID)")
        return app_id

    @field_validator("openid_metadata_url")
    @classmethod
    def _openid(cls, value: str) -> str:
        return _http_url(value, "openid_metadata_url")

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        return _http_url(value, "token_url")

    @field_validator("default_channel")
    @classmethod
    def _default_channel(cls, value: str | None) -> str | None:
        return None if value is None else _alias(value, "default_channel")

    @field_validator("channels")
    @classmethod
    def _channel_aliases(cls, value: dict[str, TeamsChannel]) -> dict[str, TeamsChannel]:
        for alias in value:
            if _alias(alias, f"channel alias {alias!r}") != alias:
                raise ValueError(f"channel alias {alias!r} must be written without '#' or spaces")
        return value

    @field_validator("notification_channels")
    @classmethod
    def _notification_channels(cls, value: dict[Severity, str]) -> dict[Severity, str]:
        return {sev: _alias(ch, f"notification_channels[{sev.value!r}]") for sev, ch in value.items()}

    @model_validator(mode="after")
    def _modes(self) -> TeamsSettings:
        if (self.app_id is None) != (self.app_password is None):
            raise ValueError("app_id and app_password go together (bot mode)")
        if self.outgoing_webhook_secret is None and self.app_id is None:
            raise ValueError(
                "a Teams instance needs outgoing_webhook_secret (webhook mode) or app_id and "
                "app_password (bot mode), or both"
            )
        routed = {self.default_channel, *self.notification_channels.values()} - {None}
        for alias in sorted(a for a in routed if a is not None):
            if alias not in self.channels:
                raise ValueError(
                    f"channel {alias!r} is routed to but not defined: add "
                    f"[providers.<name>.channels.{alias}] "
                    "with its webhook_url (or conversation_id and service_url)"
                )
        for alias, channel in self.channels.items():
            if channel.bot and not self.bot_mode:
                raise ValueError(
                    f"channel {alias!r} has a conversation_id, which needs bot mode (app_id and app_password)"
                )
        return self

    @property
    def webhook_mode(self) -> bool:
        return self.outgoing_webhook_secret is not None

    @property
    def bot_mode(self) -> bool:
        return self.app_id is not None and self.app_password is not None
