"""`chatops tokens new` and `chatops tokens hash`."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import subprocess
import sys
import tomllib

import pytest

from chatops_core.cli import main

# SHA-256 of "abc": the example of FIPS 180-2, appendix B.1.
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def mint(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, dict[str, object]]:
    """The token ``chatops tokens new`` printed, and the TOML it says to paste."""
    assert main(["tokens", "new", *argv]) == 0
    out = capsys.readouterr().out
    found = re.findall(r"^    (\S+)$", out, re.MULTILINE)
    assert len(found) == 1, out
    return found[0], tomllib.loads(out[out.index("[api.tokens.") :])


def test_new_prints_a_random_token_and_the_lines_that_configure_its_hash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token, toml = mint(capsys, "incident-system", "--scope", "notify")
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    table = toml["api"]["tokens"]["incident-system"]  # type: ignore[index]
    assert table == {"hash": "sha256:" + hashlib.sha256(token.encode()).hexdigest(), "scopes": ["notify"]}
    other, _ = mint(capsys, "incident-system", "--scope", "notify")
    assert other != token


def test_new_lists_each_scope_once(capsys: pytest.CaptureFixture[str]) -> None:
    token, toml = mint(capsys, "ops", "--scope", "read", "--scope", "notify", "--scope", "read")
    assert toml["api"]["tokens"]["ops"]["scopes"] == ["notify", "read"]  # type: ignore[index]
    assert token not in str(toml)


def test_new_refuses_a_bad_name_or_scope(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tokens", "new", "Dashboard", "--scope", "read"]) == 2
    captured = capsys.readouterr()
    assert "token name 'Dashboard' must be" in captured.err and captured.out == ""
    with pytest.raises(SystemExit) as exited:
        main(["tokens", "new", "dashboard", "--scope", "write"])
    assert exited.value.code == 2
    assert "invalid choice: 'write'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tokens", "new", "dashboard"])
    assert "--scope" in capsys.readouterr().err


def test_hash_reads_the_token_from_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("abc\n"))
    assert main(["tokens", "hash"]) == 0
    assert capsys.readouterr().out == f"sha256:{ABC_SHA256}\n"


def test_hash_of_nothing_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert main(["tokens", "hash"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no token on standard input" in captured.err


def test_hash_through_a_pipe_of_the_console_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatops_core.cli", "tokens", "hash"],
        input="abc",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sha256:{ABC_SHA256}\n" and "abc" not in done.stderr
