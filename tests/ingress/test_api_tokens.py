"""Scoped API tokens: each scope against each endpoint, the older ``api_token``, and ``/metrics``
behind its own token. In-process (Flask test client) against a real Redis broker and SQLite."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.test import TestResponse

from chatops_core.api_tokens import ApiSettings, ApiTokenSettings, Scope, hash_token
from chatops_core.cli import main
from chatops_core.models import Severity
from chatops_core.settings import Settings, load_settings
from chatops_core.store import IncidentStore
from ingress.api import required_scope
from ingress.app import create_app

QUEUE = "notifications"
TOKENS = {
    "notify": "notify-token-8f1c2d9e0a7b6c5d4e3f2a1b0c9d8e7f",
    "read": "read-token-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
    "admin": "admin-token-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
    "both": "both-token-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
}
SCOPES = {"notify": ["notify"], "read": ["read"], "admin": ["admin"], "both": ["notify", "read"]}
LEGACY = "legacy-api-token-4d3c2b1a0f9e8d7c"
METRICS = "metrics-token-7a6b5c4d3e2f1a0b9c8d"


def api_settings(**extra: Any) -> ApiSettings:
    return ApiSettings(
        tokens={
            name: ApiTokenSettings(hash=hash_token(TOKENS[name]), scopes=scopes)
            for name, scopes in SCOPES.items()
        },
        **extra,
    )


def make_settings(redis_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "broker_url": redis_url,
        "data_dir": tmp_path,
        "database_url": f"sqlite:///{tmp_path / 'lazy.db'}",
        "api_token": SecretStr(LEGACY),
        "api": api_settings(),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IncidentStore]:
    incidents = IncidentStore(f"sqlite:///{tmp_path / 'incidents.db'}")
    incidents.upgrade()
    incidents.declare(
        title="Database timeouts",
        severity=Severity.SEV2,
        actor="alice",
        platform="slack",
        instance="slack",
        channel="C1",
        at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    )
    yield incidents
    incidents.close()


@pytest.fixture
def client(
    redis_url: str, tmp_path: Path, store: IncidentStore, redis_client: redis.Redis
) -> Iterator[FlaskClient]:
    with create_app(make_settings(redis_url, tmp_path), store=store).test_client() as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


NOTIFICATION = {
    "type": "incident.created",
    "incident": {
        "id": "INC-7",
        "title": "Database timeouts",
        "severity": "SEV-2",
        "status": "open",
        "created_at": "2026-11-26T10:00:00Z",
    },
}


def call(client: FlaskClient, endpoint: str, headers: dict[str, str]) -> TestResponse:
    if endpoint == "notify":
        return client.post("/api/v1/notifications", json=NOTIFICATION, headers=headers)
    if endpoint == "list":
        return client.get("/api/v1/incidents", headers=headers)
    return client.get("/api/v1/incidents/INC-1", headers=headers)


ENDPOINTS = {"notify": Scope.NOTIFY, "list": Scope.READ, "one": Scope.READ}
ALLOWED = {
    "notify": {"notify"},
    "read": {"list", "one"},
    "admin": {"notify", "list", "one"},
    "both": {"notify", "list", "one"},
}


def assert_allowed(endpoint: str, response: TestResponse) -> None:
    if endpoint == "notify":
        assert response.status_code == 202, response.get_json()
        assert response.get_json()["id"]
    elif endpoint == "list":
        assert response.status_code == 200, response.get_json()
        assert [i["id"] for i in response.get_json()["incidents"]] == ["INC-1"]
    else:
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["title"] == "Database timeouts"


@pytest.mark.parametrize("token", sorted(TOKENS))
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_each_scope_against_each_endpoint(
    client: FlaskClient, redis_client: redis.Redis, token: str, endpoint: str
) -> None:
    response = call(client, endpoint, bearer(TOKENS[token]))
    if endpoint in ALLOWED[token]:
        assert_allowed(endpoint, response)
        assert redis_client.llen(QUEUE) == (1 if endpoint == "notify" else 0)
        return
    assert response.status_code == 403
    body = response.get_json()
    needed = ENDPOINTS[endpoint].value
    assert body["error"] == "forbidden" and body["scope"] == needed
    assert f"`{needed}` scope" in body["message"]
    assert TOKENS[token] not in response.get_data(as_text=True)
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_the_older_api_token_keeps_every_scope(
    client: FlaskClient, redis_client: redis.Redis, endpoint: str
) -> None:
    assert_allowed(endpoint, call(client, endpoint, bearer(LEGACY)))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("not-a-configured-token"),
        bearer(TOKENS["admin"][:-1]),
        bearer(hash_token(TOKENS["admin"])),  # the configured hash is not the token
        {"Authorization": f"Basic {TOKENS['admin']}"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "unknown", "truncated", "the_hash_itself", "other_scheme", "empty"],
)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_missing_or_unknown_token_is_401_on_every_endpoint(
    client: FlaskClient, redis_client: redis.Redis, headers: dict[str, str], endpoint: str
) -> None:
    response = call(client, endpoint, headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["error"] == "unauthorized"
    presented = headers.get("Authorization", "").partition(" ")[2].strip()
    if presented:
        assert presented not in response.get_data(as_text=True)
    assert redis_client.llen(QUEUE) == 0


def test_named_tokens_alone_enable_the_api(
    redis_url: str, tmp_path: Path, store: IncidentStore, redis_client: redis.Redis
) -> None:
    settings = make_settings(redis_url, tmp_path, api_token=None)
    with create_app(settings, store=store).test_client() as test_client:
        assert_allowed("list", call(test_client, "list", bearer(TOKENS["read"])))
        assert call(test_client, "list", bearer(LEGACY)).status_code == 401


def test_with_no_token_of_any_kind_the_api_is_disabled_and_says_how_to_enable_it(
    redis_url: str, tmp_path: Path, store: IncidentStore, redis_client: redis.Redis
) -> None:
    settings = make_settings(redis_url, tmp_path, api_token=None, api=ApiSettings())
    with create_app(settings, store=store).test_client() as test_client:
        response = call(test_client, "list", bearer(TOKENS["admin"]))
    assert response.status_code == 401
    message = response.get_json()["message"]
    assert "disabled" in message and "[api.tokens.<name>]" in message and "chatops tokens new" in message


def test_every_use_is_logged_with_the_token_name_never_the_token(
    client: FlaskClient, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="chatops.ingress.api"):
        call(client, "list", bearer(TOKENS["read"]))
        call(client, "notify", bearer(TOKENS["read"]))
        call(client, "one", bearer(LEGACY))
        call(client, "list", bearer("someone-guessing-0000"))
    lines = [record.getMessage() for record in caplog.records]
    assert "api: GET /api/v1/incidents by token read" in lines
    assert "api: refused POST /api/v1/notifications to token read: it lacks scope notify" in lines
    assert "api: GET /api/v1/incidents/INC-1 by token api_token" in lines
    assert "api: refused GET /api/v1/incidents: unauthorized" in lines
    for secret in (*TOKENS.values(), LEGACY, "someone-guessing-0000"):
        assert secret not in caplog.text


def test_views_not_named_by_a_scope_need_admin() -> None:
    """The audit trail names people and what they were refused: ``admin`` only; so is any
    endpoint added later until it is given a narrower scope."""
    assert required_scope("api_v1.notify") is Scope.NOTIFY
    assert required_scope("api_v1.list_incidents") is Scope.READ
    assert required_scope("api_v1.get_incident") is Scope.READ
    assert required_scope("api_v1.audit") is Scope.ADMIN
    assert required_scope("api_v1.list_audit") is Scope.ADMIN
    assert required_scope(None) is Scope.ADMIN


def test_a_minted_token_pasted_into_the_configuration_opens_its_scopes(
    redis_url: str,
    tmp_path: Path,
    store: IncidentStore,
    redis_client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["tokens", "new", "incident-system", "--scope", "notify"]) == 0
    out = capsys.readouterr().out
    token = re.search(r"^    (\S+)$", out, re.MULTILINE)
    assert token is not None
    config = tmp_path / "chatops.toml"
    config.write_text(f'[chatops]\nbroker_url = "{redis_url}"\n\n' + out[out.index("[api.tokens.") :])
    settings = load_settings(config, environ={})
    with create_app(settings, store=store).test_client() as test_client:
        assert_allowed("notify", call(test_client, "notify", bearer(token.group(1))))
        assert call(test_client, "list", bearer(token.group(1))).status_code == 403


# --- /metrics ------------------------------------------------------------------------------


def test_metrics_stay_open_without_a_metrics_token(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "# TYPE" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-metrics-token"), bearer(TOKENS["admin"]), bearer(LEGACY), {"Authorization": METRICS}],
    ids=["missing", "wrong", "admin_api_token", "older_api_token", "no_scheme"],
)
def test_metrics_with_a_metrics_token_refuse_any_other(
    redis_url: str, tmp_path: Path, store: IncidentStore, headers: dict[str, str]
) -> None:
    settings = make_settings(redis_url, tmp_path, api=api_settings(metrics_token_hash=hash_token(METRICS)))
    with create_app(settings, store=store).test_client() as test_client:
        response = test_client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["error"] == "unauthorized"
    assert "# TYPE" not in response.get_data(as_text=True)


def test_metrics_with_a_metrics_token_answer_it(redis_url: str, tmp_path: Path, store: IncidentStore) -> None:
    settings = make_settings(redis_url, tmp_path, api=api_settings(metrics_token_hash=hash_token(METRICS)))
    with create_app(settings, store=store).test_client() as test_client:
        response = test_client.get("/metrics", headers=bearer(METRICS))
        assert test_client.get("/healthz").status_code == 200  # the other endpoints stay as they were
    assert response.status_code == 200
    assert "# TYPE" in response.get_data(as_text=True)
