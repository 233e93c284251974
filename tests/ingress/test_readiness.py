"""``/readyz`` is 200 only when the service could do its work: the broker takes messages and
the incident database can be written. A SQLite database whose file vanished is an error,
never a fresh empty database."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy.exc import SQLAlchemyError

from chatops_core.models import Severity
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.settings import Settings
from chatops_core.store import IncidentStore
from ingress.app import create_app


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def store(data: Path) -> Iterator[IncidentStore]:
    created = IncidentStore(f"sqlite:///{data / 'chatops.db'}")
    created.upgrade()
    yield created
    created.close()


def settings_for(redis_url: str, data: Path) -> Settings:
    return Settings(
        broker_url=redis_url,
        data_dir=data,
        database_url=f"sqlite:///{data / 'chatops.db'}",
        providers={"slack": SlackSettings(bot_token="xoxb-unit", signing_secret="s")},
    )


def readyz(client: FlaskClient) -> tuple[int, dict[str, str]]:
    response = client.get("/readyz")
    return response.status_code, response.get_json()["checks"]


def declare(store: IncidentStore) -> int:
    applied = store.declare(
        title="Database timeouts",
        severity=Severity.SEV2,
        actor="alice",
        platform="slack",
        instance="slack",
        channel="C1",
        at=datetime.now(UTC),
    )
    return applied.incident.number


def test_ready_when_broker_and_a_writable_database_answer(
    redis_url: str, data: Path, store: IncidentStore, redis_client: redis.Redis
) -> None:
    with create_app(settings_for(redis_url, data)).test_client() as client:
        assert readyz(client) == (200, {"broker": "ok", "database": "ok"})


def test_a_database_that_cannot_be_written_is_not_ready(
    redis_url: str, data: Path, store: IncidentStore, redis_client: redis.Redis
) -> None:
    declare(store)
    read_only = IncidentStore(f"sqlite:///file:{data / 'chatops.db'}?mode=ro&uri=true")
    try:
        read_only.get(1)  # it answers reads
        with create_app(settings_for(redis_url, data), store=read_only).test_client() as client:
            assert readyz(client) == (503, {"broker": "ok", "database": "unavailable"})
    finally:
        read_only.close()


def test_a_database_without_its_schema_is_not_ready(
    redis_url: str, tmp_path: Path, data: Path, redis_client: redis.Redis
) -> None:
    empty = IncidentStore(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with create_app(settings_for(redis_url, data), store=empty).test_client() as client:
            assert readyz(client) == (503, {"broker": "ok", "database": "unavailable"})
    finally:
        empty.close()


def test_a_database_whose_directory_is_deleted_is_an_error_not_a_fresh_one(
    redis_url: str, data: Path, store: IncidentStore, redis_client: redis.Redis
) -> None:
    declare(store)
    with create_app(settings_for(redis_url, data), store=store).test_client() as client:
        assert readyz(client)[0] == 200
        shutil.rmtree(data)  # `rm -rf var/` under a running service
        with pytest.raises(SQLAlchemyError):
            declare(store)
        with pytest.raises(SQLAlchemyError):
            store.get(1)
        assert readyz(client) == (503, {"broker": "ok", "database": "unavailable"})
    assert not (data / "chatops.db").exists(), "no empty database took the lost one's place"


def test_a_database_file_replaced_under_the_store_is_not_written_blindly(
    data: Path, store: IncidentStore
) -> None:
    declare(store)
    database = data / "chatops.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.write_bytes(b"")  # something else now sits at the path
    with pytest.raises(SQLAlchemyError):
        declare(store)


def test_a_new_database_is_still_created_on_purpose(tmp_path: Path) -> None:
    fresh = IncidentStore(f"sqlite:///{tmp_path / 'new' / 'chatops.db'}")
    try:
        fresh.upgrade()
        assert declare(fresh) == 1
        fresh.ping()
    finally:
        fresh.close()


def test_a_write_lock_held_elsewhere_is_not_ready_within_a_bounded_wait(
    redis_url: str, data: Path, store: IncidentStore, redis_client: redis.Redis
) -> None:
    holder = sqlite3.connect(data / "chatops.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process mid-write, and stuck there
        with create_app(settings_for(redis_url, data), store=store).test_client() as client:
            started = time.monotonic()
            assert readyz(client) == (503, {"broker": "ok", "database": "unavailable"})
            assert time.monotonic() - started < 5.0  # not the 30 s a command would wait
            holder.execute("ROLLBACK")
            assert readyz(client)[0] == 200
    finally:
        holder.close()
