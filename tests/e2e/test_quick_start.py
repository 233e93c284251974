"""The README's quick start, as a person runs it: `chatops run --port P` in one terminal, the
four `chatops simulate` commands in another (which finds the stack by itself), and what each
terminal shows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatops_core.stack import free_port

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "chatops_core.cli"]


def _simulate(text: str, env: dict[str, str], cwd: Path) -> list[str]:
    sim = subprocess.run(
        [*CLI, "simulate", text], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert sim.returncode == 0, sim.stdout + sim.stderr
    lines = sim.stdout.splitlines()
    assert re.fullmatch(r"ingress answered 200 in \d+ ms", lines[0]), lines
    return lines[1:]


def _wait_for(path: Path, needle: str, run: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while needle not in path.read_text():
        assert run.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"{needle!r} not shown:\n{path.read_text()}"
        time.sleep(0.05)


def _start(tmp_path: Path, env: dict[str, str], console: Path) -> subprocess.Popen[bytes]:
    """`chatops run --port P` (P free), once it serves."""
    (tmp_path / "var" / "ingress.url").unlink(missing_ok=True)
    with open(console, "w") as log:
        run = subprocess.Popen(
            [*CLI, "run", "--port", str(free_port())], env=env, cwd=tmp_path, stdout=log, stderr=log
        )
    _wait_for(console, "webhook URL", run)
    deadline = time.monotonic() + 30
    while not (tmp_path / "var" / "ingress.url").exists():
        assert time.monotonic() < deadline, console.read_text()
        time.sleep(0.05)
    return run


def _stop(run: subprocess.Popen[bytes], console: Path) -> None:
    run.send_signal(signal.SIGINT)
    try:
        code = run.wait(30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert code == 0, console.read_text()


def test_quick_start_shows_what_the_bot_does_and_what_the_person_sees(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(CHATOPS_DATA_DIR=str(tmp_path / "var"))
    console = tmp_path / "run.log"
    run = _start(tmp_path, env, console)
    try:
        declared = _simulate("/im declare sev2 Database timeouts", env, tmp_path)
        assert declared[:2] == [
            "bot (only you see this):",
            "INC-1 declared by simulator: Database timeouts (SEV-2)",
        ]
        assert _simulate("/im ack INC-1", env, tmp_path)[1] == "INC-1: Acknowledged by simulator"
        status = _simulate("/im status INC-1", env, tmp_path)
        assert status[1] == "INC-1 [SEV-2] acknowledged: Database timeouts"
        facts = [
            ln for ln in status if ln.startswith("Severity: 🟠 SEV-2 · Status: Acknowledged · Commander: ")
        ]
        assert facts and facts[0].endswith(" · ID: INC-1 · Channel: #inc-1-database-timeouts"), status
        timeline = status[status.index("Timeline") + 1 :]
        assert timeline[-1].endswith(" acknowledged simulator: Acknowledged by simulator"), status
        listed = _simulate("/im list all", env, tmp_path)
        assert [ln for ln in listed if "INC-1 SEV-2 · Acknowledged · Database timeouts" in ln], listed

        # The first terminal shows each thing the bot did, by name.
        incidents, war_room = "[slack #incidents]", "[slack #inc-1-database-timeouts]"
        only_you = f"{incidents} (answer only @simulator sees)"
        card = "Incident declared: [SEV-2] INC-1 Database timeouts (open)"
        for line in [
            f"{war_room} (channel created)",
            f"{war_room} (topic) INC-1 [SEV-2] Database timeouts",
            f"{war_room} (invited) @simulator",
            f"{only_you} INC-1 declared by simulator: Database timeouts (SEV-2)",
            f"{incidents} (posted) {card}",
            f"{war_room} (pinned) {card}",
            f"{incidents} (updated) Incident acknowledged: [SEV-2] INC-1 Database timeouts (acknowledged)",
            f"{only_you} INC-1 [SEV-2] acknowledged: Database timeouts",
        ]:
            _wait_for(console, line, run, timeout=20)
        output = console.read_text().splitlines()
        shown = [ln for ln in output if ln.startswith("[slack")]
        assert not [ln for ln in shown if re.search(r"\b[CU][0-9A-Z]{7,}\b", ln)], shown
        # What the playgrounds print is the story; the delivery log's JSON lines are not in it.
        assert not [ln for ln in output if '{"event":' in ln], output
    finally:
        _stop(run, console)

    # Started again on another port: simulate still finds it, and the playground still knows
    # the incident's channel by name.
    run = _start(tmp_path, env, console)
    try:
        resolved = _simulate("/im resolve INC-1 Pool resized", env, tmp_path)
        assert resolved[1] == "INC-1: Resolved by simulator: Pool resized", resolved
        _wait_for(console, "[slack #inc-1-database-timeouts] (updated) Incident resolved: ", run, timeout=20)
    finally:
        _stop(run, console)
