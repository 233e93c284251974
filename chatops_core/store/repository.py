"""The incident store: incidents, their timeline, idempotency records and posted messages.

SQLite by default, PostgreSQL by URL. Every change runs in one transaction that first takes
the lock it needs, so concurrent workers (threads or processes) never lose an update:

- SQLite: write transactions start with ``BEGIN IMMEDIATE`` (the database write lock,
  waited for up to 30 s); reads use ``BEGIN DEFERRED`` and, thanks to WAL, never block.
- PostgreSQL: ``SELECT ... FOR UPDATE`` on the incident row (``apply``), the idempotency
  record (any call with a ``key``) and the counter row that hands out incident numbers.
  Locks are always taken in that order: idempotency record, then counter or incident.

Incident numbers come from a counter row incremented inside the declaring transaction, so
they are unique under concurrency and have no gaps (a rolled-back declaration gives its
number back).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from chatops_core.errors import ConfigError, ConnectionFailed, IncidentNotFound
from chatops_core.models import (
    EntryKind,
    Incident,
    Person,
    Severity,
    Status,
    TimelineEntry,
    format_incident_id,
)
from chatops_core.state import Action, Effects, already_changed, transition
from chatops_core.store.audit import AuditRecords
from chatops_core.store.delivery import DeliveryRecords
from chatops_core.store.people import PeopleRecords
from chatops_core.store.schema import (
    INCIDENT_COUNTER,
    CounterRow,
    IncidentRow,
    ProcessedCommandRow,
    TimelineEntryRow,
    utc,
)

if TYPE_CHECKING:
    from chatops_core.settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution option that marks a connection as a writer (SQLite: BEGIN IMMEDIATE).
_WRITE_OPTION = "chatops_write"

# Key of the PostgreSQL advisory lock that serialises concurrent `upgrade()` calls.
_MIGRATION_LOCK_KEY = 0x63686174_6F7073

_ACTIVE_EXCLUDED = (Status.RESOLVED, Status.CLOSED)


def _busy_timeout(connection: Connection, milliseconds: int) -> None:
    # Straight on the DBAPI connection: through SQLAlchemy it would begin a transaction.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
    finally:
        cursor.close()


@dataclass(frozen=True)
class Applied:
    """The outcome of a change made through an idempotency key (or without one).

    ``replayed`` is True when ``key`` had already been applied: nothing was changed this
    time, and ``incident``/``effects`` are the ones recorded the first time.
    """

    incident: Incident
    effects: Effects | None
    replayed: bool


def normalize_database_url(url: str | URL) -> URL:
    """Parse ``url``; a plain ``postgresql://`` (or ``postgres://``) URL gets the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _not_found(number: int) -> IncidentNotFound:
    return IncidentNotFound(
        f"There is no incident {format_incident_id(number)}. Type `/im list all` to see incidents.",
        number=number,
    )


def _snapshot(applied: Applied) -> dict[str, Any]:
    effects = applied.effects
    return {
        "incident": applied.incident.model_dump(mode="json"),
        "effects": None
        if effects is None
        else {
            "entry_kind": effects.entry_kind.value,
            "entry_text": effects.entry_text,
            "notification": effects.notification,
        },
    }


def _replay(snapshot: dict[str, Any]) -> Applied:
    raw = snapshot.get("effects")
    effects = (
        None
        if raw is None
        else Effects(
            entry_kind=EntryKind(raw["entry_kind"]),
            entry_text=raw["entry_text"],
            notification=raw["notification"],
        )
    )
    incident = Incident.model_validate(snapshot["incident"])
    # Same tzinfo object as incidents read from the tables, not pydantic's own UTC.
    times = {name: value.astimezone(UTC) for name, value in incident if isinstance(value, datetime)}
    return Applied(incident=incident.model_copy(update=times), effects=effects, replayed=True)


