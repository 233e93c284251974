"""End-to-end fixtures: one local Slack and one running stack (gunicorn, a Celery worker,
Redis) per module. A module that needs its own settings or a fresh stack per test defines
``slack`` and ``stack`` itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, slack_stack
from tests.fakes.slack_server import FakeSlack
from tests.postgres_schema import PG_ENV, postgres_schema


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, slack: FakeSlack) -> Iterator[Stack]:
    running = slack_stack(Path(tmp_path_factory.mktemp("stack")), redis_url, slack)
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
    with postgres_schema("test_e2e") as url:
        yield url
