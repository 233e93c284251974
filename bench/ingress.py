"""How fast the ingress answers a signed Slack slash command, beside a bare Flask endpoint.

Run ``.venv/bin/python bench/ingress.py`` (``--help`` for the settings). Three WSGI apps are
served by the same gunicorn configuration (``chatops_core.stack.gunicorn_argv``: sync
workers, 2 by default) and put under the same load, alternating within each run:

- ``bare``: a Flask view that returns ``""``, the ceiling;
- ``chatops``: the real ingress (``ingress.wsgi:app``) with one Slack instance; every
  request carries a valid signature and its own ``trigger_id``, so every one is verified,
  parsed and really enqueued on Redis (nothing is dropped as a duplicate);
- ``celery``: a Flask view that publishes with Celery's default ``send_task``, to show
  what the ingress's lean publish path saves.

Load comes from ``wrk`` when it is installed (``apt-get install wrk``), else from a Python
generator (processes x keep-alive ``http.client`` connections). Absolute figures depend on
the machine and the load generator shares its cores, so compare the ratios, which are
taken within each run; the table shows medians across runs. The aim: at least 0.5x the
bare endpoint's throughput and a p99 within 3x of it. The exit status is non-zero only
when the benchmark itself failed (a server did not start, a request was refused, the
number of enqueued messages does not match the requests sent), not when the aim is missed.

All traffic goes to 127.0.0.1. Redis: the first empty DB of 14, 13, ... 10 on 127.0.0.1:6379
(claimed with an owner key, so two runs at once never share one), else an embedded Redis
started here; ``--redis-url`` names one (its ``interactive`` list must be empty).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from chatops_core.providers.slack.devtools import sign_slack, slash_command_body  # noqa: E402
from chatops_core.settings import load_settings  # noqa: E402
from chatops_core.stack import EmbeddedRedis, free_port, gunicorn_argv  # noqa: E402
from chatops_core.tasks import COMMAND_TASK, INTERACTIVE_QUEUE  # noqa: E402

INSTANCE = "bench"
WEBHOOK_PATH = f"/webhooks/{INSTANCE}"
LOCAL_REDIS = "redis://127.0.0.1:6379"
LOCAL_DBS = (14, 13, 12, 11, 10)
OWNER_KEY = "chatops:bench:owner"
DEDUPE_PATTERN = f"chatops:dedupe:slack:{INSTANCE}:*"
# What declaring the queue leaves in Redis (the Celery row declares it).
KOMBU_KEYS = (f"_kombu.binding.{INTERACTIVE_QUEUE}", f"_kombu.binding_permanent.{INTERACTIVE_QUEUE}")
INGRESS_SPEC = "ingress.wsgi:app"
WARMUP_SECONDS = 1
FORM_TYPE = "application/x-www-form-urlencoded"
AIM_RPS_RATIO = 0.5
AIM_P99_RATIO = 3.0
STOP_GRACE_SECONDS = 10.0
# A run was disturbed when its bare endpoint reached less than DISTURBED of its best run, or
# when other processes used more than OTHER_CPU_LIMIT of the machine's CPU in a measurement.
DISTURBED = 0.75
OTHER_CPU_LIMIT = 0.15
MAX_REQUESTS_PER_CONNECTION = 10_000_000


# -- the two comparison apps, imported by gunicorn as ``bench.ingress:<name>()`` ------------


def bare_app() -> Any:
    """A Flask app whose webhook view does nothing: the ceiling."""
    from flask import Flask

    app = Flask("bench.bare")

    @app.post("/webhooks/<instance>")
    def webhook(instance: str) -> str:
        return ""

    @app.get("/healthz")
    def healthz() -> str:
        return ""

    return app


def celery_app() -> Any:
    """A Flask app that publishes each webhook with Celery's default ``send_task``."""
    from celery import Celery
    from flask import Flask, request

    celery = Celery("bench", broker=os.environ["CHATOPS_BROKER_URL"])
    app = Flask("bench.celery")

    @app.post("/webhooks/<instance>")
    def webhook(instance: str) -> str:
        celery.send_task(COMMAND_TASK, args=[request.form.to_dict()], queue=INTERACTIVE_QUEUE)
        return ""

    @app.get("/healthz")
    def healthz() -> str:
        return ""

    return app


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    spec: str
    enqueues: bool


