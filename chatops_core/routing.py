"""Where an incident's notifications go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatops_core.models import Incident


@dataclass(frozen=True)
class Target:
    instance: str
    channel: str  # a channel id or "#name", as the platform accepts


def route(
    incident: Incident,
    providers: Mapping[str, Any],
    channels: Mapping[str, list[str]] | None = None,
) -> list[Target]:
    """The targets of a notification about ``incident``.

    ``channels`` (``{"<instance>": ["#chan", ...]}``) overrides routing. Otherwise each
    instance with notifications enabled gets the channel its ``notification_channels``
    names for the severity (else ``default_channel``), and the incident's own channel.
    ``providers`` maps instance names to their settings.
    """
    targets: list[Target] = []

    def add(instance: str, channel: str | None) -> None:
        if channel and Target(instance, channel) not in targets:
            targets.append(Target(instance, channel))

    if channels is not None:
        for instance, names in channels.items():
            for name in names:
                add(instance, name)
        return targets
    for instance, conf in providers.items():
        if not getattr(conf, "enable_notifications", False):
            continue
        mapping = getattr(conf, "notification_channels", {}) or {}
        add(instance, mapping.get(incident.severity) or getattr(conf, "default_channel", None))
        if incident.instance == instance:
            add(instance, incident.channel_id)
    return targets
