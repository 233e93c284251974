"""The audit trail in the store: append and read, nothing else.

:class:`AuditRecords` is a mixin of :class:`~chatops_core.store.IncidentStore`. It has no
method that changes or removes a record, on purpose; the database refuses it as well (see
migration ``0006``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, false, or_, select, tuple_
from sqlalchemy.orm import Session

from chatops_core.audit import DEFAULT_LIMIT, MAX_LIMIT, ActorFilter, AuditEntry, AuditOutcome, AuditRecord
from chatops_core.store.schema import AuditRow, IdentityRow, PersonRow, utc


class AuditRecords:
    """Append-only audit records."""

    if TYPE_CHECKING:
        # Provided by IncidentStore.
        _insert: Callable[..., Any]

        def _writing(self) -> AbstractContextManager[Session]: ...

        def _reading(self) -> AbstractContextManager[Session]: ...

    def append_audit(self, entries: AuditEntry | Sequence[AuditEntry]) -> int:
        """Append ``entries`` in one transaction; return how many were new.

        An entry whose ``key`` is recorded already is dropped (a task that runs twice, a
        drain cut off half way). An entry with no ``person_id`` that names a platform user
        (not merely claimed) gets the person behind that user, looked up in the same statement.
        """
        batch = [entries] if isinstance(entries, AuditEntry) else list(entries)
        if not batch:
            return 0
        added = 0
        with self._writing() as session:
            for entry in batch:
                values = entry.model_dump()
                values["outcome"] = entry.outcome.value
                values["at"] = utc(entry.at)
                if entry.person_id is None and not entry.claimed and entry.instance and entry.user_id:
                    values["person_id"] = (
                        select(IdentityRow.person_id)
                        .where(IdentityRow.instance == entry.instance, IdentityRow.user_id == entry.user_id)
                        .scalar_subquery()
                    )
                statement = self._insert(AuditRow).values(**values)
                if entry.key is not None:
                    statement = statement.on_conflict_do_nothing(index_elements=["key"])
                # RETURNING says whether the row went in (rowcount is not reliable here).
                added += len(session.execute(statement.returning(AuditRow.id)).all())
        return added

    def audit_records(
        self,
        *,
        since: datetime | None = None,
        actor: ActorFilter | None = None,
        outcome: AuditOutcome | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[AuditRecord]:
        """Records, newest first: at or after ``since``, of ``actor``, with ``outcome``; at
        most ``limit`` (1 to ``MAX_LIMIT``)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be from 1 to {MAX_LIMIT}")
        query = select(AuditRow)
        with self._reading() as session:
            if since is not None:
                query = query.where(AuditRow.at >= utc(since))
            if outcome is not None:
                query = query.where(AuditRow.outcome == outcome.value)
            if actor is not None:
                query = query.where(_of_actor(session, actor))
            rows = session.execute(query.order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit))
            return [_record(row) for row in rows.scalars()]


def _of_actor(session: Session, actor: ActorFilter) -> ColumnElement[bool]:
    """The records of ``actor``: a person's by their id and by each of their platform users
    (records appended before that user was known to be them); a platform user nobody is known
    as, by that user (claimed ones included)."""
    person_id = actor.person_id
    if actor.email is not None:
        person_id = session.execute(
            select(PersonRow.id).where(PersonRow.email == actor.email)
        ).scalar_one_or_none()
        if person_id is None:
            return false()
    elif actor.instance is not None and actor.user_id is not None:
        person_id = session.execute(
            select(IdentityRow.person_id).where(
                IdentityRow.instance == actor.instance, IdentityRow.user_id == actor.user_id
            )
        ).scalar_one_or_none()
        if person_id is None:
            return and_(AuditRow.instance == actor.instance, AuditRow.user_id == actor.user_id)
    assert person_id is not None
    pairs = [
        (row.instance, row.user_id)
        for row in session.execute(
            select(IdentityRow.instance, IdentityRow.user_id).where(IdentityRow.person_id == person_id)
        )
    ]
    if not pairs:
        return AuditRow.person_id == person_id
    return or_(AuditRow.person_id == person_id, tuple_(AuditRow.instance, AuditRow.user_id).in_(pairs))


def _record(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        outcome=AuditOutcome(row.outcome),
        source=row.source,
        command=row.command,
        person_id=row.person_id,
        actor=row.actor,
        instance=row.instance,
        user_id=row.user_id,
        claimed=row.claimed,
        platform=row.platform,
        channel=row.channel,
        incident=row.incident,
        reason=row.reason,
        key=row.key,
    )
