"""Settings of one Mattermost instance (a ``[providers.<name>]`` table with ``type = "mattermost"``).

The keys every provider type shares (``type``, ``bot_name``, ``default_channel``,
``enable_notifications``, ``create_incident_channels``, ``archive_on_close``,
``notification_channels``, ``timeout``, ``bot_user_id``) come from
:class:`~chatops_core.providers.config.ProviderSettingsBase`, with the names, types and
defaults every type has (here channel references are checked as Mattermost writes them);
the rest is Mattermost's own:

- ``url``: the server's address; REST API v4 is under ``{url}/api/v4``
  (https://api.mattermost.com/).
- ``bot_token``: the bot account's access token, sent as ``Authorization: Bearer``.
- ``command_token``: the token Mattermost shows for the ``/im`` slash command; every command
  request carries it (https://developers.mattermost.com/integrate/slash-commands/custom/).
- ``actions_secret``: our own key. Mattermost does not authenticate the requests it sends
  when a button is clicked or a dialog submitted, so the buttons and dialogs we post carry a
  signed, expiring context (see :mod:`.verify`) and this is its key
  (https://developers.mattermost.com/integrate/plugins/interactive-messages/).
- ``webhook_url``: where Mattermost sends those clicks and submissions, this instance's
  ``{public_url}/webhooks/<instance>``.
- ``outgoing_webhook_token``: the token Mattermost shows for the outgoing webhook whose
  trigger word is the bot's mention (``@incident-bot``) and whose callback URL is this
  instance's webhook URL; every request it sends carries it
  (https://developers.mattermost.com/integrate/webhooks/outgoing/). Without it, mentions
  of the bot are refused.

Channels are written as Mattermost names them in URLs (``incidents``, lowercase) or as
26-character channel ids; a leading ``~`` (Mattermost's channel mention) or ``#`` is dropped.
Errors never repeat an input value, so a secret in the wrong place is not echoed.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from chatops_core.models import Severity
from chatops_core.providers.config import ProviderSettingsBase

API_PATH = "/api/v4"
MIN_ACTIONS_SECRET_LENGTH = 16
DEFAULT_ACTION_TTL_SECONDS = 30 * 24 * 3600

# Mattermost ids (users, teams, channels) are 26 characters of lowercase letters and digits.
_ID = re.compile(r"^[a-z0-9]{26}$")
# The characters and length of a channel's name (its URL handle); see .channels.
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _channel_ref(value: str, what: str) -> str:
    """``value`` as a channel name or id, without a leading ``~`` or ``#``."""
    ref = value.strip()
    if ref[:1] in ("~", "#"):
        ref = ref[1:]
    if not _CHANNEL_NAME.match(ref):
        raise ValueError(
            f"{what} must be a channel name as it appears in the channel's URL (lowercase letters, "
            "digits, '-' and '_', at most 64 characters, e.g. 'incidents'), not its display name, "
            "or a 26-character channel id"
        )
    return ref


def _secret(value: SecretStr, what: str) -> SecretStr:
    """``value`` without surrounding whitespace (a newline from a secrets file); never empty."""
    text = value.get_secret_value().strip()
    if not text:
        raise ValueError(f"{what} is empty")
    return SecretStr(text)


