"""SLA breaches end to end: `chatops beat` schedules the check, a worker runs it, the
breach is announced once."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from chatops_core.models import Severity
from chatops_core.store import IncidentStore
from tests.e2e.stack import Stack, start_stack
from tests.fakes.slack_server import FakeSlack

pytestmark = pytest.mark.e2e

SLA = """
[sla]
check_interval_seconds = 0.5
[sla.ack_minutes]
"SEV-3" = 0.05
"""


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, slack: FakeSlack) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    running = start_stack(
        tmp_path, redis_url=redis_url, api_url=slack.api_url, token=slack.token, extra_config=SLA
    )
    running.start("beat", [sys.executable, "-m", "chatops_core.cli", "beat"])
    yield running
    running.stop()


def test_an_unacknowledged_incident_is_announced_once(stack: Stack, slack: FakeSlack) -> None:
    store = IncidentStore(stack.env["CHATOPS_DATABASE_URL"])
    try:
        old = datetime.now(UTC) - timedelta(minutes=10)
        breached = store.declare(
            title="Queue backlog",
            severity=Severity.SEV3,
            actor="alice",
            platform="slack",
            instance="slack",
            channel="general",
            at=old,
        ).incident
        acked = store.declare(
            title="Cache misses",
            severity=Severity.SEV3,
            actor="bob",
            platform="slack",
            instance="slack",
            channel="general",
            at=old,
        ).incident
        from chatops_core.state import Action

        store.apply(acked.number, Action.ACK, actor="bob", platform="slack", channel="general", at=old)
        no_sla = store.declare(
            title="Slow search",
            severity=Severity.SEV2,
            actor="carol",
            platform="slack",
            instance="slack",
            channel="general",
            at=old,
        ).incident
    finally:
        store.close()

    def breaches() -> list[str]:
        return [m["text"] for m in slack.messages("incidents") if "SLA" in m["text"]]

    slack.wait_for(breaches, timeout=30)

    # Let the check run several more times: the breach is still announced once.
    def checks_run() -> int:
        text = (stack.log_dir / "worker.log").read_text()
        return len(re.findall(r"Task chatops\.sla_check\[[^\]]+\] succeeded", text))

    seen = checks_run()
    slack.wait_for(lambda: checks_run() >= seen + 4 or None, timeout=30)
    (text,) = breaches()
    assert breached.id in text
    everything = " ".join(m["text"] for c in ("incidents", "major-incidents") for m in slack.messages(c))
    assert acked.id not in everything and no_sla.id not in everything
