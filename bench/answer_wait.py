"""Do Teams requests that wait for their answer hold up everyone else's webhooks?

A Teams outgoing webhook shows only what the HTTP response carries, so the ingress holds such
a request open (up to ``answer_wait_seconds``) for the worker's answer. This benchmark runs
the real ingress (``chatops_core.stack.gunicorn_argv``) with a Slack instance and a Teams
instance in webhook mode on one Redis, with **no worker**: every Teams request waits the whole
time, the worst case. It measures Slack slash commands (keep-alive connections, one process)
twice in each run:

- ``slack alone``: only the Slack load;
- ``slack + teams flood``: the same Slack load while another process keeps ``--teams``
  connections busy with signed Teams requests, each one waiting for an answer that never
  comes (more waiting requests than the ingress lets wait).

It prints Slack's req/s and p50/p99 in both, their ratio, and how the Teams requests were
answered (after the full wait, or at once "the result will follow" because every waiting slot
was taken). Run ``.venv/bin/python bench/answer_wait.py`` (``--help`` for settings). The exit
status is non-zero only when the benchmark itself failed (a server did not start, a request
was refused).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chatops_core.providers.slack.devtools import new_trigger, sign_slack, slash_command_body  # noqa: E402
from chatops_core.settings import load_settings  # noqa: E402
from chatops_core.stack import INGRESS_THREADS, EmbeddedRedis, free_port, gunicorn_argv  # noqa: E402

SLACK_SECRET = secrets.token_hex(16)
TEAMS_SECRET = base64.b64encode(secrets.token_bytes(32)).decode()


def _config(tmp: Path, wait: float) -> Path:
    path = tmp / "chatops.toml"
    path.write_text(
        f"""
[providers.slack]
type = "slack"
bot_token = "xoxb-bench-unused"
signing_secret = "{SLACK_SECRET}"
api_url = "http://127.0.0.1:9/api/"