class MattermostSettings(ProviderSettingsBase):
    """One Mattermost server and team, reached by a bot account and a ``/im`` slash command."""

    # The base forbids unknown keys and keeps input out of validation errors, so a token
    # given in the wrong place is not printed.
    model_config = ConfigDict(title="Mattermost")

    type: Literal["mattermost"] = Field(
        default="mattermost", description="Provider type of this instance; always 'mattermost'."
    )
    url: str = Field(
        description=(
            "The Mattermost server's base URL (http or https), e.g. https://mattermost.example.com; "
            "REST API v4 is under {url}/api/v4. Point it at a local server in tests."
        )
    )
    bot_token: SecretStr = Field(
        description="Access token of the bot account, sent as 'Authorization: Bearer <token>'."
    )
    command_token: SecretStr = Field(
        description=(
            "Token Mattermost shows for the /im slash command; a command request whose 'token' field "
            "or 'Authorization: Token' header differs is refused (401)."
        )
    )
    actions_secret: SecretStr = Field(
        description=(
            f"Key (at least {MIN_ACTIONS_SECRET_LENGTH} characters, e.g. from `openssl rand -hex 32`) "
            "of the HMAC that signs the context of every button and the state of every dialog the bot "
            "posts; a click or submission whose signature does not verify is refused (401)."
        )
    )
    team_id: str = Field(
        description=(
            "26-character id of the team where incident channels are created and channel names are looked up."
        )
    )
    default_channel: str | None = Field(
        default="incidents",
        description=(
            "Channel for notifications that no notification_channels entry routes: a channel name "
            "in the team (as in its URL, e.g. 'incidents') or a 26-character channel id."
        ),
    )
    create_incident_channels: bool = Field(
        default=False, description="Create a channel of its own for each declared incident in the team."
    )
    notification_channels: dict[Severity, str] = Field(
        default_factory=dict,
        description=(
            "Channel (name or id) per severity for notifications, keys 'SEV-1'..'SEV-4' (or "
            "'sev1'..'sev4'); a severity without an entry goes to default_channel."
        ),
    )
    timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds allowed to connect to Mattermost and for each read and write.",
    )
    action_ttl_seconds: int = Field(
        default=DEFAULT_ACTION_TTL_SECONDS,
        gt=0,
        description=(
            "How long a posted button (and an opened dialog) stays usable, in seconds; a click on an "
            "older one is refused. Default 30 days."
        ),
    )
    webhook_url: str | None = Field(
        default=None,
        description=(
            "The URL Mattermost sends button clicks and dialog submissions to: this instance's "
            "webhook URL, {public_url}/webhooks/<instance>. When unset, the service's own "
            "public_url gives it."
        ),
    )
    outgoing_webhook_token: SecretStr | None = Field(
        default=None,
        description=(
            "Token Mattermost shows for the outgoing webhook that sends mentions of the bot (trigger "
            "word '@incident-bot', callback URL {public_url}/webhooks/<instance>); a mention whose "
            "'token' differs is refused (401). Unset: mentions are off."
        ),
    )
    bot_user_id: str | None = Field(
        default=None,
        description=(
            "The bot account's user id, so its own posts are ignored; when unset, posts by a user "
            "named bot_name are (`chatops check` shows the id: GET /api/v4/users/me)."
        ),
    )

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "url must be an http:// or https:// URL with a host, e.g. https://mattermost.example.com"
            )
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "url must not contain a user name or password; the bot authenticates with bot_token"
            )
        if parts.query or parts.fragment:
            raise ValueError("url must not have a query or fragment")
        if parts.path.rstrip("/").endswith(API_PATH):
            raise ValueError(f"url is the server's base URL, without {API_PATH} (added for each call)")
        try:
            _ = parts.port  # raises on a port that is not a number or out of range
        except ValueError:
            raise ValueError("url has an invalid port") from None
        return url

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook_url must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("webhook_url must not contain a user name or password")
        return url

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        return _secret(value, "bot_token")

    @field_validator("command_token")
    @classmethod
    def _command_token(cls, value: SecretStr) -> SecretStr:
        return _secret(value, "command_token")

    @field_validator("outgoing_webhook_token")
    @classmethod
    def _outgoing_webhook_token(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else _secret(value, "outgoing_webhook_token")

    @field_validator("actions_secret")
    @classmethod
    def _actions_secret(cls, value: SecretStr) -> SecretStr:
        secret = _secret(value, "actions_secret")
        if len(secret.get_secret_value()) < MIN_ACTIONS_SECRET_LENGTH:
            raise ValueError(
                f"actions_secret must be at least {MIN_ACTIONS_SECRET_LENGTH} characters: it is the key "
                "that authenticates button clicks and dialog submissions (Mattermost itself does not), "
                "and a short key can be guessed offline from one signed button, after which anyone "
                "could act on incidents as any user; use e.g. `openssl rand -hex 32`"
            )
        return secret

    @field_validator("team_id")
    @classmethod
    def _team_id(cls, value: str) -> str:
        team_id = value.strip()
        if not _ID.match(team_id):
            raise ValueError(
                "team_id must be the team's 26-character id (lowercase letters and digits), not its "
                "name; GET {url}/api/v4/teams/name/<team name> answers it"
            )
        return team_id

    @field_validator("bot_user_id")
    @classmethod
    def _bot_user_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        user_id = value.strip()
        if not _ID.match(user_id):
            raise ValueError("bot_user_id must be a 26-character Mattermost user id")
        return user_id

    @field_validator("default_channel")
    @classmethod
    def _default_channel(cls, value: str | None) -> str | None:
        return None if value is None else _channel_ref(value, "default_channel")

    @field_validator("notification_channels")
    @classmethod
    def _notification_channels(cls, value: dict[Severity, str]) -> dict[Severity, str]:
        return {sev: _channel_ref(ch, f"notification_channels[{sev.value!r}]") for sev, ch in value.items()}

    @model_validator(mode="after")
    def _distinct_secrets(self) -> MattermostSettings:
        actions = self.actions_secret.get_secret_value()
        others = [(self.command_token, "command_token"), (self.bot_token, "bot_token")]
        if self.outgoing_webhook_token is not None:
            others.append((self.outgoing_webhook_token, "outgoing_webhook_token"))
        for other, name in others:
            if actions == other.get_secret_value():
                # The command and outgoing webhook tokens are shown to every admin of those
                # integrations; the bot token to whoever manages the bot. None of them should
                # be able to forge button clicks.
                raise ValueError(f"actions_secret must differ from {name}")
        return self

    @property
    def api_base_url(self) -> str:
        """Where REST API v4 is: ``{url}/api/v4``."""
        return self.url + API_PATH