def _sqlite_engine(url: URL) -> tuple[Engine, Callable[[dict[Any, Any]], None] | None]:
    """The engine, and the check its checkouts make that a kept connection should make too
    (see :func:`_never_recreate`; None for a database in memory or given as a URI)."""
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    connect_args: dict[str, Any] = {
        # Connections move between threads through the pool, one thread at a time.
        "check_same_thread": False,
        "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
    }
    verify = None
    if in_memory:
        # One shared connection, or every connection would see its own empty database.
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = create_engine(url, connect_args=connect_args)
        if not database.startswith("file:"):
            path = Path(database).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            verify = _never_recreate(engine, path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below emit BEGIN, instead of the sqlite3 module's
        # own deferred BEGIN, so writers can take the write lock up front.
        # https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                # In WAL mode NORMAL stays consistent and loses nothing when a process dies;
                # only a power cut can lose the last commits. It spares an fsync per commit.
                # https://www.sqlite.org/pragma.html#pragma_synchronous
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes can fail at once with
        # SQLITE_BUSY under WAL (no busy wait); taking the write lock first avoids that.
        writer = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine, verify


def _never_recreate(engine: Engine, path: Path) -> Callable[[dict[Any, Any]], None]:
    """Once the database at ``path`` exists, open it only as it is: never a fresh empty one.

    SQLite creates a missing database file on open, so a data directory deleted under a
    running service would silently become an empty database. Opened with the URI mode
    ``rw`` (https://www.sqlite.org/uri.html), a missing file is an error instead. Only a
    store whose file does not exist yet (``chatops db upgrade``, a first start) creates it,
    on its first connection. A pooled connection whose file was deleted or replaced since
    it opened is dropped at checkout rather than writing into a file nobody reads.
    """
    uri = "file:" + quote(str(path), safe="/") + "?mode=rw"
    opened = [path.exists()]

    @event.listens_for(engine, "do_connect")
    def _open_existing(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if opened[0]:
            cargs[:] = [uri]
            cparams["uri"] = True

    @event.listens_for(engine, "connect")
    def _remember_file(_dbapi_connection: Any, record: Any) -> None:
        opened[0] = True
        found = path.stat()
        record.info["chatops_sqlite_file"] = (found.st_dev, found.st_ino)

    def same_file(info: dict[Any, Any]) -> None:
        """Raise unless the connection whose record has ``info`` still has the database file."""
        try:
            found = path.stat()
        except FileNotFoundError:
            raise DisconnectionError(f"the database file {path} is gone") from None
        if info.get("chatops_sqlite_file") != (found.st_dev, found.st_ino):
            raise DisconnectionError(f"the database file {path} was replaced")

    @event.listens_for(engine, "checkout")
    def _same_file(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        same_file(record.info)

    return same_file


class IncidentStore(DeliveryRecords, PeopleRecords, AuditRecords):
    """Incidents and everything recorded about them, in SQLite or PostgreSQL.

    Deliveries, incident cards, dead letters and SLA breaches come from
    :class:`~chatops_core.store.delivery.DeliveryRecords`; people, their identities and roles
    from :class:`~chatops_core.store.people.PeopleRecords`; the append-only audit trail from
    :class:`~chatops_core.store.audit.AuditRecords`.

    Thread-safe: one instance may be shared by the threads of a process. Each process
    (e.g. each forked worker) should build its own.
    """

    def __init__(self, url: str) -> None:
        """Connect to ``url``: ``sqlite:///PATH`` or ``postgresql://...``; :meth:`upgrade` makes the schema.

        For SQLite the parent directory is created, WAL journaling, a 30 s busy timeout
        and foreign keys are switched on.
        """
        self._url = normalize_database_url(url)
        backend = self._url.get_backend_name()
        # What the pool checks at a checkout, for the connections the delivery path keeps.
        self._verify_connection: Callable[[dict[Any, Any]], None] | None = None
        if backend == "sqlite":
            self._engine, self._verify_connection = _sqlite_engine(self._url)
            self._insert: Callable[..., Any] = sqlite.insert
        elif backend == "postgresql":
            self._engine = create_engine(self._url, pool_pre_ping=True)
            self._insert = postgresql.insert
        else:
            raise ConfigError(
                f"unsupported database {self._url.render_as_string(hide_password=True)}: "
                "use sqlite:///PATH or postgresql://..."
            )
        self._writer = self._engine.execution_options(**{_WRITE_OPTION: True})

    @classmethod
    def from_settings(cls, settings: Settings) -> IncidentStore:
        """The store at ``settings.effective_database_url()``, with its ``[access]`` settings."""
        store = cls(settings.effective_database_url())
        store.access = settings.access
        return store

    def __repr__(self) -> str:
        return f"IncidentStore({self._url.render_as_string(hide_password=True)!r})"

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    # --- schema -------------------------------------------------------------------

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        # ConfigParser interpolation: a literal "%" (URL-encoded password) must be doubled.
        url = self._url.render_as_string(hide_password=False).replace("%", "%%")
        config.set_main_option("sqlalchemy.url", url)
        return config

    def upgrade(self) -> None:
        """Apply every pending migration (``alembic upgrade head``); harmless when up to date.

        Runs in one transaction; concurrent calls from several processes wait for each
        other (SQLite write lock, PostgreSQL advisory lock).
        """
        config = self._alembic_config()
        with self._writer.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def current_revision(self) -> str | None:
        """The migration revision the database is at (None when it has none)."""
        with self._engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest migration revision shipped with this code."""
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def ping(self) -> None:
        """Run ``SELECT 1``; raise :class:`ConnectionFailed` when the database does not answer."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            where = self._url.render_as_string(hide_password=True)
            reason = type(getattr(exc, "orig", None) or exc).__name__
            raise ConnectionFailed(f"database {where} does not answer: {reason}") from exc

    def check_writable(self, timeout_seconds: float = 2.0) -> None:
        """Raise :class:`ConnectionFailed` unless the database takes a write (readiness).

        Runs a write transaction on the migrations' own table and rolls it back, so it
        fails on a database that is read-only, gone, without its schema, or whose write
        lock is not free within ``timeout_seconds``; it changes nothing.
        """
        try:
            with self._writer.connect() as connection:
                sqlite_db = connection.dialect.name == "sqlite"
                if sqlite_db:
                    _busy_timeout(connection, int(timeout_seconds * 1000))
                try:
                    with connection.begin() as transaction:
                        if not sqlite_db:
                            connection.execute(
                                text("SELECT set_config('lock_timeout', :t, true)"),
                                {"t": f"{int(timeout_seconds * 1000)}ms"},
                            )
                        connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
                        transaction.rollback()
                finally:
                    if sqlite_db and not connection.invalidated:
                        _busy_timeout(connection, SQLITE_BUSY_TIMEOUT_MS)
        except SQLAlchemyError as exc:
            where = self._url.render_as_string(hide_password=True)
            reason = type(getattr(exc, "orig", None) or exc).__name__
            raise ConnectionFailed(f"database {where} cannot be written: {reason}") from exc

    def close(self) -> None:
        """Close every pooled connection."""
        driver = self.__dict__.get("_driver")  # built only if the delivery path ran
        if driver is not None:
            driver.close()
        self._engine.dispose()

    # --- transactions -------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    def _locked_command(self, session: Session, key: str) -> ProcessedCommandRow:
        """The idempotency record of ``key``, created if missing, locked until commit."""
        session.execute(
            self._insert(ProcessedCommandRow)
            .values(key=key, steps=[], created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return session.execute(
            select(ProcessedCommandRow).where(ProcessedCommandRow.key == key).with_for_update()
        ).scalar_one()

    @staticmethod
    def _locked_incident(session: Session, number: int) -> IncidentRow:
        row = session.execute(
            select(IncidentRow).where(IncidentRow.number == number).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise _not_found(number)
        return row

    @staticmethod
    def _require(session: Session, number: int) -> IncidentRow:
        row = session.get(IncidentRow, number)
        if row is None:
            raise _not_found(number)
        return row

    @staticmethod
    def _next_number(session: Session) -> int:
        # The UPDATE locks the counter row until commit: concurrent declarations queue
        # here, and each sees the value the previous one committed.
        return session.execute(
            update(CounterRow)
            .where(CounterRow.name == INCIDENT_COUNTER)
            .values(value=CounterRow.value + 1)
            .returning(CounterRow.value)
            .execution_options(synchronize_session=False)
        ).scalar_one()

    # --- incidents ----------------------------------------------------------------

    def declare(
        self,
        *,
        title: str,
        severity: Severity,
        actor: str,
        platform: str | None,
        instance: str | None,
        channel: str | None,
        at: datetime,
        description: str | None = None,
        key: str | None = None,
    ) -> Applied:
        """Create an incident: status open, version 1, declared by ``actor``.

        Writes the timeline entry ``Declared by {actor}: {title}`` (in ``channel``) and,
        with ``key``, records the outcome in the same transaction; declaring again with a
        key already applied returns the recorded outcome with ``replayed=True``.
        """
        at = utc(at)
        with self._writing() as session:
            record = None
            if key is not None:
                record = self._locked_command(session, key)
                if record.outcome is not None:
                    return _replay(record.outcome)
            number = self._next_number(session)
            incident = Incident(
                number=number,
                title=title,
                severity=severity,
                status=Status.OPEN,
                description=description,
                declared_by=actor,
                platform=platform,
                instance=instance,
                created_at=at,
                updated_at=at,
                version=1,
                announced_version=1,
            )
            row = IncidentRow(number=number)
            row.update_from(incident)
            session.add(row)
            session.flush()
            effects = Effects(EntryKind.DECLARED, f"Declared by {actor}: {title}", "incident.created")
            return _record_change(session, incident, effects, actor, platform, channel, at, record)

    def apply(
        self,
        number: int,
        action: Action,
        *,
        actor: str,
        platform: str | None,
        channel: str | None,
        at: datetime,
        note: str | None = None,
        severity: Severity | None = None,
        commander: Person | str | None = None,
        by: Person | None = None,
        key: str | None = None,
        seen_version: int | None = None,
    ) -> Applied:
        """Run ``action`` on incident ``number`` through the state machine, in one transaction.

        ``seen_version`` is the version of the incident the actor saw (the card clicked): when
        a change has been announced since, nothing is done and
        :class:`~chatops_core.errors.InvalidTransition` says what the incident shows now.

        Locks the incident, applies :func:`chatops_core.state.transition`, saves the result,
        writes the timeline entry its effects name and, with ``key``, records the outcome.
        Errors (:class:`IncidentNotFound`, :class:`InvalidTransition`,
        :class:`InvalidArguments`) propagate and nothing is written. A ``key`` already
        applied returns the recorded outcome with ``replayed=True``.
        """
        at = utc(at)
        with self._writing() as session:
            record = None
            if key is not None:
                record = self._locked_command(session, key)
                if record.outcome is not None:
                    return _replay(record.outcome)
            row = self._locked_incident(session, number)
            current = row.to_model()
            shown = current.announced_version or current.version
            if seen_version is not None and shown > seen_version:
                # What the state says, when it refuses the action anyway ("INC-4 is acknowledged,
                # so it cannot be acknowledged"), else that the card is out of date.
                transition(
                    current,
                    action,
                    actor=actor,
                    at=at,
                    note=note,
                    severity=severity,
                    commander=commander,
                    by=by,
                )
                raise already_changed(current)
            incident, effects = transition(
                current,
                action,
                actor=actor,
                at=at,
                note=note,
                severity=severity,
                commander=commander,
                by=by,
            )
            row.update_from(incident)
            return _record_change(session, incident, effects, actor, platform, channel, at, record)

    def get(self, number: int) -> Incident:
        """The incident ``number``; :class:`IncidentNotFound` when there is none."""
        with self._reading() as session:
            return self._require(session, number).to_model()

    def find_by_channel(self, instance: str, channel_id: str) -> Incident | None:
        """The incident whose own channel is ``channel_id`` on ``instance``, if any."""
        with self._reading() as session:
            row = session.execute(
                select(IncidentRow)
                .where(IncidentRow.instance == instance, IncidentRow.channel_id == channel_id)
                .order_by(IncidentRow.number.desc())
                .limit(1)
            ).scalar_one_or_none()
            return None if row is None else row.to_model()

    def set_channel(self, number: int, *, channel_id: str, channel_name: str) -> Incident:
        """Record the incident's own channel (on the instance it was declared on).

        The version goes up by one, as the incident shows differently (with its channel);
        ``updated_at`` is left alone, as it is the time of the last command.
        """
        with self._writing() as session:
            row = self._locked_incident(session, number)
            row.channel_id = channel_id
            row.channel_name = channel_name
            row.version = row.version + 1
            return row.to_model()

    def list(
        self, *, active_only: bool = True, severity: Severity | None = None, limit: int = 20
    ) -> builtins.list[Incident]:
        """Incidents, newest (highest number) first.

        ``active_only`` leaves out resolved and closed ones; ``severity`` keeps only that
        severity; at most ``limit`` are returned.
        """
        query = select(IncidentRow)
        if active_only:
            query = query.where(IncidentRow.status.not_in(_ACTIVE_EXCLUDED))
        if severity is not None:
            query = query.where(IncidentRow.severity == severity)
        query = query.order_by(IncidentRow.number.desc()).limit(max(0, limit))
        with self._reading() as session:
            return [row.to_model() for row in session.execute(query).scalars()]

    # --- timeline -----------------------------------------------------------------

    def add_timeline(
        self,
        number: int,
        *,
        kind: EntryKind,
        actor: str,
        platform: str | None,
        channel: str | None,
        text: str,
        at: datetime,
    ) -> TimelineEntry:
        """Append an entry to the timeline of incident ``number`` without changing the incident."""
        at = utc(at)
        with self._writing() as session:
            self._require(session, number)
            row = TimelineEntryRow(
                incident_number=number,
                at=at,
                kind=kind,
                actor=actor,
                platform=platform,
                channel=channel,
                text=text,
            )
            session.add(row)
            return row.to_model()

    def timeline(self, number: int, limit: int | None = None) -> builtins.list[TimelineEntry]:
        """The timeline of incident ``number``, oldest first (by time, then by insertion).

        With ``limit``, the latest ``limit`` entries, still oldest first.
        """
        with self._reading() as session:
            self._require(session, number)
            query = select(TimelineEntryRow).where(TimelineEntryRow.incident_number == number)
            if limit is None:
                query = query.order_by(TimelineEntryRow.at, TimelineEntryRow.id)
                return [row.to_model() for row in session.execute(query).scalars()]
            query = query.order_by(TimelineEntryRow.at.desc(), TimelineEntryRow.id.desc())
            latest = session.execute(query.limit(max(0, limit))).scalars().all()
            return [row.to_model() for row in reversed(latest)]

    # --- idempotency --------------------------------------------------------------

    def steps_done(self, key: str) -> set[str]:
        """The side effects of command ``key`` already carried out (empty for an unknown key)."""
        with self._reading() as session:
            record = session.get(ProcessedCommandRow, key)
            return set() if record is None else set(record.steps)

    def mark_step(self, key: str, step: str) -> None:
        """Remember that side effect ``step`` of command ``key`` was carried out.

        An unknown key gets a record (without an outcome, so applying the key later still
        runs).
        """
        with self._writing() as session:
            record = self._locked_command(session, key)
            if step not in record.steps:
                record.steps = sorted({*record.steps, step})


def _record_change(
    session: Session,
    incident: Incident,
    effects: Effects,
    actor: str,
    platform: str | None,
    channel: str | None,
    at: datetime,
    record: ProcessedCommandRow | None,
) -> Applied:
    """Write the timeline entry of a change and, for a keyed command, its outcome."""
    session.add(
        TimelineEntryRow(
            incident_number=incident.number,
            at=at,
            kind=effects.entry_kind,
            actor=actor,
            platform=platform,
            channel=channel,
            text=effects.entry_text,
        )
    )
    applied = Applied(incident=incident, effects=effects, replayed=False)
    if record is not None:
        record.incident_number = incident.number
        record.outcome = _snapshot(applied)
    return applied
