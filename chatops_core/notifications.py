"""The notification the incident system hands us, and what fan-out makes of it.

The same JSON arrives on ``POST /api/v1/notifications`` and as the argument of the Celery
task ``chatops.notify``; lifecycle changes made from chat go through the same path.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatops_core.models import Incident, NotificationType, Severity, Status
from chatops_core.redaction import active as active_redactor

if TYPE_CHECKING:
    from chatops_core.publisher import TaskPublisher

NOTIFICATION_TYPES: tuple[str, ...] = get_args(NotificationType)
# Notifications that must reach people as a message of their own, not only as a change of
# the incident's card: a breach or an escalation says something new even when the card
# already shows the incident's latest version.
ALERT_TYPES: frozenset[str] = frozenset({"incident.sla_breach", "incident.escalated"})

# The limits of a notification, the same on every path (HTTP API, broker, chat).
# An incident id: letters, digits, '-', '_', '.', ':'. Cards of the incident system's
# incidents are keyed "ext:<id>", which must fit the 64 characters the store keeps.
INCIDENT_ID_MAX_LENGTH = 60
EXTERNAL_PREFIX = "ext:"
MAX_TARGET_CHANNELS = 50
MAX_VERSION = 2**31 - 1  # the store keeps versions as 32-bit signed integers
SUMMARY_MAX_LENGTH = 2000
SNAPSHOT_TITLE_MAX_LENGTH = 500  # the incident system's titles; chat's are shorter
ACTOR_MAX_LENGTH = 100
URL_MAX_LENGTH = 2000
_INCIDENT_ID_RE = re.compile(r"[A-Za-z0-9_.:-]+")
# A channel reference: "#name" or a name (letters, digits, '_', '-', '.'), or a platform id.
_CHANNEL_REF_RE = re.compile(r"#?\w[\w.-]{0,79}")
_PLATFORM_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
_INSTANCE_RE = re.compile(r"[a-z0-9_-]{1,64}")
INCIDENT_ID_RULE = f"1 to {INCIDENT_ID_MAX_LENGTH} letters, digits, '-', '_', '.' or ':'"
CHANNEL_RULE = "a channel as '#name' (letters, digits, '_', '-', '.'; at most 80) or a platform id"
INSTANCE_RULE = "an instance name: lowercase letters, digits, '-' or '_'"


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters for display, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def valid_incident_id(value: str) -> bool:
    """Whether ``value`` is an incident id (:data:`INCIDENT_ID_RULE`)."""
    return len(value) <= INCIDENT_ID_MAX_LENGTH and bool(_INCIDENT_ID_RE.fullmatch(value))


def valid_channel_ref(value: str) -> bool:
    """Whether ``value`` names a target channel (:data:`CHANNEL_RULE`); no markup fits."""
    return bool(_CHANNEL_REF_RE.fullmatch(value) or _PLATFORM_ID_RE.fullmatch(value))


def valid_platform_id(value: str) -> bool:
    """Whether ``value`` looks like a platform's id of a channel or user."""
    return bool(_PLATFORM_ID_RE.fullmatch(value))


def valid_instance(value: str) -> bool:
    """Whether ``value`` is a provider instance name."""
    return bool(_INSTANCE_RE.fullmatch(value))


