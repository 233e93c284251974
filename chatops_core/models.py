"""Platform-neutral models shared by the ingress, the workers and the providers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Severity(StrEnum):
    """Incident severity; SEV-1 is the most severe."""

    SEV1 = "SEV-1"
    SEV2 = "SEV-2"
    SEV3 = "SEV-3"
    SEV4 = "SEV-4"

    @property
    def rank(self) -> int:
        """1 for SEV-1 ... 4 for SEV-4."""
        return int(self.value[-1])

    def raised(self) -> Severity:
        """One step more severe (SEV-1 stays SEV-1)."""
        return Severity(f"SEV-{max(1, self.rank - 1)}")


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_active(self) -> bool:
        """Not yet resolved or closed."""
        return self not in (Status.RESOLVED, Status.CLOSED)


INCIDENT_ID_RE = re.compile(r"^(?:inc-|#)?(\d{1,9})$", re.IGNORECASE)


def format_incident_id(number: int) -> str:
    return f"INC-{number}"


class Actor(BaseModel):
    """Who did something, as the platform names them."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    user_name: str | None = None
    # Their e-mail address, where the platform reports it (the same address on two platforms
    # is one person: chatops_core.store.people).
    email: str | None = None

    @property
    def display(self) -> str:
        return self.user_name or self.user_id


class Person(BaseModel):
    """Someone named in a command (a commander), as the platform they came from knows them.

    ``instance`` and ``user_id`` are set when the platform identified the person (a mention);
    ``display`` is how to write them anywhere else.
    """

    model_config = ConfigDict(frozen=True)

    instance: str | None = None
    user_id: str | None = None
    display: str


class Incident(BaseModel):
    number: int
    title: str
    severity: Severity
    status: Status
    # The commander as written anywhere (their name), and, when the platform identified them,
    # the instance they came from and their user id there.
    commander: str | None = None
    commander_instance: str | None = None
    commander_user_id: str | None = None
    description: str | None = None
    resolution: str | None = None
    declared_by: str | None = None
    platform: str | None = None
    instance: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    version: int = 1
    # The version of the last change that was announced, so what posted cards show: a change
    # that is not announced (a note) leaves the cards as they are. None: the same as version.
    announced_version: int | None = None

    @property
    def id(self) -> str:
        return format_incident_id(self.number)


class EntryKind(StrEnum):
    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    ESCALATED = "escalated"
    ASSIGNED = "assigned"
    NOTE = "note"
    JOINED = "joined"
    LEFT = "left"
    CHANNEL_CREATED = "channel_created"


class TimelineEntry(BaseModel):
    incident_number: int
    at: datetime
    kind: EntryKind
    actor: str
    platform: str | None = None
    channel: str | None = None
    text: str


class InboundCommand(BaseModel):
    """A command typed (or clicked) on some platform, in neutral form.

    ``text`` is what follows the root command, e.g. ``declare sev2 DB down`` for
    ``/im declare sev2 DB down``. ``key`` identifies the request so a redelivered task
    runs once.
    """

    key: str
    instance: str
    platform: str
    command: str = "/im"
    text: str = ""
    user: Actor
    channel_id: str | None = None
    channel_name: str | None = None
    received_at: datetime = Field(default_factory=utcnow)
    # Where it came from: a typed command, a click on a message, a submitted form, a mention of
    # the bot (or a direct message), or a reaction that marks a message for the timeline.
    source: Literal["command", "action", "form", "mention", "reaction"] = "command"
    # A mention is answered in this thread (the platform's own reference, opaque here).
    thread_id: str | None = None
    # The message clicked (action) or marked (reaction), as the platform names it.
    message_id: str | None = None
    # How to answer this command, as only the provider of ``instance`` reads it (a reply URL,
    # a form trigger...): opaque to everything else, which passes it through unchanged.
    reply_to: dict[str, str] = Field(default_factory=dict)
    # Open this form instead of running ``text`` (e.g. ``declare`` with no title).
    form: Literal["declare", "resolve"] | None = None
    # Form values beyond the command text.
    description: str | None = None
    # A click: the version of the incident the clicked card showed (None: not known).
    card_version: int | None = Field(default=None, ge=1)
    # The people the text mentions, as the platform identified them.
    mentioned: list[Person] = Field(default_factory=list)
    # The platform shows only what its webhook's HTTP response carries (a Teams outgoing
    # webhook): the ingress holds the request open for the command's first answer, handed
    # over under this key (see chatops_core.answers). None: answered the platform's own way.
    answer_key: str | None = None


class Reply(BaseModel):
    """An answer to the person who ran a command."""

    text: str
    ephemeral: bool = True
    incident: Incident | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    incidents: list[Incident] = Field(default_factory=list)


NotificationType = Literal[
    "incident.created",
    "incident.acknowledged",
    "incident.updated",
    "incident.resolved",
    "incident.closed",
    "incident.escalated",
    "incident.sla_breach",
]


class MessageRef(BaseModel):
    """Where a posted message lives, so it can be updated later."""

    channel_id: str
    message_id: str


@dataclass(frozen=True)
class PostedText:
    """One message as posted: who wrote it (None for an app or a webhook), its text, and when
    it was posted (None when the platform does not say)."""

    author: Person | None
    text: str
    at: datetime | None = None


class ChannelRef(BaseModel):
    channel_id: str
    name: str


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-able dict of a model (for task arguments)."""
    return model.model_dump(mode="json")
