"""Mattermost channel names and display names for incidents, checked against the rule the
server applies (and the local Mattermost enforces)."""

from __future__ import annotations

import re

import pytest

from chatops_core.providers.mattermost.channels import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_NAME_LENGTH,
    channel_name_for,
    display_name_for,
    is_valid_name,
    next_name,
)

# The strictest servers: a letter or digit at both ends, lowercase letters, digits, "-" and
# "_" between, 2 to 64 characters (model.IsValidChannelIdentifier before v10).
STRICT = re.compile(r"^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]+$")
# The rule the local Mattermost applies (tests/fakes/mattermost_server.py).
FAKE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _accepted(name: str) -> bool:
    return (
        2 <= len(name) <= 64
        and bool(STRICT.match(name))
        and bool(FAKE.match(name))
        and not re.fullmatch(r"[a-z0-9]{26}__[a-z0-9]{26}", name)
    )


@pytest.mark.parametrize(
    ("incident_id", "title", "expected"),
    [
        ("INC-12", "Database timeouts", "inc-12-database-timeouts"),
        ("INC-12", "Database timeouts!", "inc-12-database-timeouts"),
        ("INC-7", "  API: 5xx / errors (EU)  ", "inc-7-api-5xx-errors-eu"),
        ("INC-7", "db_primary down", "inc-7-db_primary-down"),
        ("INC-7", "a__b -_- c", "inc-7-a_b-c"),
        ("INC-7", "Überlast in Köln", "inc-7-uberlast-in-koln"),
        ("INC-7", "Straße gesperrt", "inc-7-strasse-gesperrt"),
        ("INC-7", "Ærø ferry, Łódź", "inc-7-aero-ferry-lodz"),
        ("INC-7", "Café ☕ outage 🔥", "inc-7-cafe-outage"),
        ("INC-7", "数据库 timeouts", "inc-7-timeouts"),
        ("INC-7", "ｆｕｌｌｗｉｄｔｈ", "inc-7-fullwidth"),
        ("INC-7", "", "inc-7"),
        ("INC-7", "!!! ??? ...", "inc-7"),
        ("INC-7", "---___---", "inc-7"),
        ("INC-7", "数据库超时", "inc-7"),
        ("INC-7", "🔥🔥🔥", "inc-7"),
        ("inc-7", "x", "inc-7-x"),
        ("", "Database", "incident-database"),
        ("!!!", "", "incident"),
        ("7", "", "incident-7"),
    ],
)
def test_channel_name(incident_id: str, title: str, expected: str) -> None:
    name = channel_name_for(incident_id, title)
    assert name == expected
    assert _accepted(name) and is_valid_name(name)


def test_long_title_is_cut_between_words() -> None:
    title = "Elevated error rates across the checkout payment and inventory services in eu-west"
    name = channel_name_for("INC-1234", title)
    assert len(name) <= MAX_NAME_LENGTH and _accepted(name)
    assert name == "inc-1234-elevated-error-rates-across-the-checkout-payment-and"


def test_long_word_is_cut_inside() -> None:
    name = channel_name_for("INC-12", "x" * 200)
    assert name == "inc-12-" + "x" * (MAX_NAME_LENGTH - len("inc-12-"))
    assert _accepted(name)


def test_long_id_is_kept_whole() -> None:
    name = channel_name_for("INC-123456789", "Supercalifragilisticexpialidocious-and-then-some-more-words")
    assert name.startswith("inc-123456789-") and len(name) <= MAX_NAME_LENGTH and _accepted(name)


@pytest.mark.parametrize(
    "title",
    [
        "a" * 57 + "-b",
        "a" * 57 + "_b",
        "word " * 30,
        "-" * 100,
        "é" * 100,
        "a-" * 40,
        "_a" * 40,
        "x" * 57 + "!" + "y" * 10,
    ],
)
def test_names_are_always_valid(title: str) -> None:
    name = channel_name_for("INC-99", title)
    assert len(name) <= MAX_NAME_LENGTH
    assert _accepted(name), name


@pytest.mark.parametrize(
    ("name", "n", "expected"),
    [
        ("inc-12-database-timeouts", 2, "inc-12-database-timeouts-2"),
        ("inc-12-database-timeouts", 3, "inc-12-database-timeouts-3"),
        ("inc-12", 10, "inc-12-10"),
        ("inc-12-" + "a" * 57, 2, "inc-12-" + "a" * 55 + "-2"),
        ("inc-12-" + "a" * 57, 100, "inc-12-" + "a" * 53 + "-100"),
        ("inc-12-database-timeouts-abcdefghijklmnopqrstuvwxyz-0123456789", 2, None),
        ("inc-12-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-b", 12, None),
    ],
)
def test_next_name(name: str, n: int, expected: str | None) -> None:
    result = next_name(name, n)
    if expected is not None:
        assert result == expected
    assert len(result) <= MAX_NAME_LENGTH
    assert result.endswith(f"-{n}")
    assert _accepted(result), result
    assert result != name


def test_next_names_differ() -> None:
    first = channel_name_for("INC-5", "y" * 100)
    names = {first} | {next_name(first, n) for n in range(2, 200)}
    assert len(names) == 199
    assert all(_accepted(n) and len(n) <= MAX_NAME_LENGTH for n in names)


@pytest.mark.parametrize("n", [0, 1, -3, True])
def test_next_name_counts_from_two(n: int) -> None:
    with pytest.raises(ValueError):
        next_name("inc-1", n)


@pytest.mark.parametrize(
    ("incident_id", "title", "expected"),
    [
        ("INC-12", "Database timeouts", "INC-12 Database timeouts"),
        ("INC-12", "  Database\n\ttimeouts  ", "INC-12 Database timeouts"),
        ("INC-12", "Überlast 🔥 in Köln", "INC-12 Überlast 🔥 in Köln"),
        ("INC-12", "数据库超时", "INC-12 数据库超时"),
        ("INC-12", "bell\x07 and nul\x00", "INC-12 bell and nul"),
        ("INC-12", "", "INC-12"),
        ("INC-12", "   ", "INC-12"),
        ("", "", "Incident"),
        ("", "Database", "Incident Database"),
    ],
)
def test_display_name(incident_id: str, title: str, expected: str) -> None:
    assert display_name_for(incident_id, title) == expected


def test_long_display_name_is_cut_between_words() -> None:
    title = "Elevated error rates across the checkout payment and inventory services in eu-west"
    shown = display_name_for("INC-1234", title)
    assert len(shown) <= MAX_DISPLAY_NAME_LENGTH
    assert shown == "INC-1234 Elevated error rates across the checkout payment and\u2026"


@pytest.mark.parametrize(
    "title",
    ["x" * 300, "数" * 300, "🔥" * 300, "word " * 100, "e\u0301" * 100],
)
def test_display_names_fit(title: str) -> None:
    shown = display_name_for("INC-12", title)
    assert 0 < len(shown) <= MAX_DISPLAY_NAME_LENGTH
    assert shown.startswith("INC-12 ")
    assert shown.strip() == shown