CONFIGS = (
    Config("bare", 'bare Flask return ""', "bench.ingress:bare_app()", False),
    Config("chatops", "chatops ingress (enqueued)", INGRESS_SPEC, True),
    Config("celery", "Flask + Celery send_task", "bench.ingress:celery_app()", True),
)


# -- signed requests ------------------------------------------------------------------------


class SignedRequests:
    """Slash-command bodies that differ only in ``trigger_id``, signed as Slack signs them."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        template = slash_command_body(
            command="/im",
            text="declare sev2 Database timeouts",
            user_id="U0BENCH",
            user_name="bench",
            channel_id="C0BENCH",
            channel_name="incidents",
            response_url="http://127.0.0.1:9/response",
        )
        head, sep, _ = template.partition(b"&trigger_id=")
        if not sep:
            raise RuntimeError("slash command body has no trigger_id field")
        self.prefix = head + sep

    def make(self, trigger: str, timestamp: int) -> tuple[bytes, dict[str, str]]:
        body = self.prefix + trigger.encode("ascii")
        headers = sign_slack(self.secret, body, timestamp)
        headers["Content-Type"] = FORM_TYPE
        return body, headers


def http_post(port: int, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", WEBHOOK_PATH, body, headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_get(port: int, path: str, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


# -- load generators ------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    answered: int  # responses received within the measured window
    sent: int  # requests put on the wire (the server handles each one)
    problems: list[str] = field(default_factory=list)


_LUA = r"""
-- Signed Slack slash commands, each with its own trigger_id: none is a duplicate.
-- Every body has the same length, so one request head serves them all.
local POOL = @@POOL@@
local HEAD = @@HEAD@@
local PREFIX = @@PREFIX@@
local NTHREADS = @@THREADS@@

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  triggers, signatures, count, idx, sent, wrapped = {}, {}, 0, 0, 0, 0
  local f = assert(io.open(POOL, "r"))
  local n = 0
  for line in f:lines() do
    if n % NTHREADS == tid then
      local sp = string.find(line, " ", 1, true)
      count = count + 1
      triggers[count] = string.sub(line, 1, sp - 1)
      signatures[count] = string.sub(line, sp + 1)
    end
    n = n + 1
  end
  f:close()
end

function request()
  idx = idx + 1
  if idx > count then
    idx = 1
    wrapped = 1
  end
  sent = sent + 1
  return HEAD .. signatures[idx] .. "\r\n\r\n" .. PREFIX .. triggers[idx]
end

function done(summary, latency, requests)
  local s, w = 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    w = w + t:get("wrapped")
  end
  io.write(string.format("bench-sent: %d\nbench-wrapped: %d\n", s, w))
end
"""


def _lua_string(text: str) -> str:
    """A Lua string literal (escaped, so CR LF survive as they are)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
    return f'"{escaped}"'


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not match:
        raise RuntimeError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


