"""What the real gunicorn ingress refuses, and that a refusal enqueues nothing."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from chatops_core.providers.slack.devtools import slash_command_body
from tests.e2e.stack import SIGNING_SECRET, Stack, start_stack
from tests.fakes.slack_server import signed_headers

pytestmark = pytest.mark.e2e

QUEUE = "interactive"


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[Stack, redis.Redis]]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    # No worker: what the ingress enqueues stays in the queue for the test to see.
    stack = start_stack(
        Path(tmp_path_factory.mktemp("ingress")),
        redis_url=redis_url,
        api_url="http://127.0.0.1:9/api/",
        token="xoxb-unused",
        worker=False,
    )
    yield stack, client
    stack.stop()
    client.flushdb()


def body(text: str = "declare sev2 DB down") -> bytes:
    return slash_command_body(
        command="/im",
        text=text,
        user_id="U1",
        user_name="alice",
        channel_id="C1",
        channel_name="general",
        response_url="http://127.0.0.1:9/response",
    )


def signed(raw: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    return signed_headers(raw, secret, timestamp)


def test_a_signed_command_is_enqueued_as_a_celery_message(ingress: tuple[Stack, redis.Redis]) -> None:
    stack, client = ingress
    client.delete(QUEUE)
    raw = body()
    status, answer, _ = stack.post("/webhooks/slack", raw, signed(raw))
    assert status == 200, answer
    assert client.llen(QUEUE) == 1
    envelope = json.loads(client.lindex(QUEUE, 0))
    assert envelope["headers"]["task"] == "chatops.command"
    client.delete(QUEUE)


def _tampered(raw: bytes) -> tuple[bytes, dict[str, str]]:
    headers = signed(raw)
    return raw.replace(b"DB", b"XX"), headers


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad_signature", 401),
        ("wrong_secret", 401),
        ("old_timestamp", 401),
        ("missing_headers", 401),
        ("unknown_instance", 404),
        ("too_large", 413),
        ("unparseable_json", 400),
        ("form_without_command", 400),
    ],
)
def test_rejections_enqueue_nothing(ingress: tuple[Stack, redis.Redis], case: str, expected: int) -> None:
    stack, client = ingress
    client.delete(QUEUE)
    raw = body()
    path = "/webhooks/slack"
    if case == "bad_signature":
        raw, headers = _tampered(raw)
    elif case == "wrong_secret":
        headers = signed(raw, secret="not-the-secret")
    elif case == "old_timestamp":
        headers = signed(raw, timestamp=int(time.time()) - 6 * 60)
    elif case == "missing_headers":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif case == "unknown_instance":
        headers, path = signed(raw), "/webhooks/nosuch"
    elif case == "too_large":
        # Refused on its declared size, before any of the body is read: the answer comes
        # while the client would still be sending (and the ingress does not wait for it).
        big = body("note 1 " + "x" * (2 * 1024 * 1024))
        status, answer = _declared_only(stack, path, signed(big), len(big))
        assert status == expected, answer
        assert client.llen(QUEUE) == 0
        return
    elif case == "unparseable_json":
        raw = b'{"type": "event_callback", '
        headers = signed(raw)
        headers["Content-Type"] = "application/json"
    else:
        raw = b"hello=world&nothing=here"
        headers = signed(raw)
    status, answer, _ = stack.post(path, raw, headers)
    assert status == expected, answer
    assert client.llen(QUEUE) == 0


def _declared_only(stack: Stack, path: str, headers: dict[str, str], length: int) -> tuple[int, bytes]:
    """POST with ``Content-Length: length`` and no body sent: the answer to the head alone.

    Sending a body the ingress refuses on its size races its answer: the ingress answers and
    closes, and a client still sending gets a broken pipe instead of the answer.
    """
    conn = http.client.HTTPConnection(urlsplit(stack.base_url).netloc, timeout=10)
    try:
        conn.putrequest("POST", path)
        for name, value in {**headers, "Content-Length": str(length)}.items():
            conn.putheader(name, value)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_url_verification_and_ssl_check_are_answered_in_place(ingress: tuple[Stack, redis.Redis]) -> None:
    stack, client = ingress
    client.delete(QUEUE)
    raw = json.dumps(
        {
            "token": "t",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    headers = signed(raw)
    headers["Content-Type"] = "application/json"
    status, answer, _ = stack.post("/webhooks/slack", raw, headers)
    assert status == 200
    assert json.loads(answer)["challenge"] == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    raw = b"ssl_check=1&token=abc"
    status, _, _ = stack.post("/webhooks/slack", raw, signed(raw))
    assert status == 200
    assert client.llen(QUEUE) == 0


def test_health_and_readiness(ingress: tuple[Stack, redis.Redis]) -> None:
    stack, _ = ingress
    assert stack.get("/healthz")[0] == 200
    status, raw = stack.get("/readyz")
    assert status == 200, raw
    assert json.loads(raw)["checks"] == {"broker": "ok", "database": "ok"}
    status, raw = stack.get("/metrics")
    assert status == 200 and b"chatops_webhooks_total" in raw
