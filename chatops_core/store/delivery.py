"""What the store records about getting notifications out: deliveries, cards, dead letters, SLA.

:class:`DeliveryRecords` is a mixin of :class:`~chatops_core.store.IncidentStore`; its
methods run in the store's transactions (``BEGIN IMMEDIATE`` on SQLite, row locks or
``ON CONFLICT`` on PostgreSQL), so concurrent workers never lose an update.

- A *delivery* is one notification to one channel, keyed by its idempotency key: how often
  it was tried, the last error, whether the last attempt's outcome is unknown (it may have
  posted without recording it) and whether it was posted or given up (dead).
- A *card* is the message that shows an incident in a channel (as routed), updated in place;
  its version never goes down, so a late update never overwrites a newer one.
- A *dead letter* is a task that gave up, kept to be replayed (``chatops dlq``).
- An *SLA breach* is claimed once per incident and unacknowledged period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Engine, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from chatops_core.models import EntryKind, Incident, Severity, Status
from chatops_core.store.driver import DELIVERY_COLUMNS, DriverStatements
from chatops_core.store.schema import (
    DeadLetterRow,
    DeliveryRow,
    IncidentRow,
    SlaBreachRow,
    TimelineEntryRow,
    utc,
)


class DeliveryStatus(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    POSTED = "posted"
    DEAD = "dead"


@dataclass(frozen=True)
class Delivery:
    """One notification to one channel (``channel`` as routed: ``#name`` or an id)."""

    key: str
    notification_id: str
    instance: str
    channel: str
    channel_id: str | None
    message_id: str | None
    incident_ref: str
    version: int | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    # Whether the last attempt may have posted without recording it (it was cut off, or
    # failed in a way that does not say "not posted"): the next one looks for its post first.
    outcome_unknown: bool = False


@dataclass(frozen=True)
class Card:
    """The message showing incident ``incident_ref`` in ``channel`` (as routed) on ``instance``."""

    instance: str
    channel: str
    incident_ref: str
    channel_id: str
    message_id: str
    version: int | None


@dataclass(frozen=True)
class DeadLetter:
    """A task that gave up; ``target`` is ``instance/channel`` for a delivery."""

    id: int
    created_at: datetime
    task_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    reason: str
    attempts: int
    notification_id: str | None
    target: str | None


def _delivery(row: tuple[Any, ...] | None, outcome_unknown: bool | None = None) -> Delivery:
    """A delivery from a row in :data:`~chatops_core.store.driver.DELIVERY_COLUMNS` order (as
    :meth:`~chatops_core.store.driver.DriverStatements.delivery_row` converts it), its
    ``outcome_unknown`` replaced when given."""
    assert row is not None
    return Delivery(
        key=row[0],
        notification_id=row[1],
        instance=row[2],
        channel=row[3],
        channel_id=row[4],
        message_id=row[5],
        incident_ref=row[6],
        version=row[7],
        status=DeliveryStatus(row[8]),
        attempts=row[9],
        last_error=row[10],
        created_at=row[11],
        updated_at=row[12],
        outcome_unknown=row[13] if outcome_unknown is None else outcome_unknown,
    )


def _card_key(instance: str, channel: str, incident_ref: str) -> dict[str, Any]:
    return {"c_instance": instance, "c_channel": channel, "c_ref": incident_ref}


def _card_params(
    instance: str, channel: str, incident_ref: str, channel_id: str, message_id: str, version: int | None
) -> dict[str, Any]:
    return {
        **_card_key(instance, channel, incident_ref),
        "c_channel_id": channel_id,
        "c_message_id": message_id,
        "c_version": version,
    }


def _dead_letter(row: DeadLetterRow) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        created_at=row.created_at,
        task_name=row.task_name,
        args=list(row.args),
        kwargs=dict(row.kwargs),
        reason=row.reason,
        attempts=row.attempts,
        notification_id=row.notification_id,
        target=row.target,
    )


