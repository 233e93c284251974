"""Where an incident's notifications go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatops_core.models import Incident, Severity
from chatops_core.notifications import Notification


@dataclass(frozen=True)
class Target:
    instance: str
    channel: str  # a channel id or "#name", as the platform accepts


def targets_for(
    severity: Severity,
    providers: Mapping[str, Any],
    *,
    own_channel: tuple[str, str] | None = None,
    channels: Mapping[str, list[str]] | None = None,
) -> list[Target]:
    """The targets of a notification about an incident of ``severity``.

    ``channels`` (``{"<instance>": ["#chan", ...]}``) overrides routing. Otherwise each
    instance with notifications enabled gets the channel its ``notification_channels``
    names for the severity (else ``default_channel``), and the incident's own channel
    (``own_channel``: instance and channel id) is added.
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
        add(instance, mapping.get(severity) or getattr(conf, "default_channel", None))
    if own_channel is not None and own_channel[0] in providers:
        add(*own_channel)
    return targets


def route(incident: Incident, providers: Mapping[str, Any]) -> list[Target]:
    """Targets for an incident of ours."""
    own = (incident.instance, incident.channel_id) if incident.instance and incident.channel_id else None
    return targets_for(incident.severity, providers, own_channel=own)


def route_notification(notification: Notification, providers: Mapping[str, Any]) -> list[Target]:
    """Targets for a notification, from its ``channels`` or by routing."""
    snapshot = notification.incident
    own = (
        (snapshot.channel_instance, snapshot.channel_id)
        if snapshot.channel_instance and snapshot.channel_id
        else None
    )
    return targets_for(snapshot.severity, providers, own_channel=own, channels=notification.channels)
