"""The incident card, built once for every platform.

An announcement becomes one :class:`IncidentCard`: what the card says (title, severity,
status, commander, age, link, summary) and the actions the incident's state allows (from
:mod:`chatops_core.state`, the one table of what each status permits). A provider only turns
the card into its own format (Block Kit, attachments, an embed, an Adaptive Card) and never
decides which actions an incident offers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from chatops_core.models import NotificationType, Severity, Status
from chatops_core.notifications import Announcement
from chatops_core.redaction import active as active_redactor
from chatops_core.state import Action, available


def age(moment: datetime, now: datetime) -> str:
    """How long ago ``moment`` was, in a few characters: ``just now``, ``5 min ago``, ``3 h ago``."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    seconds = max(0, int((now - aware).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"


CardActionName = Literal["ack", "mitigate", "resolve", "escalate"]

HEADLINES: dict[NotificationType, str] = {
    "incident.created": "Incident declared",
    "incident.acknowledged": "Incident acknowledged",
    "incident.updated": "Incident updated",
    "incident.resolved": "Incident resolved",
    "incident.closed": "Incident closed",
    "incident.escalated": "Incident escalated",
    "incident.sla_breach": "Incident SLA breached",
}


@dataclass(frozen=True)
class CardAction:
    """One button on a card: the action it takes, its label and how it stands out."""

    name: CardActionName
    label: str
    style: Literal["primary", "danger"] | None = None

    def command(self, incident_id: str) -> str:
        """The command a click on this button runs, as it would be typed."""
        return f"{self.name} {incident_id}"


# The card's buttons, in the order shown; which of them a card carries is the state's call.
CARD_ACTIONS: tuple[tuple[Action, CardAction], ...] = (
    (Action.ACK, CardAction("ack", "Acknowledge")),
    (Action.MITIGATE, CardAction("mitigate", "Mitigate")),
    (Action.RESOLVE, CardAction("resolve", "Resolve", "primary")),
    (Action.ESCALATE, CardAction("escalate", "Escalate", "danger")),
)
_BY_ACTION = dict(CARD_ACTIONS)


@dataclass(frozen=True)
class IncidentCard:
    """What an incident's card shows, the same on every platform.

    ``commander`` is the commander's name; ``commander_instance`` and ``commander_user_id``
    say who they are on the instance they came from, so that instance's provider can mention
    them natively and every other shows the name. ``external``: an incident of the incident
    system's: its card has no actions (a click must not change the chat incident of the same
    id) and its ``actor`` is a name the incident system sent, never a mention.
    ``channel_id`` and ``channel_instance``: the incident's own channel, if it has one.
    """

    incident_id: str
    title: str
    severity: Severity
    status: Status
    commander: str | None
    commander_instance: str | None
    commander_user_id: str | None
    created_at: datetime
    url: str | None
    headline: str
    summary: str
    actor: str | None
    version: int | None
    external: bool
    actions: tuple[CardAction, ...]
    severities: tuple[Severity, ...]
    channel_id: str | None = None
    channel_instance: str | None = None

    @classmethod
    def of(cls, announcement: Announcement) -> IncidentCard:
        """The card of ``announcement``: its actions are those the incident's status and
        severity allow, none when the announcement is not actionable (an incident of the
        incident system's). Its title and summary are redacted: a card is chat."""
        inc = announcement.incident
        redactor = active_redactor()
        actions: tuple[CardAction, ...] = ()
        if announcement.actionable:
            allowed = available(inc.status, inc.severity, tuple(action for action, _ in CARD_ACTIONS))
            actions = tuple(_BY_ACTION[action] for action in allowed)
        return cls(
            incident_id=inc.id,
            title=redactor.redact(inc.title),
            severity=inc.severity,
            status=inc.status,
            commander=inc.commander,
            commander_instance=inc.commander_instance,
            commander_user_id=inc.commander_user_id,
            created_at=inc.created_at,
            url=announcement.incident_url,
            headline=HEADLINES.get(announcement.type, "Incident"),
            summary=redactor.redact(announcement.summary),
            actor=announcement.actor,
            version=inc.version,
            external=inc.origin != "chat",
            actions=actions,
            # The severity menu goes with the buttons: offered while the card can act.
            severities=tuple(Severity) if actions else (),
            channel_id=inc.channel_id,
            channel_instance=inc.channel_instance,
        )

    @property
    def actionable(self) -> bool:
        """Whether the card carries controls (buttons, menus) at all."""
        return bool(self.actions)

    def typed_commands(self) -> list[str]:
        """The commands to type for what the buttons would do, for a platform without buttons."""
        lines = [action.command(self.incident_id) for action in self.actions]
        if self.actions:
            lines.append(f"assign {self.incident_id} @someone")
        return lines


__all__ = ["CARD_ACTIONS", "HEADLINES", "CardAction", "IncidentCard"]
