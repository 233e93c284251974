"""The ``[api]`` table: named token hashes with scopes, the metrics token, and the start-up
errors a wrong table gives (naming the key, never quoting what may be a token)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops_core.api_tokens import Scope, TokenTable, hash_token
from chatops_core.errors import ConfigError
from chatops_core.settings import load_settings

TOKEN = "a-random-token-3f9e2d1c0b8a7f6e5d4c"
HASH = hash_token(TOKEN)


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):  # noqa: ANN201 - Settings
    path = tmp_path / "chatops.toml"
    path.write_text(text)
    return load_settings(path, environ=environ or {})


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value)


def test_named_tokens_and_the_metrics_token_are_read(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        f"""
[api]
metrics_token_hash = "{hash_token("scraper")}"
[api.tokens.incident-system]
hash = "{HASH.upper().replace("SHA256:", "sha256:")}"
scopes = ["notify"]
[api.tokens.dashboard]
hash = "{hash_token("dashboard-token")}"
scopes = ["read", "notify"]
""",
    )
    assert settings.api.metrics_token_hash == hash_token("scraper")
    assert settings.api.tokens["incident-system"].hash == HASH  # hex digits in either case
    assert settings.api.tokens["dashboard"].scopes == [Scope.READ, Scope.NOTIFY]
    table = TokenTable.from_settings(settings.api, settings.api_token)
    caller = table.identify(TOKEN)
    assert caller is not None and caller.name == "incident-system" and caller.scopes == {Scope.NOTIFY}
    assert table.identify("dashboard-token") is not None
    assert table.identify("scraper") is None  # the metrics token is not an API token


def test_a_hash_may_come_from_the_environment(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[api.tokens.ci]\nhash = "${CI_TOKEN_HASH}"\nscopes = ["admin"]\n',
        environ={"CI_TOKEN_HASH": HASH},
    )
    assert settings.api.tokens["ci"].hash == HASH


def test_the_older_api_token_is_a_token_with_every_scope(tmp_path: Path) -> None:
    settings = load(tmp_path, "", environ={"CHATOPS_API_TOKEN": "older-token-value"})
    table = TokenTable.from_settings(settings.api, settings.api_token)
    caller = table.identify("older-token-value")
    assert caller is not None and caller.name == "api_token"
    assert all(caller.may(scope) for scope in Scope)
    assert table.identify("older-token-valu") is None


def test_admin_implies_every_scope_and_the_others_only_themselves(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        f'[api.tokens.root]\nhash = "{HASH}"\nscopes = ["admin"]\n'
        f'[api.tokens.reader]\nhash = "{hash_token("r")}"\nscopes = ["read"]\n',
    )
    table = TokenTable.from_settings(settings.api, None)
    root, reader = table.identify(TOKEN), table.identify("r")
    assert root is not None and all(root.may(scope) for scope in Scope)
    assert reader is not None and reader.may(Scope.READ)
    assert not reader.may(Scope.NOTIFY) and not reader.may(Scope.ADMIN)


@pytest.mark.parametrize(
    "value",
    [
        TOKEN,  # the token pasted where its hash belongs
        HASH.removeprefix("sha256:"),
        HASH[:-1],
        HASH + "0",
        HASH[:-1] + "g",
        "",
    ],
    ids=["the_token_itself", "no_prefix", "too_short", "too_long", "not_hex", "empty"],
)
def test_a_bad_hash_names_the_key_and_never_quotes_the_value(tmp_path: Path, value: str) -> None:
    message = error(tmp_path, f'[api.tokens.ci]\nhash = "{value}"\nscopes = ["notify"]\n')
    assert "api.tokens.ci.hash" in message
    assert 'must be "sha256:" followed by 64 hex digits' in message and "chatops tokens hash" in message
    if value:
        assert value not in message


def test_another_hash_scheme_is_refused_by_name(tmp_path: Path) -> None:
    message = error(tmp_path, f'[api.tokens.ci]\nhash = "scrypt:{"ab" * 32}"\nscopes = ["read"]\n')
    assert "api.tokens.ci.hash" in message and "'scrypt' is not supported" in message


def test_a_bad_metrics_token_hash_names_the_key(tmp_path: Path) -> None:
    message = error(tmp_path, '[api]\nmetrics_token_hash = "prometheus-secret"\n')
    assert "api.metrics_token_hash" in message and "prometheus-secret" not in message


def test_an_unknown_scope_names_the_allowed_ones(tmp_path: Path) -> None:
    message = error(tmp_path, f'[api.tokens.ci]\nhash = "{HASH}"\nscopes = ["notify", "write"]\n')
    assert "api.tokens.ci.scopes.1" in message
    assert "'notify', 'read' or 'admin'" in message


def test_a_token_needs_at_least_one_scope(tmp_path: Path) -> None:
    assert "api.tokens.ci.scopes" in error(tmp_path, f'[api.tokens.ci]\nhash = "{HASH}"\nscopes = []\n')
    assert "api.tokens.ci.scopes" in error(tmp_path, f'[api.tokens.ci]\nhash = "{HASH}"\n')


@pytest.mark.parametrize("name", ["CI", "with space", "-lead", "api_token"])
def test_a_bad_token_name_is_refused(tmp_path: Path, name: str) -> None:
    message = error(tmp_path, f'[api.tokens."{name}"]\nhash = "{HASH}"\nscopes = ["read"]\n')
    assert f"token name {name!r}" in message


def test_two_names_for_one_token_are_refused(tmp_path: Path) -> None:
    message = error(
        tmp_path,
        f'[api.tokens.one]\nhash = "{HASH}"\nscopes = ["read"]\n'
        f'[api.tokens.two]\nhash = "{HASH.upper().replace("SHA256:", "sha256:")}"\nscopes = ["admin"]\n',
    )
    assert "tokens 'one' and 'two' have the same hash" in message


@pytest.mark.parametrize(
    "table",
    ['[api]\nmetrics_token = "x"\n', f'[api.tokens.ci]\nhash = "{HASH}"\nscopes = ["read"]\ntoken = "x"\n'],
)
def test_unknown_keys_are_refused(tmp_path: Path, table: str) -> None:
    assert "Extra inputs are not permitted" in error(tmp_path, table)
