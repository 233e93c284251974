"""The audit trail in the store: appended, read newest first with filters, never changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from chatops_core.audit import ActorFilter, AuditEntry, AuditOutcome
from chatops_core.store import IncidentStore

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def entry(minutes: int, outcome: AuditOutcome = AuditOutcome.OK, **fields: object) -> AuditEntry:
    values: dict[str, object] = {
        "at": T0 + timedelta(minutes=minutes),
        "outcome": outcome,
        "source": "command",
        "command": "ack",
        "instance": "slack",
        "user_id": "U1",
        "actor": "alice",
        "platform": "slack",
        "channel": "general",
    }
    values.update(fields)
    return AuditEntry.model_validate(values)


def test_records_read_back_newest_first_with_every_field(store: IncidentStore) -> None:
    alice = store.person_for("slack", "U1", "alice")
    assert store.append_audit(entry(0, incident="INC-1")) == 1
    assert store.append_audit([entry(5, AuditOutcome.DENIED, reason="`close` needs the manager role")]) == 1
    first, second = store.audit_records()[::-1]
    assert (second.outcome, second.reason, second.at) == (
        AuditOutcome.DENIED,
        "`close` needs the manager role",
        T0 + timedelta(minutes=5),
    )
    # The person behind the platform user is filled in when the record is appended.
    assert first.person_id == second.person_id == alice.id
    assert (first.actor, first.instance, first.user_id, first.platform, first.channel) == (
        "alice",
        "slack",
        "U1",
        "slack",
        "general",
    )
    assert (first.source, first.command, first.incident, first.claimed) == ("command", "ack", "INC-1", False)
    assert first.at.tzinfo is not None and first.id < second.id


def test_an_entry_with_a_key_is_appended_once(store: IncidentStore) -> None:
    assert store.append_audit(entry(0, key="slack:k1:audit")) == 1
    assert store.append_audit([entry(1, key="slack:k1:audit"), entry(2, key="slack:k2:audit")]) == 1
    assert [r.key for r in store.audit_records()] == ["slack:k2:audit", "slack:k1:audit"]


def test_filters_since_outcome_actor_and_limit(store: IncidentStore) -> None:
    alice = store.person_for("slack", "U1", "alice", "alice@example.com")
    store.person_for("mm", "a1", "alice", "alice@example.com")  # the same person on Mattermost
    store.append_audit(
        [
            entry(0),
            entry(10, AuditOutcome.DENIED, command="close"),
            entry(20, instance="mm", user_id="a1", platform="mattermost"),
            entry(30, AuditOutcome.FORGED, instance="slack", user_id="U9", claimed=True, actor="claimed U9"),
            entry(40, instance="slack", user_id="U2", actor="bob"),
        ]
    )
    since = store.audit_records(since=T0 + timedelta(minutes=10))
    assert [r.at for r in since] == [T0 + timedelta(minutes=m) for m in (40, 30, 20, 10)]
    assert [r.command for r in store.audit_records(outcome=AuditOutcome.DENIED)] == ["close"]
    for who in (str(alice.id), "slack:U1", "mm:a1", "ALICE@example.com"):
        found = store.audit_records(actor=ActorFilter.parse(who))
        assert [r.at.minute for r in found] == [20, 10, 0], who
    claimed = store.audit_records(actor=ActorFilter.parse("slack:U9"))
    assert [(r.outcome, r.person_id, r.claimed) for r in claimed] == [(AuditOutcome.FORGED, None, True)]
    assert store.audit_records(actor=ActorFilter.parse("nobody@example.com")) == []
    assert len(store.audit_records(limit=2)) == 2
    with pytest.raises(ValueError, match="limit"):
        store.audit_records(limit=0)


def test_a_claimed_user_is_not_taken_for_the_person(store: IncidentStore) -> None:
    store.person_for("slack", "U1", "alice")
    store.append_audit(entry(0, AuditOutcome.FORGED, claimed=True))
    (record,) = store.audit_records()
    assert record.person_id is None and record.claimed


def test_a_person_merged_away_keeps_their_records(store: IncidentStore) -> None:
    bob = store.person_for("mm", "b1", "bob")
    store.append_audit(entry(0, instance="mm", user_id="b1"))
    other = store.person_for("slack", "U2", "bob", "bob@example.com")
    merged = store.person_for("mm", "b1", "bob", "bob@example.com")  # bob's Mattermost user joins
    assert merged.id == other.id != bob.id and store.person(bob.id) is None
    (record,) = store.audit_records(actor=ActorFilter.parse(str(other.id)))
    assert record.person_id == bob.id  # as written


def test_the_store_offers_no_way_to_change_a_record(store: IncidentStore) -> None:
    names = {name for name in dir(store) if "audit" in name}
    assert names == {"append_audit", "audit_records"}


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_records SET outcome = 'ok'", "DELETE FROM audit_records"]
)
def test_the_database_refuses_to_change_or_remove_a_record(
    store: IncidentStore, database_url: str, statement: str
) -> None:
    store.append_audit(entry(0, AuditOutcome.DENIED, reason="refused"))
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()
    (record,) = store.audit_records()
    assert (record.outcome, record.reason) == (AuditOutcome.DENIED, "refused")


def test_truncate_is_refused_on_postgresql(store: IncidentStore, database_url: str) -> None:
    if store.dialect != "postgresql":
        # SQLite has no TRUNCATE; its DELETE is refused (above).
        assert store.dialect == "sqlite"
        return
    store.append_audit(entry(0))
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_records"))
    finally:
        engine.dispose()
    assert len(store.audit_records()) == 1


def test_entries_are_cleaned_of_control_characters_and_clipped() -> None:
    made = AuditEntry(outcome=AuditOutcome.FORGED, source="webhook", user_id="U1\x1b[31m\n" + "x" * 400)
    assert made.user_id is not None and "\x1b" not in made.user_id and "\n" not in made.user_id
    assert len(made.user_id) == 255
    with pytest.raises(ValueError):
        AuditEntry(outcome=AuditOutcome.OK, source="cli", at=datetime(2026, 1, 1))  # noqa: DTZ001
