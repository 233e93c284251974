"""End-to-end fixtures: one local Slack and one running stack (gunicorn, a Celery worker,
Redis) per module. A module that needs its own settings or a fresh stack per test defines
``slack`` and ``stack`` itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e.stack import Stack, start_stack
from tests.fakes.slack_server import FakeSlack


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
