"""The access policy as a table: every role x every command word x commander or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops_core.access import DEFAULT_COMMAND_ROLES, AccessSettings, Role, decide, least_role
from chatops_core.commands.grammar import CommandName
from chatops_core.errors import ConfigError
from chatops_core.settings import load_settings

V, R, M, A = Role.VIEWER, Role.RESPONDER, Role.MANAGER, Role.ADMIN

# The least role of each word, as the contract sets the defaults.
LEAST: dict[str, Role] = {
    "declare": R,
    "ack": R,
    "mitigate": R,
    "resolve": R,
    "close": M,
    "reopen": M,
    "status": V,
    "list": V,
    "escalate": R,
    "assign": R,
    "note": R,
    "join": V,
    "leave": V,
    "role": A,
    "help": V,
}

# (role, commander of the incident) -> the roles' rank it acts with: a commander is a manager there.
ACTING = {(role, False): role for role in Role} | {(role, True): max(role, M) for role in Role}

TABLE = [
    (role, word, commander, ACTING[(role, commander)] >= LEAST[word])
    for role in Role
    for word in LEAST
    for commander in (False, True)
]


def test_the_table_covers_every_command_word() -> None:
    assert set(LEAST) == {name.value for name in CommandName}
    assert len(TABLE) == 4 * len(CommandName) * 2


@pytest.mark.parametrize(("role", "word", "commander", "allowed"), TABLE)
def test_decide(role: Role, word: str, commander: bool, allowed: bool) -> None:
    decision = decide(role, word, commander)
    assert decision.allowed is allowed
    assert decision.needed_role is LEAST[word]
    assert decision.reason.startswith(f"`{word}` needs the {LEAST[word].value} role")
    if not allowed:
        assert f"(you are {role.article})" in decision.reason


def test_some_rows_in_words() -> None:
    assert not decide(V, "ack", False).allowed
    assert decide(R, "ack", False).allowed
    assert not decide(R, "close", False).allowed
    assert decide(R, "close", True).allowed  # the commander counts as a manager
    assert not decide(M, "role", True).allowed  # ...but not as an admin
    refused = decide(R, "close", False)
    assert refused.reason == "`close` needs the manager role (you are a responder)."
    assert "commander counts" in decide(V, "reopen", True).reason


def test_configured_least_roles_replace_the_defaults_word_by_word() -> None:
    access = AccessSettings(commands={"ack": "viewer", "status": "responder"})  # type: ignore[dict-item]
    commands = access.command_roles()
    assert decide(V, "ack", False, commands).allowed
    assert not decide(V, "status", False, commands).allowed
    assert least_role("close", commands) is M  # untouched words keep their defaults
    assert least_role("note", commands) is R


def test_role_never_gives_more_than_the_granter_holds() -> None:
    commands = {**DEFAULT_COMMAND_ROLES, "role": M}
    assert decide(M, "role", False, commands, granting=R).allowed
    assert decide(M, "role", False, commands, granting=M).allowed
    above = decide(M, "role", False, commands, granting=A)
    assert not above.allowed and above.needed_role is A
    assert decide(A, "role", False, granting=A).allowed


def test_roles_are_ordered_not_alphabetical() -> None:
    assert V < R < M < A
    assert sorted([A, V, M, R]) == [V, R, M, A]
    assert max(A, V) is A and Role("manager") is M


def test_access_table_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "chatops.toml"
    path.write_text(
        """
[access]
default_role = "viewer"
[access.roles]
"slack:U024BE7LH" = "admin"
"Alice@Example.com" = "manager"
[access.commands]
ack = "viewer"
[access.rate_limit]
commands_per_minute = 30
"""
    )
    access = load_settings(path, environ={}).access
    assert access.default_role is V
    assert access.roles == {"slack:U024BE7LH": A, "alice@example.com": M}
    assert access.command_roles()["ack"] is V and access.command_roles()["close"] is M
    assert (access.rate_limit.commands_per_minute, access.rate_limit.burst) == (30, 10)
    assert access.configured_role([("slack", "U024BE7LH")], "alice@example.com") is A
    assert access.configured_role([("mm", "x")], "ALICE@example.com ") is M
    assert access.configured_role([("mm", "x")], None) is None


def test_defaults_keep_the_quick_start_open() -> None:
    access = load_settings(environ={}).access
    assert access.default_role is R
    assert (access.rate_limit.commands_per_minute, access.rate_limit.burst) == (20, 10)


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ('[access]\ndefault_role = "owner"', "access.default_role"),
        ('[access.roles]\n"U024BE7LH" = "admin"', "neither"),
        ('[access.roles]\n"slack:U1" = "boss"', "access.roles"),
        ('[access.commands]\ndeploy = "admin"', "unknown command word(s) deploy"),
        ("[access.rate_limit]\nburst = 0", "access.rate_limit.burst"),
        ("[access]\nsurprise = 1", "access.surprise"),
    ],
)
def test_a_wrong_access_table_is_refused_with_what_to_fix(tmp_path: Path, table: str, complaint: str) -> None:
    path = tmp_path / "chatops.toml"
    path.write_text(table)
    with pytest.raises(ConfigError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        load_settings(path, environ={})
