"""Delivery in-process: when an earlier attempt's post is looked up, alerts that must reach
people, long notes, and incidents of the incident system beside incidents declared in chat.

Uses the real store (SQLite), the real Slack provider and slack_sdk against the local server
that plays Slack (including its refusals), and the delivery counts in the real Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from chatops_core.delivery_metrics import DeliveryCounter
from chatops_core.errors import ConnectionFailed, RateLimited
from chatops_core.models import Actor, InboundCommand, Severity, Status
from chatops_core.notifications import Notification
from chatops_core.pacing import Pacer
from tests.fakes.slack_server import FakeSlack
from tests.workers.slack_runtime import slack_runtime
from workers.delivery import deliver
from workers.runtime import Runtime
from workers.tasks import run_command


@pytest.fixture
def runtime(tmp_path: Path, slack: FakeSlack, redis_client: redis.Redis) -> Iterator[Runtime]:
    # Short, so a post whose answer never comes times out quickly.
    rt = slack_runtime(tmp_path, slack, create_incident_channels=False, timeout=0.5)
    # Outcomes are counted in the real Redis; no pacing or locks (each test posts a few times).
    rt.counter = DeliveryCounter(redis_client)
    yield rt
    rt.store.close()


class Enqueued(list[tuple[str, list[Any]]]):
    def __call__(self, name: str, args: list[Any], **options: Any) -> None:
        self.append((name, args))


def command(slack: FakeSlack, text: str, key: str) -> InboundCommand:
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


def run(runtime: Runtime, slack: FakeSlack, text: str, key: str) -> Notification:
    """Run a chat command; return the notification it hands to delivery."""
    enqueued = Enqueued()
    run_command(runtime, runtime.provider("slack"), command(slack, text, key), enqueue=enqueued)
    ((name, args),) = enqueued
    assert name == "chatops.notify"
    return Notification.model_validate(args[0])


def external(type_: str = "incident.created", **incident: Any) -> Notification:
    values: dict[str, Any] = {
        "id": "INC-1",
        "title": "Payments API errors",
        "severity": "SEV-3",
        "status": "open",
        "created_at": datetime(2026, 11, 26, 10, 0, tzinfo=UTC).isoformat(),
    }
    values.update(incident)
    return Notification.model_validate({"type": type_, "incident": values})


def counted(redis_client: redis.Redis, outcome: str) -> int:
    return DeliveryCounter(redis_client).totals().get(("slack", outcome), 0)


def top_level(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]


def replies(slack: FakeSlack, channel: str, ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("thread_ts") == ts and m["ts"] != ts]


# --- looking for an earlier attempt's post --------------------------------------------------


def test_a_retry_after_a_refusal_posts_without_reading_the_history(
    runtime: Runtime, slack: FakeSlack
) -> None:
    """A 429 says "not posted": the retry needs no history, which this bot may not read."""
    created = run(runtime, slack, "declare sev3 Disk filling up", "k1")
    slack.fail("conversations.history", times=5, status=200, error="missing_scope")
    slack.fail("chat.postMessage", status=429, retry_after=1)
    with pytest.raises(RateLimited):
        deliver(runtime, created, "n1", "slack", "#incidents", slot_taken=True)
    assert deliver(runtime, created, "n1", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    assert len(slack.messages("incidents")) == 1
    assert slack.calls("conversations.history") == []
    record = runtime.store.delivery("n1:slack:#incidents")
    assert record is not None and (record.status, record.outcome_unknown) == ("posted", False)


def test_a_post_whose_answer_never_came_is_found_not_posted_again(runtime: Runtime, slack: FakeSlack) -> None:
    created = run(runtime, slack, "declare sev3 Disk filling up", "k2")
    slack.hold("chat.postMessage", after=True)  # Slack posts it; the answer is lost
    try:
        with pytest.raises(ConnectionFailed):
            deliver(runtime, created, "n2", "slack", "#incidents", slot_taken=True)
    finally:
        slack.release()
    record = runtime.store.delivery("n2:slack:#incidents")
    assert record is not None and record.outcome_unknown is True
    assert record.last_error is not None and record.last_error.startswith("connection_failed")
    assert deliver(runtime, created, "n2", "slack", "#incidents", slot_taken=True).outcome == "duplicate"
    assert len(slack.messages("incidents")) == 1
    assert len(slack.calls("conversations.history")) == 1


def test_a_lookup_that_is_refused_falls_back_to_posting_counted_and_logged(
    runtime: Runtime, slack: FakeSlack, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    created = run(runtime, slack, "declare sev3 Disk filling up", "k3")
    slack.hold("chat.postMessage", after=False)  # the request never reaches Slack
    try:
        with pytest.raises(ConnectionFailed):
            deliver(runtime, created, "n3", "slack", "#incidents", slot_taken=True)
    finally:
        slack.release(drop=True)
    slack.fail("conversations.history", times=5, status=200, error="missing_scope")
    with caplog.at_level(logging.INFO, logger="chatops.delivery"):
        assert deliver(runtime, created, "n3", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    assert len(slack.messages("incidents")) == 1
    assert counted(redis_client, "unverified") == 1
    (line,) = [r.getMessage() for r in caplog.records if '"event":"unverified"' in r.getMessage()]
    assert '"notification_id":"n3"' in line and '"target":"slack/#incidents"' in line
    assert "missing_scope" in line


# --- alerts: SLA breaches and escalations ---------------------------------------------------


def breach(created: Notification) -> Notification:
    return created.model_copy(
        update={"type": "incident.sla_breach", "summary": "Not acknowledged within 60 min (SLA for SEV-3)"}
    )


def test_a_breach_of_an_incident_already_shown_reaches_the_channel_in_the_cards_thread(
    runtime: Runtime, slack: FakeSlack
) -> None:
    created = run(runtime, slack, "declare sev3 Disk filling up", "k4")
    assert deliver(runtime, created, "c4", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    (card,) = slack.messages("incidents")
    # Same version as the card: the card stays, the breach is still said.
    assert (
        deliver(runtime, breach(created), "b4", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    )
    (alert,) = replies(slack, "incidents", card["ts"])
    assert "SLA" in alert["text"] and "INC-1" in alert["text"] and "Disk filling up" in alert["text"]
    (post,) = [c for c in slack.calls("chat.postMessage") if c.params.get("thread_ts")]
    assert post.params["thread_ts"] == card["ts"] and post.params["reply_broadcast"] in (True, "true", "1")
    (shown,) = top_level(slack, "incidents")
    assert shown["ts"] == card["ts"] and shown["edited"] == 0
    # Exactly once: the same delivery again posts nothing.
    assert (
        deliver(runtime, breach(created), "b4", "slack", "#incidents", slot_taken=True).outcome == "duplicate"
    )
    assert len(replies(slack, "incidents", card["ts"])) == 1


def test_an_escalation_updates_the_card_and_is_alerted_in_its_thread(
    runtime: Runtime, slack: FakeSlack
) -> None:
    created = run(runtime, slack, "declare sev3 Disk filling up", "k5")
    deliver(runtime, created, "c5", "slack", "#incidents", slot_taken=True)
    (card,) = slack.messages("incidents")
    escalated = created.model_copy(
        update={
            "type": "incident.escalated",
            "incident": created.incident.model_copy(update={"severity": Severity.SEV2, "version": 2}),
            "summary": "Severity raised to SEV-2 by alice",
        }
    )
    assert deliver(runtime, escalated, "e5", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    (shown,) = top_level(slack, "incidents")
    assert shown["edited"] == 1 and "SEV-2" in shown["text"]
    (alert,) = replies(slack, "incidents", card["ts"])
    assert "SEV-2" in alert["text"] and "escalated" in alert["text"].lower()


def test_an_alert_whose_answer_was_lost_is_found_in_the_thread(runtime: Runtime, slack: FakeSlack) -> None:
    created = run(runtime, slack, "declare sev3 Disk filling up", "k6")
    deliver(runtime, created, "c6", "slack", "#incidents", slot_taken=True)
    (card,) = slack.messages("incidents")
    slack.hold("chat.postMessage", after=True)
    try:
        with pytest.raises(ConnectionFailed):
            deliver(runtime, breach(created), "b6", "slack", "#incidents", slot_taken=True)
    finally:
        slack.release()
    deliver(runtime, breach(created), "b6", "slack", "#incidents", slot_taken=True)
    assert len(replies(slack, "incidents", card["ts"])) == 1
    assert len(slack.calls("chat.postMessage")) == 2  # the card, and the alert once


def test_an_alert_where_the_incident_has_no_card_yet_posts_the_card(
    runtime: Runtime, slack: FakeSlack
) -> None:
    created = run(runtime, slack, "declare sev3 Disk filling up", "k7")
    assert (
        deliver(runtime, breach(created), "b7", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    )
    (card,) = slack.messages("incidents")
    assert "SLA" in card["text"] and not card.get("thread_ts")


# --- long notes -----------------------------------------------------------------------------


def test_a_long_note_is_announced_cut_with_an_ellipsis(runtime: Runtime, slack: FakeSlack) -> None:
    created = run(runtime, slack, "declare sev3 Disk filling up", "k8")
    deliver(runtime, created, "c8", "slack", "#incidents", slot_taken=True)
    note = "Failed over to the replica. " + "x" * 2500
    mitigated = run(runtime, slack, f"mitigate INC-1 {note}", "k9")
    assert runtime.store.get(1).status is Status.MITIGATED
    # The notification also survives a trip through the broker (and a replay).
    again = Notification.model_validate(mitigated.model_dump(mode="json"))
    assert deliver(runtime, again, "m8", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    (card,) = slack.messages("incidents")
    assert card["edited"] == 1 and "Failed over to the replica." in card["text"]
    shown = " ".join(b["text"]["text"] for b in card["blocks"] if b["type"] == "section" and "text" in b)
    assert "Failed over to the replica. xxx" in shown and "…" in shown
    assert "x" * 2500 not in shown


# --- incidents of the incident system beside incidents declared in chat ---------------------


def test_a_chat_incident_and_an_external_one_with_the_same_id_get_two_cards(
    runtime: Runtime, slack: FakeSlack
) -> None:
    ours = run(runtime, slack, "declare sev3 Disk filling up", "k10")
    theirs = external(title="Payments API errors")
    assert ours.incident.id == theirs.incident.id == "INC-1"
    deliver(runtime, ours, "ours-1", "slack", "#incidents", slot_taken=True)
    assert deliver(runtime, theirs, "theirs-1", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    ours_card, theirs_card = slack.messages("incidents")
    assert "Disk filling up" in ours_card["text"] and "Payments API errors" in theirs_card["text"]
    # Commands act on incidents declared in chat: only their card carries the buttons (a click
    # on the other would act on our INC-1).
    assert "actions" in [b["type"] for b in ours_card["blocks"]]
    assert "actions" not in [b["type"] for b in theirs_card["blocks"]]

    # An update of either changes its own card only.
    acked = run(runtime, slack, "ack INC-1", "k11")
    deliver(runtime, acked, "ours-2", "slack", "#incidents", slot_taken=True)
    resolved = external("incident.resolved", title="Payments API errors", status="resolved", version=5)
    deliver(runtime, resolved, "theirs-2", "slack", "#incidents", slot_taken=True)
    ours_card, theirs_card = slack.messages("incidents")
    assert "Disk filling up" in ours_card["text"] and "acknowledged" in ours_card["text"].lower()
    assert "Payments API errors" in theirs_card["text"] and "resolved" in theirs_card["text"].lower()
    assert (ours_card["edited"], theirs_card["edited"]) == (1, 1)


def test_an_alert_waits_for_the_update_slot_without_posting_again(
    runtime: Runtime, slack: FakeSlack, redis_client: redis.Redis, redis_url: str
) -> None:
    from workers.delivery import SlotLater

    runtime.pacer = Pacer(redis.Redis.from_url(redis_url))
    created = run(runtime, slack, "declare sev3 Disk filling up", "k12")
    deliver(runtime, created, "c12", "slack", "#incidents", slot_taken=True)
    (card,) = slack.messages("incidents")
    # Posts into the channel may go on; the workspace's next card update is seconds away.
    redis_client.delete(*redis_client.keys("chatops:pace:sent:*"))
    runtime.pacer.reserve("slack:update", 30.0)
    escalated = created.model_copy(
        update={
            "type": "incident.escalated",
            "incident": created.incident.model_copy(update={"severity": Severity.SEV2, "version": 2}),
        }
    )
    with pytest.raises(SlotLater):
        deliver(runtime, escalated, "e12", "slack", "#incidents", slot_taken=True)
    assert len(replies(slack, "incidents", card["ts"])) == 1
    assert top_level(slack, "incidents")[0]["edited"] == 0
    # The run at the update's slot only updates the card.
    assert deliver(runtime, escalated, "e12", "slack", "#incidents", slot_taken=True).outcome == "delivered"
    assert len(replies(slack, "incidents", card["ts"])) == 1
    assert top_level(slack, "incidents")[0]["edited"] == 1
