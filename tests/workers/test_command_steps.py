"""Worker command handling in-process: each side effect once, however often a task runs.

Uses the real store (SQLite), the real Slack provider and slack_sdk against the local server
that plays Slack; the Celery publish is captured.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatops_core.access import AccessSettings, Role
from chatops_core.errors import RateLimited, Retryable, ServerError
from chatops_core.models import Actor, InboundCommand, Severity, Status, utcnow
from chatops_core.notifications import Announcement, Notification
from tests.fakes.slack_server import FakeSlack
from tests.workers.slack_runtime import slack_runtime
from workers.delivery import deliver, fan_out
from workers.retry import CAP_SECONDS, countdown
from workers.runtime import Runtime
from workers.tasks import run_command


@pytest.fixture
def runtime(tmp_path: Path, slack: FakeSlack) -> Iterator[Runtime]:
    rt = slack_runtime(tmp_path, slack, create_incident_channels=True, timeout=2)
    yield rt
    rt.store.close()


class Enqueued(list[tuple[str, list[Any]]]):
    def __call__(self, name: str, args: list[Any], **options: Any) -> None:
        self.append((name, args))


def inbound(slack: FakeSlack, text: str, key: str = "slack:slack:k1") -> InboundCommand:
    return InboundCommand(
        key=key,
        instance="slack",
        platform="slack",
        text=text,
        user=Actor(user_id="U100ALICE", user_name="alice"),
        channel_id="C0004",
        channel_name="general",
        reply_to={"response_url": slack.response_url(key.replace(":", "-"))},
    )


def test_a_redelivered_declare_acts_once(runtime: Runtime, slack: FakeSlack) -> None:
    cmd = inbound(slack, "declare sev2 Payments down")
    enqueued = Enqueued()
    provider = runtime.provider("slack")
    run_command(runtime, provider, cmd, enqueue=enqueued)
    run_command(runtime, provider, cmd, enqueue=enqueued)
    assert [i.id for i in runtime.store.list(active_only=False)] == ["INC-1"]
    assert len(slack.responses(cmd.key.replace(":", "-"))) == 1
    assert len(slack.calls("conversations.create")) == 1
    # One notification, through the same path as the incident system's.
    ((name, args),) = enqueued
    assert name == "chatops.notify"
    notification = Notification.model_validate(args[0])
    assert notification.type == "incident.created"
    assert notification.incident.channel_id == runtime.store.get(1).channel_id
    assert args[1] == f"cmd:{cmd.key}"


def test_a_failure_midway_is_finished_by_the_retry_without_repeating(
    runtime: Runtime, slack: FakeSlack
) -> None:
    cmd = inbound(slack, "declare sev1 Checkout errors", key="slack:slack:k2")
    enqueued = Enqueued()
    provider = runtime.provider("slack")
    slack.fail("response", times=5, status=503)
    with pytest.raises(ServerError):
        run_command(runtime, provider, cmd, enqueue=enqueued)
    # The incident, its channel and its announcement exist; only the answer is still owed.
    assert runtime.store.get(1).channel_id is not None
    assert [name for name, _ in enqueued] == ["chatops.notify"]
    run_command(runtime, provider, cmd, enqueue=enqueued)
    assert len(runtime.store.list(active_only=False)) == 1
    assert len(slack.calls("conversations.create")) == 1
    assert len(slack.responses(cmd.key.replace(":", "-"))) == 1
    assert [name for name, _ in enqueued] == ["chatops.notify"]


def test_wrong_input_answers_once_and_changes_nothing(runtime: Runtime, slack: FakeSlack) -> None:
    cmd = inbound(slack, "close INC-4", key="slack:slack:k3")
    enqueued = Enqueued()
    provider = runtime.provider("slack")
    run_command(runtime, provider, cmd, enqueue=enqueued)
    run_command(runtime, provider, cmd, enqueue=enqueued)
    answers = slack.responses(cmd.key.replace(":", "-"))
    assert len(answers) == 1 and "no incident INC-4" in answers[0]["text"]
    assert runtime.store.list(active_only=False) == [] and enqueued == []


def test_list_counts_in_plain_words(runtime: Runtime, slack: FakeSlack) -> None:
    provider = runtime.provider("slack")
    run_command(
        runtime,
        provider,
        inbound(slack, "declare sev2 Payments down", key="slack:slack:l1"),
        enqueue=Enqueued(),
    )

    def first_line(text: str, key: str) -> str:
        run_command(runtime, provider, inbound(slack, text, key=key), enqueue=Enqueued())
        return str(slack.responses(key.replace(":", "-"))[0]["text"]).splitlines()[0]

    assert first_line("list all", "slack:slack:l2") == "1 incident:"
    assert first_line("list", "slack:slack:l3") == "1 open incident:"
    run_command(
        runtime, provider, inbound(slack, "declare Disk filling up", key="slack:slack:l4"), enqueue=Enqueued()
    )
    assert first_line("list all", "slack:slack:l5") == "2 incidents:"
    assert first_line("list sev1", "slack:slack:l6") == "No open SEV-1 incidents."


def _declared(runtime: Runtime, slack: FakeSlack, key: str) -> Notification:
    enqueued = Enqueued()
    run_command(
        runtime,
        runtime.provider("slack"),
        inbound(slack, "declare Disk filling up", key=key),
        enqueue=enqueued,
    )
    return Notification.model_validate(enqueued[0][1][0])


def test_fan_out_is_one_delivery_per_target(runtime: Runtime, slack: FakeSlack) -> None:
    notification = _declared(runtime, slack, "k-fan")
    enqueued = Enqueued()
    assert fan_out(runtime, notification, "n1", enqueued) == 2
    targets = sorted(args[3] for _, args in enqueued)
    assert targets == sorted(["#incidents", runtime.store.get(1).channel_id])
    override = notification.model_copy(update={"channels": {"slack": ["#general", "#incidents"]}})
    enqueued.clear()
    fan_out(runtime, override, "n2", enqueued)
    assert sorted(args[3] for _, args in enqueued) == ["#general", "#incidents"]


def test_a_delivery_posts_once(runtime: Runtime, slack: FakeSlack) -> None:
    notification = _declared(runtime, slack, "k4")
    first = deliver(runtime, notification, "n4", "slack", "#incidents", slot_taken=True)
    second = deliver(runtime, notification, "n4", "slack", "#incidents", slot_taken=True)
    assert (first.outcome, second.outcome) == ("delivered", "duplicate")
    assert len(slack.messages("incidents")) == 1
    assert runtime.store.delivery("n4:slack:#incidents").status == "posted"


def test_an_attempt_after_a_lost_outcome_finds_the_earlier_post(runtime: Runtime, slack: FakeSlack) -> None:
    notification = _declared(runtime, slack, "k6")
    key = "n6:slack:#incidents"
    # An earlier attempt posted, then died before it could record that.
    runtime.store.begin_delivery(
        key, notification_id="n6", instance="slack", channel="#incidents", incident_ref="INC-1", version=1
    )
    runtime.provider("slack").announce("#incidents", Announcement.of(notification), key=key)
    result = deliver(runtime, notification, "n6", "slack", "#incidents", slot_taken=True)
    assert result.outcome == "duplicate"
    assert len(slack.messages("incidents")) == 1


def test_later_changes_update_the_card_and_older_ones_never_win(runtime: Runtime, slack: FakeSlack) -> None:
    created = _declared(runtime, slack, "k7")
    deliver(runtime, created, "c", "slack", "#incidents", slot_taken=True)
    inc = created.incident
    v3 = created.model_copy(
        update={
            "type": "incident.resolved",
            "incident": inc.model_copy(update={"status": Status.RESOLVED, "version": 3}),
        }
    )
    v2 = created.model_copy(
        update={
            "type": "incident.acknowledged",
            "incident": inc.model_copy(update={"status": Status.ACKNOWLEDGED, "version": 2}),
        }
    )
    assert deliver(runtime, v3, "r", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    assert deliver(runtime, v2, "a", "slack", "#incidents", slot_taken=True).outcome == "stale"
    (message,) = slack.messages("incidents")
    assert "resolved" in message["text"].lower() and message["edited"] == 1


def test_a_channel_the_bot_is_not_in_is_joined_once(runtime: Runtime, slack: FakeSlack) -> None:
    notification = _declared(runtime, slack, "k8")
    slack.require_membership = True
    assert deliver(runtime, notification, "n8", "slack", "#general", slot_taken=True).outcome == "delivered"
    assert len(slack.calls("conversations.join")) == 1
    assert len(slack.messages("general")) == 1


def test_a_rate_limited_delivery_raises_with_retry_after(runtime: Runtime, slack: FakeSlack) -> None:
    notification = _declared(runtime, slack, "k5")
    slack.fail("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(RateLimited) as info:
        deliver(runtime, notification, "n5", "slack", "#incidents", slot_taken=True)
    assert info.value.retry_after == 7
    assert countdown(info.value, attempt=3) == 7


@pytest.mark.parametrize("error", ["ratelimited", "rate_limited", "message_limit_exceeded"])
def test_rate_limit_errors_with_http_200_are_rate_limits(
    runtime: Runtime, slack: FakeSlack, error: str
) -> None:
    notification = _declared(runtime, slack, f"k-{error}")
    slack.fail("chat.postMessage", status=200, error=error)
    with pytest.raises(RateLimited):
        deliver(runtime, notification, f"n-{error}", "slack", "#incidents", slot_taken=True)


def test_backoff_grows_with_jitter_and_is_bounded() -> None:
    rng = random.Random(7)
    delays = [countdown(Retryable(), attempt, rng) for attempt in range(12)]
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(d <= CAP_SECONDS for d in delays)
    assert len({round(countdown(Retryable(), 5, rng), 6) for _ in range(20)}) > 1


def test_join_and_leave_the_incident_channel(runtime: Runtime, slack: FakeSlack) -> None:
    run_command(
        runtime,
        runtime.provider("slack"),
        inbound(slack, "declare Cert expiry", key="k-j0"),
        enqueue=Enqueued(),
    )
    channel_id = runtime.store.get(1).channel_id
    assert channel_id is not None
    bob = inbound(slack, "join INC-1", key="k-j1").model_copy(
        update={"user": Actor(user_id="U200BOB", user_name="bob")}
    )
    run_command(runtime, runtime.provider("slack"), bob, enqueue=Enqueued())
    assert "U200BOB" in slack.channel(channel_id)["members"]
    leave = bob.model_copy(update={"key": "k-j2", "text": "leave INC-1"})
    run_command(runtime, runtime.provider("slack"), leave, enqueue=Enqueued())
    assert "U200BOB" not in slack.channel(channel_id)["members"]
    kinds = [e.kind.value for e in runtime.store.timeline(1)]
    assert kinds[-2:] == ["joined", "left"]


def test_the_commander_is_brought_into_the_channel_and_close_archives_it(
    runtime: Runtime, slack: FakeSlack
) -> None:
    runtime.settings.providers["slack"].archive_on_close = True
    # Alice closes an incident Erin commands: that takes a manager.
    runtime.store.access = AccessSettings(roles={"slack:U100ALICE": Role.MANAGER})
    provider = runtime.provider("slack")
    run_command(runtime, provider, inbound(slack, "declare Queue stuck", key="k-a0"), enqueue=Enqueued())
    channel_id = runtime.store.get(1).channel_id
    assert channel_id is not None
    run_command(runtime, provider, inbound(slack, "assign INC-1 <@U500ERIN>", key="k-a1"), enqueue=Enqueued())
    assert "U500ERIN" in slack.channel(channel_id)["members"]
    for i, text in enumerate(["resolve INC-1 drained", "close INC-1"]):
        run_command(runtime, provider, inbound(slack, text, key=f"k-a{i + 2}"), enqueue=Enqueued())
    assert slack.channel(channel_id)["is_archived"] is True
    assert len(slack.calls("conversations.archive")) == 1


def test_a_channel_created_just_before_a_crash_is_reused(runtime: Runtime, slack: FakeSlack) -> None:
    provider = runtime.provider("slack")
    cmd = inbound(slack, "declare Billing lag", key="k-c0")
    # An earlier attempt declared, began and created the channel, then died before recording it.
    runtime.store.declare(
        title="Billing lag",
        severity=Severity.SEV3,
        actor="alice",
        platform="slack",
        instance="slack",
        channel="general",
        at=utcnow(),
        key=cmd.key,
    )
    runtime.store.mark_step(cmd.key, "channel-begun")
    provider.create_channel("inc-1-billing-lag")
    run_command(runtime, provider, cmd, enqueue=Enqueued())
    assert len(slack.calls("conversations.create")) == 1
    assert runtime.store.get(1).channel_name == "inc-1-billing-lag"


def test_a_created_notification_arriving_after_a_later_change_posts_no_second_card(
    runtime: Runtime, slack: FakeSlack
) -> None:
    created = _declared(runtime, slack, "k-late")
    inc = created.incident
    acked = created.model_copy(
        update={
            "type": "incident.acknowledged",
            "incident": inc.model_copy(update={"status": Status.ACKNOWLEDGED, "version": 3}),
        }
    )
    assert deliver(runtime, acked, "ack", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    assert deliver(runtime, created, "new", "slack", "#incidents", slot_taken=True).outcome == "stale"
    (message,) = slack.messages("incidents")
    assert "acknowledged" in message["text"].lower() and message["edited"] == 0


def test_a_commander_named_only_by_id_is_stored_by_the_name_slack_shows(
    runtime: Runtime, slack: FakeSlack
) -> None:
    # Slack sends a picked or typed mention as <@U…> without a name; other platforms and the
    # timeline must show the person's name, not their id.
    slack.add_user("U200BOB", name="Bob Builder")
    provider = runtime.provider("slack")
    run_command(
        runtime,
        provider,
        inbound(slack, "declare sev2 Payments down", key="slack:slack:n1"),
        enqueue=Enqueued(),
    )
    cmd = inbound(slack, "assign INC-1 <@U200BOB>", key="slack:slack:n2")
    run_command(runtime, provider, cmd, enqueue=Enqueued())
    incident = runtime.store.get(1)
    assert (incident.commander, incident.commander_instance, incident.commander_user_id) == (
        "Bob Builder",
        "slack",
        "U200BOB",
    )
