"""`chatops users`: list, show, grant and revoke, against a SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops_core.access import Role
from chatops_core.cli import main
from chatops_core.store import IncidentStore


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "chatops.toml"
    path.write_text('[access.roles]\n"slack:U1" = "admin"\n"bob@example.com" = "viewer"\n')
    return str(path)


def test_list_shows_everyone_with_their_role(
    db: IncidentStore, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "list", "--config", config]) == 0
    assert "nobody yet" in capsys.readouterr().out
    alice = db.person_for("slack", "U1", "alice")
    bob = db.person_for("mm", "b1", "bob", "Bob@Example.com")
    db.person_for("slack", "U2", "bob", "bob@example.com")
    carol = db.person_for("discord", "42", "carol")
    assert main(["users", "list", "--config", config]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        [str(alice.id), "alice", "admin", "-", "slack:U1"],
        [str(bob.id), "bob", "viewer", "bob@example.com", "mm:b1, slack:U2"],
        [str(carol.id), "carol", "responder", "-", "discord:42"],
    ]


def test_show_by_id_platform_user_or_address(
    db: IncidentStore, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bob = db.person_for("mm", "b1", "bob", "bob@example.com")
    for who in (str(bob.id), "mm:b1", "BOB@example.com"):
        assert main(["users", "show", who, "--config", config]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == f"person {bob.id}: bob"
        assert "e-mail: bob@example.com" in out
        assert "role: viewer ([access.roles] 'bob@example.com')" in out
        assert out[-2:] == ["platform users:", "  mm:b1 (bob)"]
    assert main(["users", "show", "slack:nobody", "--config", config]) == 1
    assert "nobody known as 'slack:nobody'" in capsys.readouterr().err


def test_grant_overrides_the_configuration_and_revoke_gives_it_back(
    db: IncidentStore, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bob = db.person_for("mm", "b1", "bob", "bob@example.com")
    assert main(["users", "grant", "mm:b1", "manager", "--config", config]) == 0
    assert capsys.readouterr().out.strip() == f"bob (person {bob.id}) is now a manager (was a viewer)"
    person = db.person(bob.id)
    assert person is not None and person.grant is not None and person.grant.role is Role.MANAGER
    assert main(["users", "show", "mm:b1", "--config", config]) == 0
    assert "role: manager (granted by an operator (chatops users) at " in capsys.readouterr().out

    assert main(["users", "revoke", str(bob.id), "--config", config]) == 0
    assert (
        "grant of manager revoked; now a viewer ([access.roles] 'bob@example.com')" in capsys.readouterr().out
    )
    person = db.person(bob.id)
    assert person is not None and person.grant is None
    assert main(["users", "revoke", str(bob.id), "--config", config]) == 0
    assert "has no grant; role viewer" in capsys.readouterr().out


def test_grant_ahead_of_first_use(db: IncidentStore, config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "grant", "slack:U9", "manager", "--config", config]) == 0
    assert main(["users", "grant", "erin@example.com", "admin", "--config", config]) == 0
    capsys.readouterr()
    waiting = db.find_person("slack", "U9")
    assert waiting is not None and db.role_of(waiting) is Role.MANAGER
    # Erin shows up on Mattermost, which reports her address: the role is hers.
    erin = db.person_for("mm", "e1", "erin", "erin@example.com")
    assert db.role_of(erin) is Role.ADMIN
    assert main(["users", "grant", "not-a-person", "admin", "--config", config]) == 1
    assert "is not a person id" in capsys.readouterr().err


def test_a_role_that_does_not_exist_is_refused(db: IncidentStore, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["users", "grant", "slack:U1", "owner"])
    assert exit_.value.code == 2
    assert "invalid choice: 'owner'" in capsys.readouterr().err


def test_an_old_database_is_refused(cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "list"]) == 1
    assert "chatops db upgrade" in capsys.readouterr().err
