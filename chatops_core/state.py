"""The incident state machine: pure, no I/O.

``transition(incident, action, ...)`` returns the changed incident and the effects the
caller carries out (a timeline entry, a notification); it raises
:class:`~chatops_core.errors.InvalidTransition` for what the state does not allow, with a
message that tells the user what they can do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chatops_core.errors import InvalidArguments, InvalidTransition
from chatops_core.models import EntryKind, Incident, NotificationType, Person, Severity, Status


class Action(StrEnum):
    ACK = "ack"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    ASSIGN = "assign"
    NOTE = "note"


# Which statuses each status-changing action may start from, and where it leads.
ALLOWED: dict[Action, tuple[frozenset[Status], Status]] = {
    Action.ACK: (frozenset({Status.OPEN}), Status.ACKNOWLEDGED),
    Action.MITIGATE: (frozenset({Status.OPEN, Status.ACKNOWLEDGED}), Status.MITIGATED),
    Action.RESOLVE: (
        frozenset({Status.OPEN, Status.ACKNOWLEDGED, Status.MITIGATED}),
        Status.RESOLVED,
    ),
    Action.CLOSE: (frozenset({Status.RESOLVED}), Status.CLOSED),
    Action.REOPEN: (frozenset({Status.RESOLVED, Status.CLOSED}), Status.OPEN),
}

_ENTRY: dict[Action, EntryKind] = {
    Action.ACK: EntryKind.ACKNOWLEDGED,
    Action.MITIGATE: EntryKind.MITIGATED,
    Action.RESOLVE: EntryKind.RESOLVED,
    Action.CLOSE: EntryKind.CLOSED,
    Action.REOPEN: EntryKind.REOPENED,
    Action.ESCALATE: EntryKind.ESCALATED,
    Action.ASSIGN: EntryKind.ASSIGNED,
    Action.NOTE: EntryKind.NOTE,
}

_NOTIFY: dict[Action, NotificationType | None] = {
    Action.ACK: "incident.acknowledged",
    Action.MITIGATE: "incident.updated",
    Action.RESOLVE: "incident.resolved",
    Action.CLOSE: "incident.closed",
    Action.REOPEN: "incident.updated",
    Action.ESCALATE: "incident.escalated",
    Action.ASSIGN: "incident.updated",
    Action.NOTE: None,
}


@dataclass(frozen=True)
class Effects:
    """What the caller must do after a transition."""

    entry_kind: EntryKind
    entry_text: str
    notification: NotificationType | None


def allows(action: Action, status: Status, severity: Severity) -> bool:
    """Whether an incident in ``status`` at ``severity`` may take ``action`` (as
    :func:`transition` would accept it, given what the action needs besides)."""
    if action in ALLOWED:
        return status in ALLOWED[action][0]
    if action is Action.ESCALATE:
        return status.is_active and severity is not Severity.SEV1
    if action is Action.ASSIGN:
        return status is not Status.CLOSED
    return action is Action.NOTE


def available(
    status: Status, severity: Severity, among: tuple[Action, ...] = tuple(Action)
) -> tuple[Action, ...]:
    """The actions of ``among`` (in its order) that an incident in ``status`` at ``severity``
    may take: what an incident's card offers."""
    return tuple(action for action in among if allows(action, status, severity))


def _next_steps(status: Status) -> str:
    allowed = sorted(a.value for a, (sources, _) in ALLOWED.items() if status in sources)
    return ", ".join(f"`{a}`" for a in allowed) or "nothing"


def _refuse(incident: Incident, action: Action) -> InvalidTransition:
    return InvalidTransition(
        f"{incident.id} is {incident.status.value}, so it cannot be {_verb(action)}. "
        f"From {incident.status.value} you can: {_next_steps(incident.status)}."
    )


def _verb(action: Action) -> str:
    return {
        Action.ACK: "acknowledged",
        Action.MITIGATE: "mitigated",
        Action.RESOLVE: "resolved",
        Action.CLOSE: "closed",
        Action.REOPEN: "reopened",
        Action.ESCALATE: "escalated",
        Action.ASSIGN: "assigned",
        Action.NOTE: "noted",
    }[action]


