"""Start the real processes (gunicorn ingress, Celery worker) against a real Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import redis

from chatops_core.providers.slack.devtools import slash_command_body
from chatops_core.settings import load_settings
from chatops_core.stack import free_port, gunicorn_argv, worker_argv
from chatops_core.store import IncidentStore
from chatops_core.tasks import QUEUES
from tests.fakes.slack_server import FakeSlack, signed_headers

SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"


def write_config(path: Path, *, api_url: str, token: str, extra: str = "") -> Path:
    path.write_text(
        f"""
[chatops]
incident_url = "https://incidents.example.com/incidents/{{id}}"

[providers.slack]
type = "slack"
bot_token = "${{E2E_SLACK_TOKEN}}"
signing_secret = "${{E2E_SLACK_SECRET}}"
api_url = "{api_url}"
default_channel = "#incidents"
create_incident_channels = true
timeout = 5
[providers.slack.notification_channels]
"SEV-1" = "#critical-incidents"
"SEV-2" = "#major-incidents"
{extra}
"""
    )
    return path


def write_provider_config(path: Path, *, base_url: str, providers: str) -> Path:
    """A configuration with ``providers`` (the TOML of the provider tables) served at ``base_url``."""
    path.write_text(
        f"""
[chatops]
public_url = "{base_url}"
incident_url = "https://incidents.example.com/incidents/{{id}}"
{providers}
"""
    )
    return path


@dataclass
class Stack:
    """A running ingress + worker; ``slash`` sends signed Slack requests to it."""

    base_url: str
    env: dict[str, str]
    log_dir: Path
    database_url: str = ""
    instance: str = "slack"
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def webhook_url(self) -> str:
        """Where the provider instance the stack was started for sends its requests."""
        return f"{self.base_url}/webhooks/{self.instance}"

    def store(self) -> IncidentStore:
        return IncidentStore(self.database_url)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float]:
        request = urllib.request.Request(self.base_url + path, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read(), time.perf_counter() - started
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), time.perf_counter() - started

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def slash(
        self,
        text: str,
        response_url: str,
        *,
        user: str = "U100",
        user_name: str = "alice",
        channel: str = "C0004",
        channel_name: str = "general",
        instance: str = "slack",
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
    ) -> tuple[int, bytes, float]:
        body = slash_command_body(
            command="/im",
            text=text,
            user_id=user,
            user_name=user_name,
            channel_id=channel,
            channel_name=channel_name,
            response_url=response_url,
        )
        return self.post(f"/webhooks/{instance}", body, signed_headers(body, secret, timestamp))

    def logs(self, tail: int | None = 6000) -> str:
        """Each process's log; the last ``tail`` characters of each (``None``: all of it)."""
        out = []
        for name in self.processes:
            path = self.log_dir / f"{name}.log"
            if path.exists():
                text = path.read_text()
                out.append(f"--- {name} ---\n" + (text if tail is None else text[-tail:]))
        return "\n".join(out)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start one more process with the stack's environment (``env`` added to it)."""
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            argv, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )

    def add_ingress(self, name: str, workers: int = 2, timeout: float = 30) -> Stack:
        """Start one more ingress, on a port of its own, and wait until it answers ``/healthz``.

        Returns the stack as seen through that ingress (``slash``, ``post`` and ``get`` go to
        it); it shares this stack's processes, so stopping either stops both.
        """
        port = free_port()
        settings = load_settings(Path(self.env["CHATOPS_CONFIG"]), {**self.env, "CHATOPS_PORT": str(port)})
        self.start(name, gunicorn_argv(settings, workers=workers))
        other = replace(self, base_url=f"http://127.0.0.1:{port}")
        other.wait_healthy(timeout)
        return other

    def wait_healthy(self, timeout: float = 30) -> None:
        """Wait until the ingress answers ``/healthz``; stop everything, showing the logs, if it
        does not or a process dies meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, _ = self.get("/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes.values()):
                self.stop()
                raise RuntimeError("stack did not come up:\n" + self.logs())
            time.sleep(0.05)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process and every child of it at once (a worker and its pool)."""
        proc = self.processes[name]
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        for pid in [proc.pid, *pids]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        proc.wait(15)

    def stop(self) -> None:
        """Stop every process, without the waits of a graceful stop: nothing a process holds is
        used once the stack is stopped. Each Celery worker is killed at once with its pool (its
        warm shutdown spends seconds in Celery's own polling), each ingress is told to quit
        (gunicorn's quick shutdown, SIGQUIT, which still runs its exit hooks), and the others
        (beat) are asked to stop (SIGTERM)."""
        for name, proc in self.processes.items():
            if proc.poll() is None and _runs(proc, "celery", "worker"):
                self.kill(name)
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT if _runs(proc, "gunicorn") else signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _runs(proc: subprocess.Popen[bytes], *words: str) -> bool:
    """Whether every one of ``words`` is an argument of the command ``proc`` runs."""
    argv = [str(arg) for arg in proc.args] if isinstance(proc.args, list) else []
    return all(word in argv for word in words)


