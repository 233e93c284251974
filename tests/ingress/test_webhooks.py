"""The ingress app in-process (Flask test client) against a real Redis broker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from flask.testing import FlaskClient

from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.devtools import slash_command_body
from chatops_core.publisher import TaskPublisher
from chatops_core.settings import Settings
from ingress.app import create_app
from tests.celery_messages import task_body
from tests.fakes.slack_server import signed_headers

SECRET = "unit-signing-secret"


@pytest.fixture
def settings(redis_url: str, tmp_path) -> Settings:  # noqa: ANN001
    return Settings(
        broker_url=redis_url,
        data_dir=tmp_path,
        providers={"slack": SlackSettings(bot_token="xoxb-unit", signing_secret=SECRET)},
    )


@pytest.fixture
def client(settings: Settings, redis_client: redis.Redis) -> Iterator[FlaskClient]:
    app = create_app(settings)
    with app.test_client() as test_client:
        yield test_client


def command(text: str = "declare sev2 DB down", trigger: str = "111.222.abc") -> tuple[bytes, dict[str, str]]:
    body = slash_command_body(
        command="/im",
        text=text,
        user_id="U1",
        user_name="alice",
        channel_id="C1",
        channel_name="general",
        response_url="http://127.0.0.1:9/r",
    ).replace(b"trigger_id=", b"trigger_id=" + trigger.encode() + b"x")
    return body, signed_headers(body, SECRET)


def test_a_command_becomes_an_ordinary_celery_message(client: FlaskClient, redis_client: redis.Redis) -> None:
    body, headers = command()
    started = time.perf_counter()
    response = client.post("/webhooks/slack", data=body, headers=headers)
    assert response.status_code == 200
    assert time.perf_counter() - started < 3.0  # Slack's deadline, with a wide margin
    raw = redis_client.rpop("interactive")
    assert raw is not None and redis_client.llen("interactive") == 0
    envelope = json.loads(raw)
    assert envelope["headers"]["task"] == "chatops.command"
    assert envelope["content-type"] == "application/json"
    args, kwargs, embed = task_body(envelope)
    assert kwargs == {} and embed["chain"] is None
    (payload,) = args
    assert payload["text"] == "declare sev2 DB down"
    assert payload["user"] == {"user_id": "U1", "user_name": "alice", "email": None}
    assert payload["instance"] == "slack" and payload["platform"] == "slack"


def test_a_repeated_request_is_enqueued_once(client: FlaskClient, redis_client: redis.Redis) -> None:
    # The same signed request twice is a replay (or a retry): enqueued once, and its key is
    # the trigger's, which the worker acts on once (tests/workers/test_command_steps.py).
    body, headers = command(trigger="same.trigger")
    assert client.post("/webhooks/slack", data=body, headers=headers).status_code == 200
    assert client.post("/webhooks/slack", data=body, headers=headers).status_code == 200
    messages = redis_client.lrange("interactive", 0, -1)
    keys = [task_body(json.loads(raw))[0][0]["key"] for raw in messages]
    assert len(keys) == 1
    assert "same.trigger" in keys[0]


def test_distinct_commands_are_all_enqueued(client: FlaskClient, redis_client: redis.Redis) -> None:
    for i in range(5):
        body, headers = command(trigger=f"t{i}")
        assert client.post("/webhooks/slack", data=body, headers=headers).status_code == 200
    messages = redis_client.lrange("interactive", 0, -1)
    keys = {task_body(json.loads(raw))[0][0]["key"] for raw in messages}
    assert len(messages) == 5 and len(keys) == 5, "each command has a key of its own"


def test_broker_down_is_503_and_logged(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    from chatops_core.stack import free_port

    down = TaskPublisher(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(settings, publisher=down)
    body, headers = command()
    with app.test_client() as test_client:
        response = test_client.post("/webhooks/slack", data=body, headers=headers)
        assert response.status_code == 503
        assert test_client.get("/readyz").status_code == 503
        assert test_client.get("/healthz").status_code == 200
    assert "broker unavailable" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("path", "body", "content_type", "expected"),
    [
        ("/webhooks/slack", b"x" * (1024 * 1024 + 1), "application/x-www-form-urlencoded", 413),
        ("/webhooks/nope", b"command=%2Fim", "application/x-www-form-urlencoded", 404),
        ("/webhooks/slack", b"[1, 2", "application/json", 400),
        ("/webhooks/slack", b"", "application/x-www-form-urlencoded", 400),
        ("/webhooks/slack", b'"just a string"', "application/json", 400),
    ],
)
def test_bad_requests_are_refused_and_enqueue_nothing(
    client: FlaskClient, redis_client: redis.Redis, path: str, body: bytes, content_type: str, expected: int
) -> None:
    response = client.post(
        path, data=body, headers={**signed_headers(body, SECRET), "Content-Type": content_type}
    )
    assert response.status_code == expected
    assert response.is_json and "error" in response.get_json()
    assert redis_client.llen("interactive") == 0


def test_get_on_a_webhook_is_405(client: FlaskClient) -> None:
    assert client.get("/webhooks/slack").status_code == 405
