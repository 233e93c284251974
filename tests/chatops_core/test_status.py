"""`chatops status`: queues, workers, dead letters, deliveries and provider health, read from
the real Redis, the real database and a real Celery worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chatops_core.cli import main
from chatops_core.delivery_metrics import DeliveryCounter
from chatops_core.errors import ChatOpsError
from chatops_core.operations import queue_states
from chatops_core.provider_health import record_outcome
from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.publisher import TaskPublisher
from chatops_core.settings import Settings
from chatops_core.store import IncidentStore
from chatops_core.tasks import DELIVER_TASK, NOTIFICATIONS_QUEUE
from tests.fakes.slack_server import FakeSlack

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def env(tmp_path: Path, redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CHATOPS_CONFIG", "CHATOPS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATOPS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CHATOPS_BROKER_URL", redis_url)
    monkeypatch.setenv("CHATOPS_SLACK_BOT_TOKEN", "xoxb-status-secret-token")
    monkeypatch.setenv("CHATOPS_SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("CHATOPS_SLACK_API_URL", "http://127.0.0.1:9/api/")
    (tmp_path / "var").mkdir()
    store = IncidentStore.from_settings(Settings(data_dir=tmp_path / "var"))
    store.upgrade()
    store.close()
    return tmp_path


def _status(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["status", "--ping-timeout", "0.3", *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_an_idle_service_reads_all_zero(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _status(capsys)
    assert "interactive    0 waiting" in out
    assert "notifications  0 waiting" in out
    assert "workers seen: 0 (no worker answered: nothing is consumed)" in out
    assert "dead letters: 0" in out
    assert "slack (slack): no call recorded yet" in out
    assert code == 0, out


def test_queue_depth_and_the_age_of_the_message_next_in_line(
    redis_url: str, redis_client: redis.Redis
) -> None:
    publisher = TaskPublisher(redis_url)
    try:
        for n in range(3):
            publisher.send(DELIVER_TASK, [{}, f"n{n}", "slack", "#incidents"], {}, queue=NOTIFICATIONS_QUEUE)
    finally:
        publisher.close()
    first = {q.name: q for q in queue_states(redis_client)}
    assert first["notifications"].depth == 3
    assert first["interactive"].depth == 0 and first["interactive"].oldest_age_seconds is None
    time.sleep(0.3)
    stuck = {q.name: q for q in queue_states(redis_client)}["notifications"]
    assert stuck.depth == 3
    assert stuck.oldest_age_seconds is not None and stuck.oldest_age_seconds >= 0.3
    # A worker takes the front message (as kombu does, from the right): the next one has only
    # just reached the front.
    assert redis_client.rpop(NOTIFICATIONS_QUEUE) is not None
    moved = {q.name: q for q in queue_states(redis_client)}["notifications"]
    assert moved.depth == 2
    assert moved.oldest_age_seconds is not None and moved.oldest_age_seconds < 0.3


def test_dead_letters_deliveries_and_a_failing_provider(
    env: Path, redis_url: str, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    store = IncidentStore.from_settings(Settings(data_dir=env / "var"))
    store.add_dead_letter(task_name=DELIVER_TASK, args=[], kwargs={}, reason="gave up", attempts=9)
    store.add_dead_letter(task_name=DELIVER_TASK, args=[], kwargs={}, reason="gave up", attempts=9)
    store.close()
    counter = DeliveryCounter(redis_client)
    counter.incr("slack", "delivered")
    counter.incr("slack", "dead_lettered")
    with FakeSlack() as slack:
        provider = SlackProvider(
            "slack",
            SlackSettings(bot_token="xoxb-status-secret-token", signing_secret="s", api_url=slack.api_url),
        )
        for _ in range(2):
            try:
                provider.health()
            except ChatOpsError as exc:
                record_outcome(redis_client, "slack", exc)
    code, out = _status(capsys)
    assert code == 1
    assert "dead letters: 2, oldest " in out and "`chatops dlq list`" in out
    assert "slack          dead_lettered=1 delivered=1" in out
    assert "slack (slack): FAILING, 2 failed call(s) in a row; last success never" in out
    assert "bad token: Slack refused the bot token (auth.test: invalid_auth)" in out
    assert "xoxb-status-secret-token" not in out

    code, out = _status(capsys, "--json")
    data = json.loads(out)
    assert data["dead_letters"]["count"] == 2
    assert data["deliveries"] == {"slack": {"delivered": 1, "dead_lettered": 1}}
    (slack_state,) = data["providers"]
    assert slack_state["health"]["consecutive_failures"] == 2
    assert slack_state["health"]["last_error"]["kind"] == "bad_token"

    record_outcome(redis_client, "slack", None)
    code, out = _status(capsys)
    assert "slack (slack): ok, last success 0s ago" in out
    assert code == 0, out


def test_redis_away_is_said_within_the_bound(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CHATOPS_BROKER_URL", f"redis://:broker-password@127.0.0.1:{port}/0")
    started = time.monotonic()
    code, out = _status(capsys)
    assert time.monotonic() - started < 5
    assert code == 1
    assert "unavailable: queues, deliveries, providers: Redis did not answer" in out
    assert "dead letters: 0" in out  # the database's part still shows
    assert "broker-password" not in out


@pytest.fixture
def worker(env: Path, redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    child_env = {
        **os.environ,
        "CHATOPS_BROKER_URL": redis_url,
        "CHATOPS_DATA_DIR": str(env / "var"),
        "CHATOPS_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatops_core.cli", "worker", "-Q", "maintenance", "-c", "1"],
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def test_a_running_worker_is_seen(
    env: Path, worker: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    deadline = time.monotonic() + 30
    seen: list[str] = []
    while time.monotonic() < deadline and not seen:
        _, out = _status(capsys, "--json")
        seen = json.loads(out)["workers"]
    assert len(seen) == 1 and seen[0].startswith("chatops-")
