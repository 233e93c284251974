"""The ledger of sent task messages (workers.redis_transport) against a real Redis: every push
is recorded with it, acknowledging forgets it, and the sweep brings back exactly the messages
that are in neither their queue nor the unacknowledged set (a worker took them off the queue
and died before noting them), once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection
from kombu.simple import SimpleQueue

from chatops_core.publisher import TaskPublisher
from chatops_core.settings import Settings
from chatops_core.tasks import MAINTENANCE_QUEUE, NOTIFICATIONS_QUEUE, NOTIFY_TASK, SENT_SWEEP_TASK
from workers.celery_app import make_celery
from workers.maintenance import beat_schedule
from workers.redis_transport import (
    SENT_INDEX_KEY,
    SENT_KEY,
    SENT_MISSING_KEY,
    UNACKED_KEY,
    Sweep,
    Transport,
    sent_entry,
    sweep_sent,
)
from workers.runtime import Runtime

QUEUE = NOTIFICATIONS_QUEUE


def sweep(client: redis.Redis, **options: Any) -> Sweep:
    """A sweep that looks at every entry at once and pushes back what it found missing the
    time before (the production thresholds are minutes)."""
    return sweep_sent(client, **{"older_than": 0, "confirm_after": 0, "lock_for": 0, **options})


def text(raw: Any) -> str:
    assert isinstance(raw, bytes), raw
    return raw.decode()


def ledger(client: redis.Redis) -> dict[str, tuple[str, str]]:
    """Tag -> (list, envelope) of every ledger entry; the index must hold the same tags."""
    entries = {}
    for tag, value in client.hgetall(SENT_KEY).items():
        _, queue, envelope = text(value).split("\n", 2)
        entries[text(tag)] = (queue, envelope)
    assert {text(t) for t in client.zrange(SENT_INDEX_KEY, 0, -1)} == set(entries)
    return entries


def queued(client: redis.Redis) -> list[str]:
    return [text(raw) for raw in client.lrange(QUEUE, 0, -1)]


@pytest.fixture
def publisher(redis_url: str, redis_client: redis.Redis) -> Iterator[TaskPublisher]:
    pub = TaskPublisher(redis_url)
    yield pub
    pub.close()


@pytest.fixture
def worker_queue(redis_url: str, redis_client: redis.Redis) -> Iterator[SimpleQueue]:
    """The queue as a worker's kombu connection (the service's transport: workers set it for
    redis:// URLs with ``use_for_redis_urls``) sees it."""
    with Connection(redis_url, transport=Transport, transport_options={"visibility_timeout": 3600}) as conn:
        assert type(conn.transport).__module__ == "workers.redis_transport"
        with conn.SimpleQueue(QUEUE) as queue:
            yield queue


def test_every_push_is_recorded_with_the_envelope_pushed(
    publisher: TaskPublisher, worker_queue: SimpleQueue, redis_client: redis.Redis
) -> None:
    sent = publisher.send(NOTIFY_TASK, [{"n": 1}, "key-1"], queue=QUEUE)
    once, _ = publisher.send_once(NOTIFY_TASK, [{"n": 2}, "key-2"], queue=QUEUE, idempotency_key="k2")
    deduped = publisher.send(NOTIFY_TASK, [{"n": 3}, "key-3"], queue=QUEUE, dedupe_key="d3")
    admitted = publisher.admit(NOTIFY_TASK, [{"n": 4}], queue=QUEUE, sender=("slack", "U1"))
    assert admitted.outcome == "enqueued"
    worker_queue.put({"n": 5}, headers={"task": NOTIFY_TASK})  # as a worker publishes: kombu's producer
    worker_queue.put({"reply": 1})  # not a task (a remote-control reply): read unacknowledged, not recorded

    entries = ledger(redis_client)
    assert len(entries) == 5 and {sent, once, deduped} <= set(entries)
    # Each entry names its list and holds the very text on it, tagged as kombu will ack it.
    reply = queued(redis_client)[0]
    assert sorted(e for _, e in entries.values()) == sorted(queued(redis_client)[1:])
    for tag, (queue, envelope) in entries.items():
        assert queue == QUEUE
        assert json.loads(envelope)["properties"]["delivery_tag"] == tag

    # Taking and acknowledging a message forgets it.
    for _ in range(5):
        worker_queue.get(timeout=5).ack()
    assert ledger(redis_client) == {} and redis_client.hlen(UNACKED_KEY) == 0
    assert queued(redis_client) == [reply]