def already_changed(incident: Incident) -> InvalidTransition:
    """The refusal of a click on a card older than the incident: it says what it shows now."""
    commander = incident.commander or "nobody"
    return InvalidTransition(
        f"{incident.id} has already changed since that card was shown, so nothing was done. "
        f"It is now {incident.severity.value}, {incident.status.value}, commander {commander}."
    )


def _person(who: Person | str | None) -> Person | None:
    if isinstance(who, Person):
        display = who.display.strip()
        return who.model_copy(update={"display": display}) if display else None
    display = (who or "").strip()
    return Person(display=display) if display else None


def transition(
    incident: Incident,
    action: Action,
    *,
    actor: str,
    at: datetime,
    note: str | None = None,
    severity: Severity | None = None,
    commander: Person | str | None = None,
    by: Person | None = None,
) -> tuple[Incident, Effects]:
    """Apply ``action`` to ``incident``; return the new incident and its effects.

    ``commander`` is whom ``assign`` appoints; ``by`` is the actor as a person (who becomes
    commander on ``ack`` when there is none; ``actor`` alone when not given).
    """
    # Blank text is no text: a note of spaces is no note, a commander of spaces is nobody.
    note = (note or "").strip() or None
    appointed = _person(commander)
    changes: dict[str, object] = {}
    if action in ALLOWED:
        sources, target = ALLOWED[action]
        if incident.status not in sources:
            raise _refuse(incident, action)
        changes["status"] = target
        stamp = {
            Status.ACKNOWLEDGED: "acknowledged_at",
            Status.MITIGATED: "mitigated_at",
            Status.RESOLVED: "resolved_at",
            Status.CLOSED: "closed_at",
        }.get(target)
        if stamp:
            changes[stamp] = at
        if action is Action.ACK and not incident.commander:
            changes.update(_commander_fields(by or Person(display=actor)))
        if action is Action.RESOLVE:
            changes["resolution"] = note
        if action is Action.REOPEN:
            changes.update(resolved_at=None, closed_at=None, resolution=None)
        text = {
            Action.ACK: f"Acknowledged by {actor}",
            Action.MITIGATE: f"Mitigated by {actor}" + (f": {note}" if note else ""),
            Action.RESOLVE: f"Resolved by {actor}" + (f": {note}" if note else ""),
            Action.CLOSE: f"Closed by {actor}",
            Action.REOPEN: f"Reopened by {actor}",
        }[action]
    elif action is Action.ESCALATE:
        if not incident.status.is_active:
            raise InvalidTransition(
                f"{incident.id} is {incident.status.value}; reopen it first (`reopen {incident.id}`) "
                "to escalate it."
            )
        target_sev = severity or incident.severity.raised()
        if target_sev.rank >= incident.severity.rank:
            if incident.severity is Severity.SEV1:
                raise InvalidTransition(f"{incident.id} is already SEV-1, the highest severity.")
            raise InvalidTransition(
                f"{incident.id} is {incident.severity.value}; escalate raises severity, so give "
                f"one above it, e.g. `escalate {incident.id} {incident.severity.raised().value.lower()}`."
            )
        changes["severity"] = target_sev
        text = f"Escalated from {incident.severity.value} to {target_sev.value} by {actor}"
    elif action is Action.ASSIGN:
        if incident.status is Status.CLOSED:
            raise InvalidTransition(f"{incident.id} is closed; reopen it first (`reopen {incident.id}`).")
        if appointed is None:
            raise InvalidArguments(f"Say who commands {incident.id}: `assign {incident.id} @user`.")
        changes.update(_commander_fields(appointed))
        text = f"{appointed.display} assigned as incident commander by {actor}"
    elif action is Action.NOTE:
        if not note:
            raise InvalidArguments(f"Write the note after the id: `note {incident.id} <text>`.")
        text = note
    else:  # pragma: no cover - exhaustive over Action
        raise AssertionError(action)

    changes["updated_at"] = at
    changes["version"] = incident.version + 1
    if _NOTIFY[action] is not None:
        changes["announced_version"] = incident.version + 1
    new = incident.model_copy(update=changes)
    return new, Effects(entry_kind=_ENTRY[action], entry_text=text, notification=_NOTIFY[action])


def _commander_fields(person: Person) -> dict[str, object]:
    return {
        "commander": person.display,
        "commander_instance": person.instance if person.user_id else None,
        "commander_user_id": person.user_id,
    }
