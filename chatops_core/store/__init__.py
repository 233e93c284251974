"""The incident store: SQLAlchemy tables, Alembic migrations and :class:`IncidentStore`."""

from chatops_core.store.repository import Applied, IncidentStore

__all__ = ["Applied", "IncidentStore"]
