"""The commander as a person (instance and user id beside the name), and the announced version.

Existing rows: a commander written as a platform mention (``<@U123>``) becomes that user on
the incident's own instance, shown by their id; ``announced_version`` starts at ``version``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MENTION = re.compile(r"^<@!?([A-Za-z0-9]+)(?:\|([^<>]*))?>$")

_incidents = sa.table(
    "incidents",
    sa.column("number", sa.Integer()),
    sa.column("instance", sa.String(64)),
    sa.column("commander", sa.Text()),
    sa.column("commander_instance", sa.String(64)),
    sa.column("commander_user_id", sa.String(255)),
    sa.column("version", sa.Integer()),
    sa.column("announced_version", sa.Integer()),
)


def upgrade() -> None:
    # Plain ADD COLUMN on every backend: a copied table (batch mode) would cascade-delete the
    # timeline on SQLite.
    op.add_column("incidents", sa.Column("commander_instance", sa.String(64), nullable=True))
    op.add_column("incidents", sa.Column("commander_user_id", sa.String(255), nullable=True))
    op.add_column("incidents", sa.Column("announced_version", sa.Integer(), nullable=True))
    bind = op.get_bind()
    bind.execute(sa.update(_incidents).values(announced_version=_incidents.c.version))
    rows = bind.execute(
        sa.select(_incidents.c.number, _incidents.c.instance, _incidents.c.commander).where(
            _incidents.c.commander.like("<@%>")
        )
    ).all()
    for number, instance, commander in rows:
        found = _MENTION.match(str(commander or ""))
        if found is None:
            continue
        bind.execute(
            sa.update(_incidents)
            .where(_incidents.c.number == number)
            .values(
                commander=(found.group(2) or "").strip() or found.group(1),
                commander_instance=instance,
                commander_user_id=found.group(1),
            )
        )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_incidents.c.number, _incidents.c.commander_user_id).where(
            _incidents.c.commander_user_id.is_not(None)
        )
    ).all()
    for number, user_id in rows:
        bind.execute(
            sa.update(_incidents).where(_incidents.c.number == number).values(commander=f"<@{user_id}>")
        )
    op.drop_column("incidents", "announced_version")
    op.drop_column("incidents", "commander_user_id")
    op.drop_column("incidents", "commander_instance")
