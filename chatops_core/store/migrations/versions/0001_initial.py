"""Initial schema: incidents, their timeline, processed commands and posted messages.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.bulk_insert(counters, [{"name": "incidents", "value": 0}])

    op.create_table(
        "incidents",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("commander", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("declared_by", sa.Text(), nullable=True),
        sa.Column("platform", sa.String(64), nullable=True),
        sa.Column("instance", sa.String(64), nullable=True),
        sa.Column("channel_id", sa.String(255), nullable=True),
        sa.Column("channel_name", sa.Text(), nullable=True),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        _at("acknowledged_at"),
        _at("mitigated_at"),
        _at("resolved_at"),
        _at("closed_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_incidents"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_instance_channel_id", "incidents", ["instance", "channel_id"])

    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_number", sa.Integer(), nullable=False),
        _at("at", nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("platform", sa.String(64), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timeline_entries"),
        sa.ForeignKeyConstraint(
            ["incident_number"],
            ["incidents.number"],
            name="fk_timeline_entries_incident_number_incidents",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_timeline_entries_incident_number_at", "timeline_entries", ["incident_number", "at"])

    op.create_table(
        "processed_commands",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("incident_number", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        _at("created_at", nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_processed_commands"),
    )
    op.create_index("ix_processed_commands_created_at", "processed_commands", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_processed_commands_created_at", table_name="processed_commands")
    op.drop_table("processed_commands")
    op.drop_index("ix_timeline_entries_incident_number_at", table_name="timeline_entries")
    op.drop_table("timeline_entries")
    op.drop_index("ix_incidents_instance_channel_id", table_name="incidents")
    op.drop_index("ix_incidents_status", table_name="incidents")
    op.drop_table("incidents")
    op.drop_table("counters")
