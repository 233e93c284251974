"""`chatops worker` and `chatops beat` beside a running `chatops run`: they find its broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops_core import cli
from chatops_core.stack import EMBEDDED_BROKER_FILE


@pytest.fixture
def started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[tuple[list[str], str | None, str | None]]:
    """What each process command would have started: (argv, its broker URL, its config)."""
    for name in ("CHATOPS_BROKER_URL", "CHATOPS_CONFIG"):
        # Set first so that what the command sets is undone after the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHATOPS_DATA_DIR", str(tmp_path / "var"))
    calls: list[tuple[list[str], str | None, str | None]] = []

    def fake_exec(argv: list[str]) -> int:
        import os

        calls.append((argv, os.environ.get("CHATOPS_BROKER_URL"), os.environ.get("CHATOPS_CONFIG")))
        return 0

    monkeypatch.setattr(cli, "_exec", fake_exec)
    return calls


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_process_finds_the_broker_of_a_running_stack(
    command: str, started: list[tuple[list[str], str | None, str | None]], tmp_path: Path
) -> None:
    assert cli.main([command]) == 2  # no broker known: the error names CHATOPS_BROKER_URL
    assert started == []
    var = tmp_path / "var"
    var.mkdir()
    (var / EMBEDDED_BROKER_FILE).write_text("redis://127.0.0.1:6390/0\n")
    (var / "playground.toml").write_text("[chatops]\n")
    assert cli.main([command]) == 0
    ((argv, broker, config),) = started
    assert "workers.app" in argv and command in argv
    assert broker == "redis://127.0.0.1:6390/0"
    # The running stack's local playground is the platform its worker talks to.
    assert config == str((var / "playground.toml").resolve())
