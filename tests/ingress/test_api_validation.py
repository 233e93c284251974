"""What ``POST /api/v1/notifications`` refuses (422, saying what is wrong) and what it cuts for
display, in-process against a real Redis broker: every field that ends up in a chat message
is checked against its form and size before anything is enqueued."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.test import TestResponse

from chatops_core.providers.slack.config import SlackSettings
from chatops_core.settings import Settings
from ingress.app import create_app
from tests.celery_messages import task_body

TOKEN = "api-validation-token-7f3a9c"
QUEUE = "notifications"


@pytest.fixture
def client(redis_url: str, tmp_path: Path, redis_client: redis.Redis) -> Iterator[FlaskClient]:
    settings = Settings(
        broker_url=redis_url,
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        api_token=SecretStr(TOKEN),
        providers={"slack": SlackSettings(bot_token=SecretStr("xoxb-unit"), signing_secret=SecretStr("s1"))},
    )
    with create_app(settings).test_client() as test_client:
        yield test_client


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


def post(client: FlaskClient, body: Any) -> TestResponse:
    return client.post("/api/v1/notifications", json=body, headers={"Authorization": f"Bearer {TOKEN}"})


def enqueued(redis_client: redis.Redis) -> list[dict[str, Any]]:
    """The notifications enqueued, oldest first."""
    envelopes = [json.loads(raw) for raw in reversed(redis_client.lrange(QUEUE, 0, -1))]
    return [task_body(envelope)[0][0] for envelope in envelopes]


def refused(response: TestResponse, loc: str) -> str:
    """The message of a 422 that names ``loc``."""
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_notification"
    assert loc in [d["loc"] for d in body["details"]], body
    return str(body["message"])


@pytest.mark.parametrize(
    "incident_id", ["EXT-<!channel>", "INC 7", "INC-7|x", "é-1", "x" * 61], ids=lambda v: v[:12]
)
def test_an_incident_id_outside_its_form_is_422(
    client: FlaskClient, redis_client: redis.Redis, incident_id: str
) -> None:
    message = refused(post(client, payload(incident={"id": incident_id})), "incident.id")
    assert "letters, digits" in message
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize("incident_id", ["INC-7", "ext.ops:42", "PAY_2026-11-26.3", "x" * 60])
def test_ids_of_letters_digits_and_separators_are_accepted(
    client: FlaskClient, redis_client: redis.Redis, incident_id: str
) -> None:
    assert post(client, payload(incident={"id": incident_id})).status_code == 202


def test_a_channel_id_with_markup_is_422(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = payload(incident={"channel_instance": "slack", "channel_id": "C1>|<!channel"})
    refused(post(client, body), "incident.channel_id")
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize("channel", ["C1>|<!channel", "#ops <!here>", "#", "", "#" + "a" * 81])
def test_a_target_channel_outside_its_form_is_422(
    client: FlaskClient, redis_client: redis.Redis, channel: str
) -> None:
    message = refused(post(client, payload(channels={"slack": [channel]})), "channels")
    assert "#name" in message
    assert redis_client.llen(QUEUE) == 0


def test_at_most_fifty_target_channels(client: FlaskClient, redis_client: redis.Redis) -> None:
    fifty = [f"#ops-{i}" for i in range(50)]
    assert post(client, payload(channels={"slack": fifty})).status_code == 202
    message = refused(post(client, payload(channels={"slack": [*fifty, "#one-more"]})), "channels")
    assert "at most 50 target channels" in message
    assert redis_client.llen(QUEUE) == 1


@pytest.mark.parametrize("version", [2**63, 2**31, 0, -1])
def test_a_version_the_store_cannot_keep_is_422(
    client: FlaskClient, redis_client: redis.Redis, version: int
) -> None:
    refused(post(client, payload(incident={"version": version})), "incident.version")
    assert redis_client.llen(QUEUE) == 0


def test_the_largest_version_is_accepted(client: FlaskClient, redis_client: redis.Redis) -> None:
    assert post(client, payload(incident={"version": 2**31 - 1})).status_code == 202


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (payload(actor="a" * 101), "actor"),
        (payload(incident={"commander": "c" * 101}), "incident.commander"),
    ],
    ids=["actor", "commander"],
)
def test_names_over_a_hundred_characters_are_422(
    client: FlaskClient, redis_client: redis.Redis, body: dict[str, Any], loc: str
) -> None:
    message = refused(post(client, body), loc)
    assert "100" in message
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize(
    "incident",
    [
        {"commander_instance": "slack", "commander_user_id": "U1>|<!channel"},
        {"commander_instance": "Slack <x>", "commander_user_id": "U123"},
    ],
    ids=["user_id", "instance"],
)
def test_a_commander_reference_with_markup_is_422(
    client: FlaskClient, redis_client: redis.Redis, incident: dict[str, Any]
) -> None:
    assert post(client, payload(incident=incident)).status_code == 422
    assert redis_client.llen(QUEUE) == 0


def test_only_the_service_marks_an_incident_as_declared_in_chat(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    message = refused(post(client, payload(incident={"origin": "chat"})), "incident.origin")
    assert "set by the service" in message
    assert redis_client.llen(QUEUE) == 0
    assert post(client, payload()).status_code == 202
    (notification,) = enqueued(redis_client)
    assert notification["incident"]["origin"] == "external"


def test_a_long_summary_is_cut_for_display_not_refused(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    assert post(client, payload(summary="s" * 2500)).status_code == 202
    (notification,) = enqueued(redis_client)
    assert len(notification["summary"]) == 2000 and notification["summary"].endswith("s…")