class WrkLoad:
    name = "wrk"

    def __init__(
        self, binary: str, connections: int, tmp: Path, signer: SignedRequests, max_rate: int
    ) -> None:
        self.binary = binary
        self.connections = connections
        self.threads = min(2, connections)
        self.tmp = tmp
        self.signer = signer
        self.max_rate = max_rate
        self.pools = 0

    def describe(self, seconds: int) -> str:
        return f"wrk -t{self.threads} -c{self.connections} -d{seconds}s"

    def _write_script(self, port: int, seconds: int) -> Path:
        # A fresh pool (and timestamp) per invocation: unique trigger_ids, well inside
        # Slack's 5-minute window. The pool holds trigger_ids and signatures only.
        self.pools += 1
        timestamp = int(time.time())
        tag = f"{timestamp}.{secrets.token_hex(3)}{self.pools:03x}"
        size = max(2000, seconds * self.max_rate)
        length = len(self.signer.prefix) + len(tag) + 8
        pool = self.tmp / "requests.txt"
        with pool.open("w", encoding="ascii") as out:
            for i in range(size):
                trigger = f"{tag}{i:08x}"
                body, headers = self.signer.make(trigger, timestamp)
                if len(body) != length:
                    raise RuntimeError("request bodies differ in length")
                out.write(f"{trigger} {headers['X-Slack-Signature']}\n")
        head = (
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Content-Type: {FORM_TYPE}\r\n"
            f"Content-Length: {length}\r\n"
            f"X-Slack-Request-Timestamp: {timestamp}\r\n"
            "X-Slack-Signature: "
        )
        script = self.tmp / "signed.lua"
        lua = (
            _LUA.replace("@@POOL@@", _lua_string(str(pool)))
            .replace("@@HEAD@@", _lua_string(head))
            .replace("@@PREFIX@@", _lua_string(self.signer.prefix.decode("ascii")))
            .replace("@@THREADS@@", str(self.threads))
        )
        script.write_text(lua, encoding="ascii")
        return script

    def run(self, port: int, seconds: int) -> Load:
        script = self._write_script(port, seconds)
        argv = [
            self.binary,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )
        return self._parse(proc.stdout)

    def _parse(self, out: str) -> Load:
        def grab(pattern: str) -> str:
            match = re.search(pattern, out, re.MULTILINE)
            if not match:
                raise RuntimeError(f"unreadable wrk output (no {pattern!r}):\n{out}")
            return match.group(1)

        load = Load(
            rps=float(grab(r"^Requests/sec:\s+([0-9.]+)")),
            p50_ms=_ms(grab(r"^\s+50%\s+(\S+)")),
            p99_ms=_ms(grab(r"^\s+99%\s+(\S+)")),
            answered=int(grab(r"^\s+([0-9]+) requests in ")),
            # wrk calls the first thread's request() once, before the run, to check what it
            # returns; that request is never sent.
            sent=int(grab(r"^bench-sent: ([0-9]+)")) - 1,
        )
        non2xx = re.search(r"Non-2xx or 3xx responses: ([0-9]+)", out)
        if non2xx:
            load.problems.append(f"{non2xx.group(1)} answers were not 2xx")
        errors = re.search(r"Socket errors: (.*)", out)
        if errors:
            load.problems.append(f"socket errors: {errors.group(1).strip()}")
        if grab(r"^bench-wrapped: ([0-9]+)") != "0":
            load.problems.append("the request pool ran out (trigger_ids repeated): raise --max-rate")
        return load