class IncidentSnapshot(BaseModel):
    """The incident as the notification describes it."""

    model_config = ConfigDict(extra="ignore")

    id: str  # INCIDENT_ID_RULE, checked below
    title: str = Field(min_length=1, max_length=SNAPSHOT_TITLE_MAX_LENGTH)
    severity: Severity
    status: Status
    commander: str | None = None
    # The commander's platform instance and user id there, when known: shown as a mention on
    # that instance, by ``commander`` (their name) everywhere else.
    commander_instance: str | None = None
    commander_user_id: str | None = None
    url: str | None = Field(default=None, max_length=URL_MAX_LENGTH)
    created_at: datetime
    # Optional: the incident's version, so a later update never loses to an older one.
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    channel_instance: str | None = None
    channel_id: str | None = None
    # Where the incident lives: "chat" for incidents declared in chat (set by
    # :meth:`of`, never accepted from the HTTP API), "external" for the incident system's.
    # The two are kept apart: the same id names two different incidents.
    origin: Literal["external", "chat"] = "external"

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not valid_incident_id(value):
            raise ValueError(f"an incident id is {INCIDENT_ID_RULE}")
        return value

    @field_validator("channel_instance")
    @classmethod
    def _instance_form(cls, value: str | None) -> str | None:
        if value is not None and not valid_instance(value):
            raise ValueError(f"must be {INSTANCE_RULE}")
        return value

    @field_validator("channel_id")
    @classmethod
    def _channel_id_form(cls, value: str | None) -> str | None:
        if value is not None and not valid_platform_id(value):
            raise ValueError("must be a platform channel id (letters, digits, '_', '.', ':', '@', '-')")
        return value

    @property
    def key(self) -> str:
        """The incident among every incident shown: an incident declared in chat by its id,
        one of the incident system by ``ext:<id>``, so they never share a card."""
        return self.id if self.origin == "chat" else EXTERNAL_PREFIX + self.id

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
            commander_instance=incident.commander_instance,
            commander_user_id=incident.commander_user_id,
            url=url,
            created_at=incident.created_at,
            version=incident.version,
            channel_instance=incident.instance if incident.channel_id else None,
            channel_id=incident.channel_id,
            origin="chat",
        )


class Notification(BaseModel):
    """One notification: what happened to which incident, and optionally where to say it."""

    model_config = ConfigDict(extra="forbid")

    type: NotificationType
    incident: IncidentSnapshot
    channels: dict[str, list[str]] | None = None
    # Set by us: a line saying what changed and who did it (chat-originated changes). Longer
    # text (a long note) is cut for display with an ellipsis, never refused.
    summary: str | None = Field(default=None, max_length=SUMMARY_MAX_LENGTH)
    actor: str | None = Field(default=None, max_length=ACTOR_MAX_LENGTH)

    @field_validator("summary", mode="before")
    @classmethod
    def _cut_summary(cls, value: object) -> object:
        return cut(value, SUMMARY_MAX_LENGTH) if isinstance(value, str) else value

    @field_validator("actor", mode="before")
    @classmethod
    def _cut_actor(cls, value: object) -> object:
        return cut(value, ACTOR_MAX_LENGTH) if isinstance(value, str) else value

    @field_validator("channels")
    @classmethod
    def _targets(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        for instance, names in value.items():
            if not valid_instance(instance):
                raise ValueError(f"{instance[:64]!r} is not {INSTANCE_RULE}")
            for name in names:
                if not valid_channel_ref(name):
                    raise ValueError(f"{name[:64]!r} is not {CHANNEL_RULE}")
        total = sum(len(names) for names in value.values())
        if total > MAX_TARGET_CHANNELS:
            raise ValueError(f"at most {MAX_TARGET_CHANNELS} target channels per notification, not {total}")
        return value

    @property
    def is_alert(self) -> bool:
        """Whether this notification must reach people as a message of its own (:data:`ALERT_TYPES`)."""
        return self.type in ALERT_TYPES


class Announcement(BaseModel):
    """A message about an incident posted into a channel."""

    type: NotificationType
    incident: IncidentSnapshot
    actor: str | None = None
    summary: str
    incident_url: str | None = None
    # Whether the card carries the controls that change the incident: only for incidents
    # declared in chat, the ones commands act on (a click on the incident system's ``INC-7``
    # must not change ours).
    actionable: bool = True

    @classmethod
    def of(cls, notification: Notification) -> Announcement:
        """What is posted of ``notification``: its title and summary redacted, as everything
        said in chat is (the incident may keep what people wrote: ``[redaction]``)."""
        redactor = active_redactor()
        incident = notification.incident
        return cls(
            type=notification.type,
            incident=incident.model_copy(update={"title": redactor.redact(incident.title)}),
            actor=notification.actor,
            summary=redactor.redact(notification.summary or _DEFAULT_SUMMARY[notification.type]),
            incident_url=notification.incident.url,
            actionable=notification.incident.origin == "chat",
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
