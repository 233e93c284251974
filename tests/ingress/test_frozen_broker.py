"""The ingress against a Redis that stops answering (SIGSTOP): it answers inside Slack's
3-second deadline, and a 503 means the message was not enqueued, even once Redis resumes.

Each test starts its own Redis server so that it owns the process it freezes.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.devtools import slash_command_body
from chatops_core.publisher import BrokerUnavailable, TaskPublisher
from chatops_core.settings import Settings
from chatops_core.stack import EmbeddedRedis
from ingress.app import create_app
from tests.fakes.slack_server import signed_headers

SECRET = "frozen-signing-secret"
TOKEN = "frozen-api-token-7c1d"
SLACK_DEADLINE = 3.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    own = EmbeddedRedis(tmp_path / "redis")
    own.start()
    try:
        yield own
    finally:
        assert own.process is not None
        own.process.send_signal(signal.SIGCONT)
        own.stop()


class Frozen:
    """SIGSTOP the server for the ``with`` block; SIGCONT it on the way out, always."""

    def __init__(self, server: EmbeddedRedis, seconds: float | None = None) -> None:
        assert server.process is not None
        self.process = server.process
        self.seconds = seconds
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Frozen:
        self.process.send_signal(signal.SIGSTOP)
        if self.seconds is not None:
            self._timer = threading.Timer(self.seconds, self.process.send_signal, (signal.SIGCONT,))
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.join()
        self.process.send_signal(signal.SIGCONT)


def settled(server: EmbeddedRedis, queue: str) -> int:
    """The queue's length once the resumed server has run what its sockets held.

    A server that resumes serves the connections that became readable while it was
    stopped before it accepts a new one, so two round trips on a fresh connection come
    after anything a client left behind.
    """
    client = redis.Redis.from_url(server.url, socket_timeout=5)
    try:
        client.ping()
        client.ping()
        return int(client.llen(queue))
    finally:
        client.close()


def settings_for(server: EmbeddedRedis, tmp_path: Path) -> Settings:
    from pydantic import SecretStr

    return Settings(
        broker_url=server.url,
        data_dir=tmp_path,
        api_token=SecretStr(TOKEN),
        providers={"slack": SlackSettings(bot_token="xoxb-unit", signing_secret=SECRET)},
    )


@pytest.fixture
def client(server: EmbeddedRedis, tmp_path: Path) -> Iterator[FlaskClient]:
    app = create_app(settings_for(server, tmp_path))
    with app.test_client() as test_client:
        yield test_client


def slash(client: FlaskClient, trigger: str) -> tuple[int, float]:
    body = slash_command_body(
        command="/im",
        text="declare sev2 DB down",
        user_id="U1",
        user_name="alice",
        channel_id="C1",
        channel_name="general",
        response_url="http://127.0.0.1:9/r",
    ).replace(b"trigger_id=", b"trigger_id=" + trigger.encode())
    started = time.monotonic()
    response = client.post("/webhooks/slack", data=body, headers=signed_headers(body, SECRET))
    return response.status_code, time.monotonic() - started


def notify(client: FlaskClient, key: str) -> tuple[int, float]:
    payload = {
        "type": "incident.created",
        "incident": {
            "id": "INC-7",
            "title": "Database timeouts",
            "severity": "SEV-2",
            "status": "open",
            "commander": None,
            "url": None,
            "created_at": "2026-11-26T10:00:00Z",
        },
        "channels": None,
    }
    started = time.monotonic()
    response = client.post(
        "/api/v1/notifications",
        json=payload,
        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key},
    )
    return response.status_code, time.monotonic() - started


def test_a_frozen_redis_is_a_prompt_503_and_the_command_is_never_enqueued(
    client: FlaskClient, server: EmbeddedRedis
) -> None:
    assert slash(client, "warm")[0] == 200  # the connection is open before Redis freezes
    with Frozen(server):
        status, took = slash(client, "while-frozen")
    assert status == 503
    assert took < 2.0, f"answered after {took:.2f} s, too close to Slack's {SLACK_DEADLINE} s"
    # Resumed, Redis runs what sat in its socket: it must not enqueue the refused command,
    # or the user's retry after the 503 would declare a second incident.
    assert settled(server, "interactive") == 1


def test_a_503_on_a_fresh_connection_to_a_frozen_redis_enqueues_nothing(
    client: FlaskClient, server: EmbeddedRedis
) -> None:
    with Frozen(server):
        status, took = slash(client, "first-ever")
    assert status == 503 and took < 2.0
    assert settled(server, "interactive") == 0


def test_a_notification_refused_by_a_frozen_redis_is_not_enqueued_and_its_key_stays_free(
    client: FlaskClient, server: EmbeddedRedis
) -> None:
    assert notify(client, "warm")[0] == 202
    with Frozen(server):
        status, took = notify(client, "inc7-created")
    assert status == 503 and took < 2.0
    assert settled(server, "notifications") == 1
    # The caller retries with the same key, and this time it is enqueued.
    assert notify(client, "inc7-created")[0] == 202
    assert settled(server, "notifications") == 2


def test_a_short_pause_of_redis_is_waited_out(client: FlaskClient, server: EmbeddedRedis) -> None:
    assert slash(client, "warm")[0] == 200
    with Frozen(server, seconds=0.15):
        status, took = slash(client, "paused")
    assert status == 200 and took < 2.0
    assert settled(server, "interactive") == 2


def test_a_push_that_reaches_redis_after_its_deadline_is_refused(server: EmbeddedRedis) -> None:
    # Redis resumes after the publish deadline but before the client gives up: the script
    # itself says "expired", and the caller hears so at once.
    # Wide margins on both sides of the pause, so a busy machine cannot blur them.
    publisher = TaskPublisher(server.url, timeout_seconds=4.0, deadline_seconds=0.3)
    try:
        publisher.send("chatops.command", [{}], queue="interactive")
        pause = 1.2
        with Frozen(server, seconds=pause):
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable, match="expired"):
                publisher.send("chatops.command", [{}], queue="interactive")
            took = time.monotonic() - started
        assert took < publisher.timeout_seconds  # told as soon as Redis ran it, not by a timeout
        assert settled(server, "interactive") == 1
    finally:
        publisher.close()


def test_readyz_answers_promptly_when_redis_is_frozen(client: FlaskClient, server: EmbeddedRedis) -> None:
    with Frozen(server):
        started = time.monotonic()
        response = client.get("/readyz")
        took = time.monotonic() - started
    assert response.status_code == 503
    assert response.get_json()["checks"]["broker"] == "unavailable"
    assert took < 2.5


def test_a_broker_other_than_redis_that_never_answers_is_a_prompt_failure() -> None:
    # An AMQP broker that accepts the connection and then says nothing.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    publisher = TaskPublisher(f"amqp://guest:guest@127.0.0.1:{port}//")
    try:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            publisher.send("chatops.command", [{}], queue="interactive")
        assert time.monotonic() - started < SLACK_DEADLINE
    finally:
        publisher.close()
        listener.close()


def test_a_restarted_redis_costs_a_reconnect_not_a_503(client: FlaskClient, server: EmbeddedRedis) -> None:
    assert slash(client, "before")[0] == 200
    server.stop()
    server.start()
    status, took = slash(client, "after")
    assert status == 200 and took < 2.0
    assert settled(server, "interactive") == 2