[providers.teams]
type = "teams"
outgoing_webhook_secret = "{TEAMS_SECRET}"
default_channel = "incidents"
answer_wait_seconds = {wait}
[providers.teams.channels.incidents]
webhook_url = "http://127.0.0.1:9/workflows/unused"
"""
    )
    return path


def _slack_request() -> tuple[bytes, dict[str, str]]:
    body = slash_command_body(
        command="/im",
        text="status",
        user_id="U100",
        user_name="alice",
        channel_id="C0004",
        channel_name="general",
        response_url="http://127.0.0.1:9/r",
        trigger_id=new_trigger(),
    )
    headers = sign_slack(SLACK_SECRET, body, int(time.time()))
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return body, headers


def _teams_request(secret: str) -> tuple[bytes, dict[str, str]]:
    activity_id = uuid.uuid4().hex
    activity = {
        "type": "message",
        "id": activity_id,
        "timestamp": "2026-12-06T00:00:00.000Z",
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "channelId": "msteams",
        "from": {"id": "29:1bench", "name": "Alice", "aadObjectId": str(uuid.uuid4())},
        "conversation": {"isGroup": True, "id": f"19:bench@thread.tacv2;messageid={activity_id}"},
        "recipient": {"id": "28:bench", "name": "IncidentBot"},
        "textFormat": "plain",
        "text": "<at>IncidentBot</at> status",
        "entities": [
            {
                "type": "mention",
                "mentioned": {"id": "28:bench", "name": "IncidentBot"},
                "text": "<at>IncidentBot</at>",
            }
        ],
        "channelData": {
            "teamsChannelId": "19:bench@thread.tacv2",
            "teamsTeamId": "19:team@thread.tacv2",
            "channel": {"id": "19:bench@thread.tacv2"},
            "team": {"id": "19:team@thread.tacv2"},
            "tenant": {"id": str(uuid.uuid4())},
        },
    }
    body = json.dumps(activity).encode()
    digest = hmac.new(base64.b64decode(secret), body, hashlib.sha256).digest()
    return body, {
        "Content-Type": "application/json",
        "Authorization": "HMAC " + base64.b64encode(digest).decode(),
    }


def _post(
    conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _slack_load(port: int, connections: int, seconds: float) -> tuple[int, list[float], list[str]]:
    """``connections`` threads, each a keep-alive connection sending Slack commands."""
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        while time.monotonic() < stop:
            body, headers = _slack_request()
            started = time.perf_counter()
            try:
                status, _ = _post(conn, "/webhooks/slack", body, headers)
            except (OSError, http.client.HTTPException) as exc:
                problems.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append(time.perf_counter() - started)
            if status != 200:
                problems.append(f"HTTP {status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies), latencies, problems


def _teams_flood(port: int, connections: int, seconds: float, secret: str, pause: float, out: Any) -> None:
    """In its own process: ``connections`` threads sending Teams requests back to back."""
    waited: list[float] = []
    at_once: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            body, headers = _teams_request(secret)
            started = time.perf_counter()
            try:
                status, answer = _post(conn, "/webhooks/teams", body, headers)
            except (OSError, http.client.HTTPException) as exc:
                problems.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            took = time.perf_counter() - started
            with lock:
                if status != 200:
                    problems.append(f"HTTP {status}")
                (waited if took > 1.0 else at_once).append(took)
            if took <= 1.0:
                # Answered at once: people type again after a moment, not in a busy loop (a
                # busy loop would measure CPU contention, not held threads).
                time.sleep(pause)
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put({"waited": waited, "at_once": at_once, "problems": problems})


def _figures(rate: float, latencies: list[float], problems: list[str]) -> str:
    p50, p99 = _percentile(latencies, 0.5) * 1000, _percentile(latencies, 0.99) * 1000
    text = f"{rate:7.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
    return text + (f"  PROBLEMS {problems[:3]}" if problems else "")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=8.0, help="seconds of load per measurement (default 8)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--slack", type=int, default=4, help="Slack keep-alive connections (default 4)")
    parser.add_argument("--teams", type=int, default=24, help="Teams connections flooding (default 24)")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.05,
        help="a Teams connection's pause after an at-once answer (default 0.05 s)",
    )
    parser.add_argument(
        "--wait", type=float, default=4.0, help="answer_wait_seconds of the Teams instance (default 4)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    args = parser.parse_args(argv)
    if args.duration < args.wait + 1:
        parser.error("--duration must exceed --wait by at least a second")

    tmp_dir = tempfile.TemporaryDirectory(prefix="chatops-answer-bench-")
    tmp = Path(tmp_dir.name)
    redis_server = EmbeddedRedis(tmp / "redis")
    redis_server.start()
    server: subprocess.Popen[bytes] | None = None
    try:
        config = _config(tmp, args.wait)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATOPS_")}
        env.update(
            CHATOPS_CONFIG=str(config),
            CHATOPS_BROKER_URL=redis_server.url,
            CHATOPS_DATABASE_URL=f"sqlite:///{tmp / 'chatops.db'}",
            CHATOPS_DATA_DIR=str(tmp / "var"),
            CHATOPS_LOG_LEVEL="ERROR",
            CHATOPS_PORT=str(port),
            PYTHONPATH=str(ROOT),
        )
        settings = load_settings(config, env)
        argv_ = gunicorn_argv(settings, workers=args.workers)
        log = open(tmp / "ingress.log", "wb")  # noqa: SIM115 - closed at exit with the directory
        server = subprocess.Popen(argv_, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print((tmp / "ingress.log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.1)
        waiting_slots = args.workers * (INGRESS_THREADS // 2)
        print(
            f"ingress: gunicorn, {args.workers} processes x {INGRESS_THREADS} threads "
            f"({waiting_slots} may wait for an answer at once); no worker, so every Teams "
            f"request that waits, waits {args.wait:g} s"
        )
        print(
            f"load: Slack {args.slack} keep-alive connections for {args.duration:g} s per measurement; "
            f"Teams flood: {args.teams} connections in another process, each pausing {args.pause:g} s "
            f"after an at-once answer; {args.runs} runs"
        )
        _slack_load(port, args.slack, 1.0)  # warm-up
        ratios: list[float] = []
        failed = False
        for run in range(1, args.runs + 1):
            count, latencies, problems = _slack_load(port, args.slack, args.duration)
            alone = count / args.duration
            print(f"  run {run} slack alone          {_figures(alone, latencies, problems)}")
            failed |= bool(problems)
            queue: Any = multiprocessing.get_context("spawn").Queue()
            flood = multiprocessing.get_context("spawn").Process(
                target=_teams_flood,
                args=(port, args.teams, args.duration + args.wait + 1, TEAMS_SECRET, args.pause, queue),
            )
            flood.start()
            time.sleep(1.0)  # let the flood take every waiting slot first
            count, latencies, problems = _slack_load(port, args.slack, args.duration)
            flooded = count / args.duration
            teams = queue.get(timeout=args.duration * 3 + 30)
            flood.join(30)
            ratios.append(flooded / alone if alone else 0.0)
            print(
                f"  run {run} slack + teams flood  {_figures(flooded, latencies, problems)}"
                f"  ({flooded / alone:.2f}x alone)"
            )
            waited, at_once = teams["waited"], teams["at_once"]
            median_wait = statistics.median(waited) if waited else float("nan")
            print(
                f"        teams: {len(waited)} answered after waiting (median {median_wait:.2f} s), "
                f"{len(at_once)} answered at once that the result will follow (p99 "
                f"{_percentile(at_once, 0.99) * 1000:.1f} ms)"
                + (f"  PROBLEMS {teams['problems'][:3]}" if teams["problems"] else "")
            )
            failed |= bool(problems) or bool(teams["problems"])
        print(f"slack under the flood, median of runs: {statistics.median(ratios):.2f}x of slack alone")
        return 1 if failed else 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        redis_server.stop()
        tmp_dir.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