class DeliveryRecords:
    """Deliveries, cards, dead letters and SLA breaches: the part of the store workers deliver with."""

    if TYPE_CHECKING:
        # Provided by IncidentStore.
        _insert: Callable[..., Any]
        _engine: Engine
        _writer: Engine
        _verify_connection: Callable[[dict[Any, Any]], None] | None

        def _writing(self) -> AbstractContextManager[Session]: ...

        def _reading(self) -> AbstractContextManager[Session]: ...

    @cached_property
    def _driver(self) -> DriverStatements:
        return DriverStatements(self._engine, self._verify_connection)

    # --- deliveries -----------------------------------------------------------------

    def begin_delivery(
        self,
        key: str,
        *,
        notification_id: str,
        instance: str,
        channel: str,
        incident_ref: str,
        version: int | None,
    ) -> Delivery:
        """Record an attempt of delivery ``key`` and return the delivery as the attempt finds it.

        The first attempt inserts it (status pending, ``attempts`` 1); a later one only
        counts the attempt (``attempts`` + 1) and leaves everything else as recorded.

        Until the attempt records how it ended (:meth:`record_post`, :meth:`record_message`,
        :meth:`finish_delivery`, or :meth:`fail_delivery` with ``outcome_unknown=False``) its
        outcome is unknown, and so it is stored. The returned ``outcome_unknown`` is the
        *previous* attempt's: True when that one may have posted without recording it.
        """
        driver = self._driver
        params = {
            "k": key,
            "b_notification_id": notification_id,
            "b_instance": instance,
            "b_channel": channel,
            "b_ref": incident_ref,
            "b_version": version,
            "now": driver.time(datetime.now(UTC)),
        }
        # The first attempt inserts in one statement, committed by itself; it returns no row
        # when the key is there already.
        first = driver.single("first", params, write=True)
        if first is not None:
            # Inserted: no attempt before this one.
            return _delivery(driver.delivery_row(first), outcome_unknown=False)
        # A later attempt reads what the one before left and counts itself, in one write
        # transaction (the key's row locked on PostgreSQL) so no concurrent attempt is lost.
        with driver.transaction(write=True) as cursor:
            previous = cursor.run("previous_outcome", params).one()
            again = cursor.run("again", params).one()
        return _delivery(driver.delivery_row(again), outcome_unknown=bool(previous and previous[0]))

    def delivery(self, key: str) -> Delivery | None:
        """The delivery ``key``, if it was ever begun."""
        driver = self._driver
        with driver.transaction(write=False) as cursor:
            found = cursor.run("delivery", {"k": key}).one()
        return None if found is None else _delivery(driver.delivery_row(found))

    def delivery_and_card(
        self, key: str, instance: str, channel: str, incident_ref: str
    ) -> tuple[Delivery | None, Card | None]:
        """:meth:`delivery` and :meth:`card` in one read, as a delivery first looks at both."""
        driver = self._driver
        # One statement, so one snapshot: always one row, the delivery's columns then the card's,
        # NULL where there is none (neither has a NULL key column).
        row = driver.single(
            "delivery_and_card", {"k": key, **_card_key(instance, channel, incident_ref)}, write=False
        )
        assert row is not None
        found, shown = row[: len(DELIVERY_COLUMNS)], row[len(DELIVERY_COLUMNS) :]
        return (
            None if found[0] is None else _delivery(driver.delivery_row(found)),
            None if shown[0] is None else Card(*shown),
        )

    def finish_delivery(self, key: str, *, channel_id: str, message_id: str) -> None:
        """Mark delivery ``key`` posted, as message ``message_id`` in channel ``channel_id``.

        Raises :class:`KeyError` when ``key`` was never begun.
        """
        self._update_delivery(
            key,
            status=DeliveryStatus.POSTED.value,
            channel_id=channel_id,
            message_id=message_id,
            outcome_unknown=False,
        )

    def record_message(self, key: str, *, channel_id: str, message_id: str) -> None:
        """Record that delivery ``key`` posted its own message (an alert) while the rest of
        it (the card) is still to do: the delivery stays pending, its outcome known.

        Raises :class:`KeyError` when ``key`` was never begun.
        """
        self._update_delivery(key, channel_id=channel_id, message_id=message_id, outcome_unknown=False)

    def fail_delivery(self, key: str, *, error: str, dead: bool, outcome_unknown: bool | None = None) -> None:
        """Record that an attempt of delivery ``key`` failed with ``error``; ``dead``: given up.

        ``outcome_unknown``: whether the failed attempt may still have posted (None leaves
        it as recorded). Raises :class:`KeyError` when ``key`` was never begun.
        """
        values: dict[str, Any] = {"last_error": error}
        if dead:
            values["status"] = DeliveryStatus.DEAD.value
        if outcome_unknown is not None:
            values["outcome_unknown"] = outcome_unknown
        self._update_delivery(key, **values)

    def _update_delivery(self, key: str, **values: Any) -> None:
        with self._writing() as session:
            self._set_delivery(session, key, **values)

    @staticmethod
    def _set_delivery(session: Session, key: str, **values: Any) -> None:
        result = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.key == key)
            .values(updated_at=datetime.now(UTC), **values)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise KeyError(f"no delivery {key!r}; begin_delivery() records it first")

    # --- cards --------------------------------------------------------------------

    def card(self, instance: str, channel: str, incident_ref: str) -> Card | None:
        """The message showing ``incident_ref`` in ``channel`` (as routed) on ``instance``, if any."""
        with self._driver.transaction(write=False) as cursor:
            shown = cursor.run("card", _card_key(instance, channel, incident_ref)).one()
        return None if shown is None else Card(*shown)

    def save_card(
        self,
        instance: str,
        channel: str,
        incident_ref: str,
        *,
        channel_id: str,
        message_id: str,
        version: int | None,
    ) -> None:
        """Insert or update the card of ``incident_ref`` in ``channel`` on ``instance``.

        The stored version is never lowered (no version counts as the lowest): saving a
        version below the stored one changes nothing.
        """
        with self._driver.transaction(write=True) as cursor:
            cursor.run(
                "save_card", _card_params(instance, channel, incident_ref, channel_id, message_id, version)
            )

    def record_post(
        self,
        key: str,
        *,
        instance: str,
        channel: str,
        incident_ref: str,
        channel_id: str,
        message_id: str,
        version: int | None,
        sent: tuple[str, str] | None = None,
    ) -> None:
        """:meth:`save_card` and :meth:`finish_delivery` in one transaction.

        ``sent`` is the ``(channel_id, message_id)`` of the delivery's own message when it is
        not the card (an alert posted beside the card's update).
        """
        sent_channel, sent_message = sent or (channel_id, message_id)
        driver = self._driver
        with driver.transaction(write=True) as cursor:
            cursor.run(
                "save_card", _card_params(instance, channel, incident_ref, channel_id, message_id, version)
            )
            posted = cursor.run(
                "posted",
                {
                    "k": key,
                    "p_channel_id": sent_channel,
                    "p_message_id": sent_message,
                    "now": driver.time(datetime.now(UTC)),
                },
            )
            if posted.rowcount != 1:
                raise KeyError(f"no delivery {key!r}; begin_delivery() records it first")

    # --- dead letters -------------------------------------------------------------

    def add_dead_letter(
        self,
        *,
        task_name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        reason: str,
        attempts: int,
        notification_id: str | None = None,
        target: str | None = None,
    ) -> int:
        """Keep a task that gave up (JSON-able ``args``/``kwargs``); return its id."""
        row = DeadLetterRow(
            created_at=datetime.now(UTC),
            task_name=task_name,
            args=list(args),
            kwargs=dict(kwargs),
            reason=reason,
            attempts=attempts,
            notification_id=notification_id,
            target=target,
        )
        with self._writing() as session:
            session.add(row)
            session.flush()
            return row.id

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """At most ``limit`` dead letters, oldest first."""
        with self._reading() as session:
            rows = session.execute(
                select(DeadLetterRow).order_by(DeadLetterRow.id).limit(max(0, limit))
            ).scalars()
            return [_dead_letter(row) for row in rows]

    def dead_letter(self, id: int) -> DeadLetter | None:
        """The dead letter ``id``, if it is still kept."""
        with self._reading() as session:
            row = session.get(DeadLetterRow, id)
            return None if row is None else _dead_letter(row)

    def drop_dead_letter(self, id: int) -> bool:
        """Forget dead letter ``id``; False when there was none."""
        with self._writing() as session:
            result = session.execute(
                delete(DeadLetterRow)
                .where(DeadLetterRow.id == id)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    # --- SLA ----------------------------------------------------------------------

    def claim_sla_breach(self, incident_number: int, since: datetime) -> bool:
        """Claim the breach of incident ``incident_number`` unacknowledged since ``since``.

        True exactly once per (incident, since), however many callers race for it; the
        one that gets True announces the breach.
        """
        since = utc(since)
        insert = (
            self._insert(SlaBreachRow)
            .values(incident_number=incident_number, since=since, sent_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["incident_number", "since"])
            .returning(SlaBreachRow.incident_number)
        )
        with self._writing() as session:
            return session.execute(insert).first() is not None

    def release_sla_breach(self, incident_number: int, since: datetime) -> None:
        """Undo a claim whose announcement could not be sent, so a later check claims it again."""
        since = utc(since)
        with self._writing() as session:
            session.execute(
                delete(SlaBreachRow)
                .where(SlaBreachRow.incident_number == incident_number, SlaBreachRow.since == since)
                .execution_options(synchronize_session=False)
            )

    def unacknowledged(self, older_than: Mapping[Severity, datetime]) -> list[tuple[Incident, datetime]]:
        """Open incidents unacknowledged since before the cutoff of their severity.

        An incident is open since it was declared or, if it was reopened, since its latest
        reopening; it is returned with that time when it is earlier than
        ``older_than[severity]``. Severities not in ``older_than`` are never returned.
        Oldest incident (lowest number) first.
        """
        if not older_than:
            return []
        reopened = (
            select(
                TimelineEntryRow.incident_number.label("number"),
                func.max(TimelineEntryRow.at).label("at"),
            )
            .where(TimelineEntryRow.kind == EntryKind.REOPENED)
            .group_by(TimelineEntryRow.incident_number)
            .subquery()
        )
        since: ColumnElement[datetime] = func.coalesce(reopened.c.at, IncidentRow.created_at)
        due = or_(
            *(
                and_(IncidentRow.severity == severity, since < utc(cutoff))
                for severity, cutoff in older_than.items()
            )
        )
        query = (
            select(IncidentRow, since.label("since"))
            .outerjoin(reopened, reopened.c.number == IncidentRow.number)
            .where(IncidentRow.status == Status.OPEN, due)
            .order_by(IncidentRow.number)
        )
        with self._reading() as session:
            return [(row.to_model(), utc(at)) for row, at in session.execute(query)]
