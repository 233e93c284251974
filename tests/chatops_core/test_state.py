"""The incident state machine: ``chatops_core.state.transition``."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatops_core.commands.grammar import parse_severity
from chatops_core.errors import CommandError, InvalidArguments, InvalidTransition
from chatops_core.models import EntryKind, Incident, Person, Severity, Status
from chatops_core.state import ALLOWED, Action, transition

DECLARED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
EARLIER = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
AT = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)

REFUSED = None

# Written out by hand from the contract. Rows are actions, columns the status the incident is
# in; a cell is the status the action leads to, or "-" where the action is refused.
# Escalate, assign and note keep the status.
EXPECTED_GRID = """
           open          acknowledged  mitigated     resolved      closed
ack        acknowledged  -             -             -             -
mitigate   mitigated     mitigated     -             -             -
resolve    resolved      resolved      resolved      -             -
close      -             -             -             closed        -
reopen     -             -             -             open          open
escalate   open          acknowledged  mitigated     -             -
assign     open          acknowledged  mitigated     resolved      -
note       open          acknowledged  mitigated     resolved      closed
"""


def _read_grid(grid: str) -> dict[Action, dict[Status, Status | None]]:
    header, *rows = grid.strip().splitlines()
    columns = [Status(word) for word in header.split()]
    table: dict[Action, dict[Status, Status | None]] = {}
    for row in rows:
        action, *cells = row.split()
        table[Action(action)] = {
            status: REFUSED if cell == "-" else Status(cell)
            for status, cell in zip(columns, cells, strict=True)
        }
    return table


EXPECTED = _read_grid(EXPECTED_GRID)

# What a refusal offers instead, per current status.
NEXT_STEPS: dict[Status, set[str]] = {
    Status.OPEN: {"ack", "mitigate", "resolve"},
    Status.ACKNOWLEDGED: {"mitigate", "resolve"},
    Status.MITIGATED: {"resolve"},
    Status.RESOLVED: {"close", "reopen"},
    Status.CLOSED: {"reopen"},
}

ENTRY_KINDS: dict[Action, EntryKind] = {
    Action.ACK: EntryKind.ACKNOWLEDGED,
    Action.MITIGATE: EntryKind.MITIGATED,
    Action.RESOLVE: EntryKind.RESOLVED,
    Action.CLOSE: EntryKind.CLOSED,
    Action.REOPEN: EntryKind.REOPENED,
    Action.ESCALATE: EntryKind.ESCALATED,
    Action.ASSIGN: EntryKind.ASSIGNED,
    Action.NOTE: EntryKind.NOTE,
}

NOTIFICATIONS: dict[Action, str | None] = {
    Action.ACK: "incident.acknowledged",
    Action.MITIGATE: "incident.updated",
    Action.RESOLVE: "incident.resolved",
    Action.CLOSE: "incident.closed",
    Action.REOPEN: "incident.updated",
    Action.ESCALATE: "incident.escalated",
    Action.ASSIGN: "incident.updated",
    Action.NOTE: None,
}

TIMESTAMPS = ("acknowledged_at", "mitigated_at", "resolved_at", "closed_at")


def make_incident(
    status: Status = Status.OPEN, severity: Severity = Severity.SEV3, **fields: Any
) -> Incident:
    """Incident 7 as it would be stored after reaching ``status`` at EARLIER."""
    stamps: dict[Status, dict[str, Any]] = {
        Status.OPEN: {},
        Status.ACKNOWLEDGED: {"acknowledged_at": EARLIER, "commander": "@carol"},
        Status.MITIGATED: {"acknowledged_at": EARLIER, "mitigated_at": EARLIER, "commander": "@carol"},
        Status.RESOLVED: {"acknowledged_at": EARLIER, "resolved_at": EARLIER, "resolution": "Pool raised"},
        Status.CLOSED: {"resolved_at": EARLIER, "closed_at": EARLIER, "resolution": "Pool raised"},
    }
    values: dict[str, Any] = {
        "number": 7,
        "title": "Database timeouts",
        "severity": severity,
        "status": status,
        "created_at": DECLARED,
        "updated_at": EARLIER,
        "version": 3,
        **stamps[status],
        **fields,
    }
    return Incident(**values)


def run(incident: Incident, action: Action, **kwargs: Any) -> tuple[Incident, Any]:
    return transition(incident, action, actor="bob", at=AT, **kwargs)


# --- the whole matrix ----------------------------------------------------------------------


def test_expected_table_covers_every_action_and_status() -> None:
    assert set(EXPECTED) == set(Action)
    for row in EXPECTED.values():
        assert set(row) == set(Status)


def test_allowed_matches_the_expected_table() -> None:
    for action, (sources, target) in ALLOWED.items():
        row = EXPECTED[action]
        assert sources == {status for status, result in row.items() if result is not REFUSED}
        assert {row[status] for status in sources} == {target}


@pytest.mark.parametrize(
    ("action", "status"),
    list(itertools.product(Action, Status)),
    ids=lambda value: value.value,
)
def test_transition_matrix(action: Action, status: Status) -> None:
    incident = make_incident(status)
    before = incident.model_copy(deep=True)
    kwargs: dict[str, Any] = {"note": "Checked the replicas", "commander": "@alice"}
    expected = EXPECTED[action][status]
    if expected is REFUSED:
        with pytest.raises(InvalidTransition) as caught:
            run(incident, action, **kwargs)
        message = str(caught.value)
        assert message.startswith(f"INC-7 is {status.value}")
        assert incident == before  # nothing changed
    else:
        new, effects = run(incident, action, **kwargs)
        assert new.status is expected
        assert new.updated_at == AT
        assert new.version == 4
        assert new.created_at == DECLARED
        assert new.number == 7 and new.title == "Database timeouts"
        assert effects.entry_kind is ENTRY_KINDS[action]
        assert effects.notification == NOTIFICATIONS[action]
        assert incident == before  # the input is never mutated


@pytest.mark.parametrize(
    ("action", "status"),
    [(a, s) for a in ALLOWED for s in Status if EXPECTED[a][s] is REFUSED],
    ids=lambda value: value.value,
)
def test_refusal_names_the_status_and_what_can_be_done(action: Action, status: Status) -> None:
    with pytest.raises(InvalidTransition) as caught:
        run(make_incident(status), action)
    message = str(caught.value)
    assert f"INC-7 is {status.value}, so it cannot be" in message
    assert f"From {status.value} you can:" in message
    offered = set(re.findall(r"`(\w+)`", message.split("you can:", 1)[1]))
    assert offered == NEXT_STEPS[status]


def test_refusals_are_shown_to_the_user() -> None:
    with pytest.raises(CommandError) as caught:
        run(make_incident(Status.CLOSED), Action.ACK)
    assert caught.value.code == "invalid_transition"


# --- timestamps, commander, resolution ------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status", "stamp"),
    [
        (Action.ACK, Status.OPEN, "acknowledged_at"),
        (Action.MITIGATE, Status.OPEN, "mitigated_at"),
        (Action.MITIGATE, Status.ACKNOWLEDGED, "mitigated_at"),
        (Action.RESOLVE, Status.OPEN, "resolved_at"),
        (Action.RESOLVE, Status.MITIGATED, "resolved_at"),
        (Action.CLOSE, Status.RESOLVED, "closed_at"),
    ],
)
def test_status_change_sets_its_timestamp_only(action: Action, status: Status, stamp: str) -> None:
    incident = make_incident(status)
    new, _ = run(incident, action)
    assert getattr(new, stamp) == AT
    for other in TIMESTAMPS:
        if other != stamp:
            assert getattr(new, other) == getattr(incident, other)


@pytest.mark.parametrize("action", [Action.ESCALATE, Action.ASSIGN, Action.NOTE])
def test_other_actions_touch_no_status_timestamp(action: Action) -> None:
    incident = make_incident(Status.MITIGATED)
    new, _ = run(incident, action, note="x", commander="@alice")
    assert {f: getattr(new, f) for f in TIMESTAMPS} == {f: getattr(incident, f) for f in TIMESTAMPS}
    assert new.updated_at == AT


def test_ack_makes_the_acknowledger_commander_when_there_is_none() -> None:
    new, effects = run(make_incident(Status.OPEN), Action.ACK)
    assert new.commander == "bob"
    assert effects.entry_text == "Acknowledged by bob"


def test_ack_keeps_an_existing_commander() -> None:
    new, _ = run(make_incident(Status.OPEN, commander="@carol"), Action.ACK)
    assert new.commander == "@carol"


def test_mitigate_does_not_appoint_a_commander() -> None:
    new, _ = run(make_incident(Status.OPEN), Action.MITIGATE)
    assert new.commander is None


def test_resolve_records_the_note_as_resolution() -> None:
    new, effects = run(make_incident(Status.MITIGATED), Action.RESOLVE, note="Connection pool size raised")
    assert new.resolution == "Connection pool size raised"
    assert effects.entry_text == "Resolved by bob: Connection pool size raised"


def test_resolve_without_note_leaves_no_resolution() -> None:
    new, effects = run(make_incident(Status.ACKNOWLEDGED), Action.RESOLVE)
    assert new.resolution is None
    assert effects.entry_text == "Resolved by bob"


@pytest.mark.parametrize("status", [Status.RESOLVED, Status.CLOSED])
def test_reopen_clears_the_resolution(status: Status) -> None:
    incident = make_incident(status, commander="@carol", severity=Severity.SEV2)
    new, effects = run(incident, Action.REOPEN)
    assert new.status is Status.OPEN
    assert (new.resolved_at, new.closed_at, new.resolution) == (None, None, None)
    assert (new.commander, new.severity, new.title) == ("@carol", Severity.SEV2, "Database timeouts")
    assert effects.entry_text == "Reopened by bob"


@pytest.mark.parametrize(
    ("action", "status", "note", "text"),
    [
        (Action.ACK, Status.OPEN, None, "Acknowledged by bob"),
        (Action.MITIGATE, Status.ACKNOWLEDGED, None, "Mitigated by bob"),
        (Action.MITIGATE, Status.ACKNOWLEDGED, "Failed over", "Mitigated by bob: Failed over"),
        (Action.RESOLVE, Status.MITIGATED, "Pool raised", "Resolved by bob: Pool raised"),
        (Action.CLOSE, Status.RESOLVED, None, "Closed by bob"),
        (Action.REOPEN, Status.CLOSED, None, "Reopened by bob"),
        (Action.NOTE, Status.ACKNOWLEDGED, "Customers informed", "Customers informed"),
    ],
)
def test_entry_text(action: Action, status: Status, note: str | None, text: str) -> None:
    _, effects = run(make_incident(status), action, note=note)
    assert effects.entry_text == text


def test_blank_notes_count_as_no_note() -> None:
    new, effects = run(make_incident(Status.ACKNOWLEDGED), Action.MITIGATE, note="   ")
    assert effects.entry_text == "Mitigated by bob"
    new, effects = run(make_incident(Status.MITIGATED), Action.RESOLVE, note=" \n ")
    assert new.resolution is None
    assert effects.entry_text == "Resolved by bob"
    new, effects = run(make_incident(Status.MITIGATED), Action.RESOLVE, note="  Pool raised ")
    assert new.resolution == "Pool raised"


def test_a_whole_lifecycle_counts_versions_and_keeps_times() -> None:
    incident = make_incident(Status.OPEN, version=1, updated_at=DECLARED)
    steps = [Action.ACK, Action.MITIGATE, Action.RESOLVE, Action.CLOSE, Action.REOPEN, Action.ACK]
    for minute, action in enumerate(steps, start=1):
        at = DECLARED + timedelta(minutes=minute)
        incident, _ = transition(incident, action, actor="bob", at=at, note="step")
        assert incident.version == minute + 1
        assert incident.updated_at == at
    assert incident.status is Status.ACKNOWLEDGED
    assert incident.acknowledged_at == DECLARED + timedelta(minutes=6)
    assert incident.mitigated_at == DECLARED + timedelta(minutes=2)
    assert (incident.resolved_at, incident.closed_at, incident.resolution) == (None, None, None)


# --- escalate -------------------------------------------------------------------------------

SEVERITIES = [Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4]  # most severe first


@pytest.mark.parametrize(
    ("current", "raised"),
    [(Severity.SEV4, Severity.SEV3), (Severity.SEV3, Severity.SEV2), (Severity.SEV2, Severity.SEV1)],
)
def test_escalate_raises_one_step_by_default(current: Severity, raised: Severity) -> None:
    new, effects = run(make_incident(Status.ACKNOWLEDGED, severity=current), Action.ESCALATE)
    assert new.severity is raised
    assert new.status is Status.ACKNOWLEDGED
    assert effects.entry_text == f"Escalated from {current.value} to {raised.value} by bob"
    assert effects.notification == "incident.escalated"


@pytest.mark.parametrize(
    ("current", "target"),
    list(itertools.product(SEVERITIES, SEVERITIES)),
    ids=lambda value: value.value,
)
def test_escalate_to_an_explicit_severity(current: Severity, target: Severity) -> None:
    incident = make_incident(Status.OPEN, severity=current)
    if SEVERITIES.index(target) < SEVERITIES.index(current):
        new, effects = run(incident, Action.ESCALATE, severity=target)
        assert new.severity is target
        assert effects.entry_text == f"Escalated from {current.value} to {target.value} by bob"
        return
    with pytest.raises(InvalidTransition) as caught:
        run(incident, Action.ESCALATE, severity=target)
    message = str(caught.value)
    if current is Severity.SEV1:
        assert message == "INC-7 is already SEV-1, the highest severity."
        return
    assert f"INC-7 is {current.value}; escalate raises severity" in message
    suggested = re.search(r"`escalate INC-7 (\S+)`", message)
    assert suggested is not None
    assert parse_severity(suggested.group(1)) is SEVERITIES[SEVERITIES.index(current) - 1]


def test_escalate_refuses_at_sev1_by_default() -> None:
    with pytest.raises(InvalidTransition, match="already SEV-1"):
        run(make_incident(Status.OPEN, severity=Severity.SEV1), Action.ESCALATE)


@pytest.mark.parametrize("status", [Status.RESOLVED, Status.CLOSED])
def test_escalate_refuses_a_finished_incident(status: Status) -> None:
    with pytest.raises(InvalidTransition) as caught:
        run(make_incident(status), Action.ESCALATE, severity=Severity.SEV1)
    message = str(caught.value)
    assert message.startswith(f"INC-7 is {status.value}; reopen it first")
    assert "`reopen INC-7`" in message


def test_escalate_works_while_mitigated() -> None:
    new, _ = run(make_incident(Status.MITIGATED, severity=Severity.SEV2), Action.ESCALATE)
    assert (new.status, new.severity) == (Status.MITIGATED, Severity.SEV1)


# --- assign ---------------------------------------------------------------------------------


@pytest.mark.parametrize("commander", [None, "", "   "])
def test_assign_needs_a_commander(commander: str | None) -> None:
    with pytest.raises(InvalidArguments) as caught:
        run(make_incident(Status.ACKNOWLEDGED), Action.ASSIGN, commander=commander)
    assert "`assign INC-7 @user`" in str(caught.value)


@pytest.mark.parametrize("commander", [None, "@alice"])
def test_assign_refused_when_closed(commander: str | None) -> None:
    with pytest.raises(InvalidTransition) as caught:
        run(make_incident(Status.CLOSED), Action.ASSIGN, commander=commander)
    assert str(caught.value) == "INC-7 is closed; reopen it first (`reopen INC-7`)."


@pytest.mark.parametrize("status", [Status.OPEN, Status.ACKNOWLEDGED, Status.MITIGATED, Status.RESOLVED])
def test_assign_replaces_the_commander(status: Status) -> None:
    new, effects = run(make_incident(status, commander="@carol"), Action.ASSIGN, commander="<@U123ABC>")
    assert new.commander == "<@U123ABC>"
    assert new.status is status
    assert effects.entry_text == "<@U123ABC> assigned as incident commander by bob"
    assert effects.entry_kind is EntryKind.ASSIGNED


# --- note -----------------------------------------------------------------------------------


@pytest.mark.parametrize("note", [None, "", "  \n\t "])
def test_note_needs_text(note: str | None) -> None:
    with pytest.raises(InvalidArguments) as caught:
        run(make_incident(Status.ACKNOWLEDGED), Action.NOTE, note=note)
    assert "`note INC-7 <text>`" in str(caught.value)


@pytest.mark.parametrize("status", list(Status))
def test_note_changes_nothing_but_the_version(status: Status) -> None:
    incident = make_incident(status)
    new, effects = run(incident, Action.NOTE, note="Customers informed")
    assert new.model_dump(exclude={"updated_at", "version"}) == incident.model_dump(
        exclude={"updated_at", "version"}
    )
    assert (new.updated_at, new.version) == (AT, incident.version + 1)
    assert (effects.entry_kind, effects.entry_text, effects.notification) == (
        EntryKind.NOTE,
        "Customers informed",
        None,
    )


# --- the commander as a person, and what cards show ------------------------------------------

BOB = Person(instance="slack", user_id="U200BOB", display="bob")


def test_ack_makes_the_acknowledger_commander_as_a_person() -> None:
    new, effects = run(make_incident(Status.OPEN, commander=None), Action.ACK, by=BOB)
    assert (new.commander, new.commander_instance, new.commander_user_id) == ("bob", "slack", "U200BOB")
    assert effects.entry_text == "Acknowledged by bob"


def test_assign_appoints_a_person_and_names_them_in_the_timeline() -> None:
    erin = Person(instance="slack", user_id="U500ERIN", display="erin")
    incident = make_incident(Status.OPEN).model_copy(
        update={"commander": "bob", "commander_instance": "slack", "commander_user_id": "U200BOB"}
    )
    new, effects = run(incident, Action.ASSIGN, commander=erin)
    assert (new.commander, new.commander_instance, new.commander_user_id) == ("erin", "slack", "U500ERIN")
    assert effects.entry_text == "erin assigned as incident commander by bob"
    named, _ = run(new, Action.ASSIGN, commander="@frank")
    assert (named.commander, named.commander_instance, named.commander_user_id) == ("@frank", None, None)


def test_announced_changes_move_what_cards_show_and_notes_do_not() -> None:
    incident = make_incident(Status.OPEN, version=3)
    acked, _ = run(incident, Action.ACK)
    assert (acked.version, acked.announced_version) == (4, 4)
    noted, _ = run(acked, Action.NOTE, note="paged the DBA")
    assert (noted.version, noted.announced_version) == (5, 4)
