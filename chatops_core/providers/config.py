"""The settings keys every provider type shares.

A ``[providers.<name>]`` table configures one instance; its ``type`` picks the model that
reads it. Each provider package owns that model in ``providers/<type>/config.py``, a subclass
of :class:`ProviderSettingsBase` whose ``type`` is ``Literal["<type>"]``, and names it as its
provider class's ``settings_model``. :class:`~chatops_core.settings.Settings` tells the
types apart by ``type`` among the provider packages it finds, so a new platform adds its keys
without touching anything outside its package.

Channels here are aliases (a name such as ``#incidents`` or an id), which the instance's
provider resolves; a secret such as a webhook URL lives in the type's own keys and is never
a channel reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatops_core.models import Severity

# "SEV-1", "sev1", "Sev-1": the spellings a severity key may have.
_SEVERITY_KEY = re.compile(r"^sev-?([1-4])$", re.IGNORECASE)


def severity_key(key: object) -> Severity:
    """A ``notification_channels`` key as a :class:`Severity` (``SEV-1``, ``sev1``, ``Sev-1``)."""
    if isinstance(key, Severity):
        return key
    match = _SEVERITY_KEY.match(key.strip()) if isinstance(key, str) else None
    if match is None:
        raise ValueError(f"unknown severity {key!r}: use SEV-1 to SEV-4 (or sev1 to sev4)")
    return Severity(f"SEV-{match.group(1)}")


class ProviderSettingsBase(BaseModel):
    """The keys every provider type has, with the same names, types and meaning."""

    # hide_input_in_errors: a validation error must not print a token given in the wrong place.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    type: str = Field(description="Provider type of this instance, e.g. 'slack' or 'mattermost'.")
    bot_name: str = Field(default="incident-bot", description="Name the bot goes by in messages.")
    default_channel: str | None = Field(
        default=None,
        description="Channel (alias) for notifications that no notification_channels entry routes.",
    )
    enable_notifications: bool = Field(
        default=True, description="Deliver incident notifications to this instance."
    )
    create_incident_channels: bool = Field(
        default=False, description="Create a channel of its own for each declared incident."
    )
    archive_on_close: bool = Field(
        default=False, description="Archive an incident's own channel when the incident is closed."
    )
    notification_channels: dict[Severity, str] = Field(
        default_factory=dict,
        description=(
            "Channel (alias) per severity for notifications, keys 'SEV-1'..'SEV-4'; a severity "
            "without an entry goes to default_channel."
        ),
    )
    timeout: float = Field(default=10.0, gt=0, description="Seconds allowed for each call to the platform.")
    bot_user_id: str | None = Field(
        default=None,
        description=(
            "The bot's own user id, so its own messages are ignored; when unset, each platform "
            "says how it tells the bot's messages apart (Slack: from each event)."
        ),
    )

    @field_validator("notification_channels", mode="before")
    @classmethod
    def _severity_keys(cls, value: Any) -> Any:
        """Every type takes the same spellings of a severity; one given twice is refused."""
        if not isinstance(value, dict):
            return value
        channels: dict[Severity, Any] = {}
        spelled: dict[Severity, object] = {}
        for key, channel in value.items():
            severity = severity_key(key)
            if severity in channels:
                raise ValueError(
                    f"severity {severity.value} is given twice ({spelled[severity]!r} and {key!r})"
                )
            channels[severity] = channel
            spelled[severity] = key
        return channels

    def notification_channel(self, severity: Severity) -> str | None:
        """The channel alias a notification about an incident of ``severity`` goes to."""
        return self.notification_channels.get(severity) or self.default_channel

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProviderSettingsBase | None:
        """One instance of this type configured by environment variables alone, or None.

        Raises :class:`~chatops_core.errors.ConfigError` naming what is missing when the
        environment configures it only in part. By default a type has no such form.
        """
        return None


# A provider type's settings model (a name that class bodies with a ``type`` attribute can use).
ProviderSettingsModel: TypeAlias = type[ProviderSettingsBase]


def provider_type_of(value: Any) -> str | None:
    """The ``type`` of one provider table (a mapping or a settings model), None when absent."""
    if isinstance(value, ProviderSettingsBase):
        return value.type
    if isinstance(value, Mapping):
        kind = value.get("type")
        return kind if isinstance(kind, str) else None
    return None