def test_an_odd_task_id_is_recorded_under_the_tag_kombu_acks(
    publisher: TaskPublisher, worker_queue: SimpleQueue, redis_client: redis.Redis
) -> None:
    odd = 'id "quoted" \\ and ' + "long " * 80
    publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE, task_id=odd)
    assert set(ledger(redis_client)) == {odd}
    message = worker_queue.get(timeout=5)
    assert message.delivery_tag == odd
    message.ack()
    assert ledger(redis_client) == {}


def test_a_message_still_queued_is_not_restored(publisher: TaskPublisher, redis_client: redis.Redis) -> None:
    publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    for _ in range(3):
        assert sweep(redis_client).restored == []
    assert len(queued(redis_client)) == 1
    assert redis_client.zcard(SENT_MISSING_KEY) == 0


def test_a_message_a_worker_holds_is_not_restored(
    publisher: TaskPublisher, worker_queue: SimpleQueue, redis_client: redis.Redis
) -> None:
    publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    message = worker_queue.get(timeout=5)
    for _ in range(3):
        assert sweep(redis_client).restored == []
    assert queued(redis_client) == [] and redis_client.hlen(UNACKED_KEY) == 1
    message.ack()
    assert ledger(redis_client) == {}


def test_a_lost_message_is_restored_once_as_it_was_sent(
    publisher: TaskPublisher, worker_queue: SimpleQueue, redis_client: redis.Redis
) -> None:
    tid = publisher.send(NOTIFY_TASK, [{"n": 1}, "k"], queue=QUEUE)
    (envelope,) = queued(redis_client)
    # A worker's BRPOP took it, and the worker died before noting it as unacknowledged.
    assert redis_client.rpop(QUEUE) is not None
    assert redis_client.hlen(UNACKED_KEY) == 0

    # The first sweep finds it missing; only a later one (it may have been a live worker's
    # moment between taking and noting) puts it back, byte for byte.
    assert sweep(redis_client).restored == []
    assert sweep(redis_client).restored == [tid]
    assert queued(redis_client) == [envelope]
    for _ in range(3):
        assert sweep(redis_client).restored == []
    assert queued(redis_client) == [envelope]

    # A worker runs it and acknowledges it: nothing is left.
    message = worker_queue.get(timeout=5)
    assert message.delivery_tag == tid
    message.ack()
    assert ledger(redis_client) == {} and redis_client.zcard(SENT_MISSING_KEY) == 0


def test_a_message_missing_only_while_a_worker_takes_it_is_not_restored(
    publisher: TaskPublisher, redis_client: redis.Redis
) -> None:
    tid = publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    raw = redis_client.rpop(QUEUE)
    assert sweep(redis_client).missing == 1
    # The worker notes it, as kombu does, before the next sweep.
    redis_client.hset(UNACKED_KEY, tid, json.dumps([text(raw), "", QUEUE]))
    assert sweep(redis_client).restored == []
    assert sweep(redis_client).restored == []
    assert queued(redis_client) == [] and redis_client.zcard(SENT_MISSING_KEY) == 0


def test_the_sweep_waits_for_the_thresholds(publisher: TaskPublisher, redis_client: redis.Redis) -> None:
    publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    redis_client.rpop(QUEUE)
    # Queued a moment ago: not looked at before `older_than`.
    assert sweep(redis_client, older_than=60) == Sweep(looked_at=0)
    assert sweep(redis_client).missing == 1
    # Missing a moment ago: not pushed back before `confirm_after`.
    assert sweep(redis_client, confirm_after=60).restored == []
    assert len(sweep(redis_client).restored) == 1


def test_two_sweepers_restore_a_lost_message_once(
    publisher: TaskPublisher, redis_client: redis.Redis
) -> None:
    publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    redis_client.rpop(QUEUE)
    sweep(redis_client)
    restored: list[str] = []
    start = threading.Barrier(2)

    def sweeper() -> None:
        start.wait()
        for _ in range(20):
            restored.extend(sweep(redis_client).restored)

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(restored) == 1 and len(queued(redis_client)) == 1


