"""What the tasks do when something fails that is neither the platform's answer nor the input:
our own Redis or database out of reach, or a fault in our code. Nothing may vanish: the
task retries what may pass and keeps, as a dead letter, what it cannot do.

The tasks run through Celery's own execution (``Task.apply``, which also runs the retries),
with the real store (SQLite), the real Slack provider and slack_sdk against the local
server that plays Slack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy.exc
from celery import Celery

from chatops_core.models import utcnow
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.settings import Settings
from chatops_core.tasks import COMMAND_TASK, DELIVER_TASK, NOTIFY_TASK
from tests.fakes.slack_server import FakeSlack
from workers import retry, tasks
from workers.celery_app import make_celery
from workers.runtime import Runtime


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def build(tmp_path: Path, slack: FakeSlack, broker_url: str) -> tuple[Celery, Runtime]:
    settings = Settings(
        data_dir=tmp_path,
        broker_url=broker_url,
        providers={
            "slack": SlackSettings(
                bot_token=slack.token, signing_secret="s", api_url=slack.api_url, timeout=2
            )
        },
    )
    runtime = Runtime(settings)
    runtime.store.upgrade()
    return make_celery(settings, runtime), runtime


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Celery runs an applied task's retries at once; the backoff value is only logged.
    monkeypatch.setattr(retry, "BASE_SECONDS", 0.0)


@pytest.fixture
def worker(tmp_path: Path, slack: FakeSlack, redis_url: str) -> Iterator[tuple[Celery, Runtime]]:
    app, runtime = build(tmp_path, slack, redis_url)
    yield app, runtime
    runtime.store.close()


def raising(exc: Exception) -> Callable[..., Any]:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return broken


def notification() -> dict[str, Any]:
    return {
        "type": "incident.created",
        "incident": {
            "id": "INC-7",
            "title": "Checkout errors",
            "severity": "SEV-3",
            "status": "open",
            "created_at": utcnow().isoformat(),
        },
    }


def test_redis_out_of_reach_retries_then_keeps_the_delivery(
    tmp_path: Path, slack: FakeSlack, no_backoff: None
) -> None:
    # Nothing listens on port 1: every pacer and lock call fails to connect.
    app, runtime = build(tmp_path, slack, "redis://127.0.0.1:1/0")
    try:
        app.tasks[DELIVER_TASK].apply(args=[notification(), "n-1", "slack", "#incidents"])
        (letter,) = runtime.store.dead_letters()
        assert letter.attempts == tasks.MAX_RETRIES + 1
        assert "unavailable" in letter.reason and "ConnectionError" in letter.reason
        assert letter.target == "slack/#incidents" and letter.notification_id == "n-1"
        assert slack.calls("chat.postMessage") == []
    finally:
        runtime.store.close()


def test_a_fault_in_our_code_keeps_the_delivery_to_replay(
    worker: tuple[Celery, Runtime], slack: FakeSlack, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, runtime = worker
    monkeypatch.setattr(runtime.provider("slack"), "announce", raising(KeyError("blocks")))
    app.tasks[DELIVER_TASK].apply(args=[notification(), "n-2", "slack", "#incidents"], kwargs={})
    (letter,) = runtime.store.dead_letters()
    assert letter.attempts == 1, "a fault of ours is not retried in a loop"
    assert letter.reason == "unexpected error: KeyError: 'blocks'"
    assert letter.args[1:4] == ["n-2", "slack", "#incidents"]
    # Once fixed, the kept delivery goes out (replayed later: the channel's pace from the
    # first attempt a moment ago is forgotten here).
    monkeypatch.undo()
    pace = redis.Redis.from_url(redis_url)
    pace.delete(*pace.keys("chatops:pace:*"))
    app.tasks[DELIVER_TASK].apply(args=letter.args, kwargs=letter.kwargs)
    (posted,) = slack.messages("incidents")
    assert "INC-7" in posted["text"]


def test_a_database_outage_retries_the_command_then_keeps_it(
    worker: tuple[Celery, Runtime], slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, no_backoff: None
) -> None:
    app, runtime = worker
    calls = []

    def locked(key: str) -> set[str]:
        calls.append(key)
        raise sqlalchemy.exc.OperationalError(
            "SELECT step FROM command_steps", {}, Exception("database is locked")
        )

    monkeypatch.setattr(runtime.store, "steps_done", locked)
    payload = {
        "key": "slack:slack:k9",
        "instance": "slack",
        "platform": "slack",
        "text": "declare sev3 Checkout errors",
        "user": {"user_id": "U1", "user_name": "alice"},
        "channel_id": "C0004",
        "reply_to": {"response_url": slack.response_url("k9")},
    }
    app.tasks[COMMAND_TASK].apply(args=[payload])
    assert len(calls) == tasks.MAX_RETRIES + 1
    (letter,) = runtime.store.dead_letters()
    assert letter.task_name == COMMAND_TASK and letter.args == [payload]
    assert "unavailable" in letter.reason and "database is locked" in letter.reason


def test_a_fault_while_fanning_out_keeps_the_notification(
    worker: tuple[Celery, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, runtime = worker
    monkeypatch.setattr(tasks, "fan_out", raising(ValueError("no route")))
    payload = notification()
    app.tasks[NOTIFY_TASK].apply(args=[payload, "n-3"])
    (letter,) = runtime.store.dead_letters()
    assert letter.notification_id == "n-3" and letter.args == [payload, "n-3"]
    assert letter.reason == "unexpected error: ValueError: no route"


def test_a_paced_delivery_is_never_held_past_the_visibility_timeout(
    worker: tuple[Celery, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A channel whose next send slot is 20 minutes away (a long Retry-After, or hundreds of
    # posts queued for it): the delivery comes back within the cap and asks again.
    app, runtime = worker
    assert runtime.pacer is not None
    runtime.pacer.hold_off("slack:post:#incidents", 1200)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append(options))
    app.tasks[DELIVER_TASK].apply(args=[notification(), "n-4", "slack", "#incidents"])
    (again,) = sent
    assert 0 < again["countdown"] <= retry.CAP_SECONDS
    assert again["args"][1:4] == ["n-4", "slack", "#incidents"]
