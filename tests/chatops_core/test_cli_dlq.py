"""`chatops dlq`: list, replay and drop dead letters, against a SQLite store and a real Redis."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import redis

from chatops_core.cli import main
from chatops_core.store import IncidentStore
from chatops_core.tasks import COMMAND_TASK, DELIVER_TASK, INTERACTIVE_QUEUE, NOTIFICATIONS_QUEUE
from tests.celery_messages import queued

DELIVER_ARGS: list[Any] = [
    "slack",
    "#incidents",
    {"type": "incident.created", "incident": {"id": "INC-7", "title": "DB down"}},
    "n-1:slack:#incidents",
]


def add(db: IncidentStore, task_name: str = DELIVER_TASK, **kw: Any) -> int:
    values: dict[str, Any] = {
        "args": DELIVER_ARGS,
        "kwargs": {},
        "reason": "channel_not_found:\nno such channel",
        "attempts": 9,
        "notification_id": "n-1",
        "target": "slack/#incidents",
    }
    values.update(kw)
    return db.add_dead_letter(task_name=task_name, **values)


def test_list(db: IncidentStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list"]) == 0
    assert capsys.readouterr().out == "no dead letters\n"

    first = add(db)
    second = add(db, COMMAND_TASK, args=[{"text": "ack"}], reason="boom", attempts=1, target=None)
    assert main(["dlq", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    letter = db.dead_letter(first)
    assert letter is not None
    assert lines[0].split("\t") == [
        str(first),
        letter.created_at.isoformat(timespec="seconds"),
        DELIVER_TASK,
        "slack/#incidents",
        "attempts=9",
        "channel_not_found: no such channel",
    ]
    assert lines[1].split("\t")[0] == str(second)
    assert lines[1].split("\t")[2:] == [COMMAND_TASK, "-", "attempts=1", "boom"]


def test_replay_one_enqueues_it_and_drops_the_row(
    db: IncidentStore, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    letter_id = add(db, kwargs={"hint": 1})
    other = add(db)
    assert main(["dlq", "replay", str(letter_id)]) == 0

    assert redis_client.llen(NOTIFICATIONS_QUEUE) == 1
    assert queued(redis_client, NOTIFICATIONS_QUEUE) == [(DELIVER_TASK, DELIVER_ARGS, {"hint": 1})]
    assert db.dead_letter(letter_id) is None
    assert db.dead_letter(other) is not None
    out = capsys.readouterr().out
    assert f"replayed dead letter {letter_id}: {DELIVER_TASK} on queue {NOTIFICATIONS_QUEUE}" in out


def test_replay_all_puts_each_task_on_its_queue(
    db: IncidentStore, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    deliver = add(db)
    command = add(db, COMMAND_TASK, args=[{"text": "ack"}])
    unknown = add(db, "chatops.no_such_task", args=[1])
    notify = add(db, "chatops.notify", args=[{"type": "incident.created"}, "n-2"])

    # A task no queue serves is kept and makes the exit status 1; the others go.
    assert main(["dlq", "replay", "--all"]) == 1
    assert queued(redis_client, NOTIFICATIONS_QUEUE) == [
        (DELIVER_TASK, DELIVER_ARGS, {}),
        ("chatops.notify", [{"type": "incident.created"}, "n-2"], {}),
    ]
    assert queued(redis_client, INTERACTIVE_QUEUE) == [(COMMAND_TASK, [{"text": "ack"}], {})]
    assert [d.id for d in db.dead_letters()] == [unknown]
    captured = capsys.readouterr()
    for letter_id in (deliver, command, notify):
        assert f"replayed dead letter {letter_id}:" in captured.out
    assert f"dead letter {unknown} is task chatops.no_such_task" in captured.err

    assert main(["dlq", "drop", str(unknown)]) == 0
    assert main(["dlq", "replay", "--all"]) == 0
    assert "no dead letters" in capsys.readouterr().out


def test_unknown_ids(
    db: IncidentStore, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "replay", "42"]) == 1
    assert "no dead letter 42" in capsys.readouterr().err
    assert main(["dlq", "drop", "42"]) == 1
    assert "no dead letter 42" in capsys.readouterr().err
    assert redis_client.llen(NOTIFICATIONS_QUEUE) == 0


def test_drop(db: IncidentStore, capsys: pytest.CaptureFixture[str]) -> None:
    letter_id = add(db)
    assert main(["dlq", "drop", str(letter_id)]) == 0
    assert capsys.readouterr().out == f"dropped dead letter {letter_id}\n"
    assert db.dead_letters() == []


def test_replay_needs_one_id_or_all(db: IncidentStore, capsys: pytest.CaptureFixture[str]) -> None:
    letter_id = add(db)
    assert main(["dlq", "replay"]) == 2
    assert main(["dlq", "replay", str(letter_id), "--all"]) == 2
    assert "one dead letter id, or --all" in capsys.readouterr().err
    assert db.dead_letter(letter_id) is not None


def test_a_failed_replay_keeps_the_dead_letter(
    db: IncidentStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A port nobody listens on: the broker refuses the connection at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CHATOPS_BROKER_URL", f"redis://127.0.0.1:{port}/0")
    letter_id = add(db)
    assert main(["dlq", "replay", str(letter_id)]) == 1
    assert "broker unavailable" in capsys.readouterr().err
    assert db.dead_letter(letter_id) is not None
    assert main(["dlq", "replay", "--all"]) == 1
    assert db.dead_letter(letter_id) is not None


def test_an_old_database_is_not_touched(cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list"]) == 1
    assert "chatops db upgrade" in capsys.readouterr().err
