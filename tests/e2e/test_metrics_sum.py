"""``/metrics`` of a real gunicorn ingress with two worker processes: every scrape shows the
sum over the workers, whichever worker answers it, and a restart starts from zero."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import redis

from chatops_core.delivery_metrics import KEY as DELIVERIES_KEY
from tests.e2e.stack import Stack, start_stack
from tests.fakes.slack_server import FakeSlack

WEBHOOKS = 40
SCRAPES = 12


def start(tmp: Path, redis_url: str, slack: FakeSlack, metrics_dir: Path | None = None) -> Stack:
    extra = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)} if metrics_dir is not None else {}
    tmp.mkdir(parents=True, exist_ok=True)
    return start_stack(
        tmp, redis_url=redis_url, api_url=slack.api_url, token=slack.token, worker=False, extra_env=extra
    )


def sample(exposition: str, name: str, labels: str) -> float | None:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", exposition, re.MULTILINE)
    return float(match.group(1)) if match else None


def scrape(stack: Stack) -> str:
    status, body = stack.get("/metrics")
    assert status == 200
    return body.decode()


def send(stack: Stack, slack: FakeSlack, count: int) -> None:
    for i in range(count):
        status, body, _ = stack.slash(f"note INC-1 line {i}", slack.response_url("metrics"))
        assert status == 200, body


def test_every_scrape_shows_the_sum_over_both_workers(
    tmp_path: Path, redis_url: str, slack: FakeSlack
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.hset(DELIVERIES_KEY, "slack|delivered", 3)
    stack = start(tmp_path / "one", redis_url, slack)
    try:
        send(stack, slack, WEBHOOKS)
        seen = []
        for _ in range(SCRAPES):
            exposition = scrape(stack)
            seen.append(
                (
                    sample(exposition, "chatops_webhooks_total", 'instance="slack",outcome="enqueued"'),
                    sample(exposition, "chatops_webhook_seconds_count", 'instance="slack"'),
                    sample(exposition, "chatops_deliveries_total", 'instance="slack",outcome="delivered"'),
                )
            )
        assert seen == [(WEBHOOKS, WEBHOOKS, 3.0)] * SCRAPES
        # A worker that dies keeps its counts in the sum; its replacement adds to them.
        master = stack.processes["ingress"].pid
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        assert len(workers) == 2
        os.kill(int(workers[0]), signal.SIGKILL)
        send(stack, slack, 2)
        for _ in range(SCRAPES):
            exposition = scrape(stack)
            assert sample(exposition, "chatops_webhooks_total", 'instance="slack",outcome="enqueued"') == (
                WEBHOOKS + 2
            )
    finally:
        stack.stop()
        client.flushdb()
        client.close()


def test_the_counts_start_from_zero_when_the_ingress_starts(
    tmp_path: Path, redis_url: str, slack: FakeSlack
) -> None:
    metrics_dir = tmp_path / "metrics"  # an operator's own PROMETHEUS_MULTIPROC_DIR
    metrics_dir.mkdir()
    redis.Redis.from_url(redis_url).flushdb()
    first = start(tmp_path / "first", redis_url, slack, metrics_dir)
    try:
        send(first, slack, 5)
    finally:
        first.stop()
    second = start(tmp_path / "second", redis_url, slack, metrics_dir)
    try:
        send(second, slack, 2)
        for _ in range(4):
            exposition = scrape(second)
            assert sample(exposition, "chatops_webhooks_total", 'instance="slack",outcome="enqueued"') == 2
    finally:
        second.stop()
        redis.Redis.from_url(redis_url).flushdb()
