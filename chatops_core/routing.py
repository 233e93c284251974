"""Where an incident's notifications go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chatops_core.models import Incident, Severity
from chatops_core.notifications import Notification
from chatops_core.providers.config import ProviderSettingsBase


@dataclass(frozen=True)
class Target:
    """One place a notification goes: an instance and a channel alias there.

    ``channel`` is a reference as configured or routed (``#incidents``, ``incidents`` or a
    channel id) that the instance's provider resolves; it is part of the delivery's key and
    log lines, so it is never a platform secret (a webhook URL lives only in settings).
    """

    instance: str
    channel: str


def targets_for(
    severity: Severity,
    providers: Mapping[str, ProviderSettingsBase],
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
        if conf.enable_notifications:
            add(instance, conf.notification_channel(severity))
    if own_channel is not None and own_channel[0] in providers:
        add(*own_channel)
    return targets


def route(incident: Incident, providers: Mapping[str, ProviderSettingsBase]) -> list[Target]:
    """Targets for an incident of ours."""
    own = (incident.instance, incident.channel_id) if incident.instance and incident.channel_id else None
    return targets_for(incident.severity, providers, own_channel=own)


def route_notification(
    notification: Notification, providers: Mapping[str, ProviderSettingsBase]
) -> list[Target]:
    """Targets for a notification, from its ``channels`` or by routing."""
    snapshot = notification.incident
    own = (
        (snapshot.channel_instance, snapshot.channel_id)
        if snapshot.channel_instance and snapshot.channel_id
        else None
    )
    return targets_for(snapshot.severity, providers, own_channel=own, channels=notification.channels)