def test_the_lock_keeps_a_second_sweep_out(publisher: TaskPublisher, redis_client: redis.Redis) -> None:
    publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    redis_client.rpop(QUEUE)
    assert sweep(redis_client, lock_for=30).missing == 1
    assert sweep(redis_client, lock_for=30) == Sweep(skipped=True)
    assert queued(redis_client) == []


def test_a_message_kombu_gives_back_stays_in_step(
    publisher: TaskPublisher, redis_url: str, redis_client: redis.Redis
) -> None:
    """A worker's held message goes back on its queue (its connection closes; the same path as
    the visibility timeout's restore), marked redelivered: the ledger holds the new text, so
    the sweep finds it queued."""
    tid = publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    with Connection(redis_url, transport=Transport) as conn, conn.SimpleQueue(QUEUE) as queue:
        held = queue.get(timeout=5)
        assert held.delivery_tag == tid
    (envelope,) = queued(redis_client)
    assert json.loads(envelope)["properties"]["delivery_info"]["redelivered"] is True
    assert ledger(redis_client) == {tid: (QUEUE, envelope)}
    for _ in range(3):
        assert sweep(redis_client).restored == []
    assert queued(redis_client) == [envelope]


def test_a_rejected_or_purged_message_is_forgotten(
    publisher: TaskPublisher, worker_queue: SimpleQueue, redis_client: redis.Redis
) -> None:
    publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    worker_queue.get(timeout=5).reject()
    assert ledger(redis_client) == {}

    publisher.send(NOTIFY_TASK, [{}, "k2"], queue=QUEUE)
    assert worker_queue.clear() == 1
    assert ledger(redis_client) == {}
    for _ in range(2):
        assert sweep(redis_client).restored == []
    assert queued(redis_client) == []


def test_entries_older_than_a_day_are_dropped(redis_client: redis.Redis) -> None:
    day_ago = time.time() - 86_401
    redis_client.hset(SENT_KEY, "old", sent_entry(day_ago, QUEUE, "{}"))
    redis_client.zadd(SENT_INDEX_KEY, {"old": day_ago})
    assert sweep(redis_client) == Sweep(looked_at=1, dropped=1)
    assert redis_client.exists(SENT_KEY, SENT_INDEX_KEY) == 0 and queued(redis_client) == []


def test_the_maintenance_worker_sweeps_on_schedule(
    tmp_path: Path, redis_url: str, publisher: TaskPublisher, redis_client: redis.Redis
) -> None:
    settings = Settings(
        data_dir=tmp_path, broker_url=redis_url, visibility_timeout_seconds=300, sent_sweep_seconds=1
    )
    assert beat_schedule(settings)["chatops-sent-sweep"] == {
        "task": SENT_SWEEP_TASK,
        "schedule": 1,
        "options": {"queue": MAINTENANCE_QUEUE, "expires": 1},
    }
    runtime = Runtime(settings)
    runtime.store.upgrade()
    app = make_celery(settings, runtime)
    assert app.conf.task_routes[SENT_SWEEP_TASK] == {"queue": MAINTENANCE_QUEUE}
    task = app.tasks[SENT_SWEEP_TASK]

    tid = publisher.send(NOTIFY_TASK, [{}, "k"], queue=QUEUE)
    assert tid is not None
    redis_client.rpop(QUEUE)
    # Lost a moment ago: within the visibility timeout and a sweep interval nothing is done.
    assert task.run() == 0
    assert redis_client.zcard(SENT_MISSING_KEY) == 0
    # Sent six minutes ago: found missing by one sweep, put back by a later one (sweeps at
    # least half an interval apart: the lock keeps the others out).
    redis_client.zadd(SENT_INDEX_KEY, {tid: time.time() - 360})
    started = time.monotonic()
    restored = 0
    while not restored and time.monotonic() < started + 5:
        restored = task.run()
        time.sleep(0.05)
    assert restored == 1 and time.monotonic() - started >= 0.5
    assert len(queued(redis_client)) == 1
