"""Whatever a client sends, the ingress answers a clear 4xx and enqueues nothing: only a
broker that does not take the message makes it answer 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient

from chatops_core.providers.slack.config import SlackSettings
from chatops_core.settings import Settings
from ingress.app import create_app
from tests.fakes.slack_server import signed_headers

SECRET = "bad-input-signing-secret"
FORM = "application/x-www-form-urlencoded"
DEPTH = 100_000


@pytest.fixture
def client(redis_url: str, tmp_path, redis_client: redis.Redis) -> Iterator[FlaskClient]:  # noqa: ANN001
    settings = Settings(
        broker_url=redis_url,
        data_dir=tmp_path,
        providers={"slack": SlackSettings(bot_token="xoxb-unit", signing_secret=SECRET)},
    )
    with create_app(settings).test_client() as test_client:
        yield test_client


def post(client: FlaskClient, body: bytes, content_type: str, secret: str = SECRET):  # noqa: ANN201
    headers = {**signed_headers(body, secret), "Content-Type": content_type}
    return client.post("/webhooks/slack", data=body, headers=headers)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # An Events API body nested far deeper than any JSON parser recurses.
        ('{"type": "event_callback", "event": ' + nested(DEPTH) + "}", "application/json"),
        (nested(DEPTH), "application/json"),
        # An interaction: form-encoded, with the JSON in its ``payload`` field.
        ("payload=" + quote('{"type": "block_actions", "actions": ' + nested(DEPTH) + "}"), FORM),
    ],
    ids=["event", "bare-array", "interaction-payload"],
)
def test_a_signed_deeply_nested_body_is_400(
    client: FlaskClient, redis_client: redis.Redis, body: str, content_type: str
) -> None:
    response = post(client, body.encode(), content_type)
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == "invalid"
    assert answer["message"]
    assert redis_client.llen("interactive") == 0


@pytest.mark.parametrize("content_type", [FORM, "application/json"])
def test_a_signed_body_that_is_not_utf8_is_400_saying_so(
    client: FlaskClient, redis_client: redis.Redis, content_type: str
) -> None:
    body = b"command=%2Fim&text=caf\xe9&user_id=U1"
    response = post(client, body, content_type)
    assert response.status_code == 400
    assert "not UTF-8" in response.get_json()["message"]
    assert redis_client.llen("interactive") == 0


def test_an_unsigned_body_that_is_not_utf8_is_still_401(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    body = b"command=%2Fim&text=caf\xe9"
    response = post(client, body, FORM, secret="someone-else")
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert redis_client.llen("interactive") == 0


def test_a_signature_header_that_is_not_ascii_is_401(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = b"command=%2Fim&text=help"
    headers = {**signed_headers(body, SECRET), "Content-Type": FORM}
    headers["X-Slack-Signature"] = "v0=\u00e9\u00e9"
    response = client.post("/webhooks/slack", data=body, headers=headers)
    assert response.status_code == 401
    assert redis_client.llen("interactive") == 0


def test_junk_of_every_kind_never_makes_a_5xx(client: FlaskClient, redis_client: redis.Redis) -> None:
    bodies = [
        b"\x00\xff" * 64,
        b"payload=%7B%22type%22%3A",
        b"payload=" + quote(json.dumps({"type": "view_submission", "view": [1, 2]})).encode(),
        b"payload=" + quote(json.dumps({"type": "block_actions", "actions": "x", "user": 5})).encode(),
        json.dumps({"type": "event_callback", "event": {"type": "message", "text": 5}}).encode(),
        json.dumps({"type": "url_verification", "challenge": {"x": 1}}).encode(),
        b"command=%2Fim&text=" + b"%F0%9F" * 10,
        b"command=%2Fim&" + b"a=1&" * 5000,
    ]
    for body in bodies:
        for content_type in (FORM, "application/json", "text/plain"):
            response = post(client, body, content_type)
            assert response.status_code < 500, (body[:60], content_type, response.get_data()[:200])


def test_a_provider_that_cannot_read_a_request_is_a_400_logged_as_an_error(
    redis_url: str,
    tmp_path,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,  # noqa: ANN001
) -> None:
    # Not the sender's fault alone: a provider meeting a shape it does not know (or a fault of
    # ours) still answers 400, and the log says so as an error with the traceback.
    from chatops_core.providers.slack import SlackProvider

    class Broken(SlackProvider):
        def parse(self, request):  # noqa: ANN001, ANN202
            raise KeyError("channel_id")

    conf = SlackSettings(bot_token="xoxb-unit", signing_secret=SECRET)
    settings = Settings(broker_url=redis_url, data_dir=tmp_path, providers={"slack": conf})
    app = create_app(settings, providers={"slack": Broken("slack", conf)})
    body = b"command=%2Fim&text=list"
    with app.test_client() as test_client, caplog.at_level("ERROR", logger="chatops.ingress"):
        response = post(test_client, body, FORM)
    assert response.status_code == 400
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "could not read it" in record.getMessage() and record.exc_info is not None
    assert redis_client.llen("interactive") == 0