def _client_process(
    port: int,
    connections: int,
    start_at: float,
    stop_at: float,
    secret: str,
    tag: str,
    results: Any,
) -> None:
    """One load process: ``connections`` threads, each with one keep-alive connection."""
    import threading

    # The parent stops these processes itself (on Ctrl-C too), with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signer = SignedRequests(secret)
    timestamp = int(time.time())
    outcome: list[dict[str, Any]] = []

    def loop(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies: list[float] = []
        failures: dict[str, int] = {}
        sent = 0
        last = start_at
        while time.monotonic() < start_at:
            time.sleep(0.001)
        while time.monotonic() < stop_at and sent < MAX_REQUESTS_PER_CONNECTION:
            body, headers = signer.make(f"{tag}{index:02x}{sent:08x}", timestamp)
            try:
                if conn.sock is None:
                    conn.connect()  # gunicorn's sync workers close after each answer
                started = time.perf_counter()
                sent += 1
                conn.request("POST", WEBHOOK_PATH, body, headers)
                resp = conn.getresponse()
                resp.read()
                latencies.append(time.perf_counter() - started)
                if resp.status != 200:
                    failures[f"HTTP {resp.status}"] = failures.get(f"HTTP {resp.status}", 0) + 1
            except (OSError, http.client.HTTPException) as exc:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                conn.close()
            last = time.monotonic()
        conn.close()
        outcome.append({"latencies": latencies, "sent": sent, "failures": failures, "last": last})

    workers = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(stop_at - time.monotonic() + 30)
    results.put(outcome)


class PythonLoad:
    name = "python"

    def __init__(self, connections: int, processes: int, secret: str) -> None:
        self.connections = connections
        self.processes = max(1, min(processes, connections))
        self.secret = secret
        self.rounds = 0
        methods = multiprocessing.get_all_start_methods()
        self.context: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")

    def describe(self, seconds: int) -> str:
        return (
            f"Python http.client, {self.processes} processes x {self.connections} connections in all, "
            f"{seconds}s"
        )

    def run(self, port: int, seconds: int) -> Load:
        self.rounds += 1
        share = [
            self.connections // self.processes + (1 if i < self.connections % self.processes else 0)
            for i in range(self.processes)
        ]
        start_at = time.monotonic() + 0.5
        stop_at = start_at + seconds
        results = self.context.Queue()
        procs = []
        try:
            for i, conns in enumerate(share):
                tag = f"{int(time.time())}.{secrets.token_hex(3)}{self.rounds:03x}{i:02x}"
                args = (port, conns, start_at, stop_at, self.secret, tag, results)
                proc = self.context.Process(target=_client_process, args=args, daemon=True)
                proc.start()
                procs.append(proc)
            parts: list[dict[str, Any]] = []
            for _ in procs:
                parts.extend(results.get(timeout=seconds + 60))
            for proc in procs:
                proc.join(10)
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)
        latencies = sorted(lat for part in parts for lat in part["latencies"])
        sent = sum(part["sent"] for part in parts)
        failures: dict[str, int] = {}
        for part in parts:
            for reason, count in part["failures"].items():
                failures[reason] = failures.get(reason, 0) + count
        if not latencies:
            raise RuntimeError(f"no request was answered ({failures or 'no failures recorded'})")
        elapsed = max(part["last"] for part in parts) - start_at
        load = Load(
            rps=len(latencies) / elapsed,
            p50_ms=_percentile(latencies, 0.50) * 1000,
            p99_ms=_percentile(latencies, 0.99) * 1000,
            answered=len(latencies),
            sent=sent,
        )
        if failures:
            load.problems.append(
                ", ".join(f"{count} x {reason}" for reason, count in sorted(failures.items()))
            )
        return load


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# -- servers and the broker ------------------------------------------------------------------


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _machine_cpu() -> tuple[float, float]:
    """CPU seconds the machine spent on processes (user, system, and stolen by the host),
    and CPU seconds in all, from /proc/stat; interrupt time is left out of the first."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = values
    ticks = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + steal) / ticks, sum(values) / ticks


def _own_cpu() -> float:
    """CPU seconds of this process and of its finished children (the load generators)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class Server:
    config: Config
    port: int
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                break
            try:
                if http_get(self.port, "/healthz") == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.config.key} server did not come up:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def workers(self) -> list[int]:
        return _children(self.proc.pid) if self.proc else []

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class Broker:
    """The Redis list the ingress pushes to, and the keys this benchmark leaves behind.

    A run claims its database first (``SET NX`` on an owner key, refreshed as it goes), so
    two benchmarks at once never count each other's messages.
    """

    def __init__(self, url: str, ttl: int, connect_timeout: float = 2.0) -> None:
        self.url = url
        self.ttl = ttl
        self.token = secrets.token_hex(8)
        self.owned = False
        self.kombu_keys_before: set[str] = set(KOMBU_KEYS)
        self.client = redis.Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=5)

    def claim(self, *, empty: bool) -> bool:
        """Take the database unless another run holds it; with ``empty``, only an unused one."""
        if not self.client.set(OWNER_KEY, self.token, nx=True, ex=self.ttl):
            return False
        self.owned = True
        # Someone else's messages or keys: leave them alone.
        if self.length() or (empty and self.client.dbsize() != 1):
            self.release()
            return False
        self.kombu_keys_before = {key for key in KOMBU_KEYS if self.client.exists(key)}
        return True

    def refresh(self) -> None:
        if self.owned:
            self.client.expire(OWNER_KEY, self.ttl)

    def release(self) -> None:
        if self.owned:
            self.client.eval(_RELEASE, 1, OWNER_KEY, self.token)
            self.owned = False

    def local_pids(self) -> list[int]:
        """The Redis server's process id when it runs on this machine."""
        kwargs = self.client.connection_pool.connection_kwargs
        if kwargs.get("host", "127.0.0.1") not in {"127.0.0.1", "localhost", "::1"}:
            return []
        try:
            return [int(self.client.info("server")["process_id"])]
        except (redis.RedisError, KeyError, ValueError):
            return []

    def length(self) -> int:
        return int(self.client.llen(INTERACTIVE_QUEUE))

    def settle(self, timeout: float = 10.0) -> int:
        """The list's length once it stops growing (requests still in flight land first)."""
        deadline = time.monotonic() + timeout
        last, stable = self.length(), 0
        while stable < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.length()
            stable = stable + 1 if now == last else 0
            last = now
        return last

    def head(self) -> dict[str, Any]:
        raw = self.client.lindex(INTERACTIVE_QUEUE, 0)
        if raw is None:
            raise RuntimeError("no message on the queue")
        return dict(json.loads(raw))

    def clear(self) -> None:
        self.client.delete(INTERACTIVE_QUEUE)
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=DEDUPE_PATTERN, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.client.delete(*batch)
                batch = []
        if batch:
            self.client.delete(*batch)

    def close(self) -> None:
        try:
            if self.owned:
                self.clear()
                created = [key for key in KOMBU_KEYS if key not in self.kombu_keys_before]
                if created:
                    self.client.delete(*created)
                self.release()
        finally:
            self.client.close()


