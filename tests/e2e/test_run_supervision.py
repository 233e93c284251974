"""`chatops run` as an operator lives with it: it says ready only when it serves, its output is
what a person needs, a taken port is named at once, and a Redis outage does not take it down."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from chatops_core.providers.slack.devtools import slash_command_body
from chatops_core.stack import free_port
from tests.fakes.slack_server import FakeSlack, signed_headers, wait_for

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "chatops_core.cli"]
# Each answer to Slack must come within its deadline.
ANSWER_SECONDS = 3.0


def _clean_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(CHATOPS_DATA_DIR=str(data_dir), CHATOPS_PORT=str(port), CHATOPS_LOG_LEVEL="INFO")
    return env


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


@dataclass
class Run:
    """A `chatops run` process, its data directory and its console output."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def child(self, *markers: str) -> int | None:
        """The pid of the child process whose command line contains every one of ``markers``."""
        for pid in _children(self.proc.pid):
            if all(marker in _cmdline(pid) for marker in markers):
                return pid
        return None

    def slash(self, text: str, response_url: str) -> tuple[int, float]:
        """Send ``/im text`` as Slack would; the HTTP status (0: no answer) and the seconds it took."""
        body = slash_command_body(
            command="/im",
            text=text,
            user_id="U0OPS",
            user_name="ops",
            channel_id="C0OPS",
            channel_name="ops",
            response_url=response_url,
        )
        secret = (self.data_dir / "playground.secret").read_text().strip()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhooks/slack",
            data=body,
            headers=signed_headers(body, secret),
            method="POST",
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, time.monotonic() - started
        except urllib.error.HTTPError as exc:
            return exc.code, time.monotonic() - started
        except OSError:
            return 0, time.monotonic() - started

    def titles(self) -> set[str]:
        """The titles of every incident in the stack's database."""
        with sqlite3.connect(self.data_dir / "chatops.db") as db:
            return {row[0] for row in db.execute("SELECT title FROM incidents")}


@pytest.fixture(scope="module")
def answers() -> Iterator[FakeSlack]:
    """Where the bot's answers go (each command's ``response_url``)."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("run")
    port = free_port()
    env = _clean_env(tmp / "var", port)
    # A SEV-1 breaches its acknowledgement SLA after about a second, checked every second.
    env["CHATOPS_SLA"] = json.dumps({"ack_minutes": {"SEV-1": 0.02}, "check_interval_seconds": 1})
    log = open(tmp / "run.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*CLI, "run"], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    running = Run(proc=proc, data_dir=tmp / "var", port=port, log_path=tmp / "run.log")
    try:
        deadline = time.monotonic() + 60
        while "chatops: ready" not in running.log():
            assert proc.poll() is None, running.log()
            assert time.monotonic() < deadline, "chatops run did not say ready:\n" + running.log()
            time.sleep(0.05)
        yield running
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


def test_ready_output_and_sla_check(run: Run, answers: FakeSlack) -> None:
    # "ready" means the ingress answers, and tools find it by the URL in the data directory.
    with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/healthz", timeout=5) as resp:
        assert resp.status == 200
    assert (run.data_dir / "ingress.url").read_text().strip() == f"http://127.0.0.1:{run.port}"

    # The SLA check runs under `chatops run`: an unacknowledged SEV-1 is announced as breached.
    status, _ = run.slash("declare sev1 Checkout down", answers.response_url("sla"))
    assert status == 200
    wait_for(
        lambda: any("SLA breached" in line and "Checkout down" in line for line in run.log().splitlines()),
        timeout=30,
        message="the SLA breach announcement\n" + run.log(),
    )
    out = run.log()
    assert "[slack #incidents] (posted) Incident declared: [SEV-1]" in out
    # Celery's per-task lines, banners and start-up chatter are not shown at INFO.
    for chatter in ("] received", "] succeeded in", "[tasks]", "celery beat", "Booting worker", "ready."):
        assert chatter not in out, out


def test_redis_outage_is_ridden_out(run: Run, answers: FakeSlack) -> None:
    redis_pid = run.child("redis-server")
    worker_pid = run.child("workers.app", " worker ")
    ingress_pid = run.child("gunicorn")
    assert redis_pid and worker_pid and ingress_pid, [_cmdline(p) for p in _children(run.proc.pid)]
    tag = uuid.uuid4().hex[:6]
    outcomes: dict[str, int] = {}

    def declare(title: str) -> int:
        status, took = run.slash(f"declare {title}", answers.response_url(title))
        assert took < ANSWER_SECONDS, f"{title!r} answered {status} after {took:.1f}s"
        outcomes[title] = status
        return status

    # A burst before the outage: each announcement waits for its send slot in #incidents (about
    # one a second), so the worker holds tasks when Redis goes away.
    before = [f"before-{tag}-{i}" for i in range(8)]
    for title in before:
        assert declare(title) == 200
    wait_for(lambda: all(answers.responses(t) for t in before), timeout=15, message="answers before")
    broker = redis.Redis.from_url((run.data_dir / "broker.url").read_text().strip())
    wait_for(lambda: broker.hlen("unacked") >= 2, timeout=10, message="tasks held by the worker")
    broker.close()

    os.kill(redis_pid, signal.SIGSTOP)
    try:
        for i in range(2):
            declare(f"frozen-{tag}-{i}")
    finally:
        os.kill(redis_pid, signal.SIGKILL)

    # The stack stays up: Redis comes back (on its port, from its append-only file), and the
    # worker and ingress ride the outage out rather than being restarted.
    wait_for(lambda: (run.child("redis-server") or redis_pid) != redis_pid, timeout=15, message="Redis again")
    deadline = time.monotonic() + 30
    attempt = 0
    while True:
        title = f"after-{tag}-{attempt}"
        if declare(title) == 200:
            try:
                wait_for(lambda t=title: answers.responses(t), timeout=5)
                break
            except TimeoutError:
                pass
        assert time.monotonic() < deadline, "commands did not work again within 30 s:\n" + run.log()
        attempt += 1
        time.sleep(0.5)
    assert run.proc.poll() is None, run.log()
    assert run.child("workers.app", " worker ") == worker_pid, run.log()
    assert run.child("gunicorn") == ingress_pid, run.log()
    assert "chatops: redis was killed (SIGKILL); starting it again" in run.log()

    # Every command answered 200 is carried out; none answered otherwise ever runs.
    accepted = {t for t, status in outcomes.items() if status == 200}
    wait_for(lambda: accepted <= run.titles(), timeout=15, message=f"incidents {sorted(accepted)}")
    refused = {t for t, status in outcomes.items() if status != 200}
    assert not refused & run.titles(), outcomes


def test_a_dead_child_is_started_again(run: Run) -> None:
    beat = run.child("workers.app", " beat ")
    assert beat, [_cmdline(p) for p in _children(run.proc.pid)]
    os.kill(beat, signal.SIGKILL)
    wait_for(lambda: (run.child("workers.app", " beat ") or beat) != beat, timeout=15, message="beat again")
    assert "chatops: beat was killed (SIGKILL); starting it again in 0.5 s" in run.log()
    assert run.proc.poll() is None


def test_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _clean_env(tmp_path / "var", port)
        result = subprocess.run([*CLI, "run"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert f"port {port}" in out and "--port" in out and "CHATOPS_PORT" in out, out
    assert "Traceback" not in out and "ingress on" not in out, out