# The stacks that test other things than access run with everyone a manager and rates no test
# reaches, so their flows (close by whoever, many commands from one person) are not refused;
# the access tests give their own ``[access]`` (``access=``).
OPEN_ACCESS = """
[access]
default_role = "manager"
[access.rate_limit]
commands_per_minute = 60000
burst = 10000
instance_commands_per_minute = 600000
instance_burst = 100000
"""


def start_stack(
    tmp: Path,
    *,
    redis_url: str,
    api_url: str | None = None,
    token: str | None = None,
    config: str | Callable[[str], str] | None = None,
    instance: str = "slack",
    database_url: str | None = None,
    extra_config: str = "",
    worker: bool = True,
    workers: int = 2,
    concurrency: int = 2,
    extra_env: dict[str, str] | None = None,
    commands: Sequence[list[str]] = (),
    access: str = OPEN_ACCESS,
) -> Stack:
    """Start the ingress (and a worker) and wait until it answers ``/healthz``.

    Without ``config`` the stack has the one Slack instance of ``write_config`` (``api_url``
    and ``token`` are its API and bot token). With it, ``config`` is the TOML of the provider
    tables, or a function of the stack's base URL giving it; ``instance`` names the instance
    ``Stack.webhook_url`` points at. ``commands`` are ``chatops`` CLI commands run once the
    database is migrated, before any process starts.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    path = tmp / "chatops.toml"
    env = dict(os.environ)
    if config is None:
        if api_url is None or token is None:
            raise TypeError("a Slack stack needs api_url and token")
        write_config(path, api_url=api_url, token=token, extra=extra_config + access)
        env.update(E2E_SLACK_TOKEN=token, E2E_SLACK_SECRET=SIGNING_SECRET)
    else:
        providers = config(base_url) if callable(config) else config
        write_provider_config(path, base_url=base_url, providers=providers + extra_config + access)
    # A stack given its database (the production-like ones, on PostgreSQL when the tests have
    # it) is migrated by `chatops db upgrade` run as a command, as a deployment runs it.
    migrate_with_cli = database_url is not None
    database_url = database_url or f"sqlite:///{tmp / 'chatops.db'}"
    env.update(
        CHATOPS_CONFIG=str(path),
        CHATOPS_BROKER_URL=redis_url,
        CHATOPS_DATABASE_URL=database_url,
        CHATOPS_PORT=str(port),
        CHATOPS_DATA_DIR=str(tmp / "var"),
        CHATOPS_LOG_LEVEL="INFO",
    )
    env.update(extra_env or {})
    settings = load_settings(path, env)
    if not migrate_with_cli:
        # What `chatops db upgrade` does, in this process: the same store from the same
        # settings, without starting an interpreter and importing the service again for it.
        store = IncidentStore.from_settings(settings)
        try:
            store.upgrade()
        finally:
            store.close()
    for command in ([["db", "upgrade"]] if migrate_with_cli else []) + list(commands):
        subprocess.run(
            [sys.executable, "-m", "chatops_core.cli", *command],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    stack = Stack(base_url=base_url, env=env, log_dir=tmp, database_url=database_url, instance=instance)
    argvs = {"ingress": gunicorn_argv(settings, workers=workers)}
    if worker:
        argvs["worker"] = worker_argv(concurrency=concurrency)
    for name, argv in argvs.items():
        stack.start(name, argv)
    stack.wait_healthy()
    return stack


def own_slack() -> Iterator[FakeSlack]:
    """A local Slack for each test, for a module whose tests each need their own (the
    conftest's is shared by a module's tests): ``slack = pytest.fixture(own_slack, name="slack")``."""
    with FakeSlack() as fake:
        yield fake


def slack_stack(tmp: Path, redis_url: str, slack: FakeSlack, **options: Any) -> Stack:
    """:func:`start_stack` for the local Slack ``slack``, on a Redis database emptied first (a
    stack of a test's or a module's own); ``options`` as :func:`start_stack` takes them."""
    redis.Redis.from_url(redis_url).flushdb()
    return start_stack(tmp, redis_url=redis_url, api_url=slack.api_url, token=slack.token, **options)


def parse_json(raw: bytes) -> Any:
    return json.loads(raw.decode())


class _Waits(Protocol):
    def wait_for(self, predicate: Callable[[], Any], timeout: float = ..., message: str = ...) -> Any: ...


def wait_on(fake: _Waits, stack: Stack, predicate: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """``fake.wait_for(predicate)``, failing with the stack's logs when it does not come."""
    try:
        return fake.wait_for(predicate, timeout=timeout, message=what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None


def settled(fake: _Waits, stack: Stack, what: str, timeout: float = 20) -> None:
    """Wait until the worker has run every task given to it, and every task those enqueued.

    Idle means no queue holds a message and the worker holds none unacknowledged (kombu's
    ``unacked`` hash); a task enqueues what follows from it before it is acknowledged, so
    nothing is left to come. It must be seen on consecutive looks, as a message is briefly in
    neither place while the worker takes it.
    """
    broker = redis.Redis.from_url(stack.env["CHATOPS_BROKER_URL"])
    looks: list[bool] = []

    def idle() -> bool:
        looks.append(not any(broker.llen(queue) for queue in QUEUES) and not broker.hlen("unacked"))
        return looks[-3:] == [True, True, True]

    try:
        wait_on(fake, stack, idle, what, timeout=timeout)
    finally:
        broker.close()


# -- the incident system paging through the notifications API ------------------------------

PAGES = 8


def page_sev1(stack: Stack, token: str, count: int = PAGES) -> float:
    """Send ``count`` SEV-1 incidents of the incident system (``PAGE-0``: "Checkout errors 0",
    ...) to ``/api/v1/notifications`` with API token ``token``, each accepted (202); return
    the monotonic time the first was sent."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.monotonic()
    for n in range(count):
        body = {
            "type": "incident.created",
            "incident": {
                "id": f"PAGE-{n}",
                "title": f"Checkout errors {n}",
                "severity": "SEV-1",
                "status": "open",
                "created_at": "2026-11-26T10:00:00Z",
            },
        }
        status, _, _ = stack.post("/api/v1/notifications", json.dumps(body).encode(), headers)
        assert status == 202
    return started


def assert_paged_once_each_and_spaced(titles: list[str], stamps: list[float], count: int = PAGES) -> None:
    """Each page's card shown exactly once (``titles``), no two posted within one second
    (``stamps``: when each was posted, in seconds)."""
    assert sorted(titles) == sorted(f"PAGE-{n}: Checkout errors {n}" for n in range(count))
    ordered = sorted(stamps)
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps  # never two within the limit's second
