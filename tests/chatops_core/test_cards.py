"""The neutral incident card: built once from an announcement, its buttons from the state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatops_core.cards import IncidentCard
from chatops_core.errors import InvalidTransition
from chatops_core.models import Incident, Severity, Status
from chatops_core.notifications import Announcement, IncidentSnapshot, Notification
from chatops_core.state import Action, transition

CREATED = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def incident(status: Status = Status.OPEN, severity: Severity = Severity.SEV2) -> Incident:
    return Incident(
        number=12,
        title="Database timeouts",
        severity=severity,
        status=status,
        commander="erin",
        commander_instance="acme",
        commander_user_id="U061F7AUR",
        created_at=CREATED,
        updated_at=CREATED,
        version=3,
    )


def announced(inc: Incident, type_: str = "incident.acknowledged", **fields: object) -> Announcement:
    snapshot = IncidentSnapshot.of(inc, url="https://incidents.example.com/INC-12")
    notification = Notification.model_validate(
        {
            "type": type_,
            "incident": snapshot.model_dump(),
            "actor": "alice",
            "summary": "Ack by alice",
            **fields,
        }
    )
    return Announcement.of(notification)


@pytest.mark.parametrize("severity", list(Severity))
@pytest.mark.parametrize("status", list(Status))
def test_a_card_offers_exactly_what_the_state_machine_accepts(status: Status, severity: Severity) -> None:
    inc = incident(status, severity)
    card = IncidentCard.of(announced(inc))
    offered = {action.name for action in card.actions}
    for name in ("ack", "mitigate", "resolve", "escalate"):
        try:
            transition(inc, Action(name), actor="alice", at=CREATED)
            accepted = True
        except InvalidTransition:
            accepted = False
        assert (name in offered) is accepted, (status, severity, name)
    # The severity menu goes with the buttons.
    assert card.severities == (tuple(Severity) if offered else ())


def test_the_card_says_what_the_announcement_says() -> None:
    card = IncidentCard.of(announced(incident()))
    assert (card.incident_id, card.title, card.severity, card.status) == (
        "INC-12",
        "Database timeouts",
        Severity.SEV2,
        Status.OPEN,
    )
    assert (card.commander, card.commander_instance, card.commander_user_id) == ("erin", "acme", "U061F7AUR")
    assert (card.headline, card.summary, card.actor) == ("Incident acknowledged", "Ack by alice", "alice")
    assert (card.url, card.version, card.created_at, card.external) == (
        "https://incidents.example.com/INC-12",
        3,
        CREATED,
        False,
    )
    assert [(a.name, a.label, a.style) for a in card.actions] == [
        ("ack", "Acknowledge", None),
        ("mitigate", "Mitigate", None),
        ("resolve", "Resolve", "primary"),
        ("escalate", "Escalate", "danger"),
    ]
    assert card.typed_commands() == [
        "ack INC-12",
        "mitigate INC-12",
        "resolve INC-12",
        "escalate INC-12",
        "assign INC-12 @someone",
    ]


def test_a_card_of_the_incident_systems_incident_has_no_actions() -> None:
    external = Notification.model_validate(
        {
            "type": "incident.created",
            "incident": {
                "id": "INC-12",
                "title": "Upstream outage",
                "severity": "SEV-2",
                "status": "open",
                "created_at": CREATED.isoformat(),
            },
        }
    )
    card = IncidentCard.of(Announcement.of(external))
    assert card.external and card.actions == () and card.severities == ()
    assert card.typed_commands() == []
    assert card.headline == "Incident declared"
