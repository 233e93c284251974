"""The audit trail at the ingress: ``GET /api/v1/audit``, and what the ingress leaves on its
Redis stream (a forged webhook, API intake) reaching the store through the drain task.

The real ingress app (Flask test client), a real Redis broker, a SQLite store, and the drain
run as the real Celery task on a worker runtime.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from flask import Flask
from pydantic import SecretStr

from chatops_core.audit import AUDIT_STREAM, AuditEntry, AuditOutcome
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.devtools import slash_command_body
from chatops_core.settings import Settings
from chatops_core.store import IncidentStore
from chatops_core.tasks import AUDIT_DRAIN_TASK
from ingress.app import create_app
from tests.fakes.slack_server import signed_headers
from workers.celery_app import make_celery
from workers.runtime import Runtime

TOKEN = "api-audit-token-7c1d2e3f4a5b"
SECRET = "slack-signing-secret-unit"
NOW = datetime.now(UTC)


@pytest.fixture
def settings(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    return Settings(
        broker_url=redis_url,
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'chatops.db'}",
        api_token=SecretStr(TOKEN),
        providers={
            "slack": SlackSettings(bot_token=SecretStr("xoxb-unit"), signing_secret=SecretStr(SECRET))
        },
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    made = Runtime(settings)
    made.store.upgrade()
    yield made
    made.store.close()


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> Flask:
    return create_app(settings)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def drain(runtime: Runtime) -> int:
    """Run the drain as the worker does: the registered Celery task."""
    celery = make_celery(runtime.settings, runtime)
    return int(celery.tasks[AUDIT_DRAIN_TASK].apply().get())


def seed(store: IncidentStore) -> None:
    alice = store.person_for("slack", "U1", "alice", "alice@example.com")
    store.append_audit(
        [
            AuditEntry(
                at=NOW - timedelta(hours=3), outcome=AuditOutcome.OK, source="command", command="declare",
                instance="slack", user_id="U1", actor="alice", incident="INC-1",
            ),
            AuditEntry(
                at=NOW - timedelta(minutes=40), outcome=AuditOutcome.DENIED, source="action", command="close",
                instance="slack", user_id="U2", actor="bob", incident="INC-1",
                reason="`close` needs a manager",
            ),
            AuditEntry(
                at=NOW - timedelta(minutes=5), outcome=AuditOutcome.OK, source="form", command="resolve",
                person_id=alice.id, instance="slack", user_id="U1", actor="alice", incident="INC-1",
            ),
        ]
    )  # fmt: skip


def test_the_audit_trail_newest_first_with_filters(app: Flask, runtime: Runtime) -> None:
    seed(runtime.store)
    client = app.test_client()
    response = client.get("/api/v1/audit", headers=auth())
    assert response.status_code == 200
    records = response.get_json()["records"]
    assert [(r["command"], r["outcome"]) for r in records] == [
        ("resolve", "ok"),
        ("close", "denied"),
        ("declare", "ok"),
    ]
    denied = records[1]
    assert denied["actor"] == "bob" and denied["source"] == "action" and denied["incident"] == "INC-1"
    assert denied["reason"] == "`close` needs a manager" and denied["at"].endswith("Z")
    assert "key" not in denied

    def commands(query: str) -> list[str]:
        answer = client.get(f"/api/v1/audit?{query}", headers=auth())
        assert answer.status_code == 200, answer.get_json()
        return [r["command"] for r in answer.get_json()["records"]]

    assert commands("since=1h") == ["resolve", "close"]
    since = (NOW - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    assert commands(f"since={since}") == ["resolve"]
    assert commands("outcome=denied") == ["close"]
    assert commands("actor=alice@example.com") == ["resolve", "declare"]
    assert commands("actor=slack:U2&outcome=denied") == ["close"]
    assert commands("limit=1") == ["resolve"]


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("since=yesterday", "since must be a duration like 30m"),
        ("outcome=maybe", "outcome must be one of ok|denied|rate_limited|forged|invalid"),
        ("actor=bob", "actor must be a person id"),
        ("limit=0", "limit must be a whole number from 1 to 1000"),
        ("limit=5000", "limit must be a whole number from 1 to 1000"),
    ],
)
def test_bad_parameters_are_400_with_a_clear_message(app: Flask, query: str, said: str) -> None:
    response = app.test_client().get(f"/api/v1/audit?{query}", headers=auth())
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
    assert response.get_json()["message"].startswith(said)


def test_the_audit_trail_takes_the_bearer_token(app: Flask, runtime: Runtime) -> None:
    client = app.test_client()
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit", headers=auth("wrong-token")).status_code == 401
    # Both refusals are themselves recorded (as forged), through the stream.
    assert drain(runtime) == 2
    refused = runtime.store.audit_records()
    assert {(r.outcome, r.source, r.command) for r in refused} == {
        (AuditOutcome.FORGED, "api", "GET /api/v1/audit")
    }


def test_a_forged_webhook_becomes_a_forged_record_after_the_drain(
    app: Flask, runtime: Runtime, redis_client: redis.Redis
) -> None:
    body = slash_command_body(
        command="/im",
        text="close INC-1",
        user_id="U999",
        user_name="mallory",
        channel_id="C42",
        channel_name="incidents",
        response_url="http://127.0.0.1:9/r",
    )
    headers = signed_headers(body, "not-the-secret")
    response = app.test_client().post("/webhooks/slack", data=body, headers=headers)
    assert response.status_code == 401
    assert redis_client.llen("interactive") == 0  # nothing enqueued
    assert runtime.store.audit_records() == []  # the request path wrote nothing to the database
    assert redis_client.xlen(AUDIT_STREAM) == 1

    assert drain(runtime) == 1
    (record,) = runtime.store.audit_records(outcome=AuditOutcome.FORGED)
    assert (record.source, record.instance, record.platform) == ("webhook", "slack", "slack")
    assert (record.user_id, record.actor, record.claimed, record.person_id) == (
        "U999",
        "claimed U999",
        True,
        None,
    )
    assert (record.channel, record.command) == ("incidents", "close")
    assert record.reason is not None and record.reason.startswith("HTTP 401: Slack signature check failed")
    assert SECRET not in record.model_dump_json() and "not-the-secret" not in record.model_dump_json()
    assert runtime.store.find_person("slack", "U999") is None  # a claim makes nobody known
    # The stream is empty, and a second drain appends nothing.
    assert redis_client.xlen(AUDIT_STREAM) == 0
    assert drain(runtime) == 0 and len(runtime.store.audit_records()) == 1


def test_an_entry_drained_twice_is_appended_once(runtime: Runtime, redis_client: redis.Redis) -> None:
    from chatops_core.audit import AuditStream

    stream = AuditStream(redis_client)
    assert stream.add(AuditEntry(outcome=AuditOutcome.FORGED, source="webhook", instance="slack"))
    appended: list[int] = []

    def append_then_stop(entries: object) -> int:
        appended.append(runtime.store.append_audit(entries))  # type: ignore[arg-type]
        raise ConnectionError("cut off before the entry is deleted")

    with pytest.raises(ConnectionError):
        stream.drain(append_then_stop)
    assert appended == [1] and stream.pending() == 1
    assert drain(runtime) == 1  # read again ...
    assert len(runtime.store.audit_records()) == 1  # ... appended once


def test_a_notification_taken_in_and_one_refused_are_recorded(app: Flask, runtime: Runtime) -> None:
    client = app.test_client()
    notification = {
        "type": "incident.created",
        "incident": {
            "id": "INC-7",
            "title": "Disk full",
            "severity": "SEV-2",
            "status": "open",
            "created_at": "2026-11-26T10:00:00Z",
        },
    }
    assert client.post("/api/v1/notifications", json=notification, headers=auth()).status_code == 202
    wrong = {**notification, "type": "incident.exploded"}
    assert client.post("/api/v1/notifications", json=wrong, headers=auth()).status_code == 422
    assert runtime.store.audit_records() == []
    assert drain(runtime) == 2
    refused, taken = runtime.store.audit_records()
    assert (taken.outcome, taken.source, taken.command, taken.incident) == (
        AuditOutcome.OK,
        "api",
        "notify incident.created",
        "INC-7",
    )
    assert taken.actor is not None and taken.actor.startswith("api token")
    assert (refused.outcome, refused.command) == (AuditOutcome.INVALID, "notify")
    assert refused.reason is not None and "incident.exploded" in refused.reason
    assert "Disk full" not in taken.model_dump_json()  # not the body


def test_an_unreachable_redis_drops_the_record_promptly_without_raising() -> None:
    import time

    from chatops_core.audit import AuditStream

    stream = AuditStream.from_url("redis://127.0.0.1:1/0")  # nobody listens there
    started = time.perf_counter()
    assert stream.add(AuditEntry(outcome=AuditOutcome.FORGED, source="webhook")) is False
    assert time.perf_counter() - started < 1.0
