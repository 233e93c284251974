"""The quick start as a user runs it: `chatops run`, then `chatops simulate`, then Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatops_core.stack import free_port
from tests.fakes.slack_server import FakeSlack

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "chatops_core.cli"]


def _clean_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(CHATOPS_DATA_DIR=str(tmp_path / "var"), CHATOPS_PORT=str(port), CHATOPS_LOG_LEVEL="WARNING")
    return env


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


def test_run_then_simulate_then_stop(tmp_path: Path) -> None:
    port = free_port()
    env = _clean_env(tmp_path, port)
    log = open(tmp_path / "run.log", "w+")  # noqa: SIM115 - closed below
    run = subprocess.Popen([*CLI, "run"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "webhook URL" not in (tmp_path / "run.log").read_text():
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "chatops run did not come up"
            time.sleep(0.05)
        banner = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}/webhooks/slack" in banner
        # Tools beside the stack find its ingress here (also on a port other than the default).
        assert (tmp_path / "var" / "ingress.url").read_text().strip() == f"http://127.0.0.1:{port}"

        sim = subprocess.run(
            [*CLI, "simulate", "/im declare sev2 Database timeouts"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sim.returncode == 0, sim.stderr + (tmp_path / "run.log").read_text()
        assert "INC-1 declared by simulator: Database timeouts (SEV-2)" in sim.stdout

        status = subprocess.run(
            [*CLI, "simulate", "status INC-1"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "INC-1 [SEV-2] open: Database timeouts" in status.stdout, status.stderr
        # The playground printed what the bot posted in the incident's own channel.
        deadline = time.monotonic() + 20
        while "#inc-1-database-timeouts" not in (tmp_path / "run.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.05)
        # `chatops notify` beside it finds the embedded Redis and announces the incident where
        # asked.
        notify = subprocess.run(
            [*CLI, "notify", "INC-1", "--type", "incident.created", "--channel", "slack:#exec-updates"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert notify.returncode == 0, notify.stderr
        assert "enqueued incident.created for INC-1 (open)" in notify.stdout
        deadline = time.monotonic() + 20
        while (
            "[slack #exec-updates] (posted) Incident declared: [SEV-2] INC-1"
            not in (tmp_path / "run.log").read_text()
        ):
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.05)
        children = _children(run.pid)
        assert len(children) >= 4  # redis, gunicorn, celery worker, celery beat
    finally:
        run.send_signal(signal.SIGINT)
        try:
            code = run.wait(30)
        finally:
            if run.poll() is None:
                run.kill()
        log.close()
    assert code == 0
    assert not [pid for pid in children if _alive(pid)], "a child outlived chatops run"
    assert not (tmp_path / "var" / "broker.url").exists(), "the stopped stack's broker is still named"
    assert not (tmp_path / "var" / "ingress.url").exists(), "the stopped stack's ingress is still named"


def test_simulate_without_a_running_ingress_says_so(tmp_path: Path) -> None:
    env = _clean_env(tmp_path, free_port())
    env.update(CHATOPS_SLACK_BOT_TOKEN="xoxb-x", CHATOPS_SLACK_SIGNING_SECRET="secret-value")
    sim = subprocess.run([*CLI, "simulate", "help"], env=env, capture_output=True, text=True, timeout=60)
    assert sim.returncode == 1
    assert "could not reach the ingress" in sim.stderr
    assert "secret-value" not in sim.stdout + sim.stderr


def test_check_reports_provider_health(tmp_path: Path) -> None:
    with FakeSlack() as slack:
        env = _clean_env(tmp_path, free_port())
        env.update(
            CHATOPS_SLACK_BOT_TOKEN=slack.token,
            CHATOPS_SLACK_SIGNING_SECRET="s",
            CHATOPS_SLACK_API_URL=slack.api_url,
        )
        ok = subprocess.run([*CLI, "check"], env=env, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert "provider slack (slack): ok" in ok.stdout
        env["CHATOPS_SLACK_BOT_TOKEN"] = "xoxb-wrong-token"
        bad = subprocess.run([*CLI, "check"], env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1
        assert "FAILED: authentication_failed" in bad.stdout
        assert "xoxb-wrong-token" not in bad.stdout + bad.stderr
