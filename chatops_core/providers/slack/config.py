"""Settings of one Slack workspace (a ``[providers.<name>]`` table with ``type = "slack"``).

The keys every provider type shares come from
:class:`~chatops_core.providers.config.ProviderSettingsBase`; the rest is Slack's own:

- ``bot_token``: the app's Bot User OAuth Token (``xoxb-…``), sent with every Web API call
  (https://docs.slack.dev/authentication/tokens#bot).
- ``signing_secret``: from the app's Basic Information page; every request Slack sends is
  signed with it (https://docs.slack.dev/authentication/verifying-requests-from-slack).
- ``api_url``: where the Web API is, overridable to point at a local server.
- ``timeline_reaction``: the emoji that marks a message for the incident's timeline.

With no configuration file, the environment alone may configure one Slack instance named
``slack`` (:meth:`SlackSettings.from_env`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator

from chatops_core.errors import ConfigError
from chatops_core.providers.config import ProviderSettingsBase

ENV_BOT_TOKEN = "CHATOPS_SLACK_BOT_TOKEN"
ENV_SIGNING_SECRET = "CHATOPS_SLACK_SIGNING_SECRET"
ENV_API_URL = "CHATOPS_SLACK_API_URL"


class SlackSettings(ProviderSettingsBase):
    """One Slack workspace (an app installed there)."""

    model_config = ConfigDict(title="Slack")

    type: Literal["slack"] = Field(
        default="slack", description="Provider type of this instance; always 'slack'."
    )
    bot_token: SecretStr = Field(description="The app's Bot User OAuth Token (xoxb-...).")
    signing_secret: SecretStr = Field(
        description="The app's signing secret; a request whose signature does not verify is refused (401)."
    )
    api_url: str = Field(
        default="https://slack.com/api/",
        description="Where Slack's Web API is; point it at a local server in tests.",
    )
    default_channel: str | None = Field(
        default="#incidents",
        description=(
            "Channel ('#name' or an id) for notifications that no notification_channels entry routes."
        ),
    )
    timeline_reaction: str = Field(
        default="pushpin",
        description="The emoji (name without colons) that marks a message for the incident's timeline.",
    )
    bot_user_id: str | None = Field(
        default=None,
        description=(
            "The bot's own user id, so its own messages are ignored. When unset, the "
            "authorizations[0].user_id and api_app_id fields of each event are used instead."
        ),
    )

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlackSettings | None:
        """The instance ``CHATOPS_SLACK_BOT_TOKEN`` and ``CHATOPS_SLACK_SIGNING_SECRET`` (and
        optionally ``CHATOPS_SLACK_API_URL``) configure, None when neither is set.

        Raises :class:`~chatops_core.errors.ConfigError` naming the one missing when only one
        of the two is set.
        """
        token, secret = env.get(ENV_BOT_TOKEN), env.get(ENV_SIGNING_SECRET)
        if not token and not secret:
            return None
        if not (token and secret):
            missing = ENV_SIGNING_SECRET if token else ENV_BOT_TOKEN
            raise ConfigError(
                f"{missing} is not set; a Slack instance needs both a bot token and a signing secret"
            )
        api_url = env.get(ENV_API_URL)
        if api_url:
            return cls(bot_token=SecretStr(token), signing_secret=SecretStr(secret), api_url=api_url)
        return cls(bot_token=SecretStr(token), signing_secret=SecretStr(secret))
