"""Answers that travel in the webhook's own response (a Teams outgoing webhook), in the ingress.

The ingress enqueues the command, waits a bounded time for the worker's answer and sends it
as its response; a late worker's answer goes the platform's other way; a flood of such
requests never holds up other webhooks. Driven with the recording provider's signed format
(``answer_in_response``) against a real Redis; a thread plays the worker's hand-over.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from chatops_core.answers import AnswerExchange
from chatops_core.models import Reply
from chatops_core.settings import Settings
from ingress.app import create_app
from tests.celery_messages import task_body
from tests.fakes.recording_provider import RecordingProvider, RecordingSettings, recording_request
from workers.interactive import answer


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider("rec", RecordingSettings())


@pytest.fixture
def exchange(redis_url: str, redis_client: redis.Redis) -> AnswerExchange:
    return AnswerExchange(redis_url)


def make_app(redis_url: str, provider: RecordingProvider, tmp_path, **options: object) -> Flask:  # noqa: ANN001
    settings = Settings(broker_url=redis_url, data_dir=tmp_path, providers={"rec": RecordingSettings()})
    return create_app(settings, providers={"rec": provider}, **options)  # type: ignore[arg-type]


def enqueued_command(client: redis.Redis, timeout: float = 3.0) -> dict:
    """The next command the ingress enqueued (as a worker takes it), within ``timeout``."""
    got = client.brpop(["interactive"], timeout=timeout)
    assert got is not None, "the ingress enqueued nothing"
    (payload,) = task_body(json.loads(got[1]))[0]
    return payload


def post(app: Flask, text: str, request_id: str, wait: float | None) -> tuple[int, dict, float]:
    body, headers = recording_request(text, request_id=request_id, answer_in_response=wait)
    started = time.perf_counter()
    response = app.test_client().post("/webhooks/rec", data=body, headers=headers)
    return response.status_code, response.get_json(), time.perf_counter() - started


def test_the_workers_answer_is_the_response(
    redis_url: str, redis_client: redis.Redis, provider: RecordingProvider, exchange: AnswerExchange, tmp_path
) -> None:  # noqa: ANN001
    app = make_app(redis_url, provider, tmp_path)

    def worker() -> None:
        command = enqueued_command(redis_client)
        assert exchange.hand_over(command["answer_key"], b'{"answer":"INC-1 declared"}', "application/json")

    thread = threading.Thread(target=worker)
    thread.start()
    status, shown, _ = post(app, "declare sev2 DB down", "a1", wait=3.0)
    thread.join(5)
    assert status == 200
    assert shown == {"answer": "INC-1 declared"}


def test_a_late_answer_goes_the_other_way(
    redis_url: str, redis_client: redis.Redis, provider: RecordingProvider, exchange: AnswerExchange, tmp_path
) -> None:  # noqa: ANN001
    app = make_app(redis_url, provider, tmp_path)
    status, shown, took = post(app, "declare sev2 DB down", "a2", wait=0.3)
    assert status == 200 and shown == {"ok": True, "later": True}
    assert 0.25 < took < 2.0
    command = enqueued_command(redis_client)
    # The worker comes late: its answer is posted in the channel instead, once.
    from chatops_core.models import InboundCommand

    inbound = InboundCommand.model_validate(command)
    assert answer(provider, inbound, Reply(text="INC-1 declared", ephemeral=False), exchange)
    assert [(r.text, where) for r, where in provider.answers()] == [("INC-1 declared", "channel")]
    assert provider.calls("reply", ok=False) == []


def test_a_second_answer_is_posted_not_lost(
    redis_url: str, redis_client: redis.Redis, provider: RecordingProvider, exchange: AnswerExchange, tmp_path
) -> None:  # noqa: ANN001
    from chatops_core.models import InboundCommand

    app = make_app(redis_url, provider, tmp_path)

    def worker() -> None:
        inbound = InboundCommand.model_validate(enqueued_command(redis_client))
        answer(provider, inbound, Reply(text="first", ephemeral=False), exchange)
        answer(provider, inbound, Reply(text="second", ephemeral=False), exchange)

    thread = threading.Thread(target=worker)
    thread.start()
    status, shown, _ = post(app, "status", "a3", wait=3.0)
    thread.join(5)
    assert (status, shown) == (200, {"answer": "first"})
    assert [r.text for r, _ in provider.answers()] == ["second"]


def test_a_replayed_request_does_not_wait(
    redis_url: str, redis_client: redis.Redis, provider: RecordingProvider, tmp_path
) -> None:  # noqa: ANN001
    app = make_app(redis_url, provider, tmp_path)
    post(app, "declare sev2 DB down", "dup", wait=0.2)
    status, shown, took = post(app, "declare sev2 DB down", "dup", wait=3.0)
    assert (status, shown) == (200, {"ok": True, "later": True})
    assert took < 1.0
    assert redis_client.llen("interactive") == 1


@pytest.fixture
def busy_app(
    redis_url: str, redis_client: redis.Redis, provider: RecordingProvider, tmp_path
) -> Iterator[Flask]:  # noqa: ANN001
    yield make_app(redis_url, provider, tmp_path, answer_waiters=1)


def test_waiting_requests_never_hold_up_the_others(busy_app: Flask, redis_client: redis.Redis) -> None:
    # One request already waits (the only waiting slot); a second one that would wait is
    # answered at once that its result will follow, and an ordinary command at once too.
    waiting = threading.Thread(target=post, args=(busy_app, "status", "w1", 2.0))
    waiting.start()
    deadline = time.monotonic() + 3
    while redis_client.llen("interactive") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    status, shown, took = post(busy_app, "status", "w2", wait=2.0)
    assert (status, shown) == (200, {"ok": True, "later": True})
    assert took < 0.5
    status, shown, took = post(busy_app, "status", "plain", wait=None)
    assert (status, shown) == (200, {"ok": True})
    assert took < 0.5
    waiting.join(5)


def test_without_redis_the_result_follows_at_once(provider: RecordingProvider, tmp_path) -> None:  # noqa: ANN001
    from chatops_core.publisher import TaskPublisher

    settings = Settings(broker_url="memory://", data_dir=tmp_path, providers={"rec": RecordingSettings()})
    publisher = TaskPublisher("memory://")
    app = create_app(settings, providers={"rec": provider}, publisher=publisher)
    status, shown, took = post(app, "status", "m1", wait=3.0)
    assert (status, shown) == (200, {"ok": True, "later": True}) and took < 1.0
