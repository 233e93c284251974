"""People, their platform identities and the roles granted to them.

A person is one human, however many platforms they use: each platform user (instance, user
id) is an identity of exactly one person, and an e-mail address belongs to at most one
person, so the same address seen on two platforms is one person. A grant is the role given
to a person in chat or by ``chatops users grant``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("display_name", sa.Text(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_people"),
        sa.UniqueConstraint("email", name="uq_people_email"),
    )
    op.create_table(
        "identities",
        sa.Column("instance", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name="fk_identities_person_id_people", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("instance", "user_id", name="pk_identities"),
    )
    op.create_index("ix_identities_person_id", "identities", ["person_id"])
    op.create_table(
        "grants",
        sa.Column("person_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.Text(), nullable=False),
        _at("at"),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name="fk_grants_person_id_people", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("person_id", name="pk_grants"),
    )


def downgrade() -> None:
    op.drop_table("grants")
    op.drop_index("ix_identities_person_id", table_name="identities")
    op.drop_table("identities")
    op.drop_table("people")
