"""The README's quick start on Mattermost, as a person runs it: `chatops run` with nothing
configured in one terminal, `chatops simulate --provider mm` in another, and what each
terminal shows. Routing fans out to every platform, so Slack's playground sees the incident
too."""

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
# A Mattermost id: 26 lowercase letters and digits.
MATTERMOST_ID = re.compile(r"\b[a-z0-9]{26}\b")


def _simulate(text: str, env: dict[str, str], cwd: Path) -> list[str]:
    sim = subprocess.run(
        [*CLI, "simulate", "--provider", "mm", text],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sim.returncode == 0, sim.stdout + sim.stderr
    lines = sim.stdout.splitlines()
    assert re.fullmatch(r"ingress answered 200 in \d+ ms", lines[0]), lines
    return lines[1:]


def _wait_for(console: Path, line: str, run: subprocess.Popen[bytes], timeout: float = 20) -> list[str]:
    """The console's lines from ``line`` on, once it is printed."""
    deadline = time.monotonic() + timeout
    while True:
        shown = console.read_text().splitlines()
        if line in shown:
            return shown[shown.index(line) :]
        assert run.poll() is None, "\n".join(shown)
        assert time.monotonic() < deadline, f"{line!r} not shown:\n" + "\n".join(shown)
        time.sleep(0.05)


def test_quick_start_on_mattermost(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(CHATOPS_DATA_DIR=str(tmp_path / "var"), CHATOPS_LOG_LEVEL="WARNING")
    console = tmp_path / "run.log"
    with open(console, "w") as log:
        run = subprocess.Popen(
            [*CLI, "run", "--port", str(free_port())], env=env, cwd=tmp_path, stdout=log, stderr=log
        )
    try:
        _wait_for(console, "chatops: ready (Ctrl-C stops every process)", run, timeout=60)
        assert "webhook URL http://127.0.0.1:" in console.read_text()

        declared = _simulate("/im declare sev2 Database timeouts", env, tmp_path)
        assert declared[:4] == [
            "bot (in ~incidents, everyone sees this):",
            "INC-1 declared by simulator: Database timeouts (SEV-2)",
            "INC-1: Database timeouts",
            "🟠 SEV-2 · Open · Commander: unassigned",
        ], declared
        acked = _simulate("/im ack INC-1", env, tmp_path)
        assert acked[1] == "INC-1: Acknowledged by simulator", acked
        assert "🟠 SEV-2 · Acknowledged · Commander: @simulator" in acked, acked
        status = _simulate("/im status INC-1", env, tmp_path)
        assert status[:2] == ["bot (only you see this):", "INC-1 [SEV-2] acknowledged: Database timeouts"]
        assert "🟠 SEV-2 · Acknowledged · Commander: @simulator" in status, status
        timeline = status[status.index("Timeline") + 1 :]
        assert timeline[0].startswith("• ") and timeline[0].endswith(
            " declared simulator: Declared by simulator: Database timeouts"
        ), status
        assert timeline[-1].endswith(" acknowledged simulator: Acknowledged by simulator"), status
        # Markdown reads as text, as Mattermost shows it.
        said = "\n".join(declared + acked + status)
        assert not re.search(r"\*\*|:[a-z_]+:|\\#|_unassigned_", said), said

        # The first terminal shows each thing the bot did on Mattermost, by name.
        war_room, major = "[mm ~inc-1-database-timeouts]", "[mm ~major-incidents]"
        card = "Incident declared: [SEV-2] INC-1 Database timeouts (open) — Declared by simulator"
        for line in [
            f"{war_room} (channel created) INC-1 Database timeouts",
            f"{war_room} (added) @simulator",
            "[mm ~incidents] (answer in the channel) INC-1 declared by simulator: Database timeouts (SEV-2)",
            f"{war_room} (pinned) {card}",
            "[mm ~incidents] (answer in the channel) INC-1: Acknowledged by simulator",
            "[mm ~incidents] (answer only @simulator sees) INC-1 [SEV-2] acknowledged: Database timeouts",
        ]:
            _wait_for(console, line, run)
        # The card in the channel its severity routes to, and how to act on it: its buttons,
        # or the commands to type where clicks have no way back.
        posted = _wait_for(console, f"{major} (posted) {card}", run)
        how = ("    [Acknowledge] [Mitigate] [Resolve]", "    Type /im ack INC-1")
        assert posted[1].startswith(how), posted
        updated = _wait_for(
            console,
            f"{major} (updated) Incident acknowledged: [SEV-2] INC-1 Database timeouts (acknowledged)"
            " — Acknowledged by simulator",
            run,
        )
        assert "Acknowledge" not in updated[1] and "/im ack" not in updated[1], updated
        # Routing fans out: Slack's playground announced the same incident.
        _wait_for(
            console,
            "[slack #incidents] (posted) Incident declared: [SEV-2] INC-1 Database timeouts (open)"
            " — Declared by simulator",
            run,
        )
        shown = [ln for ln in console.read_text().splitlines() if ln.startswith("[mm")]
        # Names, never ids; the person is the one simulate named, and added only once.
        assert not [ln for ln in shown if MATTERMOST_ID.search(ln) or "@alice" in ln], shown
        assert len([ln for ln in shown if "(added) @simulator" in ln]) == 1, shown
    finally:
        run.send_signal(signal.SIGINT)
        try:
            code = run.wait(30)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert code == 0, console.read_text()
