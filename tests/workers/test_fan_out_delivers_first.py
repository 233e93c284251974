"""The fan-out task delivers one target itself and enqueues a delivery task for each other.

A notification to one channel then takes one task instead of two. What the fan-out task
cannot finish at once goes on as an ordinary delivery task: paced (its slot already taken),
retried, or kept as a dead letter of that delivery task, whose replay delivers that target
only. The tasks run through Celery's own execution (``Task.apply``) with the real store
(SQLite), real Redis (pacing, locks, counts) and slack_sdk against the local server that
plays Slack.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from chatops_core.delivery_metrics import DeliveryCounter
from chatops_core.models import utcnow
from chatops_core.notifications import Notification
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.settings import Settings
from chatops_core.tasks import DELIVER_TASK, NOTIFICATIONS_QUEUE, NOTIFY_TASK
from tests.celery_messages import queued
from tests.fakes.slack_server import FakeSlack
from workers.celery_app import make_celery
from workers.runtime import Runtime


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(channels=("incidents", "ops", "general")) as fake:
        yield fake


@pytest.fixture
def worker(
    tmp_path: Path, slack: FakeSlack, redis_url: str, redis_client: redis.Redis
) -> Iterator[tuple[Celery, Runtime, list[tuple[str, dict[str, Any]]]]]:
    settings = Settings(
        data_dir=tmp_path,
        broker_url=redis_url,
        providers={
            "slack": SlackSettings(
                bot_token=slack.token, signing_secret="s", api_url=slack.api_url, timeout=2
            )
        },
    )
    runtime = Runtime(settings)
    runtime.store.upgrade()
    app = make_celery(settings, runtime)
    sent: list[tuple[str, dict[str, Any]]] = []
    app.send_task = lambda name, **options: sent.append((name, options))  # type: ignore[method-assign]
    yield app, runtime, sent
    runtime.store.close()


def notification(*channels: str, number: int = 7) -> dict[str, Any]:
    return {
        "type": "incident.created",
        "incident": {
            "id": f"INC-{number}",
            "title": "Checkout errors",
            "severity": "SEV-3",
            "status": "open",
            "created_at": utcnow().isoformat(),
        },
        "channels": {"slack": list(channels)},
    }


def delivered(runtime: Runtime, redis_client: redis.Redis) -> int:
    """The deliveries counted, once the lock thread has sent the releases that count them."""
    assert runtime.locks is not None and runtime.locks.flush()
    return DeliveryCounter(redis_client).totals().get(("slack", "delivered"), 0)


def test_a_notification_to_one_channel_is_delivered_by_the_fan_out_task_alone(
    worker: tuple[Celery, Runtime, list[tuple[str, dict[str, Any]]]],
    slack: FakeSlack,
    redis_client: redis.Redis,
) -> None:
    app, runtime, sent = worker
    app.tasks[NOTIFY_TASK].apply(args=[notification("#incidents"), "n-1"])
    assert sent == []  # no delivery task
    (message,) = slack.messages("incidents")
    assert "INC-7" in message["text"]
    record = runtime.store.delivery("ext:n-1:slack:#incidents")
    assert record is not None and record.status == "posted" and record.attempts == 1
    # Counted once, in the round trip that released the delivery's lock.
    assert delivered(runtime, redis_client) == 1
    assert runtime.locks is not None and runtime.locks.held() == []
    assert not redis_client.keys("chatops:lock:*")


def test_the_other_targets_are_enqueued_before_the_first_is_delivered(
    worker: tuple[Celery, Runtime, list[tuple[str, dict[str, Any]]]],
    slack: FakeSlack,
    redis_client: redis.Redis,
) -> None:
    app, runtime, sent = worker
    payload = notification("#incidents", "#ops", "#general")
    slack.hold("chat.postMessage", after=False)
    done = threading.Thread(target=app.tasks[NOTIFY_TASK].apply, args=([payload, "n-2"],))
    done.start()
    try:
        # While the first target's post is on its way, the others are on the queue already.
        slack.wait_held()
        as_sent = Notification.model_validate(payload).model_dump(mode="json")
        assert queued(redis_client, NOTIFICATIONS_QUEUE) == [
            (DELIVER_TASK, [as_sent, "n-2", "slack", "#ops"], {}),
            (DELIVER_TASK, [as_sent, "n-2", "slack", "#general"], {}),
        ]
    finally:
        slack.release()
        done.join(10)
    assert sent == []  # published through the lean publisher, not Celery's send_task
    assert len(slack.messages("incidents")) == 1
    assert slack.messages("ops") == [] and slack.messages("general") == []
    # The enqueued deliveries post the rest, each once.
    for _name, args, _kwargs in queued(redis_client, NOTIFICATIONS_QUEUE):
        app.tasks[DELIVER_TASK].apply(args=args)
    assert len(slack.messages("ops")) == 1 and len(slack.messages("general")) == 1
    assert delivered(runtime, redis_client) == 3


def test_a_paced_first_target_goes_on_as_a_delivery_task_holding_its_slot(
    worker: tuple[Celery, Runtime, list[tuple[str, dict[str, Any]]]],
    slack: FakeSlack,
) -> None:
    app, runtime, sent = worker
    # The channel's next send slot is 30 s away.
    assert runtime.pacer is not None
    runtime.pacer.hold_off("slack:post:#incidents", 30)
    app.tasks[NOTIFY_TASK].apply(args=[notification("#incidents"), "n-3"])
    assert slack.messages("incidents") == []
    ((name, options),) = sent
    assert name == DELIVER_TASK
    assert options["args"][1:] == ["n-3", "slack", "#incidents", True]  # its slot is taken
    assert 25 < options["countdown"] <= 30
    assert options["retries"] == 0


def test_a_first_target_that_fails_for_now_is_retried_as_a_delivery_task(
    worker: tuple[Celery, Runtime, list[tuple[str, dict[str, Any]]]],
    slack: FakeSlack,
) -> None:
    app, runtime, sent = worker
    slack.fail("chat.postMessage", status=503, times=10)
    app.tasks[NOTIFY_TASK].apply(args=[notification("#incidents"), "n-4"])
    ((name, options),) = sent
    assert name == DELIVER_TASK
    assert options["args"][1:] == ["n-4", "slack", "#incidents", False]
    assert options["retries"] == 1 and options["countdown"] > 0
    record = runtime.store.delivery("ext:n-4:slack:#incidents")
    assert record is not None and record.status == "pending" and record.attempts == 1


def test_a_first_target_given_up_is_kept_as_its_delivery_task_and_replays_alone(
    worker: tuple[Celery, Runtime, list[tuple[str, dict[str, Any]]]],
    slack: FakeSlack,
    redis_client: redis.Redis,
) -> None:
    app, runtime, sent = worker
    payload = notification("#no-such-channel", "#ops")
    app.tasks[NOTIFY_TASK].apply(args=[payload, "n-5"])
    (letter,) = runtime.store.dead_letters()
    assert letter.task_name == DELIVER_TASK
    assert letter.args == [payload, "n-5", "slack", "#no-such-channel"]
    assert letter.target == "slack/#no-such-channel" and letter.notification_id == "n-5"
    record = runtime.store.delivery("ext:n-5:slack:#no-such-channel")
    assert record is not None and record.status == "dead"
    # The other target was enqueued as usual; replaying the letter touches only its own target.
    assert [args[3] for _, args, _ in queued(redis_client, NOTIFICATIONS_QUEUE)] == ["#ops"]
    slack.add_channel("no-such-channel")
    # The failed attempt used the channel's send slot; a replay comes later than that.
    for key in redis_client.scan_iter("chatops:pace:*"):
        redis_client.delete(key)
    sent.clear()
    app.tasks[DELIVER_TASK].apply(args=letter.args, kwargs=letter.kwargs)
    assert len(slack.messages("no-such-channel")) == 1
    assert slack.messages("ops") == [] and sent == []
