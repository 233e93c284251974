"""`chatops audit`: the audit trail from the command line, against a SQLite store."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chatops_core.audit import AuditEntry, AuditOutcome
from chatops_core.cli import main
from chatops_core.models import utcnow
from chatops_core.store import IncidentStore


def seed(db: IncidentStore) -> int:
    now = utcnow()
    alice = db.person_for("slack", "U1", "alice", "alice@example.com")
    db.append_audit(
        [
            AuditEntry(
                at=now - timedelta(hours=5), outcome=AuditOutcome.OK, source="command", command="declare",
                instance="slack", user_id="U1", actor="alice", platform="slack", channel="general",
                incident="INC-1",
            ),
            AuditEntry(
                at=now - timedelta(minutes=20), outcome=AuditOutcome.DENIED, source="command",
                command="close",
                instance="slack", user_id="U2", actor="bob", platform="slack", channel="inc-1",
                incident="INC-1", reason="`close` needs the manager role (you are a responder).",
            ),
            AuditEntry(
                at=now - timedelta(minutes=2), outcome=AuditOutcome.FORGED, source="webhook", command="ack",
                instance="slack", user_id="U9", actor="claimed U9", claimed=True, platform="slack",
                reason="HTTP 401: Slack signature check failed: bad signature",
            ),
        ]
    )  # fmt: skip
    return alice.id


def test_lines_newest_first(db: IncidentStore, capsys: pytest.CaptureFixture[str]) -> None:
    alice = seed(db)
    assert main(["audit"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [line[1] for line in lines] == ["forged", "denied", "ok"]
    assert lines[0][2:] == [
        "claimed U9 (claimed slack:U9)",
        "slack",
        "webhook ack",
        "HTTP 401: Slack signature check failed: bad signature",
    ]
    assert lines[2][2:5] == [f"alice (slack:U1) [person {alice}]", "slack #general", "command declare INC-1"]


def test_filters_and_json(db: IncidentStore, capsys: pytest.CaptureFixture[str]) -> None:
    alice = seed(db)
    assert main(["audit", "--since", "1h", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["outcome"] for r in records] == ["forged", "denied"]
    assert records[1]["actor"] == "bob" and records[1]["reason"].startswith("`close` needs")
    assert main(["audit", "--outcome", "denied", "--json"]) == 0
    assert [r["command"] for r in json.loads(capsys.readouterr().out)] == ["close"]
    for who in (str(alice), "slack:U1", "alice@example.com"):
        assert main(["audit", "--actor", who, "--json"]) == 0
        assert [r["command"] for r in json.loads(capsys.readouterr().out)] == ["declare"]
    assert main(["audit", "--limit", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    assert main(["audit", "--actor", "nobody@example.com"]) == 0
    assert capsys.readouterr().out.strip() == "no audit records match"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--since", "last week"], "since must be a duration like 30m, 2h or 1d"),
        (["--outcome", "maybe"], "outcome must be one of ok|denied|rate_limited|forged|invalid"),
        (["--actor", "bob"], "actor must be a person id"),
        (["--limit", "0"], "--limit must be from 1 to 1000"),
    ],
)
def test_wrong_filters_say_what_to_write(
    db: IncidentStore, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    assert main(["audit", *argv]) == 2
    assert capsys.readouterr().err.startswith(f"chatops: {said}")


def test_grant_and_revoke_are_recorded(db: IncidentStore, capsys: pytest.CaptureFixture[str]) -> None:
    bob = db.person_for("mm", "b1", "bob")
    assert main(["users", "grant", "mm:b1", "manager"]) == 0
    assert main(["users", "revoke", "mm:b1"]) == 0
    capsys.readouterr()
    revoked, granted = db.audit_records()
    assert (granted.outcome, granted.source, granted.command, granted.actor) == (
        AuditOutcome.OK,
        "cli",
        "grant",
        "an operator (chatops users)",
    )
    assert granted.reason == f"granted bob (person {bob.id}) the manager role (was responder)"
    assert revoked.command == "revoke"
    assert revoked.reason == f"revoked bob (person {bob.id})'s grant of manager; now responder"
