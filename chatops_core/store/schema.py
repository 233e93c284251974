"""Tables of the incident store, as SQLAlchemy typed declarative classes.

The database schema itself is created and evolved only by the Alembic migrations in
``migrations/versions``; these classes describe it to the ORM and must match the head
revision (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

from chatops_core.access.roles import Role
from chatops_core.models import EntryKind, Incident, Severity, Status, TimelineEntry

# Name of the counter row that hands out incident numbers.
INCIDENT_COUNTER = "incidents"

# Constraint names are fixed so later migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} given; pass a timezone-aware datetime")
    return at.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and always read back timezone-aware.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so the value is stored as
    naive UTC text and UTC is attached again on reading. Naive input is refused rather
    than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enum(enum_cls: type[Any], length: int) -> Enum:
    # Stored as plain strings (the enum values), without a CHECK constraint or a native
    # enum type, so adding a member later needs no migration.
    return Enum(
        enum_cls,
        values_callable=lambda members: [m.value for m in members],
        native_enum=False,
        create_constraint=False,
        length=length,
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class CounterRow(Base):
    """A named counter; the ``incidents`` row hands out incident numbers.

    Taking the next number updates this row, which locks it until the transaction ends, so
    two declarations at the same moment get different numbers and a rolled-back one
    leaves no gap.
    """

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False)


class IncidentRow(Base):
    """One incident."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_status", "status"),
        Index("ix_incidents_instance_channel_id", "instance", "channel_id"),
    )

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    severity: Mapped[Severity] = mapped_column(_enum(Severity, 8), nullable=False)
    status: Mapped[Status] = mapped_column(_enum(Status, 16), nullable=False)
    commander: Mapped[str | None] = mapped_column(Text)
    commander_instance: Mapped[str | None] = mapped_column(String(64))
    commander_user_id: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    declared_by: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str | None] = mapped_column(String(64))
    instance: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(255))
    channel_name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    mitigated_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    announced_version: Mapped[int | None] = mapped_column(Integer)

    def to_model(self) -> Incident:
        """The incident as the shared pydantic model."""
        return Incident(
            number=self.number,
            title=self.title,
            severity=self.severity,
            status=self.status,
            commander=self.commander,
            commander_instance=self.commander_instance,
            commander_user_id=self.commander_user_id,
            description=self.description,
            resolution=self.resolution,
            declared_by=self.declared_by,
            platform=self.platform,
            instance=self.instance,
            channel_id=self.channel_id,
            channel_name=self.channel_name,
            created_at=self.created_at,
            updated_at=self.updated_at,
            acknowledged_at=self.acknowledged_at,
            mitigated_at=self.mitigated_at,
            resolved_at=self.resolved_at,
            closed_at=self.closed_at,
            version=self.version,
            announced_version=self.announced_version,
        )

    def update_from(self, incident: Incident) -> None:
        """Copy every field but the number from ``incident`` onto this row."""
        for field in MUTABLE_INCIDENT_FIELDS:
            setattr(self, field, getattr(incident, field))


MUTABLE_INCIDENT_FIELDS = tuple(name for name in Incident.model_fields if name != "number")


class TimelineEntryRow(Base):
    """One line of an incident's timeline."""

    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_entries_incident_number_at", "incident_number", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_number: Mapped[int] = mapped_column(
        Integer, ForeignKey("incidents.number", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(nullable=False)
    kind: Mapped[EntryKind] = mapped_column(_enum(EntryKind, 32), nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    platform: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text, nullable=False)

    def to_model(self) -> TimelineEntry:
        """The entry as the shared pydantic model."""
        return TimelineEntry(
            incident_number=self.incident_number,
            at=self.at,
            kind=self.kind,
            actor=self.actor,
            platform=self.platform,
            channel=self.channel,
            text=self.text,
        )


class ProcessedCommandRow(Base):
    """A command that was applied, by its idempotency key.

    ``outcome`` is the JSON snapshot of what applying it returned (null while only side
    effects have been recorded); ``steps`` lists the side effects already carried out.
    """

    __tablename__ = "processed_commands"
    __table_args__ = (Index("ix_processed_commands_created_at", "created_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    incident_number: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    steps: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class DeliveryRow(Base):
    """One attempt, however often retried, to post a notification in one channel.

    ``key`` is the delivery's idempotency key; ``channel`` is the target as routed
    (``#name`` or an id), ``channel_id``/``message_id`` what the platform answered.
    """

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_notification_id", "notification_id"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(255), nullable=False)
    instance: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(255), nullable=False)
    channel_id: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(255))
    incident_ref: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)
    # The last attempt may have posted without recording it: look before posting again.
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


class IncidentCardRow(Base):
    """The message that shows an incident in a channel (as routed), kept up to date in place."""

    __tablename__ = "incident_cards"

    instance: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(255), primary_key=True)
    incident_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(255), nullable=False)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False)
    version: Mapped[int | None] = mapped_column(Integer)


class DeadLetterRow(Base):
    """A task that gave up, with what is needed to run it again."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    task_name: Mapped[str] = mapped_column(String(255), nullable=False)
    args: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    notification_id: Mapped[str | None] = mapped_column(String(255))
    target: Mapped[str | None] = mapped_column(Text)


class SlaBreachRow(Base):
    """An acknowledgement SLA breach already announced: one per unacknowledged period.

    ``since`` is when the period started (the declaration or the latest reopen); the
    primary key makes the announcement happen once even with several checkers.
    """

    __tablename__ = "sla_breaches"

    incident_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    since: Mapped[datetime] = mapped_column(primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(nullable=False)


class PersonRow(Base):
    """A person: one human however many platforms they use (their identities).

    ``email`` is unique when known, so the same address seen on two platforms is one person.
    """

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class IdentityRow(Base):
    """A platform user (instance, user id) and the person they are; ``name`` as that platform
    last showed it."""

    __tablename__ = "identities"
    __table_args__ = (Index("ix_identities_person_id", "person_id"),)

    instance: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class GrantRow(Base):
    """The role granted to a person (in chat or with ``chatops users grant``): it overrides
    ``[access.roles]`` for them until revoked."""

    __tablename__ = "grants"

    person_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    role: Mapped[Role] = mapped_column(_enum(Role, 16), nullable=False)
    granted_by: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)


class AuditRow(Base):
    """One audit record: appended, read, never changed (see :mod:`chatops_core.audit`).

    ``person_id`` is the person as known when the record was appended; it is no foreign key,
    since a person merged into another (the same e-mail address on two platforms) goes away
    while their records stay as written. ``key`` makes appending idempotent.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_at", "at"),
        Index("ix_audit_records_person_id", "person_id"),
        Index("ix_audit_records_instance_user_id", "instance", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    command: Mapped[str | None] = mapped_column(String(128))
    person_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(255))
    instance: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(255))
    claimed: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    platform: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(255))
    incident: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    key: Mapped[str | None] = mapped_column(String(255), unique=True)
