"""Two beats at once (a rolling update starts the new one before the old one stops): every SLA
breach is still announced once. Real `chatops beat` processes, a real Celery worker running
their checks side by side, the store on PostgreSQL when ``CHATOPS_TEST_DATABASE_URL`` is set."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatops_core.models import Severity
from chatops_core.state import Action
from tests.e2e.stack import Stack, own_slack, slack_stack, wait_on
from tests.fakes.slack_server import FakeSlack

pytestmark = pytest.mark.e2e

SLA = """
[sla]
check_interval_seconds = 0.5
[sla.ack_minutes]
"SEV-3" = 0.05
"""
BEATS = ("beat-old", "beat-new")


slack = pytest.fixture(own_slack, name="slack")


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, database_url: str, slack: FakeSlack) -> Iterator[Stack]:
    running = slack_stack(
        tmp_path,
        redis_url,
        slack,
        database_url=database_url,
        extra_config=SLA,
        # Three worker processes: the two beats' checks run at the same time, as they would on a
        # maintenance pool. Celery's line for each task run (counted below) shows at DEBUG only.
        concurrency=3,
        extra_env={"CHATOPS_LOG_LEVEL": "DEBUG"},
    )
    yield running
    running.stop()


def sent_checks(stack: Stack, beat: str) -> int:
    """How many SLA checks ``beat`` has sent so far."""
    text = (stack.log_dir / f"{beat}.log").read_text()
    return text.count("Sending due task chatops-sla-check")


def checks_run(stack: Stack) -> int:
    text = (stack.log_dir / "worker.log").read_text()
    return len(re.findall(r"Task chatops\.sla_check\[[^\]]+\] succeeded", text))


def breach_posts(slack: FakeSlack, incident_id: str) -> list[str]:
    """The breach announcements of ``incident_id`` in #incidents (top level or in a thread)."""
    return [
        m["text"]
        for m in slack.messages("incidents")
        if "SLA" in m["text"] and re.search(rf"\b{incident_id}\b", m["text"])
    ]


def test_two_beats_announce_each_breach_once(stack: Stack, slack: FakeSlack, tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    store = stack.store()
    try:

        def declare(title: str, severity: Severity = Severity.SEV3) -> tuple[int, str]:
            incident = store.declare(
                title=title,
                severity=severity,
                actor="alice",
                platform="slack",
                instance="slack",
                channel="general",
                at=old,
            ).incident
            return incident.number, incident.id

        breached = [declare(f"Queue backlog {i}") for i in range(6)]
        acked_number, acked = declare("Cache misses")
        store.apply(acked_number, Action.ACK, actor="bob", platform="slack", channel="general", at=old)
        _, no_sla = declare("Slow search", Severity.SEV2)
    finally:
        store.close()

    # Both beats from the start, each with the data directory (and schedule file) of its own
    # machine, so their checks race from the first one on.
    for beat in BEATS:
        stack.start(
            beat,
            [sys.executable, "-m", "chatops_core.cli", "beat"],
            env={"CHATOPS_DATA_DIR": str(tmp_path / beat)},
        )

    wait_on(
        slack,
        stack,
        lambda: all(sent_checks(stack, b) for b in BEATS),
        "both beats to send checks",
        timeout=60,  # starting takes long on a busy machine
    )

    def all_announced() -> bool:
        return all(breach_posts(slack, inc) for _, inc in breached)

    wait_on(slack, stack, all_announced, "every breach announced", timeout=30)

    # One incident is resolved and reopened: a new unacknowledged period, which breaches
    # again 3 s later and is announced once more.
    reopened_number, reopened = breached[0]
    store = stack.store()
    try:
        now = datetime.now(UTC)
        store.apply(reopened_number, Action.RESOLVE, actor="bob", platform="slack", channel="general", at=now)
        store.apply(reopened_number, Action.REOPEN, actor="bob", platform="slack", channel="general", at=now)
    finally:
        store.close()
    wait_on(slack, stack, lambda: len(breach_posts(slack, reopened)) >= 2, "the second breach", timeout=30)

    # Both beats keep sending checks and the worker keeps running them; nothing more is said.
    sent = {beat: sent_checks(stack, beat) for beat in BEATS}
    ran = checks_run(stack)
    wait_on(
        slack,
        stack,
        lambda: all(sent_checks(stack, b) >= sent[b] + 4 for b in BEATS) and checks_run(stack) >= ran + 8,
        "both beats' checks to run several more times",
        timeout=30,
    )
    assert all(p.poll() is None for p in stack.processes.values()), stack.logs()
    for _, inc in breached[1:]:
        assert len(breach_posts(slack, inc)) == 1, (inc, breach_posts(slack, inc))
    assert len(breach_posts(slack, reopened)) == 2, breach_posts(slack, reopened)
    everything = " ".join(m["text"] for c in ("incidents", "major-incidents") for m in slack.messages(c))
    assert acked not in everything and no_sla not in everything
    # Each announcement was one delivery: the second beat's checks did not even enqueue one
    # that the delivery had to find already done.
    status, metrics = stack.get("/metrics")
    assert status == 200
    assert not re.search(rb'chatops_deliveries_total\{[^}]*outcome="duplicate"\} [1-9]', metrics), metrics
