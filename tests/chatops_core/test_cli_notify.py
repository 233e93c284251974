"""`chatops notify`: announce an incident as it stands, against a SQLite store and a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from chatops_core.cli import main
from chatops_core.models import Severity
from chatops_core.stack import EMBEDDED_BROKER_FILE
from chatops_core.state import Action
from chatops_core.store import IncidentStore
from chatops_core.tasks import NOTIFICATIONS_QUEUE, NOTIFY_TASK
from tests.celery_messages import queued


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    c = redis.Redis.from_url(redis_url)
    c.flushdb()
    return c


def declare(db: IncidentStore, title: str = "Database timeouts") -> int:
    applied = db.declare(
        title=title,
        severity=Severity.SEV2,
        actor="U1",
        platform="slack",
        instance="slack",
        channel="C1",
        at=datetime.now(UTC),
    )
    return applied.incident.number


def test_notify_enqueues_the_incident_as_it_stands(
    db: IncidentStore, client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    number = declare(db)
    db.apply(number, Action.ACK, actor="U2", platform="slack", channel="C1", at=datetime.now(UTC))
    assert main(["notify", f"INC-{number}", "--type", "incident.acknowledged"]) == 0
    out = capsys.readouterr().out
    ((task, args, _kwargs),) = queued(client, NOTIFICATIONS_QUEUE)
    assert task == NOTIFY_TASK
    payload, notification_id = args
    assert f"as {notification_id}" in out and f"INC-{number}" in out
    assert payload["type"] == "incident.acknowledged"
    assert payload["incident"]["id"] == f"INC-{number}"
    assert payload["incident"]["status"] == "acknowledged"
    assert payload["incident"]["severity"] == "SEV-2"
    assert payload["channels"] is None


def test_notify_to_chosen_channels(db: IncidentStore, client: redis.Redis) -> None:
    number = declare(db)
    argv = ["notify", str(number), "--type", "incident.updated", "--channel", "slack:#war-room"]
    assert main([*argv, "--channel", "slack:#exec", "--summary", "Failover done"]) == 0
    ((_, (payload, _nid), _),) = queued(client, NOTIFICATIONS_QUEUE)
    assert payload["channels"] == {"slack": ["#war-room", "#exec"]}
    assert payload["summary"] == "Failover done"


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["notify", "INC-99", "--type", "incident.created"], 1, "INC-99"),
        (["notify", "twelve", "--type", "incident.created"], 2, "not an incident id"),
        (["notify", "1", "--type", "incident.created", "--channel", "#incidents"], 2, "INSTANCE:CHANNEL"),
    ],
)
def test_notify_wrong_input_enqueues_nothing(
    db: IncidentStore,
    client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    says: str,
) -> None:
    declare(db)
    assert main(argv) == code
    assert says in capsys.readouterr().err
    assert queued(client, NOTIFICATIONS_QUEUE) == []


def test_notify_refuses_an_unknown_type(db: IncidentStore, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["notify", "1", "--type", "incident.exploded"])
    assert exit_.value.code == 2
    assert "incident.created" in capsys.readouterr().err


def test_notify_finds_the_broker_of_a_running_stack(
    db: IncidentStore,
    client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `chatops run` with its embedded Redis leaves the URL in the data directory.
    monkeypatch.delenv("CHATOPS_BROKER_URL")
    monkeypatch.setenv("CHATOPS_DATA_DIR", str(tmp_path / "var"))
    number = declare(db)
    assert main(["notify", str(number), "--type", "incident.created"]) == 2  # no broker known yet
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / EMBEDDED_BROKER_FILE).write_text(redis_url + "\n")
    assert main(["notify", str(number), "--type", "incident.created"]) == 0
    assert len(queued(client, NOTIFICATIONS_QUEUE)) == 1
