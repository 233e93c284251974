"""An alert on a platform whose thread replies do not show in the channel (Mattermost) is a
post of its own that links the incident's card, through the real delivery path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatops_core.notifications import IncidentSnapshot, Notification
from chatops_core.providers.mattermost.config import MattermostSettings
from chatops_core.settings import Settings
from tests.fakes.mattermost_server import FakeMattermost
from workers.delivery import deliver
from workers.runtime import Runtime


@pytest.fixture
def mm() -> Iterator[FakeMattermost]:
    with FakeMattermost() as server:
        yield server


@pytest.fixture
def runtime(tmp_path: Path, mm: FakeMattermost) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path,
        public_url="https://chatops.example.com",
        providers={
            "mm": MattermostSettings(
                url=mm.url,
                bot_token=mm.token,
                command_token=mm.command_token,
                actions_secret="buttons-key-0123456789abcdefghij",
                team_id=mm.team_id,
                timeout=5,
            )
        },
    )
    rt = Runtime(settings)
    rt.store.upgrade()
    yield rt
    rt.store.close()


def _notification(kind: str) -> Notification:
    snapshot = IncidentSnapshot(
        id="INC-3",
        title="Queue stuck",
        severity="SEV-2",
        status="open",
        created_at=datetime(2026, 12, 6, tzinfo=UTC),
        version=1,
        origin="chat",
    )
    return Notification.model_validate({"type": kind, "incident": snapshot.model_dump(mode="json")})


def test_an_sla_breach_links_the_card_it_is_about(runtime: Runtime, mm: FakeMattermost) -> None:
    first = deliver(runtime, _notification("incident.created"), "n1", "mm", "incidents", slot_taken=True)
    assert first.outcome == "delivered"
    (card,) = mm.posts("incidents")
    breach = deliver(runtime, _notification("incident.sla_breach"), "n2", "mm", "incidents", slot_taken=True)
    assert breach.outcome == "delivered"
    alert = mm.posts("incidents")[-1]
    assert alert["id"] != card["id"] and alert["root_id"] == ""
    assert f"/_redirect/pl/{card['id']}" in alert["message"]