def _pick_redis(url: str | None, tmp: Path, ttl: int) -> tuple[Broker, EmbeddedRedis | None]:
    """A database no other benchmark is using: ``url``, else a spare DB of the local Redis,
    else an embedded Redis."""
    if url:
        broker = Broker(url, ttl)
        if not broker.claim(empty=False):
            broker.close()
            raise RuntimeError(
                f"{url}: another benchmark is using it, or its {INTERACTIVE_QUEUE!r} list is not empty"
            )
        return broker, None
    for db in LOCAL_DBS:
        broker = Broker(f"{LOCAL_REDIS}/{db}", ttl, connect_timeout=0.5)
        try:
            if broker.claim(empty=True):
                return broker, None
        except (redis.RedisError, OSError):
            broker.close()
            break  # no local Redis
        broker.close()
    embedded = EmbeddedRedis(tmp / "redis")
    try:
        embedded.start()
        broker = Broker(embedded.url, ttl)
        if not broker.claim(empty=True):
            raise RuntimeError("could not claim the embedded Redis")
    except BaseException:
        embedded.stop()
        raise
    return broker, embedded


# -- checks before measuring -----------------------------------------------------------------


def _task_name(message: dict[str, Any]) -> str:
    return str(message.get("headers", {}).get("task"))


def verify(server: Server, broker: Broker, signer: SignedRequests) -> None:
    """Fail unless the server answers a signed request 200 and enqueues what it should."""
    key = server.config.key
    trigger = f"{int(time.time())}.verify{secrets.token_hex(4)}"
    body, headers = signer.make(trigger, int(time.time()))
    if key == "chatops":
        forged = dict(headers, **{"X-Slack-Signature": "v0=" + "0" * 64})
        status, answer = http_post(server.port, body, forged)
        if status != 401 or broker.length() != 0:
            raise RuntimeError(f"chatops: a forged signature got {status} {answer[:200]!r}, not 401")
    status, answer = http_post(server.port, body, headers)
    if status != 200:
        raise RuntimeError(f"{key}: a signed request got {status} {answer[:200]!r}, not 200")
    queued = broker.length()
    if not server.config.enqueues:
        if queued:
            raise RuntimeError(f"{key}: {queued} messages appeared on {INTERACTIVE_QUEUE!r}")
    else:
        if queued != 1:
            raise RuntimeError(f"{key}: one signed request left {queued} messages on {INTERACTIVE_QUEUE!r}")
        message = broker.head()
        if _task_name(message) != COMMAND_TASK:
            raise RuntimeError(f"{key}: the queued message is for task {_task_name(message)!r}")
        if key == "chatops":
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)[0]
            if (args[0].get("reply_to") or {}).get("trigger_id") != trigger:
                raise RuntimeError("chatops: the queued command is not the one sent")
    broker.clear()


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Result:
    config: Config
    load: Load
    enqueued: int
    cpu_us: float | None
    other_cpu: float  # share of the machine's CPU used by processes other than this run's

    @property
    def expected(self) -> int:
        return self.load.sent if self.config.enqueues else 0


