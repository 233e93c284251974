"""Worker test fixtures: the local server that plays Slack, and a count of Redis round trips."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis.connection import AbstractConnection

from tests.fakes.slack_server import FakeSlack


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the writes to Redis (one per round trip: a pipeline is one write)."""
    sent: list[int] = []
    original = AbstractConnection.send_packed_command

    def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent
