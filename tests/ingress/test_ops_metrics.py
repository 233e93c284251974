"""The ingress's /metrics shows queues, workers, dead letters and each provider instance's
health, read from the real Redis and database on each scrape, and still answers promptly
when Redis does not."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from chatops_core.errors import ChatOpsError
from chatops_core.models import Severity, Status
from chatops_core.notifications import Announcement, IncidentSnapshot, Notification
from chatops_core.provider_health import record_outcome
from chatops_core.providers.mattermost import MattermostProvider
from chatops_core.providers.mattermost.config import MattermostSettings
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.publisher import TaskPublisher
from chatops_core.settings import Settings
from chatops_core.store import IncidentStore
from chatops_core.tasks import COMMAND_TASK, INTERACTIVE_QUEUE
from ingress.app import create_app
from tests.fakes.mattermost_server import FakeMattermost

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "var"
    store = IncidentStore(f"sqlite:///{path / 'chatops.db'}")
    store.upgrade()
    store.add_dead_letter(task_name=COMMAND_TASK, args=[], kwargs={}, reason="gave up", attempts=9)
    store.close()
    yield path


@pytest.fixture
def mm() -> Iterator[FakeMattermost]:
    with FakeMattermost() as server:
        yield server


def _mm_settings(mm: FakeMattermost) -> MattermostSettings:
    return MattermostSettings(
        url=mm.url,
        bot_token=SecretStr(mm.token),
        command_token=SecretStr(mm.command_token),
        actions_secret=SecretStr("buttons-key-0123456789abcdefghij"),
        team_id=mm.team_id,
        webhook_url="https://chatops.example.com/webhooks/mm",
        timeout=5,
    )


def _settings(broker_url: str, data: Path, mm: FakeMattermost) -> Settings:
    return Settings(
        broker_url=broker_url,
        data_dir=data,
        database_url=f"sqlite:///{data / 'chatops.db'}",
        providers={
            "slack": SlackSettings(bot_token="xoxb-unit", signing_secret="s"),
            "mm": _mm_settings(mm),
        },
    )


def _scrape(settings: Settings) -> str:
    with create_app(settings).test_client() as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        return response.get_data(as_text=True)


def _value(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_a_scrape_shows_queues_workers_dead_letters_and_provider_health(
    redis_url: str, redis_client: redis.Redis, data: Path, mm: FakeMattermost
) -> None:
    publisher = TaskPublisher(redis_url)
    try:
        for n in range(2):
            publisher.send(COMMAND_TASK, [{"n": n}], {}, queue=INTERACTIVE_QUEUE)
    finally:
        publisher.close()
    provider = MattermostProvider("mm", _mm_settings(mm))
    announcement = Announcement.of(
        Notification(
            type="incident.created",
            incident=IncidentSnapshot(
                id="INC-3",
                title="Disk full",
                severity=Severity.SEV2,
                status=Status.OPEN,
                created_at=datetime.now(UTC),
            ),
        )
    )
    provider.announce("incidents", announcement)
    record_outcome(redis_client, "mm", None)
    before = time.time()
    mm.fail("create_post", times=3, status=403)
    for _ in range(3):
        with pytest.raises(ChatOpsError) as failed:
            provider.announce("incidents", announcement)
        record_outcome(redis_client, "mm", failed.value)

    text = _scrape(_settings(redis_url, data, mm))
    assert _value(text, "chatops_queue_depth", queue="interactive") == 2
    assert _value(text, "chatops_queue_depth", queue="notifications") == 0
    assert _value(text, "chatops_queue_oldest_age_seconds", queue="interactive") is not None
    assert _value(text, "chatops_workers_seen") == 0
    assert _value(text, "chatops_dead_letters") == 1
    assert _value(text, "chatops_provider_consecutive_failures", instance="mm") == 3
    assert _value(text, "chatops_provider_consecutive_failures", instance="slack") == 0
    assert _value(text, "chatops_provider_up", instance="mm") == 0
    assert _value(text, "chatops_provider_up", instance="slack") == 1
    assert _value(text, "chatops_provider_failing", instance="mm", kind="missing_scope") == 1
    success = _value(text, "chatops_provider_last_success_timestamp", instance="mm")
    error = _value(text, "chatops_provider_last_error_timestamp", instance="mm")
    assert success is not None and error is not None and success <= before <= error
    assert _value(text, "chatops_provider_last_success_timestamp", instance="slack") is None
    assert mm.token not in text


@pytest.fixture
def frozen_redis() -> Iterator[str]:
    """A port that accepts connections and never answers, as a hung Redis."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


def test_a_scrape_answers_while_redis_does_not(frozen_redis: str, data: Path, mm: FakeMattermost) -> None:
    started = time.monotonic()
    text = _scrape(_settings(frozen_redis, data, mm))
    # Each Redis read gives up after 1 s; the database's part still shows.
    assert time.monotonic() - started < 5
    assert "chatops_queue_depth" not in text
    assert "chatops_provider_consecutive_failures" not in text
    assert _value(text, "chatops_dead_letters") == 1
