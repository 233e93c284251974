"""``/api/v1`` over real HTTP against the gunicorn ingress: notifications in, incidents out."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from chatops_core.models import Severity
from chatops_core.store import IncidentStore
from tests.celery_messages import task_body
from tests.e2e.stack import Stack, start_stack

pytestmark = pytest.mark.e2e

QUEUE = "notifications"
API_TOKEN = "e2e-api-token-3c9d0a7b5e1f"
WAIT_SECONDS = 30.0

NOTIFICATION = {
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


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[Stack, redis.Redis]]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    # No worker: what the ingress enqueues stays in the queue for the test to see.
    stack = start_stack(
        Path(tmp_path_factory.mktemp("api")),
        redis_url=redis_url,
        api_url="http://127.0.0.1:9/api/",
        token="xoxb-unused",
        worker=False,
        extra_env={"CHATOPS_API_TOKEN": API_TOKEN},
    )
    yield stack, client
    stack.stop()
    client.flushdb()


def call(
    stack: Stack, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One request on its own new connection; the status and the decoded JSON answer."""
    address = urlsplit(stack.base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    try:
        raw = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"} if raw is not None else {}
        connection.request(method, path, body=raw, headers={**sent, **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def bearer(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def task_args(raw: bytes | str | None) -> list[Any]:
    assert raw is not None
    envelope = json.loads(raw)
    assert envelope["headers"]["task"] == "chatops.notify"
    args, kwargs, _ = task_body(envelope)
    assert kwargs == {}
    return list(args)


def test_a_notification_is_accepted_and_enqueued(ingress: tuple[Stack, redis.Redis]) -> None:
    stack, client = ingress
    client.delete(QUEUE)
    status, answer = call(stack, "POST", "/api/v1/notifications", NOTIFICATION, bearer())
    assert status == 202, answer
    assert client.llen(QUEUE) == 1
    payload, notification_id = task_args(client.lindex(QUEUE, 0))
    assert notification_id == answer["id"]
    assert payload["type"] == "incident.created" and payload["incident"]["id"] == "INC-7"
    client.delete(QUEUE)


def test_one_idempotency_key_from_many_connections_enqueues_once(ingress: tuple[Stack, redis.Redis]) -> None:
    stack, client = ingress
    client.delete(QUEUE)
    headers = {**bearer(), "Idempotency-Key": "e2e-deploy-1"}
    first = call(stack, "POST", "/api/v1/notifications", NOTIFICATION, headers)
    second = call(stack, "POST", "/api/v1/notifications", NOTIFICATION, headers)
    assert first[0] == second[0] == 202
    assert second[1] == {"id": first[1]["id"], "duplicate": True}
    # At once from several connections, served by both gunicorn workers: still one message.
    racing = {**bearer(), "Idempotency-Key": "e2e-deploy-2"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(call, stack, "POST", "/api/v1/notifications", NOTIFICATION, racing) for _ in range(8)
        ]
        answers = [future.result(timeout=WAIT_SECONDS) for future in futures]
    assert {status for status, _ in answers} == {202}
    racing_ids = {answer["id"] for _, answer in answers}
    assert len(racing_ids) == 1
    assert sum(1 for _, answer in answers if not answer.get("duplicate")) == 1
    enqueued = [task_args(raw)[1] for raw in reversed(client.lrange(QUEUE, 0, -1))]
    assert enqueued == [first[1]["id"], *racing_ids]
    client.delete(QUEUE)


@pytest.mark.parametrize("headers", [{}, bearer("not-the-token")], ids=["missing", "wrong"])
def test_a_refused_token_is_401_and_enqueues_nothing(
    ingress: tuple[Stack, redis.Redis], headers: dict[str, str]
) -> None:
    stack, client = ingress
    client.delete(QUEUE)
    status, answer = call(stack, "POST", "/api/v1/notifications", NOTIFICATION, headers)
    assert status == 401, answer
    assert answer["error"] == "unauthorized"
    assert client.llen(QUEUE) == 0


def test_incidents_are_read_over_http(ingress: tuple[Stack, redis.Redis]) -> None:
    stack, _ = ingress
    store = IncidentStore(stack.env["CHATOPS_DATABASE_URL"])
    try:
        number = store.declare(
            title="Checkout errors",
            severity=Severity.SEV1,
            actor="alice",
            platform="slack",
            instance="slack",
            channel="C1",
            at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        ).incident.number
    finally:
        store.close()
    status, listed = call(stack, "GET", "/api/v1/incidents?severity=p1", headers=bearer())
    assert status == 200, listed
    assert [incident["id"] for incident in listed["incidents"]] == [f"INC-{number}"]
    status, one = call(stack, "GET", f"/api/v1/incidents/inc-{number}", headers=bearer())
    assert status == 200, one
    assert one["title"] == "Checkout errors" and one["timeline"][0]["kind"] == "declared"
    assert call(stack, "GET", f"/api/v1/incidents/{number}", headers=bearer("nope"))[0] == 401


def test_the_token_is_not_in_the_process_logs(ingress: tuple[Stack, redis.Redis]) -> None:
    stack, _ = ingress
    assert API_TOKEN not in stack.logs(tail=None)
