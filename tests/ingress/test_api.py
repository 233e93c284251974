"""The ``/api/v1`` endpoints in-process (Flask test client) against a real Redis broker and SQLite store."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.test import TestResponse

from chatops_core.models import Severity
from chatops_core.notifications import NOTIFICATION_TYPES, Notification
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.publisher import TaskPublisher
from chatops_core.settings import Settings
from chatops_core.state import Action
from chatops_core.store import IncidentStore
from ingress.app import create_app
from tests.celery_messages import task_body

TOKEN = "api-unit-token-5b0e6f1d8c2a"
QUEUE = "notifications"
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        broker_url=redis_url,
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'lazy.db'}",
        api_token=SecretStr(TOKEN),
        incident_url="https://incidents.example.com/incidents/{id}",
        providers={
            "slack": SlackSettings(bot_token=SecretStr("xoxb-unit"), signing_secret=SecretStr("s1")),
            "slack-eu": SlackSettings(bot_token=SecretStr("xoxb-unit-eu"), signing_secret=SecretStr("s2")),
        },
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IncidentStore]:
    incidents = IncidentStore(f"sqlite:///{tmp_path / 'incidents.db'}")
    incidents.upgrade()
    yield incidents
    incidents.close()


@pytest.fixture
def client(settings: Settings, store: IncidentStore, redis_client: redis.Redis) -> Iterator[FlaskClient]:
    app = create_app(settings, store=store)
    with app.test_client() as test_client:
        yield test_client


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def payload(**overrides: Any) -> dict[str, Any]:
    incident = {
        "id": "INC-7",
        "title": "Database timeouts",
        "severity": "SEV-2",
        "status": "open",
        "commander": None,
        "url": None,
        "created_at": "2026-11-26T10:00:00Z",
    }
    incident.update(overrides.pop("incident", {}))
    return {"type": "incident.created", "incident": incident, "channels": None, **overrides}


def post(client: FlaskClient, body: Any, *, headers: dict[str, str] | None = None) -> TestResponse:
    return client.post("/api/v1/notifications", json=body, headers={**auth(), **(headers or {})})


def messages(redis_client: redis.Redis) -> list[dict[str, Any]]:
    """The envelopes on the notifications list, oldest first."""
    return [json.loads(raw) for raw in reversed(redis_client.lrange(QUEUE, 0, -1))]


def task_args(envelope: dict[str, Any]) -> list[Any]:
    args, kwargs, embed = task_body(envelope)
    assert kwargs == {} and embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return list(args)


# --- POST /api/v1/notifications ------------------------------------------------------------


def test_a_notification_becomes_an_ordinary_celery_message(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    response = post(client, payload(incident={"severity": "sev2"}))
    assert response.status_code == 202, response.get_json()
    notification_id = response.get_json()["id"]
    assert notification_id.startswith("ntf_") and response.get_json() == {"id": notification_id}
    (envelope,) = messages(redis_client)
    assert envelope["content-type"] == "application/json"
    assert envelope["headers"]["task"] == "chatops.notify"
    assert envelope["headers"]["id"] == envelope["headers"]["root_id"] == notification_id
    assert envelope["properties"]["correlation_id"] == notification_id
    assert envelope["properties"]["delivery_info"]["routing_key"] == QUEUE
    dumped, task_notification_id = task_args(envelope)
    assert task_notification_id == notification_id
    assert dumped["incident"]["severity"] == "SEV-2"  # "sev2" normalised by the model
    assert dumped["incident"]["created_at"] == "2026-11-26T10:00:00Z"
    assert dumped == Notification.model_validate(payload()).model_dump(mode="json")


def test_channels_naming_configured_instances_are_accepted(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    channels = {"slack": ["#ops"], "slack-eu": ["#ops-eu", "#db"]}
    response = post(client, payload(channels=channels))
    assert response.status_code == 202
    (envelope,) = messages(redis_client)
    assert task_args(envelope)[0]["channels"] == channels


@pytest.mark.parametrize(
    "headers",
    [
        {},
        auth("not-the-token"),
        auth(TOKEN + "x"),
        auth(TOKEN[:-1]),
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer tökén"},
    ],
    ids=["missing", "wrong", "longer", "shorter", "basic", "no_scheme", "empty", "non_ascii"],
)
def test_a_missing_or_wrong_token_is_401_and_enqueues_nothing(
    client: FlaskClient, redis_client: redis.Redis, headers: dict[str, str]
) -> None:
    response = client.post("/api/v1/notifications", json=payload(), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.get_json()
    assert body["error"] == "unauthorized" and body["message"]
    assert redis_client.llen(QUEUE) == 0
    assert client.get("/api/v1/incidents", headers=headers).status_code == 401


def test_the_scheme_is_case_insensitive(client: FlaskClient, redis_client: redis.Redis) -> None:
    response = client.post(
        "/api/v1/notifications", json=payload(), headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert response.status_code == 202
    assert redis_client.llen(QUEUE) == 1


@pytest.mark.parametrize("token", [None, ""])
def test_without_a_configured_token_the_api_is_disabled(
    settings: Settings, store: IncidentStore, redis_client: redis.Redis, token: str | None
) -> None:
    secret = None if token is None else SecretStr(token)
    app = create_app(settings.model_copy(update={"api_token": secret}), store=store)
    with app.test_client() as test_client:
        for response in (
            test_client.post("/api/v1/notifications", json=payload(), headers=auth()),
            test_client.post("/api/v1/notifications", json=payload(), headers=auth("")),
            test_client.get("/api/v1/incidents", headers=auth()),
            test_client.get("/api/v1/incidents/1", headers=auth()),
        ):
            assert response.status_code == 401
            body = response.get_json()
            assert body["error"] == "unauthorized"
            assert "disabled" in body["message"] and "CHATOPS_API_TOKEN" in body["message"]
            assert "api_token" in body["message"]
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize(
    "raw",
    [b'{"type": "incident.created", ', b"", b"\xff\xfe", b'{"a": NaN}', b"[" * 100_000 + b"]" * 100_000],
    ids=["truncated", "empty", "not_utf8", "nan", "too_deep"],
)
def test_unparseable_json_is_400(client: FlaskClient, redis_client: redis.Redis, raw: bytes) -> None:
    response = client.post(
        "/api/v1/notifications", data=raw, headers={**auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_json"
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415(
    client: FlaskClient, redis_client: redis.Redis, content_type: str | None
) -> None:
    headers = auth()
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post("/api/v1/notifications", data=json.dumps(payload()), headers=headers)
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"
    assert redis_client.llen(QUEUE) == 0


def test_a_charset_parameter_is_fine(client: FlaskClient, redis_client: redis.Redis) -> None:
    response = client.post(
        "/api/v1/notifications",
        data=json.dumps(payload()).encode(),
        headers={**auth(), "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 202
    assert redis_client.llen(QUEUE) == 1


def test_a_body_over_the_limit_is_413(client: FlaskClient, redis_client: redis.Redis) -> None:
    big = payload(summary="x" * (1024 * 1024))
    assert post(client, big).status_code == 413
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize("kind", ["incident.exploded", "", 7, None])
def test_an_unknown_type_is_422_naming_the_allowed_types(
    client: FlaskClient, redis_client: redis.Redis, kind: object
) -> None:
    response = post(client, payload(type=kind))
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid_notification"
    for allowed in NOTIFICATION_TYPES:
        assert allowed in body["message"]
    assert [d["loc"] for d in body["details"]] == ["type"]
    assert redis_client.llen(QUEUE) == 0


def test_missing_and_wrong_fields_are_422_with_their_location(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    body = payload(incident={"severity": "SEV-9", "status": "exploded"})
    del body["incident"]["title"]
    del body["incident"]["created_at"]
    response = post(client, body)
    assert response.status_code == 422
    answer = response.get_json()
    assert answer["error"] == "invalid_notification"
    locs = {d["loc"] for d in answer["details"]}
    assert locs == {"incident.title", "incident.severity", "incident.status", "incident.created_at"}
    assert all(d["msg"] for d in answer["details"])
    assert "incident.title" in answer["message"]
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"type": "incident.created"}, "incident"),
        ({**payload(), "surprise": 1}, "surprise"),
        ({**payload(), "channels": {"slack": "#ops"}}, "channels.slack"),
        ([payload()], "body"),
        ("incident.created", "body"),
    ],
    ids=["no_incident", "extra_field", "channels_not_a_list", "a_list", "a_string"],
)
def test_other_schema_errors_are_422(
    client: FlaskClient, redis_client: redis.Redis, body: Any, loc: str
) -> None:
    response = post(client, body)
    assert response.status_code == 422
    assert loc in [d["loc"] for d in response.get_json()["details"]]
    assert redis_client.llen(QUEUE) == 0


def test_channels_naming_an_unknown_instance_is_422_naming_the_configured_ones(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    response = post(client, payload(channels={"slack": ["#ops"], "teams-hq": ["General"]}))
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid_notification"
    assert "teams-hq" in body["message"] and "slack, slack-eu" in body["message"]
    assert body["details"][0]["loc"] == "channels.teams-hq"
    assert redis_client.llen(QUEUE) == 0


# --- Idempotency-Key -----------------------------------------------------------------------


def test_the_same_idempotency_key_twice_enqueues_once_with_one_id(
    client: FlaskClient, settings: Settings, redis_client: redis.Redis
) -> None:
    key = {"Idempotency-Key": "deploy-42:incident.created"}
    first = post(client, payload(), headers=key)
    second = post(client, payload(), headers=key)
    assert first.status_code == second.status_code == 202
    assert second.get_json()["id"] == first.get_json()["id"]
    assert "duplicate" not in first.get_json() and second.get_json()["duplicate"] is True
    (envelope,) = messages(redis_client)
    assert envelope["headers"]["id"] == first.get_json()["id"]
    assert task_args(envelope)[1] == first.get_json()["id"]
    ttl = redis_client.ttl("chatops:idem:notify:deploy-42:incident.created")
    assert 0 < ttl <= settings.dedupe_ttl_seconds


def test_different_idempotency_keys_enqueue_separately(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    first = post(client, payload(), headers={"Idempotency-Key": "a"})
    second = post(client, payload(), headers={"Idempotency-Key": "b"})
    third = post(client, payload())  # no key: never de-duplicated
    fourth = post(client, payload())
    ids = {r.get_json()["id"] for r in (first, second, third, fourth)}
    assert len(ids) == 4
    assert [task_args(e)[1] for e in messages(redis_client)] == [
        r.get_json()["id"] for r in (first, second, third, fourth)
    ]


def test_a_key_of_255_printable_characters_is_fine(client: FlaskClient, redis_client: redis.Redis) -> None:
    key = "".join(chr(c) for c in range(0x21, 0x7F)) * 3
    assert post(client, payload(), headers={"Idempotency-Key": key[:255]}).status_code == 202
    assert redis_client.llen(QUEUE) == 1


@pytest.mark.parametrize("key", ["", "k" * 256, "clé", "a\tb"], ids=["empty", "too_long", "non_ascii", "tab"])
def test_an_invalid_idempotency_key_is_400(client: FlaskClient, redis_client: redis.Redis, key: str) -> None:
    response = post(client, payload(), headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_idempotency_key"
    assert redis_client.llen(QUEUE) == 0


def test_a_key_is_namespaced_apart_from_webhook_dedupe_keys(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    redis_client.set("chatops:dedupe:same", "1")
    assert "duplicate" not in post(client, payload(), headers={"Idempotency-Key": "same"}).get_json()
    assert redis_client.llen(QUEUE) == 1


def test_on_a_broker_other_than_redis_a_key_falls_back_to_a_plain_send(
    settings: Settings, store: IncidentStore
) -> None:
    from kombu import Connection

    memory = TaskPublisher("memory://")
    app = create_app(settings, publisher=memory, store=store)
    with app.test_client() as test_client:
        answers = [post(test_client, payload(), headers={"Idempotency-Key": "k"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202]
    assert "duplicate" not in answers[1].get_json()
    with Connection("memory://") as connection:
        queue = connection.SimpleQueue(QUEUE)
        received = [queue.get(timeout=5).headers["id"] for _ in answers]
        queue.close()
    assert received == [a.get_json()["id"] for a in answers]
    memory.close()


# --- broker down ---------------------------------------------------------------------------


def test_broker_down_is_503_and_logged(
    settings: Settings, store: IncidentStore, caplog: pytest.LogCaptureFixture
) -> None:
    from chatops_core.stack import free_port

    down = TaskPublisher(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(settings, publisher=down, store=store)
    caplog.set_level(logging.DEBUG)
    with app.test_client() as test_client:
        for headers in ({}, {"Idempotency-Key": "k1"}):
            response = post(test_client, payload(), headers=headers)
            assert response.status_code == 503
            assert response.get_json()["error"] == "broker_unavailable"
            assert TOKEN not in response.get_data(as_text=True)
    assert "broker unavailable" in caplog.text
    assert TOKEN not in caplog.text


# --- GET /api/v1/incidents -----------------------------------------------------------------


def declare(store: IncidentStore, title: str, severity: Severity, minutes: float = 0) -> int:
    applied = store.declare(
        title=title,
        severity=severity,
        actor="alice",
        platform="slack",
        instance="slack",
        channel="C1",
        at=at(minutes),
    )
    return applied.incident.number


@pytest.fixture
def incidents(store: IncidentStore) -> dict[str, int]:
    """INC-1 SEV-1 open, INC-2 SEV-2 resolved, INC-3 SEV-3 acknowledged, INC-4 SEV-1 closed."""
    numbers = {
        "db": declare(store, "Database timeouts", Severity.SEV1, 0),
        "cdn": declare(store, "CDN errors", Severity.SEV2, 1),
        "login": declare(store, "Login slow", Severity.SEV3, 2),
        "dns": declare(store, "DNS flapping", Severity.SEV1, 3),
    }
    kw: dict[str, Any] = {"actor": "bob", "platform": "slack", "channel": "C1"}
    store.apply(numbers["cdn"], Action.RESOLVE, at=at(10), note="purged the cache", **kw)
    store.apply(numbers["login"], Action.ACK, at=at(11), **kw)
    store.apply(numbers["dns"], Action.RESOLVE, at=at(12), **kw)
    store.apply(numbers["dns"], Action.CLOSE, at=at(13), **kw)
    return numbers


def get(client: FlaskClient, path: str) -> TestResponse:
    return client.get(path, headers=auth())


def ids(response: TestResponse) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [incident["id"] for incident in response.get_json()["incidents"]]


def test_the_list_shows_open_incidents_newest_first_by_default(
    client: FlaskClient, incidents: dict[str, int]
) -> None:
    assert ids(get(client, "/api/v1/incidents")) == ["INC-3", "INC-1"]
    assert ids(get(client, "/api/v1/incidents?status=open")) == ["INC-3", "INC-1"]
    assert ids(get(client, "/api/v1/incidents?status=all")) == ["INC-4", "INC-3", "INC-2", "INC-1"]
    assert ids(get(client, "/api/v1/incidents?status=ALL")) == ["INC-4", "INC-3", "INC-2", "INC-1"]


@pytest.mark.parametrize("severity", ["sev1", "SEV-1", "p1", "critical", "Sev-1"])
def test_the_list_filters_by_severity_in_any_form(
    client: FlaskClient, incidents: dict[str, int], severity: str
) -> None:
    assert ids(get(client, f"/api/v1/incidents?severity={severity}")) == ["INC-1"]
    assert ids(get(client, f"/api/v1/incidents?severity={severity}&status=all")) == ["INC-4", "INC-1"]


def test_the_list_honours_the_limit(client: FlaskClient, incidents: dict[str, int]) -> None:
    assert ids(get(client, "/api/v1/incidents?status=all&limit=1")) == ["INC-4"]
    assert ids(get(client, "/api/v1/incidents?status=all&limit=200")) == ["INC-4", "INC-3", "INC-2", "INC-1"]


def test_an_empty_list(client: FlaskClient) -> None:
    assert ids(get(client, "/api/v1/incidents?status=all")) == []


@pytest.mark.parametrize(
    "query",
    ["status=resolved", "status=", "severity=sev9", "severity=high", "severity=", "limit=0", "limit=201",
     "limit=-1", "limit=abc", "limit=1.5", "limit=", "limit=%D9%A3", "limit=0000050"],
)  # fmt: skip
def test_bad_list_parameters_are_400(client: FlaskClient, incidents: dict[str, int], query: str) -> None:
    response = get(client, f"/api/v1/incidents?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_request" and body["message"]


def test_a_limit_of_thousands_of_digits_is_400(client: FlaskClient) -> None:
    assert get(client, "/api/v1/incidents?limit=" + "9" * 5000).status_code == 400


def test_list_entries_carry_the_latest_twenty_timeline_entries(
    client: FlaskClient, store: IncidentStore, incidents: dict[str, int]
) -> None:
    for i in range(25):
        store.apply(
            incidents["db"],
            Action.NOTE,
            actor="carol",
            platform="slack",
            channel="C9",
            at=at(20 + i),
            note=f"n{i}",
        )
    (first, *_) = [i for i in get(client, "/api/v1/incidents").get_json()["incidents"] if i["id"] == "INC-1"]
    timeline = first["timeline"]
    assert len(timeline) == 20
    assert [entry["text"] for entry in timeline] == [f"n{i}" for i in range(5, 25)]
    assert timeline[-1] == {
        "at": "2026-11-26T10:44:00Z",
        "kind": "note",
        "actor": "carol",
        "platform": "slack",
        "channel": "C9",
        "text": "n24",
    }
    full = get(client, "/api/v1/incidents/INC-1").get_json()["timeline"]
    assert len(full) == 26 and full[0]["kind"] == "declared"


@pytest.mark.parametrize("ref", ["INC-2", "inc-2", "2", "%232"])
def test_one_incident_with_its_timeline(client: FlaskClient, incidents: dict[str, int], ref: str) -> None:
    response = get(client, f"/api/v1/incidents/{ref}")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "id": "INC-2",
        "number": 2,
        "title": "CDN errors",
        "severity": "SEV-2",
        "status": "resolved",
        "commander": None,
        "description": None,
        "resolution": "purged the cache",
        "declared_by": "alice",
        "platform": "slack",
        "channel": None,
        "url": "https://incidents.example.com/incidents/INC-2",
        "created_at": "2026-11-26T10:01:00Z",
        "updated_at": "2026-11-26T10:10:00Z",
        "acknowledged_at": None,
        "mitigated_at": None,
        "resolved_at": "2026-11-26T10:10:00Z",
        "closed_at": None,
        "version": 2,
        "timeline": [
            {
                "at": "2026-11-26T10:01:00Z",
                "kind": "declared",
                "actor": "alice",
                "platform": "slack",
                "channel": "C1",
                "text": "Declared by alice: CDN errors",
            },
            {
                "at": "2026-11-26T10:10:00Z",
                "kind": "resolved",
                "actor": "bob",
                "platform": "slack",
                "channel": "C1",
                "text": "Resolved by bob: purged the cache",
            },
        ],
    }


def test_an_incident_with_its_own_channel(
    client: FlaskClient, store: IncidentStore, incidents: dict[str, int]
) -> None:
    store.set_channel(incidents["db"], channel_id="C0INC1", channel_name="inc-1-database-timeouts")
    body = get(client, "/api/v1/incidents/1").get_json()
    assert body["channel"] == {"instance": "slack", "id": "C0INC1", "name": "inc-1-database-timeouts"}
    listed = get(client, "/api/v1/incidents?severity=sev1").get_json()["incidents"]
    assert listed[0]["channel"] == body["channel"]


def test_an_unknown_incident_is_404(client: FlaskClient, incidents: dict[str, int]) -> None:
    response = get(client, "/api/v1/incidents/INC-999")
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "not_found" and "INC-999" in body["message"]


@pytest.mark.parametrize("ref", ["abc", "INC-0", "0", "INC-x", "-1", "INC-1.5", "INC-１x"])
def test_a_bad_incident_id_is_400(client: FlaskClient, incidents: dict[str, int], ref: str) -> None:
    response = get(client, f"/api/v1/incidents/{ref}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_request" and "INC-12" in body["message"]


def test_reads_change_nothing(client: FlaskClient, store: IncidentStore, incidents: dict[str, int]) -> None:
    before = [store.get(n) for n in incidents.values()], [store.timeline(n) for n in incidents.values()]
    get(client, "/api/v1/incidents?status=all")
    for number in incidents.values():
        get(client, f"/api/v1/incidents/{number}")
    assert (
        [store.get(n) for n in incidents.values()],
        [store.timeline(n) for n in incidents.values()],
    ) == before


def test_a_database_without_its_schema_is_503(
    settings: Settings, tmp_path: Path, redis_client: redis.Redis
) -> None:
    empty = IncidentStore(f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(settings, store=empty)
    with app.test_client() as test_client:
        for path in ("/api/v1/incidents", "/api/v1/incidents/1"):
            response = get(test_client, path)
            assert response.status_code == 503
            assert response.get_json()["error"] == "database_unavailable"
    empty.close()


def test_the_store_is_built_lazily_and_shared_with_readyz(
    settings: Settings, tmp_path: Path, redis_client: redis.Redis
) -> None:
    database = tmp_path / "lazy.db"
    app = create_app(settings)
    with app.test_client() as test_client:
        assert post(test_client, payload()).status_code == 202
        assert not database.exists()  # the notification path never opens the database
        assert test_client.get("/readyz").status_code == 503  # no schema: nothing could be written
        IncidentStore(settings.effective_database_url()).upgrade()
        assert test_client.get("/readyz").status_code == 200
        assert ids(get(test_client, "/api/v1/incidents")) == []


# --- the token stays secret ----------------------------------------------------------------


def test_the_token_never_shows_in_logs_or_answers(
    client: FlaskClient, incidents: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [
        post(client, payload()),
        post(client, payload(), headers={"Idempotency-Key": "x"}),
        post(client, payload(), headers={"Idempotency-Key": "x"}),
        post(client, payload(type="nope")),
        post(client, {"incident": TOKEN}),
        client.post("/api/v1/notifications", json=payload(), headers=auth(TOKEN + "0")),
        client.post("/api/v1/notifications", json=payload(), headers={"Authorization": f"Basic {TOKEN}"}),
        get(client, "/api/v1/incidents"),
        get(client, "/api/v1/incidents/INC-1"),
        client.get("/api/v1/incidents", headers=auth(TOKEN[:10])),
    ]
    assert [a.status_code for a in answers] == [202, 202, 202, 422, 422, 401, 401, 200, 200, 401]
    for answer in answers:
        assert TOKEN not in answer.get_data(as_text=True)
        assert all(TOKEN not in value for value in answer.headers.values())
    assert "unauthorized" in caplog.text
    assert TOKEN not in caplog.text
