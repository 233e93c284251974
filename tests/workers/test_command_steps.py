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

from chatops_core.errors import RateLimited, Retryable, ServerError
from chatops_core.models import Actor, Announcement, InboundCommand
from chatops_core.providers.slack import SlackProvider
from chatops_core.settings import Settings, SlackSettings
from tests.fakes.slack_server import FakeSlack
from workers.retry import CAP_SECONDS, countdown
from workers.runtime import Runtime
from workers.tasks import deliver_announcement, run_command


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def runtime(tmp_path: Path, slack: FakeSlack) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path,
        providers={
            "slack": SlackSettings(
                bot_token=slack.token,
                signing_secret="s",
                api_url=slack.api_url,
                create_incident_channels=True,
                timeout=2,
            )
        },
    )
    rt = Runtime(settings)
    rt.store.upgrade()
    # Short pauses between the SDK's own retries of a 5xx keep the test fast.
    rt.providers["slack"] = SlackProvider("slack", settings.providers["slack"], retry_interval=_NoWait())
    yield rt
    rt.store.close()


class _NoWait:
    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return 0.0


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
        response_url=slack.response_url(key.replace(":", "-")),
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
    targets = sorted(args[1] for _, args in enqueued)
    channel_id = runtime.store.get(1).channel_id
    assert targets == sorted(["#incidents", channel_id])


def test_a_failure_midway_is_finished_by_the_retry_without_repeating(
    runtime: Runtime, slack: FakeSlack
) -> None:
    cmd = inbound(slack, "declare sev1 Checkout errors", key="slack:slack:k2")
    enqueued = Enqueued()
    provider = runtime.provider("slack")
    slack.fail("response", times=5, status=503)
    with pytest.raises(ServerError):
        run_command(runtime, provider, cmd, enqueue=enqueued)
    # The incident and its channel exist; the answer and the announcements are still owed.
    assert runtime.store.get(1).channel_id is not None
    assert enqueued == []
    run_command(runtime, provider, cmd, enqueue=enqueued)
    assert len(runtime.store.list(active_only=False)) == 1
    assert len(slack.calls("conversations.create")) == 1
    assert len(slack.responses(cmd.key.replace(":", "-"))) == 1
    assert len(enqueued) == 2


def test_wrong_input_answers_once_and_changes_nothing(runtime: Runtime, slack: FakeSlack) -> None:
    cmd = inbound(slack, "close INC-4", key="slack:slack:k3")
    enqueued = Enqueued()
    provider = runtime.provider("slack")
    run_command(runtime, provider, cmd, enqueue=enqueued)
    run_command(runtime, provider, cmd, enqueue=enqueued)
    answers = slack.responses(cmd.key.replace(":", "-"))
    assert len(answers) == 1 and "no incident INC-4" in answers[0]["text"]
    assert runtime.store.list(active_only=False) == [] and enqueued == []


def test_an_announcement_is_posted_once(runtime: Runtime, slack: FakeSlack) -> None:
    cmd = inbound(slack, "declare Disk filling up", key="slack:slack:k4")
    run_command(runtime, runtime.provider("slack"), cmd, enqueue=Enqueued())
    incident = runtime.store.get(1)
    ann = Announcement(type="incident.created", incident=incident, summary="Declared by alice")
    deliver_announcement(runtime, "slack", "#incidents", ann, "k4:slack:#incidents")
    deliver_announcement(runtime, "slack", "#incidents", ann, "k4:slack:#incidents")
    assert len(slack.messages("incidents")) == 1
    assert runtime.store.messages(1)[0][0:2] == ("slack", slack.channel_id("incidents"))


def test_a_rate_limited_delivery_raises_with_retry_after(runtime: Runtime, slack: FakeSlack) -> None:
    run_command(runtime, runtime.provider("slack"), inbound(slack, "declare X", key="k5"), enqueue=Enqueued())
    ann = Announcement(type="incident.created", incident=runtime.store.get(1), summary="s")
    slack.fail("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(RateLimited) as info:
        deliver_announcement(runtime, "slack", "#incidents", ann, "k5:x")
    assert info.value.retry_after == 7
    assert countdown(info.value, attempt=3) == 7


def test_backoff_grows_with_jitter_and_is_bounded() -> None:
    rng = random.Random(7)
    delays = [countdown(Retryable(), attempt, rng) for attempt in range(12)]
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(d <= CAP_SECONDS for d in delays)
    assert len({round(countdown(Retryable(), 5, rng), 6) for _ in range(20)}) > 1
