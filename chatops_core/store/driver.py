"""The statements of a delivery's hot path, run on the database driver's own connection.

A delivery that posts runs three short steps: it reads its record and the channel's card,
records the attempt, then records the post with the card. Through SQLAlchemy's
execution path (a statement's parameters bound and processed, its events, its result
object) they cost about a millisecond of CPU per delivery, twenty times what the database
itself takes; a worker delivering a few hundred notifications a second spends more there
than anywhere else. Here the same statements are plain SQL, run with the driver's cursor on
a connection each thread checks out of the engine's pool once and keeps (a checkout and its
return cost about 40 µs, three times a delivery). What a checkout checks is checked on a
kept connection too: that SQLite's database file is still the same, before every use that
may write and before a read when it was last checked :data:`IDLE_CHECK_SECONDS` ago or more;
and, on PostgreSQL, a ping when the connection has been unused that long (the pool's
pre-ping). One that fails its check, or breaks, is dropped for a new one.

The read and a first attempt are one statement each, run on their own in autocommit mode
(:meth:`DriverStatements.single`): no ``BEGIN`` or ``COMMIT`` is sent for them, and one
statement reads one snapshot, or writes all or nothing. A later attempt and the post are
transactions of a few statements (:meth:`DriverStatements.transaction`).

What stays SQLAlchemy's:

- the pool (a kept connection came from it), and so every connection setting made on
  connect (SQLite's ``busy_timeout``, WAL, foreign keys);
- the column types' own conversions of a point in time (``UTCDateTime``), taken from the
  types for the engine's dialect, so a value written here reads back the same through the
  ORM and the other way round;
- the errors: a driver's error is raised as SQLAlchemy's (an ``OperationalError`` for a
  database out of reach, which a task retries), and a connection that broke is dropped from
  the pool.

The SQL is the same on SQLite (3.35 or later, for ``RETURNING``) and PostgreSQL; only the
placeholders differ (``:name`` against ``%(name)s``). A write transaction on SQLite begins
with ``BEGIN IMMEDIATE``, as the store's others do; a write statement run on its own takes
the write lock as it starts, the same way.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import sqlalchemy.exc
from sqlalchemy import Engine, Table

from chatops_core.store.schema import DeliveryRow

# The deliveries table's columns, in the order every statement here returns them.
DELIVERY_COLUMNS = (
    "key",
    "notification_id",
    "instance",
    "channel",
    "channel_id",
    "message_id",
    "incident_ref",
    "version",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "updated_at",
    "outcome_unknown",
)
CARD_COLUMNS = ("instance", "channel", "incident_ref", "channel_id", "message_id", "version")


def _listed(columns: tuple[str, ...], table: str = "") -> str:
    """``columns`` for a statement, each after ``table`` (``"d."``, say) when given."""
    # ``key`` is quoted: a keyword in SQLite, though usable as a name.
    return ", ".join(table + (f'"{c}"' if c == "key" else c) for c in columns)


_D = _listed(DELIVERY_COLUMNS)
_C = _listed(CARD_COLUMNS)

_SQL = {
    "delivery": f'SELECT {_D} FROM deliveries WHERE "key" = {{k}}',
    "card": (
        f"SELECT {_C} FROM incident_cards WHERE instance = {{c_instance}} "
        "AND channel = {c_channel} AND incident_ref = {c_ref}"
    ),
    # Both in one row, each found by its primary key: the delivery's columns then the
    # card's, all NULL for one that is not there (neither has a NULL key column).
    "delivery_and_card": (
        f"SELECT {_listed(DELIVERY_COLUMNS, 'd.')}, {_listed(CARD_COLUMNS, 'c.')} FROM (SELECT 1) AS one "
        'LEFT JOIN deliveries AS d ON d."key" = {k} '
        "LEFT JOIN incident_cards AS c ON c.instance = {c_instance} "
        "AND c.channel = {c_channel} AND c.incident_ref = {c_ref}"
    ),
    # A first attempt (the common case) is one statement: it inserts, or finds the key there.
    "first": (
        'INSERT INTO deliveries ("key", notification_id, instance, channel, incident_ref, version, '
        "status, attempts, outcome_unknown, created_at, updated_at) VALUES ({k}, "
        "{b_notification_id}, {b_instance}, {b_channel}, {b_ref}, {b_version}, {pending}, 1, "
        f'{{yes}}, {{now}}, {{now}}) ON CONFLICT ("key") DO NOTHING RETURNING {_D}'
    ),
    "previous_outcome": 'SELECT outcome_unknown FROM deliveries WHERE "key" = {k}{for_update}',
    # A later attempt counts itself and leaves everything else as recorded.
    "again": (
        'INSERT INTO deliveries ("key", notification_id, instance, channel, incident_ref, version, '
        "status, attempts, outcome_unknown, created_at, updated_at) VALUES ({k}, "
        "{b_notification_id}, {b_instance}, {b_channel}, {b_ref}, {b_version}, {pending}, 1, "
        '{yes}, {now}, {now}) ON CONFLICT ("key") DO UPDATE SET '
        "attempts = deliveries.attempts + 1, updated_at = excluded.updated_at, "
        f"outcome_unknown = {{yes}} RETURNING {_D}"
    ),
    # A NULL new version makes the comparison NULL, i.e. false: a stored version is kept.
    "save_card": (
        "INSERT INTO incident_cards (instance, channel, incident_ref, channel_id, message_id, "
        "version) VALUES ({c_instance}, {c_channel}, {c_ref}, {c_channel_id}, {c_message_id}, "
        "{c_version}) ON CONFLICT (instance, channel, incident_ref) DO UPDATE SET "
        "channel_id = excluded.channel_id, message_id = excluded.message_id, "
        "version = excluded.version WHERE incident_cards.version IS NULL "
        "OR incident_cards.version <= excluded.version"
    ),
    "posted": (
        "UPDATE deliveries SET status = {posted}, channel_id = {p_channel_id}, "
        "message_id = {p_message_id}, outcome_unknown = {no}, updated_at = {now} "
        'WHERE "key" = {k}'
    ),
}

# A connection a thread keeps that has not been used for this long is pinged before use on
# PostgreSQL, as the pool's pre-ping pings at every checkout.
IDLE_CHECK_SECONDS = 1.0

# Values every statement may bind, the same for each call.
_FIXED = {"pending": "pending", "posted": "posted", "yes": True, "no": False}


def _placeholders(paramstyle: str) -> Callable[[str], str]:
    if paramstyle == "named":
        return lambda name: f":{name}"
    if paramstyle == "pyformat":
        return lambda name: f"%({name})s"
    raise ValueError(f"no hot path for the {paramstyle!r} parameter style")


class _Names(dict[str, str]):
    def __init__(self, placeholder: Callable[[str], str], for_update: str) -> None:
        super().__init__(for_update=for_update)
        self._placeholder = placeholder

    def __missing__(self, name: str) -> str:
        return self._placeholder(name)


class DriverStatements:
    """The hot path's statements for one engine (see the module's text).

    Rows come back as tuples in :data:`DELIVERY_COLUMNS` or :data:`CARD_COLUMNS` order,
    their points in time converted as the ORM converts them.
    """

    def __init__(self, engine: Engine, verify: Callable[[dict[Any, Any]], None] | None = None) -> None:
        """``verify(info)``: what the pool checks at a checkout, for a kept connection (its
        record's ``info``); raises when the connection must not be used."""
        self._engine = engine
        dialect = engine.dialect
        self._sqlite = dialect.name == "sqlite"
        # sqlite3 takes ``:name`` placeholders with a mapping whatever SQLAlchemy's own style.
        paramstyle = "named" if self._sqlite else dialect.paramstyle
        names = _Names(_placeholders(paramstyle), "" if self._sqlite else " FOR UPDATE")
        self.sql = {name: text.format_map(names) for name, text in _SQL.items()}
        stamp = cast(Table, DeliveryRow.__table__).c.created_at.type.dialect_impl(dialect)
        self._bind_time = stamp.bind_processor(dialect) or (lambda value: value)
        self._read_time = stamp.result_processor(dialect, None) or (lambda value: value)
        self._dbapi_error = dialect.loaded_dbapi.Error
        self._verify = verify
        self._local = threading.local()
        self._registry = threading.Lock()
        self._held: set[Any] = set()

    def time(self, value: Any) -> Any:
        """A point in time as the database takes it."""
        return self._bind_time(value)

    def delivery_row(self, row: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        """A row of :data:`DELIVERY_COLUMNS` with its points in time converted."""
        if row is None:
            return None
        read = self._read_time
        return (*row[:11], read(row[11]), read(row[12]), bool(row[13]))

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[_Cursor]:
        """A cursor in one transaction, committed when the block ends, rolled back when it raises.

        A driver's error is raised as SQLAlchemy raises it (see the module's text).
        """
        with self._cursor(write=write, alone=False) as cursor:
            yield _Cursor(self, cursor)

    def single(self, name: str, params: Mapping[str, Any], *, write: bool) -> tuple[Any, ...] | None:
        """Run statement ``name`` on its own, committed by itself, and return its first row.

        The statement runs in the connection's autocommit mode (SQLite's, which the store
        sets on connect, and psycopg's, set for the statement), so no ``BEGIN`` or ``COMMIT``
        is sent for it: it reads one snapshot, and a write takes SQLite's write lock when it
        starts (waiting per ``busy_timeout``, as ``BEGIN IMMEDIATE`` does), commits when it
        ends and, when it fails, is undone whole. Errors are raised as :meth:`transaction`
        raises them.
        """
        with self._cursor(write=write, alone=True) as cursor:
            return _Cursor(self, cursor).run(name, params).one()

    @contextmanager
    def _cursor(self, *, write: bool, alone: bool) -> Iterator[Any]:
        """A driver cursor on this thread's connection, in a transaction of its own or, when
        ``alone``, in autocommit mode; see :meth:`transaction` and :meth:`single`."""
        connection = self._connection(write=write)
        # psycopg begins a transaction before a statement unless it is in autocommit mode.
        autocommit = alone and not self._sqlite
        cursor = None
        done = False
        try:
            try:
                if autocommit:
                    # As SQLAlchemy's own ping on psycopg does; switched back below.
                    connection.dbapi_connection.autocommit = True
                cursor = connection.cursor()
                if self._sqlite and not alone:
                    # The connection is in the driver's autocommit mode (the store's
                    # ``connect`` hook): the transaction is begun here, as SQLAlchemy's
                    # ``begin`` hook does for the store's other transactions.
                    cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield cursor
                if self._sqlite and not alone:
                    cursor.execute("COMMIT")
                elif not alone:
                    connection.commit()
                done = True
            except self._dbapi_error as exc:
                raise self._wrapped(exc, connection, cursor) from exc
        finally:
            if not done:
                self._roll_back(connection)
            if cursor is not None:
                with contextlib.suppress(self._dbapi_error):
                    cursor.close()
            if autocommit and connection.is_valid:
                # Back as the pool and the store's other transactions expect it.
                try:
                    connection.dbapi_connection.autocommit = False
                except Exception as exc:
                    connection.invalidate(exc)
            self._local.used = time.monotonic()

    def _connection(self, *, write: bool) -> Any:
        """This thread's connection: checked out of the pool once and kept, so a delivery's
        statements pay for no checkout (about 40 µs each); checked as a checkout would check
        it (see :meth:`_still_good`), and replaced when that fails."""
        local = self._local
        held = getattr(local, "connection", None)
        if held is not None:
            if local.pid != os.getpid():
                # Inherited through a fork: the parent's to use, not ours (nor to close).
                held = local.connection = None
            elif not held.is_valid or not self._still_good(held, write=write):
                self._let_go(held)
                held = local.connection = None
        if held is None:
            try:
                held = self._engine.raw_connection()
            except self._dbapi_error as exc:
                # The database cannot be reached (or its file is gone).
                raise sqlalchemy.exc.DBAPIError.instance(None, None, exc, self._dbapi_error) from exc
            local.connection, local.pid = held, os.getpid()
            # The checkout has just made both checks.
            local.used = local.checked = time.monotonic()
            with self._registry:
                self._held.add(held)
        return held

    def _still_good(self, connection: Any, *, write: bool) -> bool:
        """Whether this thread's kept connection passes what a checkout checks, before a use.

        ``verify`` (SQLite: the database file is still the one the connection opened) runs
        before every use that may write, so nothing is ever written into a file deleted or
        replaced since; before a read, only when it last ran :data:`IDLE_CHECK_SECONDS` ago or
        more (a read from such a file loses nothing, and the next write is checked). On
        PostgreSQL the connection is pinged when it has been unused that long.
        """
        local = self._local
        now = time.monotonic()
        try:
            if self._verify is not None and (write or now - local.checked >= IDLE_CHECK_SECONDS):
                self._verify(connection.info)
                local.checked = now
            if not self._sqlite and now - local.used > IDLE_CHECK_SECONDS:
                self._engine.dialect.do_ping(connection.dbapi_connection)
        except Exception:
            return False
        return True

    def _let_go(self, connection: Any) -> None:
        with self._registry:
            self._held.discard(connection)
        if connection.is_valid:
            with contextlib.suppress(Exception):
                connection.invalidate()

    def close(self) -> None:
        """Give back every connection the threads keep (the store is closing)."""
        with self._registry:
            held, self._held = self._held, set()
        for connection in held:
            with contextlib.suppress(Exception):
                connection.close()
        self._local = threading.local()

    def _wrapped(self, exc: Any, connection: Any, cursor: Any) -> sqlalchemy.exc.StatementError:
        dialect = self._engine.dialect
        gone = dialect.is_disconnect(exc, connection.dbapi_connection, cursor)
        if gone:
            # Not given back to the pool: the next checkout opens a new connection.
            connection.invalidate(exc)
        return sqlalchemy.exc.DBAPIError.instance(
            None, None, exc, self._dbapi_error, connection_invalidated=gone
        )

    @staticmethod
    def _roll_back(connection: Any) -> None:
        if connection.is_valid:
            try:
                connection.rollback()
            except Exception as exc:
                connection.invalidate(exc)


class _Cursor:
    """A driver cursor that runs this module's statements by name."""

    def __init__(self, statements: DriverStatements, cursor: Any) -> None:
        self._statements = statements
        self._cursor = cursor

    def run(self, name: str, params: Mapping[str, Any]) -> _Cursor:
        self._cursor.execute(self._statements.sql[name], {**_FIXED, **params})
        return self

    def one(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone()
        if row is not None:
            # The rest of a RETURNING's rows (there are none) is read, so the driver is done
            # with the statement.
            self._cursor.fetchall()
        return None if row is None else tuple(row)

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)
