"""A worker serving the notifications queue alone hands its pool process the next delivery
while the process still runs one, and a stop in that moment loses nothing and posts nothing
twice; any other worker hands a task over only to a free process. Real Celery workers on a
real Redis, asked what they do through Celery's own remote control, and slack_sdk against
the local server that plays Slack (holding a post to keep a delivery running)."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from chatops_core.publisher import TaskPublisher
from chatops_core.stack import worker_argv
from chatops_core.tasks import INTERACTIVE_QUEUE, NOTIFICATIONS_QUEUE, NOTIFY_TASK
from tests.e2e.stack import Stack, own_slack, slack_stack
from tests.fakes.slack_server import FakeSlack, wait_for

pytestmark = pytest.mark.e2e

_ids = itertools.count(7000)


slack = pytest.fixture(own_slack, name="slack")


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, slack: FakeSlack) -> Iterator[Stack]:
    running = slack_stack(
        tmp_path,
        redis_url,
        slack,
        worker=False,
        # A task a stopped worker held comes back within seconds.
        extra_env={"CHATOPS_VISIBILITY_TIMEOUT_SECONDS": "8"},
    )
    yield running
    running.stop()


@pytest.fixture
def control(redis_url: str) -> Iterator[Celery]:
    app = Celery("e2e-control", broker=redis_url)
    yield app
    app.close()


def stats(control: Celery, node: str, timeout: float = 30) -> dict[str, Any]:
    """What ``celery inspect stats`` says of the worker named ``node``, once it answers."""

    def answer() -> dict[str, Any] | None:
        replies = control.control.inspect(destination=[node], timeout=1).stats() or {}
        return replies.get(node)

    found: dict[str, Any] = wait_for(answer, timeout=timeout)
    return found


def start_worker(stack: Stack, name: str, queues: str, env: dict[str, str] | None = None) -> str:
    argv = worker_argv(queues=queues, concurrency=1)
    node = f"{name}@e2e"
    argv[argv.index("-n") + 1] = node
    stack.start(name, argv, env)
    return node


def notify(publisher: TaskPublisher, channel: str = "#incidents") -> str:
    number = next(_ids)
    payload = {
        "type": "incident.created",
        "incident": {
            "id": f"INC-{number}",
            "title": f"Pipeline {number}",
            "severity": "SEV-3",
            "status": "open",
            "created_at": datetime.now(UTC).isoformat(),
        },
        "channels": {"slack": [channel]},
    }
    publisher.send(NOTIFY_TASK, [payload, f"pipeline-{number}"], queue=NOTIFICATIONS_QUEUE)
    return f"INC-{number}"


def posted(slack: FakeSlack, channel: str = "incidents") -> list[str]:
    return [message["text"] for message in slack.messages(channel)]


@pytest.mark.parametrize(
    ("queues", "env"),
    [
        (f"{INTERACTIVE_QUEUE},{NOTIFICATIONS_QUEUE}", None),
        (NOTIFICATIONS_QUEUE, {"CHATOPS_NOTIFICATIONS_PREFETCH": "1"}),
    ],
    ids=["serving-interactive-too", "prefetch-set-to-1"],
)
def test_other_workers_hand_a_task_only_to_a_free_process(
    stack: Stack, control: Celery, queues: str, env: dict[str, str] | None
) -> None:
    node = start_worker(stack, "worker", queues, env)
    seen = stats(control, node)
    assert seen["prefetch_count"] == 1
    assert seen["pool"]["writes"]["strategy"] == "fair"


def test_the_next_task_waits_in_the_busy_process_and_a_stop_loses_nothing(
    stack: Stack, slack: FakeSlack, control: Celery, redis_url: str
) -> None:
    node = start_worker(stack, "first", NOTIFICATIONS_QUEUE)
    seen = stats(control, node)
    assert seen["prefetch_count"] == 2
    assert seen["pool"]["writes"]["strategy"] == "fcfs"
    publisher = TaskPublisher(redis_url)
    slack.hold("chat.postMessage", after=False)
    first = notify(publisher)
    slack.wait_held(timeout=30)
    second = notify(publisher, "#major-incidents")
    # The one pool process is still inside the first delivery (its post is held), and the
    # second task has been written to it all the same, ready for when it is done.
    wait_for(lambda: stats(control, node)["pool"]["writes"]["total"] >= 2 or None, timeout=30)
    assert posted(slack) == []
    # A rolling update stops it (Celery's warm shutdown) while its one process is inside the
    # first delivery and the second task waits in that process's pipe. The process runs both,
    # but Celery has already let go of the second, expecting Redis to give it out again (and
    # the process then waits about 30 s for its result to be collected before it exits; the
    # test does not wait for that).
    stack.processes["first"].send_signal(signal.SIGTERM)
    slack.release()
    wait_for(lambda: (posted(slack) and posted(slack, "major-incidents")) or None, timeout=30)
    # The second task's message is still unacknowledged: it comes back after the visibility
    # timeout (8 s here), and the worker that takes it finds that delivery done.
    start_worker(stack, "second", NOTIFICATIONS_QUEUE)
    client = redis.Redis.from_url(redis_url)

    def taken_back_and_done() -> bool | None:
        ran = stats(control, "second@e2e")["total"].get(NOTIFY_TASK, 0)
        return (ran >= 1 and client.hlen("unacked") == 0 and client.llen(NOTIFICATIONS_QUEUE) == 0) or None

    wait_for(taken_back_and_done, timeout=60)
    assert [first in text for text in posted(slack)] == [True]
    assert [second in text for text in posted(slack, "major-incidents")] == [True]
