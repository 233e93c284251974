"""Deliveries, cards, dead letters and SLA breaches in the store, on every backend of conftest.py."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from alembic import command
from sqlalchemy import create_engine, event, insert, inspect, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from chatops_core.models import Severity, Status
from chatops_core.state import Action
from chatops_core.store import IncidentStore, driver
from chatops_core.store.delivery import Card, DeliveryStatus
from chatops_core.store.repository import normalize_database_url
from chatops_core.store.schema import DeliveryRow

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
WAIT_SECONDS = 60.0
NEW_TABLES = {"deliveries", "incident_cards", "dead_letters", "sla_breaches"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def declare(store: IncidentStore, severity: Severity = Severity.SEV3, minutes: float = 0, **kw: Any) -> int:
    applied = store.declare(
        title=kw.pop("title", "DB down"),
        severity=severity,
        actor="alice",
        platform="slack",
        instance="slack",
        channel="C-general",
        at=at(minutes),
        **kw,
    )
    return applied.incident.number


def act(store: IncidentStore, number: int, action: Action, minutes: float) -> None:
    store.apply(number, action, actor="bob", platform="slack", channel="C-inc", at=at(minutes))


def migrate(store: IncidentStore, revision: str, *, down: bool = False) -> None:
    """Move the database to ``revision`` the way ``IncidentStore.upgrade`` runs Alembic."""
    config = store._alembic_config()
    with store._writer.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def tables(store: IncidentStore) -> set[str]:
    with store._engine.connect() as connection:
        return set(inspect(connection).get_table_names())


# --- migration --------------------------------------------------------------------------


def _sql(store: IncidentStore, statement: str, **params: Any) -> list[Any]:
    """Run raw SQL (the tables as an older revision has them, which the ORM no longer matches)."""
    with store._writer.begin() as connection:
        result = connection.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def test_upgrade_from_0001_keeps_the_data(database_url: str) -> None:
    store = IncidentStore(database_url)
    try:
        migrate(store, "0001")
        assert store.current_revision() == "0001"
        assert not NEW_TABLES & tables(store)
        # An incident declared and acknowledged at revision 0001, written as it wrote them.
        _sql(store, "UPDATE counters SET value = 1 WHERE name = 'incidents'")
        _sql(
            store,
            "INSERT INTO incidents (number, title, severity, status, platform, instance, created_at,"
            " updated_at, acknowledged_at, version) VALUES (1, 'Before the upgrade', 'SEV-2',"
            " 'acknowledged', 'slack', 'slack', :t0, :t3, :t3, 2)",
            t0=at(0),
            t3=at(3),
        )
        for kind, minutes in (("declared", 0), ("acknowledged", 3)):
            _sql(
                store,
                "INSERT INTO timeline_entries (incident_number, at, kind, actor, text)"
                " VALUES (1, :at, :kind, 'alice', :text)",
                at=at(minutes),
                kind=kind,
                text=kind,
            )

        store.upgrade()
        assert store.current_revision() == store.head_revision()
        assert NEW_TABLES <= tables(store)
        incident = store.get(1)
        assert (incident.title, incident.status, incident.version) == (
            "Before the upgrade",
            Status.ACKNOWLEDGED,
            2,
        )
        assert [e.kind.value for e in store.timeline(1)] == ["declared", "acknowledged"]
        assert declare(store) == 2
        store.add_dead_letter(task_name="chatops.deliver", args=[], kwargs={}, reason="x", attempts=1)

        # And back: the new tables go, the incidents stay.
        migrate(store, "0001", down=True)
        assert not NEW_TABLES & tables(store)
        assert _sql(store, "SELECT title FROM incidents WHERE number = 1") == [("Before the upgrade",)]
        store.upgrade()
        assert store.dead_letters() == []
    finally:
        store.close()


def test_deliveries_pending_at_the_upgrade_count_as_outcome_unknown(database_url: str) -> None:
    store = IncidentStore(database_url)
    try:
        migrate(store, "0003")
        for key, status in (("pending-1", "pending"), ("posted-1", "posted")):
            _sql(
                store,
                "INSERT INTO deliveries (key, notification_id, instance, channel, incident_ref, status,"
                " attempts, created_at, updated_at) VALUES (:key, 'n', 'slack', '#incidents', 'INC-1',"
                " :status, 1, :t0, :t0)",
                key=key,
                status=status,
                t0=at(0),
            )
        store.upgrade()
        pending, posted = store.delivery("pending-1"), store.delivery("posted-1")
        assert pending is not None and pending.outcome_unknown is True
        assert posted is not None and posted.outcome_unknown is False
        # The next attempt of the pending one looks for its post first.
        assert begin(store, "pending-1").outcome_unknown is True
    finally:
        store.close()


# --- deliveries -------------------------------------------------------------------------


def begin(store: IncidentStore, key: str, notification_id: str = "n-1", **kw: Any) -> Any:
    values: dict[str, Any] = {
        "notification_id": notification_id,
        "instance": "slack",
        "channel": "#incidents",
        "incident_ref": "INC-7",
        "version": 3,
    }
    values.update(kw)
    return store.begin_delivery(key, **values)


def post(store: IncidentStore, key: str, **kw: Any) -> None:
    """Record that delivery ``key`` posted message 1700000000.000100 as the card (``kw``
    changes the card's incident, version or the delivery's own message)."""
    values: dict[str, Any] = {
        "instance": "slack",
        "channel": "#incidents",
        "incident_ref": "INC-7",
        "channel_id": "C1",
        "message_id": "1700000000.000100",
        "version": 3,
    }
    values.update(kw)
    store.record_post(key, **values)


def test_delivery_lifecycle(store: IncidentStore) -> None:
    assert store.delivery("k1") is None

    first = begin(store, "k1")
    assert first.status == DeliveryStatus.PENDING == "pending"
    assert (first.attempts, first.channel_id, first.message_id, first.last_error) == (1, None, None, None)
    assert (first.instance, first.channel, first.incident_ref, first.version) == (
        "slack",
        "#incidents",
        "INC-7",
        3,
    )
    assert first.created_at.tzinfo is not None and first.created_at == first.updated_at

    store.fail_delivery("k1", error="rate_limited", dead=False)
    # A second attempt only counts: what was recorded the first time stays.
    second = begin(store, "k1", notification_id="other", channel="#elsewhere", version=9)
    assert (second.attempts, second.status, second.last_error) == (2, "pending", "rate_limited")
    assert (second.notification_id, second.channel, second.version) == ("n-1", "#incidents", 3)
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at

    store.finish_delivery("k1", channel_id="C123", message_id="1700000000.000100")
    posted = store.delivery("k1")
    assert posted is not None
    assert (posted.status, posted.channel_id, posted.message_id) == ("posted", "C123", "1700000000.000100")
    assert posted.attempts == 2

    begin(store, "k2")
    store.fail_delivery("k2", error="channel_not_found", dead=True)
    dead = store.delivery("k2")
    assert dead is not None and (dead.status, dead.last_error) == ("dead", "channel_not_found")

    with pytest.raises(KeyError):
        store.finish_delivery("nope", channel_id="C", message_id="m")
    with pytest.raises(KeyError):
        store.fail_delivery("nope", error="x", dead=True)


def test_an_attempt_learns_whether_the_one_before_may_have_posted(store: IncidentStore) -> None:
    first = begin(store, "k1")
    assert first.outcome_unknown is False  # there was none before
    # Until it records how it ended, an attempt's outcome is unknown (it may be cut off).
    assert store.delivery("k1").outcome_unknown is True
    assert begin(store, "k1").outcome_unknown is True
    # A failure that says "not posted" (a 429, say) is recorded as known.
    store.fail_delivery("k1", error="rate_limited", dead=False, outcome_unknown=False)
    recorded = store.delivery("k1")
    assert (recorded.outcome_unknown, recorded.last_error) == (False, "rate_limited")
    assert begin(store, "k1").outcome_unknown is False

    # An alert posted while the card's update is still to do: pending, its message known.
    store.record_message("k1", channel_id="C1", message_id="1700000000.000200")
    alerted = store.delivery("k1")
    assert (alerted.status, alerted.message_id, alerted.outcome_unknown) == (
        "pending",
        "1700000000.000200",
        False,
    )
    begin(store, "k1")
    post(store, "k1", version=4, sent=("C1", "1700000000.000200"))
    done = store.delivery("k1")
    assert (done.status, done.message_id, done.outcome_unknown) == ("posted", "1700000000.000200", False)
    card = store.card("slack", "#incidents", "INC-7")
    assert card is not None and (card.message_id, card.version) == ("1700000000.000100", 4)


def test_concurrent_attempts_are_all_counted(store: IncidentStore) -> None:
    workers = 8
    barrier = threading.Barrier(workers, timeout=WAIT_SECONDS)

    def attempt(_: int) -> int:
        barrier.wait()
        return begin(store, "k").attempts

    with ThreadPoolExecutor(workers) as pool:
        seen = list(pool.map(attempt, range(workers), timeout=WAIT_SECONDS))
    assert sorted(seen) == list(range(1, workers + 1))
    delivery = store.delivery("k")
    assert delivery is not None and delivery.attempts == workers


def test_the_delivery_path_and_the_orm_read_the_same_record(store: IncidentStore) -> None:
    # The delivery's own transactions run on the driver (chatops_core.store.driver); what
    # they write must read back the same through the ORM, points in time included.
    begun = begin(store, "k1")
    with Session(store._engine) as session:
        row = session.get(DeliveryRow, "k1")
        assert row is not None
        orm = (row.key, row.notification_id, row.instance, row.channel, row.incident_ref, row.version)
        assert orm == ("k1", "n-1", "slack", "#incidents", "INC-7", 3)
        assert (row.status, row.attempts, row.outcome_unknown) == ("pending", 1, True)
        assert row.created_at == begun.created_at and row.created_at.tzinfo is not None
        # And what the ORM writes, the delivery path reads.
        later = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
        row.updated_at = later
        row.last_error = "timeout"
        session.commit()
    again = begin(store, "k1")
    assert again.created_at == begun.created_at and again.created_at.utcoffset() == timedelta(0)
    assert (again.attempts, again.last_error) == (2, "timeout")
    seen = store.delivery("k1")
    assert seen is not None and seen.updated_at == again.updated_at > later


def test_a_delivery_keeps_one_connection_for_its_transactions(store: IncidentStore) -> None:
    # The delivery path keeps its thread's connection instead of a checkout per transaction;
    # the checks a checkout makes still run (see the tests below).
    checkouts: list[int] = []

    def counted(*_: Any) -> None:
        checkouts.append(1)

    event.listen(store._engine, "checkout", counted)
    try:
        for number in range(3):
            key = f"k{number}"
            store.delivery_and_card(key, "slack", "#incidents", "INC-7")
            begin(store, key)
            post(store, key)
        assert len(checkouts) <= 1
        # Another thread keeps a connection of its own.
        worker = threading.Thread(target=lambda: begin(store, "k-other"))
        worker.start()
        worker.join(WAIT_SECONDS)
        assert len(checkouts) <= 2 and store.delivery("k-other") is not None
    finally:
        event.remove(store._engine, "checkout", counted)


def test_a_failed_transaction_leaves_nothing_behind(store: IncidentStore) -> None:
    # record_post saves the card and marks the delivery in one transaction: a delivery never
    # begun fails it, and the card is not saved either.
    with pytest.raises(KeyError):
        post(store, "never-begun", incident_ref="INC-9", version=1)
    assert store.card("slack", "#incidents", "INC-9") is None
    # The connection went back to the pool clean: the next delivery goes through.
    begin(store, "k2")
    post(store, "k2", incident_ref="INC-9", version=1)
    assert store.card("slack", "#incidents", "INC-9") is not None


@pytest.mark.parametrize(("delivered", "shown"), [(False, False), (True, False), (False, True), (True, True)])
def test_delivery_and_card_reads_what_delivery_and_card_each_read(
    store: IncidentStore, delivered: bool, shown: bool
) -> None:
    # Other deliveries and cards are there too, so a read that matched more than its own
    # key would show.
    begin(store, "other")
    store.save_card("slack", "#incidents", "INC-8", channel_id="C2", message_id="m-other", version=1)
    if delivered:
        begin(store, "k1")
        store.fail_delivery("k1", error="timeout", dead=False)
    if shown:
        store.save_card("slack", "#incidents", "INC-7", channel_id="C1", message_id="m1", version=None)
    found, card = store.delivery_and_card("k1", "slack", "#incidents", "INC-7")
    assert (found, card) == (store.delivery("k1"), store.card("slack", "#incidents", "INC-7"))
    assert (found is not None, card is not None) == (delivered, shown)
    if found is not None:
        assert (found.key, found.attempts, found.last_error, found.outcome_unknown) == (
            "k1",
            1,
            "timeout",
            True,
        )
        assert found.created_at.tzinfo is not None
    if card is not None:
        assert card == Card("slack", "#incidents", "INC-7", "C1", "m1", None)


def test_a_delivery_sends_no_begin_or_commit_for_its_read_and_first_attempt(tmp_path: Path) -> None:
    # On SQLite the read and the first attempt are single statements in autocommit mode; only
    # the post (a card and the delivery together) is a transaction. The file is checked before
    # each write, not before the read just after.
    store = IncidentStore(f"sqlite:///{tmp_path / 'chatops.db'}")
    store.upgrade()
    try:
        begin(store, "warm")  # this thread's connection, kept from now on
        sent: list[str] = []
        store._driver._local.connection.dbapi_connection.set_trace_callback(sent.append)
        checks: list[dict[Any, Any]] = []
        verify = store._driver._verify
        assert verify is not None

        def counted(info: dict[Any, Any]) -> None:
            checks.append(info)
            verify(info)

        store._driver._verify = counted
        assert store.delivery_and_card("k1", "slack", "#incidents", "INC-7") == (None, None)
        begin(store, "k1")
        post(store, "k1")
        assert [statement.split()[0] for statement in sent] == [
            "SELECT",
            "INSERT",
            "BEGIN",
            "INSERT",
            "UPDATE",
            "COMMIT",
        ]
        assert len(checks) == 2
        found, card = store.delivery_and_card("k1", "slack", "#incidents", "INC-7")
        assert found is not None and found.status == "posted" and card is not None
    finally:
        store.close()


def test_a_first_attempt_commits_by_itself_and_a_failed_one_leaves_nothing(
    store: IncidentStore,
) -> None:
    first = begin(store, "k1")
    assert first.attempts == 1
    # Another connection sees it at once: nothing is left open on this thread's connection.
    with store._engine.connect() as other:
        seen = other.execute(text("SELECT attempts FROM deliveries WHERE \"key\" = 'k1'")).all()
    assert seen == [(1,)]
    # A statement that fails (no instance) is raised as SQLAlchemy raises it, and leaves nothing.
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        begin(store, "k2", instance=None)
    assert store.delivery("k2") is None
    # The connection is fine for the next delivery, and its transactions are still
    # transactions: one that fails leaves nothing either.
    assert begin(store, "k2").attempts == 1
    with pytest.raises(KeyError):
        post(store, "never-begun", incident_ref="INC-9")
    assert store.card("slack", "#incidents", "INC-9") is None
    assert begin(store, "k1").attempts == 2


def test_a_first_attempt_waits_for_a_concurrent_one_and_counts_after_it(store: IncidentStore) -> None:
    # Another connection inserts the same key and holds its transaction open: the first
    # attempt's statement waits for it (on SQLite, for the write lock), finds the key, and
    # counts itself as the second attempt.
    with store._writer.connect() as holder:
        transaction = holder.begin()
        holder.execute(
            insert(DeliveryRow).values(
                key="k",
                notification_id="n-0",
                instance="slack",
                channel="#incidents",
                incident_ref="INC-7",
                version=3,
                status="pending",
                attempts=1,
                outcome_unknown=True,
                created_at=T0,
                updated_at=T0,
            )
        )
        with ThreadPoolExecutor(1) as pool:
            attempt = pool.submit(begin, store, "k")
            with pytest.raises(TimeoutError):
                attempt.result(timeout=0.2)  # waiting, not failed
            transaction.commit()
            second = attempt.result(timeout=WAIT_SECONDS)
    assert (second.attempts, second.notification_id, second.outcome_unknown) == (2, "n-0", True)
    assert second.created_at == T0
    recorded = store.delivery("k")
    assert recorded is not None and recorded.attempts == 2


def test_a_kept_connection_never_writes_into_a_replaced_file(tmp_path: Path) -> None:
    # The delivery path keeps its connection; a database file replaced under it (a backup put
    # back, say) gets the next write, not the file the connection opened.
    path = tmp_path / "chatops.db"
    url = f"sqlite:///{path}"
    store = IncidentStore(url)
    store.upgrade()
    try:
        begin(store, "k1")
        for name in ("chatops.db", "chatops.db-wal", "chatops.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        replacement = IncidentStore(url)
        replacement.upgrade()
        replacement.close()
        assert begin(store, "k2").attempts == 1
        post(store, "k2")
        reader = IncidentStore(url)
        try:
            assert reader.delivery("k1") is None
            posted = reader.delivery("k2")
            assert posted is not None and posted.status == "posted"
        finally:
            reader.close()
    finally:
        store.close()


def test_a_database_out_of_reach_fails_as_sqlalchemy_reports_it(tmp_path: Path) -> None:
    # Tasks retry on SQLAlchemy's OperationalError (workers.retry); the delivery path must
    # raise that, not the driver's own error, or a short outage would dead-letter deliveries.
    path = tmp_path / "chatops.db"
    store = IncidentStore(f"sqlite:///{path}")
    store.upgrade()
    begin(store, "k1")
    store.close()
    for name in ("chatops.db", "chatops.db-wal", "chatops.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    calls = {
        "begin_delivery": lambda: begin(store, "k2"),
        "delivery_and_card": lambda: store.delivery_and_card("k1", "slack", "#incidents", "INC-7"),
        "card": lambda: store.card("slack", "#incidents", "INC-7"),
    }
    for name, call in calls.items():
        with pytest.raises(sqlalchemy.exc.OperationalError):
            call()
        assert not path.exists(), f"{name} made a new empty database"
    unreachable = IncidentStore("postgresql://chatops@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(sqlalchemy.exc.OperationalError):
        unreachable.delivery("k1")


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IncidentStore(postgres_url)
    store.upgrade()
    begin(store, "k1")
    admin = create_engine(normalize_database_url(postgres_url), poolclass=NullPool)
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError) as raised:  # noqa: PT012
            with store._driver.transaction(write=False) as cursor:
                driver_cursor = cursor._cursor
                driver_cursor.execute("SELECT pg_backend_pid()")
                (pid,) = driver_cursor.fetchone()
                with admin.begin() as connection:
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                cursor.run("delivery", {"k": "k1"})
        # Dropped from the pool, so the next call gets a new connection and works.
        assert raised.value.connection_invalidated
        found, _ = store.delivery_and_card("k1", "slack", "#incidents", "INC-7")
        assert found is not None and found.key == "k1"
        # A kept connection that sat unused is pinged first (as the pool's pre-ping would):
        # one the server ended meanwhile is replaced without failing the call.
        monkeypatch.setattr(driver, "IDLE_CHECK_SECONDS", 0.0)
        with store._driver.transaction(write=False) as cursor:
            cursor._cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor._cursor.fetchone()
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        found, _ = store.delivery_and_card("k1", "slack", "#incidents", "INC-7")
        assert found is not None and found.key == "k1"
    finally:
        admin.dispose()
        store.close()


# --- cards ------------------------------------------------------------------------------


def test_save_card_never_lowers_the_version(store: IncidentStore) -> None:
    assert store.card("slack", "#incidents", "INC-7") is None

    store.save_card("slack", "#incidents", "INC-7", channel_id="C1", message_id="m1", version=None)
    assert store.card("slack", "#incidents", "INC-7") == Card(
        "slack", "#incidents", "INC-7", "C1", "m1", None
    )

    store.save_card("slack", "#incidents", "INC-7", channel_id="C1", message_id="m2", version=3)
    card = store.card("slack", "#incidents", "INC-7")
    assert card is not None and (card.message_id, card.version) == ("m2", 3)

    # Older or unversioned updates change nothing.
    store.save_card("slack", "#incidents", "INC-7", channel_id="C1", message_id="m-old", version=2)
    store.save_card("slack", "#incidents", "INC-7", channel_id="C1", message_id="m-none", version=None)
    card = store.card("slack", "#incidents", "INC-7")
    assert card is not None and (card.message_id, card.version) == ("m2", 3)

    # The same version or a newer one does.
    store.save_card("slack", "#incidents", "INC-7", channel_id="C1", message_id="m3", version=3)
    store.save_card("slack", "#incidents", "INC-7", channel_id="C9", message_id="m4", version=5)
    assert store.card("slack", "#incidents", "INC-7") == Card("slack", "#incidents", "INC-7", "C9", "m4", 5)

    # One card per (instance, channel as routed, incident).
    store.save_card("slack", "C1", "INC-7", channel_id="C1", message_id="x", version=1)
    store.save_card("other", "#incidents", "INC-7", channel_id="D1", message_id="y", version=1)
    store.save_card("slack", "#incidents", "INC-8", channel_id="C1", message_id="z", version=1)
    card = store.card("slack", "#incidents", "INC-7")
    assert card is not None and card.message_id == "m4"
    other = store.card("other", "#incidents", "INC-7")
    assert other is not None and other.message_id == "y"


# --- dead letters -----------------------------------------------------------------------


def test_dead_letters(store: IncidentStore) -> None:
    assert store.dead_letters() == []
    args = ["slack", "#incidents", {"type": "incident.created", "nested": [1, None, "é"]}, "key-1"]
    first = store.add_dead_letter(
        task_name="chatops.deliver",
        args=args,
        kwargs={},
        reason="channel_not_found: no such channel",
        attempts=9,
        notification_id="n-1",
        target="slack/#incidents",
    )
    second = store.add_dead_letter(
        task_name="chatops.command", args=[{"text": "ack"}], kwargs={"x": 1}, reason="boom", attempts=1
    )
    assert second > first

    letters = store.dead_letters()
    assert [d.id for d in letters] == [first, second]
    assert [d.id for d in store.dead_letters(limit=1)] == [first]
    one = store.dead_letter(first)
    assert one is not None
    assert (one.task_name, one.args, one.kwargs, one.attempts) == ("chatops.deliver", args, {}, 9)
    assert (one.reason, one.notification_id, one.target) == (
        "channel_not_found: no such channel",
        "n-1",
        "slack/#incidents",
    )
    assert one.created_at.tzinfo is not None
    two = store.dead_letter(second)
    assert two is not None and (two.kwargs, two.notification_id, two.target) == ({"x": 1}, None, None)

    assert store.drop_dead_letter(first) is True
    assert store.drop_dead_letter(first) is False
    assert store.dead_letter(first) is None
    assert [d.id for d in store.dead_letters()] == [second]
    assert store.dead_letter(12345) is None


# --- SLA --------------------------------------------------------------------------------


def test_an_sla_breach_is_claimed_once_under_concurrency(store: IncidentStore) -> None:
    workers = 8
    barrier = threading.Barrier(workers, timeout=WAIT_SECONDS)

    def claim(_: int) -> bool:
        barrier.wait()
        return store.claim_sla_breach(7, T0)

    with ThreadPoolExecutor(workers) as pool:
        claims = list(pool.map(claim, range(workers), timeout=WAIT_SECONDS))
    assert claims.count(True) == 1

    # The same instant in another time zone is the same period.
    assert store.claim_sla_breach(7, T0.astimezone(timezone(timedelta(hours=2)))) is False
    # Another period, or another incident, is another breach.
    assert store.claim_sla_breach(7, at(30)) is True
    assert store.claim_sla_breach(8, T0) is True
    # A released claim (its announcement could not be sent) can be claimed again.
    store.release_sla_breach(7, at(30))
    assert store.claim_sla_breach(7, at(30)) is True
    assert store.claim_sla_breach(7, at(30)) is False


def test_unacknowledged(store: IncidentStore) -> None:
    sev1 = declare(store, Severity.SEV1, minutes=0)
    sev2 = declare(store, Severity.SEV2, minutes=0)
    acked = declare(store, Severity.SEV1, minutes=0)
    act(store, acked, Action.ACK, 1)
    mitigated = declare(store, Severity.SEV1, minutes=0)
    act(store, mitigated, Action.MITIGATE, 1)
    resolved = declare(store, Severity.SEV1, minutes=0)
    act(store, resolved, Action.RESOLVE, 1)
    reopened = declare(store, Severity.SEV1, minutes=0)
    act(store, reopened, Action.RESOLVE, 1)
    act(store, reopened, Action.REOPEN, 20)
    act(store, reopened, Action.RESOLVE, 21)
    act(store, reopened, Action.REOPEN, 40)
    sev4 = declare(store, Severity.SEV4, minutes=0)
    late = declare(store, Severity.SEV1, minutes=50)

    cutoffs = {Severity.SEV1: at(45), Severity.SEV2: at(0), Severity.SEV3: at(1000)}
    found = store.unacknowledged(cutoffs)
    # SEV-2 is open since exactly its cutoff, which is not earlier; SEV-4 has no cutoff.
    assert [(i.number, since) for i, since in found] == [(sev1, T0), (reopened, at(40))]
    assert all(since.tzinfo is not None for _, since in found)
    assert found[1][0].status is Status.OPEN

    later = store.unacknowledged({Severity.SEV1: at(60), Severity.SEV2: at(1), Severity.SEV4: at(1)})
    assert [i.number for i, _ in later] == [sev1, sev2, reopened, sev4, late]
    assert store.unacknowledged({}) == []
    assert store.unacknowledged({Severity.SEV1: at(-1)}) == []
    assert {acked, mitigated, resolved}.isdisjoint(i.number for i, _ in later)
