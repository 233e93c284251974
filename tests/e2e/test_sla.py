"""SLA breaches end to end: `chatops beat` schedules the check, a worker runs it, the
breach is announced once."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatops_core.models import Severity
from chatops_core.store import IncidentStore
from tests.e2e.stack import Stack, own_slack, slack_stack
from tests.fakes.slack_server import FakeSlack

pytestmark = pytest.mark.e2e

SLA = """
[sla]
check_interval_seconds = 0.5
[sla.ack_minutes]
"SEV-3" = 0.05
"""


slack = pytest.fixture(own_slack, name="slack")


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, slack: FakeSlack) -> Iterator[Stack]:
    running = slack_stack(
        tmp_path,
        redis_url,
        slack,
        extra_config=SLA,
        # Celery's own line for each task run (counted below) shows at DEBUG only.
        extra_env={"CHATOPS_LOG_LEVEL": "DEBUG"},
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


def test_a_breach_of_an_incident_whose_card_is_shown_is_said_in_the_cards_thread(
    stack: Stack, slack: FakeSlack, redis_url: str
) -> None:
    """The card already shows the incident's latest version; the breach still reaches the
    channel once, as a reply in the card's thread sent to the channel too."""
    from chatops_core.notifications import IncidentSnapshot, Notification
    from chatops_core.publisher import TaskPublisher
    from chatops_core.state import Action
    from chatops_core.tasks import NOTIFICATIONS_QUEUE, NOTIFY_TASK

    old = datetime.now(UTC) - timedelta(minutes=10)
    store = IncidentStore(stack.env["CHATOPS_DATABASE_URL"])
    try:
        # SEV-4 has no SLA here: nothing breaches until the incident is raised to SEV-3.
        incident = store.declare(
            title="Replica lag",
            severity=Severity.SEV4,
            actor="alice",
            platform="slack",
            instance="slack",
            channel="general",
            at=old,
        ).incident
        shown = IncidentSnapshot.of(incident).model_copy(update={"severity": Severity.SEV3, "version": 2})
        card = Notification(type="incident.created", incident=shown)
        TaskPublisher(redis_url).send(
            NOTIFY_TASK, [card.model_dump(mode="json"), "card-1"], queue=NOTIFICATIONS_QUEUE
        )
        (posted,) = slack.wait_for(lambda: slack.messages("incidents"), timeout=30)
        store.apply(
            incident.number,
            Action.ESCALATE,
            actor="bob",
            platform="slack",
            channel="general",
            at=old,
            severity=Severity.SEV3,
        )
    finally:
        store.close()

    def alerts() -> list[dict[str, object]]:
        return [m for m in slack.messages("incidents") if m.get("thread_ts") == posted["ts"]]

    (alert,) = slack.wait_for(alerts, timeout=30)
    assert "SLA" in str(alert["text"]) and incident.id in str(alert["text"])
    assert alert["subtype"] == "thread_broadcast"
    (card_now,) = [m for m in slack.messages("incidents") if not m.get("thread_ts")]
    assert card_now["ts"] == posted["ts"]
    assert len(alerts()) == 1
