"""Delivery takes its send slots by the provider's pacing policy, on the real shared pacer.

A recording provider with a chosen :class:`~chatops_core.pacing.PacingPolicy` stands in for a
platform; the pacer and locks are the real ones on Redis, the store the real one on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from chatops_core.errors import RateLimited
from chatops_core.notifications import Notification
from chatops_core.pacing import PacingPolicy
from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.pacing import SlackPacing
from tests.fakes.recording_provider import RecordingProvider
from tests.fakes.recording_runtime import recording_runtime
from workers.delivery import SlotLater, deliver, hold_off
from workers.runtime import Runtime


@dataclass(frozen=True)
class PerInstanceUpdates(PacingPolicy):
    """Posts keyed ``<instance>:p:<channel>``; updates share one key per instance."""

    def post_key(self, instance: str, channel: str) -> str:
        return f"{instance}:p:{channel}"

    def update_key(self, instance: str, channel: str) -> str:
        return f"{instance}:u"


SLOW = PacingPolicy(post_interval=30.0, update_interval=20.0, post_gap=0.0)
SLOW_PER_INSTANCE = PerInstanceUpdates(post_interval=30.0, update_interval=20.0, post_gap=0.0)


class PacedProvider(RecordingProvider):
    """A recording provider that paces by ``policy``."""

    policy: PacingPolicy = SLOW

    @property
    def pacing(self) -> PacingPolicy:
        return self.policy


def notification(incident_id: str, type_: str = "incident.created", **incident: Any) -> Notification:
    values: dict[str, Any] = {
        "id": incident_id,
        "title": "Payments API errors",
        "severity": "SEV-3",
        "status": "open",
        "created_at": datetime(2026, 11, 26, 10, 0, tzinfo=UTC).isoformat(),
    }
    values.update(incident)
    return Notification.model_validate({"type": type_, "incident": values})


@pytest.fixture
def make_runtime(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[Any]:
    made: list[Runtime] = []

    def make(policy: PacingPolicy) -> tuple[Runtime, PacedProvider]:
        provider = PacedProvider("rec")
        provider.policy = policy
        runtime = recording_runtime(tmp_path, provider, broker_url=redis_url)
        made.append(runtime)
        return runtime, provider

    yield make
    for runtime in made:
        runtime.store.close()


def send(runtime: Runtime, note: Notification, notification_id: str, channel: str) -> str:
    return deliver(runtime, note, notification_id, "rec", channel, slot_taken=False).outcome


def test_posts_into_one_channel_wait_the_policys_post_interval(
    make_runtime: Any, redis_client: redis.Redis
) -> None:
    runtime, provider = make_runtime(SLOW_PER_INSTANCE)
    assert send(runtime, notification("INC-1"), "n1", "#incidents") == "delivered"
    with pytest.raises(SlotLater) as later:
        send(runtime, notification("INC-2"), "n2", "#incidents")
    assert later.value.countdown == pytest.approx(30, abs=1)
    # Another channel has slots of its own.
    assert send(runtime, notification("INC-3"), "n3", "#general") == "delivered"
    assert len(provider.calls("announce", ok=True)) == 2
    # The pace keys are the policy's, and carry the channel alias as routed.
    keys = sorted(k.decode() for k in redis_client.scan_iter("chatops:pace:*"))
    assert "chatops:pace:rec:p:#incidents" in keys and "chatops:pace:rec:p:#general" in keys
    assert not [k for k in keys if ":post:" in k]


@pytest.mark.parametrize(
    ("policy", "second_update"),
    [(SLOW, "delivered"), (SLOW_PER_INSTANCE, "later")],
    ids=["updates-per-channel", "updates-per-instance"],
)
def test_card_updates_share_the_policys_update_key(
    make_runtime: Any, policy: PacingPolicy, second_update: str
) -> None:
    runtime, provider = make_runtime(policy)
    assert send(runtime, notification("INC-1"), "n1", "#incidents") == "delivered"
    assert send(runtime, notification("INC-2"), "n2", "#general") == "delivered"
    acked = {"status": "acknowledged"}
    assert send(runtime, notification("INC-1", "incident.acknowledged", **acked), "n3", "#incidents") == (
        "delivered"
    )
    try:
        outcome = send(runtime, notification("INC-2", "incident.acknowledged", **acked), "n4", "#general")
    except SlotLater as later:
        assert later.countdown == pytest.approx(20, abs=1)
        outcome = "later"
    assert outcome == second_update
    assert len(provider.calls("update_announcement", ok=True)) == (2 if second_update == "delivered" else 1)


def test_a_rate_limit_holds_off_the_policys_post_key(make_runtime: Any) -> None:
    runtime, _ = make_runtime(PerInstanceUpdates(post_interval=0.0, update_interval=0.0, post_gap=0.0))
    assert send(runtime, notification("INC-1"), "n1", "#incidents") == "delivered"
    hold_off(runtime, "rec", "#incidents", RateLimited("slow down", retry_after=40))
    with pytest.raises(SlotLater) as later:
        send(runtime, notification("INC-2"), "n2", "#incidents")
    assert later.value.countdown == pytest.approx(40, abs=1)
    assert send(runtime, notification("INC-3"), "n3", "#general") == "delivered"


def test_slack_paces_posts_per_channel_and_updates_per_workspace() -> None:
    provider = SlackProvider("acme", SlackSettings(bot_token="xoxb-1", signing_secret="s"))
    pacing = provider.pacing
    assert isinstance(pacing, SlackPacing)
    assert (pacing.post_interval, pacing.update_interval, pacing.post_gap) == (1.05, 1.2, 1.02)
    assert pacing.post_key("acme", "#incidents") == "acme:post:#incidents"
    assert pacing.update_key("acme", "#incidents") == pacing.update_key("acme", "C0123") == "acme:update"
    # A platform that says nothing more paces updates per channel.
    default = PacingPolicy()
    assert default.update_key("acme", "#incidents") != default.update_key("acme", "#general")
