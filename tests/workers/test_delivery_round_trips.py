"""A delivery's bookkeeping in Redis: two round trips for a post, the platform's health
recorded in the second, which the delivery does not wait for; one after another, one round
trip each.

The lock, the send slot and the gap check are taken in one atomic round trip; the lock's
release carries the outcome's count and the provider's health, and goes out once the
delivery is recorded: with the process's next lock taking, else from its lock thread. The
real store (SQLite), the real Redis and slack_sdk against the local server that plays Slack.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from chatops_core.delivery_metrics import DeliveryCounter
from chatops_core.errors import ServerError
from chatops_core.notifications import Notification
from chatops_core.provider_health import ErrorKind, read_health
from tests.fakes.slack_server import FakeSlack
from tests.workers.slack_runtime import slack_runtime
from workers.delivery import SlotLater, deliver
from workers.locks import LockKeeper
from workers.runtime import Runtime


@pytest.fixture
def runtime(tmp_path: Path, slack: FakeSlack, redis_url: str, redis_client: redis.Redis) -> Iterator[Runtime]:
    rt = slack_runtime(tmp_path, slack, broker_url=redis_url, create_incident_channels=False)
    yield rt
    rt.store.close()


def created(number: int) -> Notification:
    return Notification.model_validate(
        {
            "type": "incident.created",
            "incident": {
                "id": f"INC-{number}",
                "title": "Checkout errors",
                "severity": "SEV-3",
                "status": "open",
                "created_at": datetime.now(UTC).isoformat(),
            },
        }
    )


def test_a_post_costs_two_round_trips_and_leaves_no_lock(
    runtime: Runtime, slack: FakeSlack, redis_client: redis.Redis, round_trips: list[int]
) -> None:
    deliver(runtime, created(1), "n-0", "slack", "#general", slot_taken=False)  # connections made
    assert runtime.locks is not None and runtime.locks.flush()
    round_trips.clear()
    result = deliver(runtime, created(2), "n-1", "slack", "#incidents", slot_taken=False)
    assert result.outcome == "delivered" and result.counted
    # The delivery itself waited for one round trip; the lock thread sends the release.
    assert len(round_trips) in (1, 2)
    assert runtime.locks.flush()
    assert len(round_trips) == 2
    assert not redis_client.keys("chatops:lock:*")
    assert DeliveryCounter(redis_client).totals()[("slack", "delivered")] == 2
    # A second post into the channel is paced: one round trip, no lock left, nothing posted.
    round_trips.clear()
    with pytest.raises(SlotLater):
        deliver(runtime, created(3), "n-2", "slack", "#incidents", slot_taken=False)
    assert len(round_trips) == 1
    assert not redis_client.keys("chatops:lock:*")
    assert len(slack.messages("incidents")) == 1


def test_deliveries_one_after_another_take_one_round_trip_each(
    runtime: Runtime, slack: FakeSlack, redis_client: redis.Redis, round_trips: list[int]
) -> None:
    # The lock thread waits far longer than these deliveries take.
    runtime.__dict__["locks"] = LockKeeper(redis_client, carry_wait=60.0)
    deliver(runtime, created(1), "n-0", "slack", "#general", slot_taken=False)  # connections made
    assert runtime.locks.flush()
    round_trips.clear()
    channels = ("incidents", "critical-incidents", "major-incidents")
    for number, channel in enumerate(channels, start=2):
        deliver(runtime, created(number), f"n-{number}", "slack", f"#{channel}", slot_taken=False)
    # Each took its lock and slot in one round trip, which released the lock before it with
    # its count; the last one's release is still waiting.
    assert len(round_trips) == 3
    assert redis_client.keys("chatops:lock:*") == [b"chatops:lock:ext:n-4:slack:#major-incidents"]
    assert runtime.locks.flush()
    assert not redis_client.keys("chatops:lock:*")
    assert DeliveryCounter(redis_client).totals()[("slack", "delivered")] == 4
    assert [len(slack.messages(name)) for name in channels] == [1, 1, 1]


def test_the_platforms_health_goes_out_with_the_lock_release(
    runtime: Runtime, slack: FakeSlack, redis_client: redis.Redis
) -> None:
    # Slack fails on its side, the client's own retries included: the delivery fails.
    slack.fail("chat.postMessage", times=3, status=503)
    with pytest.raises(ServerError):
        deliver(runtime, created(4), "n-4", "slack", "#incidents", slot_taken=False)
    assert runtime.locks is not None and runtime.locks.flush()
    health = read_health(redis_client)["slack"]
    assert health.consecutive_failures == 1 and health.failing
    assert health.last_error is not None and health.last_error.kind is ErrorKind.PLATFORM_DOWN
    assert health.last_success is None
    assert not redis_client.keys("chatops:lock:*")
    # Its retry, at its moment (the failed post's gap over), posts: the run of failures
    # ends, the last error is still there to read.
    redis_client.delete(*redis_client.keys("chatops:pace:sent:*"))
    deliver(runtime, created(4), "n-4", "slack", "#incidents", slot_taken=True)
    assert runtime.locks.flush()
    health = read_health(redis_client)["slack"]
    assert health.consecutive_failures == 0 and not health.failing
    assert health.last_success is not None and health.last_error_at is not None
    assert health.last_success >= health.last_error_at
    assert len(slack.messages("incidents")) == 1
