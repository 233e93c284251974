"""The notification the incident system hands us, and what fan-out makes of it.

The same JSON arrives on ``POST /api/v1/notifications`` and as the argument of the Celery
task ``chatops.notify``; lifecycle changes made from chat go through the same path.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatops_core.models import Incident, NotificationType, Severity, Status

if TYPE_CHECKING:
    from chatops_core.publisher import TaskPublisher

NOTIFICATION_TYPES: tuple[str, ...] = get_args(NotificationType)


class IncidentSnapshot(BaseModel):
    """The incident as the notification describes it."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=500)
    severity: Severity
    status: Status
    commander: str | None = None
    url: str | None = None
    created_at: datetime
    # Optional: the incident's version, so a later update never loses to an older one.
    version: int | None = Field(default=None, ge=1)
    channel_instance: str | None = None
    channel_id: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity_forms(cls, value: object) -> object:
        if isinstance(value, str):
            from chatops_core.commands.grammar import parse_severity

            return parse_severity(value) or value
        return value

    @classmethod
    def of(cls, incident: Incident, url: str | None = None) -> IncidentSnapshot:
        return cls(
            id=incident.id,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            commander=incident.commander,
            url=url,
            created_at=incident.created_at,
            version=incident.version,
            channel_instance=incident.instance if incident.channel_id else None,
            channel_id=incident.channel_id,
        )


class Notification(BaseModel):
    """One notification: what happened to which incident, and optionally where to say it."""

    model_config = ConfigDict(extra="forbid")

    type: NotificationType
    incident: IncidentSnapshot
    channels: dict[str, list[str]] | None = None
    # Set by us: a line saying what changed and who did it (chat-originated changes).
    summary: str | None = Field(default=None, max_length=2000)
    actor: str | None = None


class Announcement(BaseModel):
    """A message about an incident posted into a channel."""

    type: NotificationType
    incident: IncidentSnapshot
    actor: str | None = None
    summary: str
    incident_url: str | None = None

    @classmethod
    def of(cls, notification: Notification) -> Announcement:
        return cls(
            type=notification.type,
            incident=notification.incident,
            actor=notification.actor,
            summary=notification.summary or _DEFAULT_SUMMARY[notification.type],
            incident_url=notification.incident.url,
        )


_DEFAULT_SUMMARY: dict[str, str] = {
    "incident.created": "Incident declared",
    "incident.acknowledged": "Acknowledged",
    "incident.updated": "Updated",
    "incident.resolved": "Resolved",
    "incident.closed": "Closed",
    "incident.escalated": "Severity raised",
    "incident.sla_breach": "Not acknowledged within its SLA",
}


def enqueue_notification(
    publisher: TaskPublisher,
    notification: Notification,
    *,
    idempotency_key: str | None = None,
    ttl: int | None = None,
) -> tuple[str, bool]:
    """Put ``notification`` on the ``notifications`` queue as task ``chatops.notify``.

    Returns ``(id, enqueued)``; with ``idempotency_key``, a key seen before enqueues nothing
    and gives the first notification's id. Raises ``BrokerUnavailable``.
    """
    from chatops_core.tasks import NOTIFICATIONS_QUEUE, NOTIFY_TASK

    notification_id = f"ntf_{uuid.uuid4()}"
    args = [notification.model_dump(mode="json"), notification_id]
    if idempotency_key is None:
        publisher.send(NOTIFY_TASK, args, queue=NOTIFICATIONS_QUEUE, task_id=notification_id)
        return notification_id, True
    return publisher.send_once(
        NOTIFY_TASK,
        args,
        queue=NOTIFICATIONS_QUEUE,
        idempotency_key=f"notify:{idempotency_key}",
        task_id=notification_id,
        ttl=ttl,
    )
