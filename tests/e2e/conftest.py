"""End-to-end fixtures: one local Slack and one running stack (gunicorn, a Celery worker,
Redis) per module. A module that needs its own settings or a fresh stack per test defines
``slack`` and ``stack`` itself."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from chatops_core.store.repository import normalize_database_url
from tests.e2e.stack import Stack, start_stack
from tests.fakes.slack_server import FakeSlack

PG_ENV = "CHATOPS_TEST_DATABASE_URL"


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, slack: FakeSlack) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    running = start_stack(
        Path(tmp_path_factory.mktemp("stack")), redis_url=redis_url, api_url=slack.api_url, token=slack.token
    )
    yield running
    running.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """The stack's database: a schema of its own in the PostgreSQL database
    ``CHATOPS_TEST_DATABASE_URL`` names when it is set (so parallel runs do not meet), else a
    new SQLite file."""
    if not os.environ.get(PG_ENV):
        yield f"sqlite:///{tmp_path / 'chatops.db'}"
        return
    base = normalize_database_url(os.environ[PG_ENV])
    schema = f"test_e2e_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # Every connection of every process of the stack sees only this schema.
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