def measure(server: Server, broker: Broker, loadgen: WrkLoad | PythonLoad, seconds: int) -> Result:
    broker.refresh()
    loadgen.run(server.port, WARMUP_SECONDS)
    broker.settle()
    broker.clear()
    workers = server.workers()
    ours = [*workers, *server.pids(), *broker.local_pids()]
    machine_before, cpu_before, ours_before = _machine_cpu(), _cpu_seconds(workers), _cpu_seconds(ours)
    own_before = _own_cpu()
    load = loadgen.run(server.port, seconds)
    machine_after, cpu_after, ours_after = _machine_cpu(), _cpu_seconds(workers), _cpu_seconds(ours)
    own_after = _own_cpu()
    enqueued = broker.settle()
    broker.clear()
    cpu_us = (cpu_after - cpu_before) / load.answered * 1e6 if workers and load.answered else None
    busy = machine_after[0] - machine_before[0]
    capacity = machine_after[1] - machine_before[1]
    mine = ours_after - ours_before + own_after - own_before
    other = max(0.0, busy - mine) / capacity if capacity > 0 else 0.0
    return Result(server.config, load, enqueued, cpu_us, other)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _fmt_rps(value: float) -> str:
    return f"{value:,.0f}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() in {"model name", "Hardware", "cpu model"} and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per measurement (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the table shows medians (default 3)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per app (default 2)")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator (default: wrk if found)",
    )
    parser.add_argument(
        "--processes", type=int, default=2, help="processes of the Python load generator (default 2)"
    )
    parser.add_argument(
        "--max-rate",
        type=int,
        default=10_000,
        help="req/s the pre-signed wrk request pool is sized for (default 10000)",
    )
    parser.add_argument(
        "--redis-url",
        help=f"broker URL (default: an empty DB of {LOCAL_REDIS}, 14 down to 10, else an embedded Redis)",
    )
    args = parser.parse_args(argv)
    checks = [
        (1 <= args.duration <= 240, "--duration must be 1..240 s (a signature stays valid 5 minutes)"),
        (1 <= args.runs <= 50, "--runs must be 1..50"),
        (1 <= args.connections <= 1000, "--connections must be 1..1000"),
        (1 <= args.workers <= 64, "--workers must be 1..64"),
        (1 <= args.processes <= 64, "--processes must be 1..64"),
        (100 <= args.max_rate <= 1_000_000, "--max-rate must be 100..1000000"),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    return args


def _environment(tmp: Path, broker_url: str, secret: str) -> dict[str, str]:
    config = tmp / "chatops.toml"
    config.write_text(
        f"""
[providers.{INSTANCE}]
type = "slack"
bot_token = "xoxb-bench-unused"
signing_secret = "{secret}"
api_url = "http://127.0.0.1:9/api/"

# One bench user sends every request: rates it never reaches, still checked on every request
# (the check, the replay key and the push are one script either way).
[access.rate_limit]
commands_per_minute = 100000000
burst = 1000000
instance_commands_per_minute = 100000000
instance_burst = 1000000
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
    env.update(
        CHATOPS_CONFIG=str(config),
        CHATOPS_BROKER_URL=broker_url,
        CHATOPS_DATABASE_URL=f"sqlite:///{tmp / 'chatops.db'}",
        CHATOPS_DATA_DIR=str(tmp / "var"),
        CHATOPS_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


def _server_argv(env: dict[str, str], spec: str, port: int, workers: int) -> list[str]:
    settings = load_settings(env["CHATOPS_CONFIG"], env).model_copy(
        update={"host": "127.0.0.1", "port": port}
    )
    argv = gunicorn_argv(settings, workers=workers)
    if INGRESS_SPEC not in argv:
        raise RuntimeError(f"unexpected gunicorn command line: {argv}")
    argv = [spec if part == INGRESS_SPEC else part for part in argv]
    return argv[:-1] + ["--chdir", str(ROOT), argv[-1]]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the servers on SIGTERM too
    wrk = shutil.which("wrk")
    if args.loadgen == "wrk" and not wrk:
        print("wrk is not on PATH (install it: apt-get install wrk)", file=sys.stderr)
        return 2
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and wrk is not None)
    tmp_dir = tempfile.TemporaryDirectory(prefix="chatops-bench-")
    tmp = Path(tmp_dir.name)
    servers: list[Server] = []
    embedded: EmbeddedRedis | None = None
    broker: Broker | None = None
    try:
        load_average = os.getloadavg()[0]
        broker, embedded = _pick_redis(args.redis_url, tmp, ttl=2 * (args.duration + WARMUP_SECONDS) + 120)
        broker_url = broker.url
        secret = secrets.token_hex(16)
        signer = SignedRequests(secret)
        env = _environment(tmp, broker_url, secret)
        for config in CONFIGS:
            port = free_port()
            argv_ = _server_argv(env, config.spec, port, args.workers)
            servers.append(Server(config, port, argv_, tmp / f"{config.key}.log"))
        for server in servers:
            server.start(env)
        for server in servers:
            server.wait_ready()
            verify(server, broker, signer)

        loadgen: WrkLoad | PythonLoad
        if use_wrk:
            assert wrk is not None
            loadgen = WrkLoad(wrk, args.connections, tmp, signer, args.max_rate)
        else:
            loadgen = PythonLoad(args.connections, args.processes, secret)
        redis_version = broker.client.info("server").get("redis_version", "?")
        print(
            f"machine: {_cores()} cores, {_cpu_model()}, Python {platform.python_version()}, "
            f"load average {load_average:.2f} at start; "
            f"load: {loadgen.describe(args.duration)}, {args.runs} runs, median"
        )
        print(
            f"servers: gunicorn {_version('gunicorn')}, {args.workers} sync workers each "
            "(one command line, only the app differs); "
            f"Flask {_version('flask')}, Celery {_version('celery')}, redis-py {_version('redis')}; "
            f"broker Redis {redis_version} at {broker_url}{' (embedded)' if embedded else ''}"
        )
        flags = servers[0].argv[3:-1]
        if "--bind" in flags:
            at = flags.index("--bind")
            del flags[at : at + 2]
        print("gunicorn command line: gunicorn " + " ".join(flags) + " --bind 127.0.0.1:<port> <app>")
        print(
            f"requests: signed Slack slash commands ({len(signer.make('0' * 28, 0)[0])} bytes), "
            f"each with its own trigger_id; {WARMUP_SECONDS} s warm-up before each measurement; "
            "order per run: " + ", ".join(c.key for c in CONFIGS)
        )
        if not use_wrk:
            print(
                "note: wrk not used"
                + ("" if wrk else " (not installed: apt-get install wrk)")
                + "; the Python generator spends more CPU per request than wrk on the same cores, "
                "which narrows the gaps between rows"
            )
        sys.stdout.flush()

        runs: list[dict[str, Result]] = []
        for run in range(args.runs):
            results: dict[str, Result] = {}
            for server in servers:
                result = measure(server, broker, loadgen, args.duration)
                results[server.config.key] = result
                load = result.load
                print(
                    f"  run {run + 1}/{args.runs} {server.config.key:<8} {_fmt_rps(load.rps):>7} req/s  "
                    f"p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms  "
                    f"sent {load.sent}, enqueued {result.enqueued}; "
                    f"other processes used {result.other_cpu:.0%} of the CPU"
                    + (f"  PROBLEM: {'; '.join(load.problems)}" if load.problems else ""),
                    flush=True,
                )
            runs.append(results)
        return _report(runs)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, redis.RedisError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()
        if broker is not None:
            try:
                broker.close()
            except (redis.RedisError, OSError):
                pass
        if embedded is not None:
            embedded.stop()
        tmp_dir.cleanup()


def _ratios(runs: list[dict[str, Result]], key: str, attr: str) -> list[float]:
    """``key``'s figure over the bare endpoint's, run by run (both measured in the same run)."""
    return [getattr(run[key].load, attr) / getattr(run["bare"].load, attr) for run in runs]


def _report(runs: list[dict[str, Result]]) -> int:
    def med(key: str, attr: str) -> float:
        return _median([getattr(run[key].load, attr) for run in runs])

    print()
    header = f"{'endpoint':<30}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'cpu us/req':>12}"
    print(f"{header}   vs bare (median of per-run ratios)")
    for config in CONFIGS:
        cpu = [us for run in runs if (us := run[config.key].cpu_us) is not None]
        cpu_text = f"{_median(cpu):,.0f}" if cpu else "-"
        vs = ""
        if config.key != "bare":
            rps = _median(_ratios(runs, config.key, "rps"))
            p99 = _median(_ratios(runs, config.key, "p99_ms"))
            vs = f"{rps:.2f}x req/s, p99 {p99:.1f}x"
        row = (
            f"{config.label:<30}{_fmt_rps(med(config.key, 'rps')):>8}{med(config.key, 'p50_ms'):>9.2f}"
            f"{med(config.key, 'p99_ms'):>9.2f}{cpu_text:>12}   {vs}"
        )
        print(row.rstrip())
    pairs = zip(_ratios(runs, "chatops", "rps"), _ratios(runs, "chatops", "p99_ms"), strict=True)
    print("chatops vs bare, run by run (req/s, p99): " + "; ".join(f"{r:.2f}x, {p:.1f}x" for r, p in pairs))
    best = max(run["bare"].load.rps for run in runs)
    disturbed = [
        str(i + 1)
        for i, run in enumerate(runs)
        if run["bare"].load.rps < DISTURBED * best or max(r.other_cpu for r in run.values()) > OTHER_CPU_LIMIT
    ]
    quiet = [run for i, run in enumerate(runs) if str(i + 1) not in disturbed]
    if disturbed:
        print(
            f"warning: run(s) {', '.join(disturbed)} of {len(runs)} were disturbed (other processes used "
            f"more than {OTHER_CPU_LIMIT:.0%} of the CPU, or the bare endpoint reached less than "
            f"{DISTURBED:.0%} of its best run): their ratios are unreliable; rerun on a quiet machine "
            "or with more --runs"
        )

    failed = False
    for config in CONFIGS:
        sent = sum(run[config.key].load.sent for run in runs)
        answered = sum(run[config.key].load.answered for run in runs)
        enqueued = sum(run[config.key].enqueued for run in runs)
        expected = sum(run[config.key].expected for run in runs)
        match = all(run[config.key].enqueued == run[config.key].expected for run in runs)
        problems = [p for run in runs for p in run[config.key].load.problems]
        failed = failed or not match or bool(problems)
        print(
            f"enqueued {config.key:<8}{enqueued:>8,} of {expected:>8,} expected "
            f"({sent:,} requests sent, {answered:,} answered in the window): "
            + ("match" if match else "MISMATCH")
            + (f"; PROBLEMS: {'; '.join(problems)}" if problems else "")
        )
    # The aim is judged on the undisturbed runs when there are any.
    judged = quiet or runs
    rps_ratio = _median(_ratios(judged, "chatops", "rps"))
    p99_ratio = _median(_ratios(judged, "chatops", "p99_ms"))
    met = rps_ratio >= AIM_RPS_RATIO and p99_ratio <= AIM_P99_RATIO
    if not disturbed:
        basis = ""
    elif quiet:
        basis = f"; judged on the {len(quiet)} undisturbed run(s) only"
    else:
        basis = "; unreliable: every run was disturbed"
    print(
        f"aim (>={AIM_RPS_RATIO}x req/s, p99 <={AIM_P99_RATIO:g}x): "
        + ("met" if met else "NOT met")
        + f" ({rps_ratio:.3f}x req/s, p99 {p99_ratio:.2f}x{basis})"
    )
    if failed:
        print("error: the run is not valid (see the enqueued lines above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
