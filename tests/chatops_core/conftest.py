"""Store fixtures: each store test runs on SQLite, and on PostgreSQL when CHATOPS_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops_core.store import IncidentStore
from tests.postgres_schema import PG_ENV, postgres_schema


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not os.environ.get(PG_ENV), reason=f"set {PG_ENV} to run the store tests on PostgreSQL"
                ),
            ],
        ),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a schema of its own in the PostgreSQL database."""
    if request.param == "sqlite":
        # The parent directory does not exist yet: the store creates it.
        yield f"sqlite:///{tmp_path / 'var' / 'chatops.db'}"
        return
    with postgres_schema("test_store") as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A schema of its own in the PostgreSQL database, for what only PostgreSQL does."""
    if not os.environ.get(PG_ENV):
        pytest.skip(f"set {PG_ENV} to run the store tests on PostgreSQL")
    with postgres_schema("test_store") as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[IncidentStore]:
    """A store at the newest revision, on the backend ``database_url`` names."""
    s = IncidentStore(database_url)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    """The environment `chatops` reads: a new SQLite database (no schema yet) and the test Redis."""
    url = f"sqlite:///{tmp_path / 'chatops.db'}"
    monkeypatch.delenv("CHATOPS_CONFIG", raising=False)
    monkeypatch.setenv("CHATOPS_DATABASE_URL", url)
    monkeypatch.setenv("CHATOPS_BROKER_URL", redis_url)
    return url


@pytest.fixture
def db(cli_database: str) -> Iterator[IncidentStore]:
    """The store the command works on, at the newest revision."""
    s = IncidentStore(cli_database)
    s.upgrade()
    yield s
    s.close()
