"""A worker holding tasks rides out its Redis going away and coming back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from chatops_core.stack import EmbeddedRedis
from chatops_core.tasks import MAINTENANCE_QUEUE, SLA_CHECK_TASK
from tests.e2e.stack import Stack, start_stack
from tests.fakes.slack_server import FakeSlack, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, to kill."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack(tmp_path: Path, broker: EmbeddedRedis, slack: FakeSlack) -> Iterator[Stack]:
    running = start_stack(tmp_path, redis_url=broker.url, api_url=slack.api_url, token=slack.token)
    yield running
    running.stop()


def test_worker_holding_a_task_survives_redis_restart(
    stack: Stack, broker: EmbeddedRedis, slack: FakeSlack
) -> None:
    # The worker holds a task due in a minute (as it holds every retry with a countdown).
    sender = Celery(broker=broker.url)
    sender.send_task(SLA_CHECK_TASK, countdown=60, queue=MAINTENANCE_QUEUE)
    client = redis.Redis.from_url(broker.url)
    wait_for(lambda: client.hlen("unacked") == 1, timeout=15, message="the worker to hold the task")
    client.close()

    assert broker.process is not None
    broker.process.kill()
    broker.process.wait()
    worker = stack.processes["worker"]
    wait_for(
        lambda: "Cannot connect to" in stack.logs() or worker.poll() is not None,
        timeout=15,
        message="the worker to try to reconnect",
    )
    assert worker.poll() is None, stack.logs()
    broker.start()  # the same port and data directory

    status, _, _ = stack.slash("status", slack.response_url("after"))
    assert status == 200
    wait_for(lambda: slack.responses("after"), timeout=30, message="an answer after the restart")
    assert worker.poll() is None, stack.logs()
