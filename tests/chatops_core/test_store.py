"""Tests of the incident store on SQLite, and on PostgreSQL when CHATOPS_TEST_DATABASE_URL is set."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from chatops_core.errors import (
    ConfigError,
    ConnectionFailed,
    IncidentNotFound,
    InvalidArguments,
    InvalidTransition,
)
from chatops_core.models import EntryKind, Incident, Person, Severity, Status
from chatops_core.settings import Settings
from chatops_core.state import Action
from chatops_core.store import Applied, IncidentStore
from chatops_core.store.repository import MIGRATIONS_DIR, normalize_database_url
from chatops_core.store.schema import Base

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
# Upper bound for anything a test waits on (processes, threads, barriers).
WAIT_SECONDS = 60.0
TABLES = {"counters", "incidents", "timeline_entries", "processed_commands"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- backends: the `database_url` and `store` fixtures are in conftest.py -------------------


def declare(store: IncidentStore, title: str = "DB down", **kwargs: Any) -> Applied:
    values: dict[str, Any] = {
        "severity": Severity.SEV3,
        "actor": "alice",
        "platform": "slack",
        "instance": "slack",
        "channel": "C-general",
        "at": T0,
    }
    values.update(kwargs)
    return store.declare(title=title, **values)


def act(store: IncidentStore, number: int, action: Action, **kwargs: Any) -> Applied:
    values: dict[str, Any] = {"actor": "bob", "platform": "slack", "channel": "C-inc", "at": at(1)}
    values.update(kwargs)
    return store.apply(number, action, **values)


# --- migrations -------------------------------------------------------------------------


def test_upgrade_creates_the_tables_at_head_and_is_idempotent(database_url: str) -> None:
    store = IncidentStore(database_url)
    try:
        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        assert head is not None
        assert store.current_revision() is None
        assert store.head_revision() == head

        store.upgrade()
        assert store.current_revision() == head
        with store._engine.connect() as conn:
            assert TABLES | {"alembic_version"} <= set(inspect(conn).get_table_names())

        number = declare(store).incident.number
        store.upgrade()
        assert store.current_revision() == head
        assert store.get(number).title == "DB down"
        assert declare(store).incident.number == number + 1
    finally:
        store.close()


def test_tables_match_the_migrations(store: IncidentStore) -> None:
    with store._engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_ping_and_close(store: IncidentStore) -> None:
    store.ping()
    store.close()


def test_ping_raises_when_the_database_does_not_answer() -> None:
    store = IncidentStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        with pytest.raises(ConnectionFailed):
            store.ping()
    finally:
        store.close()


def test_urls() -> None:
    assert normalize_database_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_database_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_database_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ConfigError):
        IncidentStore("mysql://u@h/db")
    assert "secret" not in repr(IncidentStore("postgresql://u:secret@h/db"))


def test_from_settings_uses_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATOPS_DATABASE_URL", raising=False)
    store = IncidentStore.from_settings(Settings(data_dir=tmp_path / "data"))
    try:
        store.upgrade()
        assert (tmp_path / "data" / "chatops.db").exists()
        assert store.dialect == "sqlite"
    finally:
        store.close()


# --- incidents --------------------------------------------------------------------------


def test_declare_then_get(store: IncidentStore) -> None:
    applied = declare(store, severity=Severity.SEV2, description="p99 over 5 s")
    incident = applied.incident
    assert not applied.replayed
    assert applied.effects is not None
    assert applied.effects.entry_kind is EntryKind.DECLARED
    assert applied.effects.entry_text == "Declared by alice: DB down"
    assert applied.effects.notification == "incident.created"
    assert incident.number == 1
    assert incident.status is Status.OPEN
    assert incident.version == 1
    assert incident.declared_by == "alice"
    assert (incident.platform, incident.instance) == ("slack", "slack")
    assert incident.channel_id is None
    assert incident.created_at == incident.updated_at == T0

    assert store.get(1) == incident
    [entry] = store.timeline(1)
    assert entry.kind is EntryKind.DECLARED
    assert (entry.actor, entry.platform, entry.channel) == ("alice", "slack", "C-general")
    assert entry.text == "Declared by alice: DB down"
    assert entry.at == T0

    assert declare(store, "Second").incident.number == 2


def test_get_unknown_incident(store: IncidentStore) -> None:
    with pytest.raises(IncidentNotFound) as info:
        store.get(7)
    assert str(info.value) == "There is no incident INC-7. Type `/im list all` to see incidents."
    for call in (
        lambda: store.timeline(7),
        lambda: act(store, 7, Action.ACK),
        lambda: store.set_channel(7, channel_id="C", channel_name="inc-7"),
        lambda: store.add_timeline(
            7, kind=EntryKind.NOTE, actor="a", platform=None, channel=None, text="x", at=T0
        ),
    ):
        with pytest.raises(IncidentNotFound):
            call()


def test_times_are_aware_utc(store: IncidentStore) -> None:
    local = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    number = declare(store, at=local).incident.number
    incident = store.get(number)
    assert incident.created_at == local
    assert incident.created_at.utcoffset() == timedelta(0)
    assert incident.created_at.microsecond == 123456
    act(store, number, Action.ACK, at=local + timedelta(minutes=5))
    incident = store.get(number)
    assert incident.acknowledged_at is not None
    assert incident.acknowledged_at.tzinfo is UTC
    assert incident.acknowledged_at == local + timedelta(minutes=5)
    assert all(e.at.tzinfo is UTC for e in store.timeline(number))
    with pytest.raises(ValueError, match="naive"):
        declare(store, at=datetime(2026, 11, 26, 10, 0))


def test_list_filters_and_orders_newest_first(store: IncidentStore) -> None:
    sev = [Severity.SEV1, Severity.SEV3, Severity.SEV3, Severity.SEV2, Severity.SEV3]
    numbers = [declare(store, f"inc {i}", severity=s, at=at(i)).incident.number for i, s in enumerate(sev)]
    act(store, numbers[1], Action.RESOLVE, note="fixed")
    act(store, numbers[2], Action.RESOLVE)
    act(store, numbers[2], Action.CLOSE, at=at(2))
    act(store, numbers[3], Action.MITIGATE)

    def nums(incidents: list[Incident]) -> list[int]:
        return [i.number for i in incidents]

    assert nums(store.list()) == [numbers[4], numbers[3], numbers[0]]
    assert nums(store.list(active_only=False)) == list(reversed(numbers))
    assert nums(store.list(severity=Severity.SEV3)) == [numbers[4]]
    assert nums(store.list(active_only=False, severity=Severity.SEV3)) == [numbers[4], numbers[2], numbers[1]]
    assert nums(store.list(active_only=False, limit=2)) == [numbers[4], numbers[3]]
    assert store.list(severity=Severity.SEV4) == []


def test_timeline_order_and_limit(store: IncidentStore) -> None:
    number = declare(store).incident.number
    for i in range(1, 5):
        store.add_timeline(
            number,
            kind=EntryKind.NOTE,
            actor="carol",
            platform="teams",
            channel="19:x",
            text=f"n{i}",
            at=at(10 * i),
        )
    # Written later but dated earlier: the timeline is in time order.
    late = store.add_timeline(
        number, kind=EntryKind.JOINED, actor="dave", platform=None, channel=None, text="joined", at=at(15)
    )
    assert late.kind is EntryKind.JOINED and late.at == at(15)
    texts = [e.text for e in store.timeline(number)]
    assert texts == ["Declared by alice: DB down", "n1", "joined", "n2", "n3", "n4"]
    assert [e.text for e in store.timeline(number, limit=2)] == ["n3", "n4"]
    assert [e.text for e in store.timeline(number, limit=4)] == ["joined", "n2", "n3", "n4"]
    assert len(store.timeline(number, limit=100)) == 6
    assert store.timeline(number, limit=0) == []
    assert store.get(number).version == 1  # timeline entries alone do not change the incident


def test_a_whole_life(store: IncidentStore) -> None:
    number = declare(store, severity=Severity.SEV3).incident.number
    steps: list[tuple[Action, dict[str, Any], Status, str | None]] = [
        (Action.ACK, {}, Status.ACKNOWLEDGED, "incident.acknowledged"),
        (Action.MITIGATE, {"note": "failed over"}, Status.MITIGATED, "incident.updated"),
        (Action.RESOLVE, {"note": "replica rebuilt"}, Status.RESOLVED, "incident.resolved"),
        (Action.CLOSE, {}, Status.CLOSED, "incident.closed"),
        (Action.REOPEN, {}, Status.OPEN, "incident.updated"),
        (Action.ESCALATE, {"severity": Severity.SEV1}, Status.OPEN, "incident.escalated"),
        (Action.ASSIGN, {"commander": "erin"}, Status.OPEN, "incident.updated"),
        (Action.NOTE, {"note": "customers informed"}, Status.OPEN, None),
    ]
    for i, (action, extra, status, notification) in enumerate(steps, start=1):
        applied = act(store, number, action, at=at(i), **extra)
        assert not applied.replayed
        assert applied.incident.status is status
        assert applied.incident.version == 1 + i
        assert applied.incident.updated_at == at(i)
        assert applied.effects is not None and applied.effects.notification == notification
        assert store.get(number) == applied.incident
        if action is Action.RESOLVE:
            assert applied.incident.resolution == "replica rebuilt"
            assert applied.incident.resolved_at == at(i)
        if action is Action.CLOSE:
            assert applied.incident.closed_at == at(i)

    final = store.get(number)
    assert final.severity is Severity.SEV1
    assert final.commander == "erin"
    assert final.acknowledged_at == at(1) and final.mitigated_at == at(2)
    assert final.resolved_at is None and final.closed_at is None and final.resolution is None

    timeline = store.timeline(number)
    assert [e.kind for e in timeline] == [
        EntryKind.DECLARED,
        EntryKind.ACKNOWLEDGED,
        EntryKind.MITIGATED,
        EntryKind.RESOLVED,
        EntryKind.CLOSED,
        EntryKind.REOPENED,
        EntryKind.ESCALATED,
        EntryKind.ASSIGNED,
        EntryKind.NOTE,
    ]
    assert timeline[2].text == "Mitigated by bob: failed over"
    assert timeline[-1].text == "customers informed"
    assert all((e.actor, e.platform, e.channel) == ("bob", "slack", "C-inc") for e in timeline[1:])


def test_refused_transitions_write_nothing(store: IncidentStore) -> None:
    number = declare(store).incident.number
    act(store, number, Action.ACK)
    before, timeline = store.get(number), store.timeline(number)

    refused: list[tuple[Action, dict[str, Any], type[Exception]]] = [
        (Action.ACK, {}, InvalidTransition),
        (Action.CLOSE, {}, InvalidTransition),
        (Action.REOPEN, {}, InvalidTransition),
        (Action.ESCALATE, {"severity": Severity.SEV4}, InvalidTransition),
        (Action.NOTE, {}, InvalidArguments),
        (Action.ASSIGN, {}, InvalidArguments),
    ]
    for i, (action, extra, error) in enumerate(refused):
        with pytest.raises(error):
            act(store, number, action, key=f"refused-{i}", at=at(30), **extra)
        assert store.get(number) == before
        assert store.timeline(number) == timeline
        assert store.steps_done(f"refused-{i}") == set()

    # A refused command keeps no record of its key, so a correct retry under it runs.
    applied = act(store, number, Action.NOTE, note="now with text", key="refused-4")
    assert not applied.replayed and applied.incident.version == before.version + 1


def test_same_key_declares_once(store: IncidentStore) -> None:
    first = declare(store, key="slack:T1:trigger-1")
    again = declare(store, "DB down (retry)", key="slack:T1:trigger-1", at=at(5))
    assert not first.replayed and again.replayed
    assert again.incident == first.incident
    assert again.effects == first.effects
    assert [i.number for i in store.list(active_only=False)] == [first.incident.number]
    assert len(store.timeline(first.incident.number)) == 1
    assert declare(store, key="slack:T1:trigger-2").incident.number == first.incident.number + 1


def test_same_key_applies_once_and_replays_what_was_recorded(store: IncidentStore) -> None:
    number = declare(store).incident.number
    first = act(store, number, Action.NOTE, note="hello", key="k-note")
    act(store, number, Action.ACK, at=at(2))
    again = act(store, number, Action.NOTE, note="hello", key="k-note", at=at(3))
    assert again.replayed and not first.replayed
    assert again.incident == first.incident  # the incident as it was then (version 2), not now
    assert again.effects == first.effects
    assert store.get(number).version == 3
    assert [e.text for e in store.timeline(number)].count("hello") == 1


def test_steps(store: IncidentStore) -> None:
    assert store.steps_done("unknown") == set()
    store.mark_step("k1", "channel_created")
    store.mark_step("k1", "announced")
    store.mark_step("k1", "announced")
    assert store.steps_done("k1") == {"channel_created", "announced"}

    # Steps recorded before the command itself do not make the command look applied.
    applied = declare(store, key="k1")
    assert not applied.replayed
    assert store.steps_done("k1") == {"channel_created", "announced"}
    assert declare(store, key="k1").replayed
    store.mark_step("k1", "replied")
    assert store.steps_done("k1") == {"channel_created", "announced", "replied"}
    assert declare(store, key="k1").incident == applied.incident


def test_set_channel_and_find_by_channel(store: IncidentStore) -> None:
    number = declare(store, instance="slack").incident.number
    declare(store, "other", instance="slack")
    assert store.find_by_channel("slack", "C-inc-1") is None

    incident = store.set_channel(number, channel_id="C-inc-1", channel_name="inc-1-db-down")
    assert (incident.channel_id, incident.channel_name) == ("C-inc-1", "inc-1-db-down")
    assert incident.version == 2
    assert store.get(number) == incident

    found = store.find_by_channel("slack", "C-inc-1")
    assert found is not None and found.number == number
    assert store.find_by_channel("slack-eu", "C-inc-1") is None
    assert store.find_by_channel("slack", "C-general") is None


# --- concurrency ------------------------------------------------------------------------
# Children are started with the spawn method, so each one is a fresh interpreter with its
# own engine and connections, like separate worker processes.

PROCESSES = 2
THREADS = 3
DECLARES_PER_THREAD = 25
NOTES_PER_THREAD = 10


def _threads_together(barrier: Any, threads: int, work: Callable[[int], Any]) -> list[Any]:
    def run(t: int) -> Any:
        barrier.wait(timeout=WAIT_SECONDS)
        return work(t)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run, t) for t in range(threads)]
        return [f.result(timeout=WAIT_SECONDS) for f in futures]


def _declare_many(url: str, proc: int, barrier: Any, results: Any) -> None:
    store = IncidentStore(url)
    try:

        def work(t: int) -> list[int]:
            return [
                declare(store, f"p{proc} t{t} #{i}", at=datetime.now(UTC)).incident.number
                for i in range(DECLARES_PER_THREAD)
            ]

        numbers = [n for chunk in _threads_together(barrier, THREADS, work) for n in chunk]
        results.put(("ok", numbers))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put(("error", f"process {proc}: {type(exc).__name__}: {exc}"))
    finally:
        store.close()


def _note_many(url: str, proc: int, number: int, barrier: Any, results: Any) -> None:
    store = IncidentStore(url)
    try:

        def work(t: int) -> tuple[list[int], int]:
            versions: list[int] = []
            replays = 0
            for i in range(NOTES_PER_THREAD):
                # Every thread of every process sends the shared commands; each runs once.
                commands = (
                    (f"shared-{i}", f"shared {i}"),
                    (f"own-{proc}-{t}-{i}", f"own {proc}-{t}-{i}"),
                    (None, f"unkeyed {proc}-{t}-{i}"),
                )
                for key, note in commands:
                    applied = store.apply(
                        number,
                        Action.NOTE,
                        actor=f"p{proc}",
                        platform="slack",
                        channel="C",
                        at=datetime.now(UTC),
                        note=note,
                        key=key,
                    )
                    if applied.replayed:
                        replays += 1
                    else:
                        versions.append(applied.incident.version)
            return versions, replays

        outcomes = _threads_together(barrier, THREADS, work)
        results.put(("ok", ([v for vs, _ in outcomes for v in vs], sum(r for _, r in outcomes))))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put(("error", f"process {proc}: {type(exc).__name__}: {exc}"))
    finally:
        store.close()


def _run_processes(target: Callable[..., None], args: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(*args[i], barrier, results)`` in one spawned process per entry; their results."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args) * THREADS)
    results = ctx.Queue()
    processes = [ctx.Process(target=target, args=(*a, barrier, results), daemon=True) for a in args]
    for p in processes:
        p.start()
    try:
        outcomes = [results.get(timeout=WAIT_SECONDS) for _ in processes]
    finally:
        for p in processes:
            p.join(timeout=WAIT_SECONDS)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    errors = [value for status, value in outcomes if status != "ok"]
    assert not errors, errors
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return [value for _, value in outcomes]


def test_concurrent_declares_get_unique_contiguous_numbers(database_url: str) -> None:
    store = IncidentStore(database_url)
    try:
        store.upgrade()
        chunks = _run_processes(_declare_many, [(database_url, proc) for proc in range(PROCESSES)])
        numbers = [n for chunk in chunks for n in chunk]
        total = PROCESSES * THREADS * DECLARES_PER_THREAD
        assert len(numbers) == total
        assert sorted(numbers) == list(range(1, total + 1))
        stored = store.list(active_only=False, limit=total + 10)
        assert sorted(i.number for i in stored) == list(range(1, total + 1))
        assert declare(store).incident.number == total + 1
    finally:
        store.close()


def test_concurrent_commands_on_one_incident_lose_no_update(database_url: str) -> None:
    store = IncidentStore(database_url)
    try:
        store.upgrade()
        number = declare(store).incident.number
        outcomes = _run_processes(_note_many, [(database_url, proc, number) for proc in range(PROCESSES)])
        versions = [v for vs, _ in outcomes for v in vs]
        replays = sum(r for _, r in outcomes)

        writers = PROCESSES * THREADS
        applied = NOTES_PER_THREAD + 2 * writers * NOTES_PER_THREAD  # shared once; own and unkeyed each
        assert replays == (writers - 1) * NOTES_PER_THREAD
        # Every applied command saw the one before it: versions 2..N+1, each exactly once.
        assert sorted(versions) == list(range(2, applied + 2))
        assert store.get(number).version == 1 + applied
        timeline = store.timeline(number)
        assert len(timeline) == 1 + applied
        counts = Counter(e.text for e in timeline if e.text.startswith("shared "))
        assert counts == {f"shared {i}": 1 for i in range(NOTES_PER_THREAD)}
    finally:
        store.close()


# --- what a card showed, and who commands -----------------------------------------------


def test_a_change_made_on_an_old_card_is_refused_and_changes_nothing(store: IncidentStore) -> None:
    number = declare(store, severity=Severity.SEV4).incident.number
    card = store.get(number).version
    act(store, number, Action.ESCALATE, seen_version=card, key="click-1")
    with pytest.raises(InvalidTransition) as refused:
        act(store, number, Action.ESCALATE, seen_version=card, key="click-2")
    assert "already changed" in str(refused.value) and "SEV-3" in str(refused.value)
    assert store.get(number).severity is Severity.SEV3
    # The first click, redelivered, is its recorded outcome, not a refusal.
    assert act(store, number, Action.ESCALATE, seen_version=card, key="click-1").replayed
    # A note is not shown on cards: the card of the escalation is still current after one.
    shown = store.get(number).version
    act(store, number, Action.NOTE, note="index rebuilt")
    act(store, number, Action.ESCALATE, seen_version=shown, key="click-3")
    assert store.get(number).severity is Severity.SEV2


def test_a_commander_is_kept_as_a_person(store: IncidentStore) -> None:
    number = declare(store).incident.number
    erin = Person(instance="slack", user_id="U500ERIN", display="erin")
    act(store, number, Action.ASSIGN, commander=erin)
    incident = store.get(number)
    assert (incident.commander, incident.commander_instance, incident.commander_user_id) == (
        "erin",
        "slack",
        "U500ERIN",
    )
    act(store, number, Action.ASSIGN, commander="@frank")
    incident = store.get(number)
    assert (incident.commander, incident.commander_instance, incident.commander_user_id) == (
        "@frank",
        None,
        None,
    )


def test_the_migration_makes_a_mentioned_commander_a_person(database_url: str) -> None:
    store = IncidentStore(database_url)
    try:
        config = store._alembic_config()
        with store._writer.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0002")
            for number, commander in ((1, "<@U123ABC>"), (2, "alice"), (3, None)):
                connection.execute(
                    text(
                        "INSERT INTO incidents (number, title, severity, status, commander, instance, "
                        "created_at, updated_at, version) VALUES (:n, 't', 'SEV-3', 'open', :c, 'slack', "
                        ":at, :at, 4)"
                    ),
                    {"n": number, "c": commander, "at": T0.replace(tzinfo=None)},
                )
        store.upgrade()
        mentioned, named, nobody = (store.get(n) for n in (1, 2, 3))
        assert (mentioned.commander, mentioned.commander_instance, mentioned.commander_user_id) == (
            "U123ABC",
            "slack",
            "U123ABC",
        )
        assert (named.commander, named.commander_user_id) == ("alice", None)
        assert nobody.commander is None
        assert mentioned.announced_version == 4
    finally:
        store.close()
