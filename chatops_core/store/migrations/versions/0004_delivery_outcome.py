"""Deliveries record whether their last attempt's outcome is unknown.

An attempt that was cut off (or failed in a way that does not say "not posted") may have
posted; only then does the next attempt look for its post before posting. Deliveries still
pending at the upgrade were recorded without it and are taken as unknown.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column("outcome_unknown", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    deliveries = sa.table(
        "deliveries", sa.column("status", sa.String()), sa.column("outcome_unknown", sa.Boolean())
    )
    op.execute(deliveries.update().where(deliveries.c.status == "pending").values(outcome_unknown=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("outcome_unknown")
