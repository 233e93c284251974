"""The audit trail: one append-only record per chat action, API intake, grant and refusal.

Records are appended and read, never changed. On PostgreSQL a trigger refuses ``UPDATE``,
``DELETE`` (row level) and ``TRUNCATE`` (statement level) on the table; on SQLite a trigger
refuses ``UPDATE`` and ``DELETE`` (SQLite has no ``TRUNCATE``, and ``DROP TABLE`` fires no
trigger). Whoever owns the database can still drop the triggers: they stop mistakes and
the service's own code, not the database's owner.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSED = "audit_records is append-only: its records are never changed or removed"


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("command", sa.String(128), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("instance", sa.String(64), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("claimed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("platform", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(255), nullable=True),
        sa.Column("incident", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("key", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_records"),
        sa.UniqueConstraint("key", name="uq_audit_records_key"),
    )
    op.create_index("ix_audit_records_at", "audit_records", ["at"])
    op.create_index("ix_audit_records_person_id", "audit_records", ["person_id"])
    op.create_index("ix_audit_records_instance_user_id", "audit_records", ["instance", "user_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_records_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{_REFUSED} (%)', TG_OP; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records "
            "FOR EACH ROW EXECUTE PROCEDURE audit_records_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
            "FOR EACH STATEMENT EXECUTE PROCEDURE audit_records_refuse_change()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_records_no_{event.lower()} BEFORE {event} ON audit_records "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_records_no_truncate ON audit_records")
        op.execute("DROP TRIGGER audit_records_append_only ON audit_records")
        op.execute("DROP FUNCTION audit_records_refuse_change()")
    else:
        op.execute("DROP TRIGGER audit_records_no_update")
        op.execute("DROP TRIGGER audit_records_no_delete")
    op.drop_index("ix_audit_records_instance_user_id", table_name="audit_records")
    op.drop_index("ix_audit_records_person_id", table_name="audit_records")
    op.drop_index("ix_audit_records_at", table_name="audit_records")
    op.drop_table("audit_records")
