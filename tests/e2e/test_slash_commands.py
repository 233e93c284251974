"""Slack slash commands end to end: real gunicorn ingress, real Celery worker, real Redis,
and the real slack_sdk talking HTTP to a local server that plays Slack."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.e2e.stack import Stack
from tests.fakes.slack_server import FakeSlack

pytestmark = pytest.mark.e2e

_names = itertools.count(1)


def run(stack: Stack, slack: FakeSlack, text: str, **kwargs: Any) -> dict[str, Any]:
    """Type a command; return the answer the bot posts on the response URL."""
    name = f"r{next(_names)}"
    status, body, _ = stack.slash(text, slack.response_url(name), **kwargs)
    assert status == 200, body
    try:
        return slack.wait_for(lambda: slack.responses(name), timeout=20)[0]
    except TimeoutError:
        raise AssertionError(f"no answer to {text!r}\n{stack.logs()}") from None


def declare(stack: Stack, slack: FakeSlack, text: str) -> int:
    answer = run(stack, slack, f"declare {text}")
    assert answer["response_type"] == "in_channel", answer
    words = answer["text"].split()
    assert words[0].startswith("INC-"), answer["text"]
    return int(words[0].removeprefix("INC-").rstrip(":"))


def posts_in(slack: FakeSlack, channel: str) -> list[str]:
    return [m["text"] for m in slack.messages(channel)]


def test_incident_whole_life(stack: Stack, slack: FakeSlack) -> None:
    number = declare(stack, slack, "sev2 Database timeouts")
    inc = f"INC-{number}"
    # Its own channel is created, named from id and title, with the declarer invited.
    channel = slack.wait_for(lambda: slack.channel(f"inc-{number}-database-timeouts"), timeout=20)
    assert "U100" in channel["members"]
    assert inc in channel["topic"]["value"]
    # SEV-2 routes to #major-incidents; the incident channel gets it too.
    slack.wait_for(lambda: [t for t in posts_in(slack, "major-incidents") if inc in t], timeout=20)
    slack.wait_for(lambda: [t for t in posts_in(slack, channel["id"]) if inc in t], timeout=20)

    steps = [
        (f"ack {inc}", "Acknowledged by alice"),
        (f"mitigate #{number} failed over to the replica", "Mitigated by alice: failed over to the replica"),
        (f"resolve {number} connection pool resized", "Resolved by alice: connection pool resized"),
        (f"close inc-{number}", "Closed by alice"),
    ]
    for text, expected in steps:
        answer = run(stack, slack, text)
        assert expected in answer["text"], answer
        assert answer["response_type"] == "in_channel"

    status = run(stack, slack, f"status {inc}")
    assert status["response_type"] == "ephemeral"
    rendered = str(status)
    assert "closed" in rendered
    order = [
        "Declared by alice",
        "Acknowledged by alice",
        "Mitigated by alice",
        "Resolved by alice",
        "Closed by alice",
    ]
    positions = [rendered.find(entry) for entry in order]
    assert all(p >= 0 for p in positions), rendered
    assert positions == sorted(positions), "timeline is not in order"

    # #major-incidents shows one card for the incident, updated in place through every change.
    def card() -> dict[str, Any] | None:
        cards = [m for m in slack.messages("major-incidents") if inc in m["text"]]
        assert len(cards) <= 1, f"more than one card: {cards}"
        return cards[0] if cards and "(closed)" in cards[0]["text"] else None

    final = slack.wait_for(card, timeout=30)
    updates = [
        str(c.params.get("text") or c.json)
        for c in slack.calls("chat.update")
        if c.ok and (c.params.get("ts") or (c.json or {}).get("ts")) == final["ts"]
    ]
    for state in ("(acknowledged)", "(mitigated)", "(resolved)", "(closed)"):
        assert any(state in text for text in updates), f"no update showed {state}: {updates}"


def test_id_may_be_left_out_inside_the_incident_channel(stack: Stack, slack: FakeSlack) -> None:
    number = declare(stack, slack, "p3 Checkout latency")
    channel = slack.wait_for(lambda: slack.channel(f"inc-{number}-checkout-latency"), timeout=20)
    answer = run(stack, slack, "ack", channel=channel["id"], channel_name=channel["name"], user_name="bob")
    assert f"INC-{number}" in answer["text"] and "Acknowledged by bob" in answer["text"]
    outside = run(stack, slack, "ack")
    assert outside["response_type"] == "ephemeral"
    assert "Say which incident: `/im ack INC-12" in outside["text"]


def test_list_with_filters(stack: Stack, slack: FakeSlack) -> None:
    critical = declare(stack, slack, "sev1 Payments down")
    minor = declare(stack, slack, "sev4 Typo on status page")
    run(stack, slack, f"resolve {minor} fixed")

    open_list = run(stack, slack, "list")
    assert open_list["response_type"] == "ephemeral"
    assert f"INC-{critical}" in open_list["text"]
    assert f"INC-{minor}" not in open_list["text"]

    all_sev4 = run(stack, slack, "list all sev4")
    assert f"INC-{minor}" in all_sev4["text"]
    assert f"INC-{critical}" not in all_sev4["text"]

    sev1 = run(stack, slack, "list SEV-1")
    assert f"INC-{critical}" in sev1["text"]
    # SEV-1 routes to #critical-incidents.
    slack.wait_for(
        lambda: [t for t in posts_in(slack, "critical-incidents") if f"INC-{critical}" in t], timeout=20
    )


def test_escalation_routes_to_the_new_severity(stack: Stack, slack: FakeSlack) -> None:
    number = declare(stack, slack, "Search is slow")
    inc = f"INC-{number}"
    slack.wait_for(lambda: [t for t in posts_in(slack, "incidents") if inc in t], timeout=20)
    assert not [t for t in posts_in(slack, "major-incidents") if inc in t]
    answer = run(stack, slack, f"escalate {inc}")
    assert "SEV-3 to SEV-2" in answer["text"]
    slack.wait_for(lambda: [t for t in posts_in(slack, "major-incidents") if inc in t], timeout=20)


def _state(stack: Stack, slack: FakeSlack, inc: str) -> str:
    return str(run(stack, slack, f"status {inc}"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("frobnicate INC-1", "help"),
        ("ack INC-99999", "no incident INC-99999"),
        ("close {inc}", "cannot be closed"),
        ("reopen {inc}", "cannot be reopened"),
        ("escalate {inc} sev4", "escalate"),
        ("assign {inc} nobody", "assign"),
        ("note {inc}", "note"),
        ("ack INC-0", "INC-12"),
    ],
)
def test_wrong_input_is_answered_and_changes_nothing(
    stack: Stack, slack: FakeSlack, text: str, expected: str
) -> None:
    number = declare(stack, slack, "sev3 Wrong input target")
    inc = f"INC-{number}"

    def about_inc() -> list[Any]:
        # New posts and in-place updates alike.
        return [
            c
            for c in slack.calls("chat.postMessage") + slack.calls("chat.update")
            if f"{inc}:" in str(c.params) or f"{inc} " in str(c.params)
        ]

    # The declare is announced in #incidents and in the incident's own channel.
    slack.wait_for(lambda: len(about_inc()) >= 2 or None, timeout=20)
    before = _state(stack, slack, inc)
    posted_before = len(about_inc())
    answer = run(stack, slack, text.format(inc=inc))
    assert answer["response_type"] == "ephemeral", answer
    assert expected.lower() in answer["text"].lower(), answer["text"]
    assert "`" in answer["text"], "the answer should show what to type"
    assert _state(stack, slack, inc) == before
    # A later change of another incident is announced; by then no post about this one came.
    other = declare(stack, slack, "sev3 Sentinel")
    slack.wait_for(lambda: [t for t in posts_in(slack, "incidents") if f"INC-{other}" in t], timeout=20)
    assert len(about_inc()) == posted_before
