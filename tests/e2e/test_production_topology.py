"""The production topology end to end: two ingress processes behind one "load balancer" (the
test), an ``interactive`` worker, two ``notifications`` workers, a ``maintenance`` worker and
beat, on the PostgreSQL server when ``CHATOPS_TEST_DATABASE_URL`` is set (else SQLite) and the
test Redis. Commands arrive through both ingresses at once, one notifications worker is
SIGKILLed in the middle of the batch and replaced, and Slack (the local server, which refuses
posts faster than its rate limit with 429s) sees every incident and every notification once.

The maintenance worker sweeps the ledger of sent tasks every second here (every minute by
default): a task the killed worker had taken off the broker but not yet noted comes back
within seconds (workers.redis_transport)."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from chatops_core.providers.slack.devtools import slash_command_body
from chatops_core.publisher import TaskPublisher
from chatops_core.stack import worker_argv
from chatops_core.tasks import INTERACTIVE_QUEUE, MAINTENANCE_QUEUE, NOTIFICATIONS_QUEUE, NOTIFY_TASK, QUEUES
from tests.e2e.stack import SIGNING_SECRET, Stack, own_slack, settled, start_stack, wait_on
from tests.e2e.test_delivery import delivery_count, notification, posted_ids
from tests.fakes.slack_server import FakeSlack, signed_headers
from workers.redis_transport import SENT_INDEX_KEY, SENT_KEY

pytestmark = pytest.mark.e2e

# SEV-1 incidents breach their acknowledgement SLA 3 s after they are declared; the others
# have none (they are acknowledged anyway).
SLA = """
[sla]
check_interval_seconds = 1
[sla.ack_minutes]
"SEV-1" = 0.05
"""
ROUTED = {"sev1": "critical-incidents", "sev2": "major-incidents", "sev3": "incidents"}
PER_SEVERITY = 4
NOTIFICATION_WORKERS = ("notifications-1", "notifications-2")


slack = pytest.fixture(own_slack, name="slack")


@pytest.fixture
def ingresses(
    tmp_path: Path, redis_url: str, database_url: str, slack: FakeSlack
) -> Iterator[tuple[Stack, Stack]]:
    """The two ingresses (the same stack seen through each); every process is started."""
    redis.Redis.from_url(redis_url).flushdb()
    first = start_stack(
        tmp_path,
        redis_url=redis_url,
        api_url=slack.api_url,
        token=slack.token,
        database_url=database_url,
        extra_config=SLA,
        worker=False,
        # The killed worker's tasks come back after 8 s rather than the default five minutes,
        # and those it took without noting them within a few seconds more.
        extra_env={
            "CHATOPS_VISIBILITY_TIMEOUT_SECONDS": "8",
            "CHATOPS_SENT_SWEEP_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        },
    )
    try:
        second = first.add_ingress("ingress-2")
        first.start("interactive", worker_argv(queues=INTERACTIVE_QUEUE, concurrency=2))
        for name in NOTIFICATION_WORKERS:
            first.start(name, worker_argv(queues=NOTIFICATIONS_QUEUE, concurrency=2))
        first.start("maintenance", worker_argv(queues=MAINTENANCE_QUEUE, concurrency=1))
        first.start("beat", [sys.executable, "-m", "chatops_core.cli", "beat"])
        yield first, second
    finally:
        first.stop()


def declare_through_both(
    ingresses: tuple[Stack, Stack], slack: FakeSlack, text: str, name: str, user: tuple[str, str]
) -> None:
    """One slash command, sent through both ingresses at the same moment (as a proxy that
    retries on another backend does): the very same signed request, twice. Its answer goes
    to the response URL ``name``."""
    body = slash_command_body(
        command="/im",
        text=text,
        user_id=user[0],
        user_name=user[1],
        channel_id="C0004",
        channel_name="general",
        response_url=slack.response_url(name),
    )
    headers = signed_headers(body, SIGNING_SECRET)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda s: s.post("/webhooks/slack", body, headers), ingresses))
    for status, raw, _ in answers:
        assert status == 200, raw


def reply_name(title: str) -> str:
    """The response URL name of the declaration of ``title`` (a URL path has no spaces)."""
    return title.replace(" ", "-")


def answer(slack: FakeSlack, stack: Stack, name: str) -> dict[str, Any]:
    # The first answers wait for the workers to start, which takes long on a busy machine.
    (first, *_) = wait_on(slack, stack, lambda: slack.responses(name), f"the answer to {name}", timeout=60)
    return dict(first)


def number_in(text: str) -> int:
    found = re.search(r"INC-(\d+)", text)
    assert found, text
    return int(found.group(1))


def said_in(slack: FakeSlack, channel: str) -> Counter[tuple[int, str]]:
    """What ``channel`` shows of each incident: its ``card`` (a message of the channel itself,
    updated in place), its SLA ``breach`` (a reply in the card's thread, or the card itself when
    the breach was the first news of it there) and any ``other`` reply."""
    said: Counter[tuple[int, str]] = Counter()
    for message in slack.messages(channel):
        number = number_in(message["text"])
        breach = "SLA breached" in message["text"]
        if not message.get("thread_ts"):
            said[(number, "card")] += 1
        elif not breach:
            said[(number, "other")] += 1
        if breach:
            said[(number, "breach")] += 1
    return said


def each_once(numbers: list[int], breached: list[int]) -> Counter[tuple[int, str]]:
    """A card for each of ``numbers``, and a breach for each of ``breached``."""
    return Counter([(n, "card") for n in numbers] + [(n, "breach") for n in breached])


def card_text(slack: FakeSlack, channel: str, number: int) -> str:
    (text,) = [
        m["text"]
        for m in slack.messages(channel)
        if not m.get("thread_ts") and number_in(m["text"]) == number
    ]
    return str(text)


def broker_state(stack: Stack) -> dict[str, Any]:
    """What the broker holds, for a failure's message: the tasks queued, and those a worker
    holds unacknowledged (name, and seconds since it took them)."""
    broker = redis.Redis.from_url(stack.env["CHATOPS_BROKER_URL"])
    try:
        held = {}
        for tag, raw in broker.hgetall("unacked").items():
            message = json.loads(json.loads(raw)[0])
            taken = broker.zscore("unacked_index", tag) or 0
            held[str(tag, "utf-8") if isinstance(tag, bytes) else tag] = (
                message["headers"].get("task"),
                round(time.time() - taken, 1),
            )
        return {"queued": {q: broker.llen(q) for q in QUEUES}, "unacked": held}
    finally:
        broker.close()


def delivered_by(stack: Stack, name: str, channels: set[str]) -> bool:
    """Whether worker ``name`` delivered anything into one of ``channels``."""
    text = (stack.log_dir / f"{name}.log").read_text()
    return any(
        '"event":"delivered"' in line and f'"target":"slack/#{c}"' in line
        for line in text.splitlines()
        for c in channels
    )


def test_production_topology_answers_every_command_and_says_everything_once(
    ingresses: tuple[Stack, Stack], slack: FakeSlack
) -> None:
    first, _ = ingresses
    for channel in ROUTED.values():
        slack.limit_channel(channel, per_second=1.0)

    # Every declaration through both ingresses at once, all declarations side by side, each by
    # a responder of its own (one person's burst of commands is limited).
    titles = {f"Outage {sev} {i}": sev for sev in ROUTED for i in range(PER_SEVERITY)}
    people = {title: (f"U2{i:02d}", f"responder{i}") for i, title in enumerate(titles)}
    with ThreadPoolExecutor(max_workers=len(titles)) as pool:
        list(
            pool.map(
                lambda t: declare_through_both(
                    ingresses, slack, f"declare {titles[t]} {t}", reply_name(t), people[t]
                ),
                titles,
            )
        )
    numbers: dict[str, int] = {}
    for title in titles:
        said = answer(slack, first, reply_name(title))
        assert said["response_type"] == "in_channel" and title in said["text"], said
        numbers[title] = number_in(said["text"])
    assert len(set(numbers.values())) == len(titles), numbers
    by_severity = {sev: sorted(n for t, n in numbers.items() if titles[t] == sev) for sev in ROUTED}
    store = first.store()
    try:
        own_channels = {n: store.get(n).channel_id for n in numbers.values()}
    finally:
        store.close()
    assert all(own_channels.values()), own_channels

    # The SEV-2 and SEV-3 incidents are acknowledged, alternately through each ingress, while
    # their cards are still going out.
    acked = by_severity["sev2"] + by_severity["sev3"]
    acker = {n: people[t] for t, n in numbers.items()}
    for i, number in enumerate(acked):
        user, name = acker[number]
        status, raw, _ = ingresses[i % 2].slash(
            f"ack INC-{number}", slack.response_url(f"ack-{number}"), user=user, user_name=name
        )
        assert status == 200, raw

    def everything_said() -> bool:
        for sev, channel in ROUTED.items():
            mine = by_severity[sev]
            breached = mine if sev == "sev1" else []
            if said_in(slack, channel) != each_once(mine, breached):
                return False
            # The incident's own channel: its card, and its breach too.
            for number in mine:
                if said_in(slack, str(own_channels[number])) != each_once(
                    [number], [number] if breached else []
                ):
                    return False
        return all(
            "(acknowledged)" in card_text(slack, ROUTED[titles[t]], n)
            for t, n in numbers.items()
            if n in acked
        )

    # A notifications worker dies (SIGKILL, it and its pool) in the middle of the batch, with
    # tasks taken, and another one takes its place.
    routed = set(ROUTED.values())
    victim = NOTIFICATION_WORKERS[0]
    wait_on(
        slack,
        first,
        lambda: sum(len(slack.messages(c)) for c in routed) >= 3 and delivered_by(first, victim, routed),
        "the first cards out",
        timeout=30,
    )
    first.kill(victim)
    assert not everything_said(), "the worker was killed after the batch"
    first.start("notifications-3", worker_argv(queues=NOTIFICATIONS_QUEUE, concurrency=2))

    try:
        slack.wait_for(everything_said, timeout=45)
    except TimeoutError as exc:
        shown = {c: [m["text"][:80] for m in slack.messages(c)] for c in routed}
        state = broker_state(first)
        raise AssertionError(
            f"{exc}\nincidents {numbers}\nshown {shown}\nbroker {state}\n{first.logs()}"
        ) from None
    # Nothing more comes once the workers are idle: each card, acknowledgement and breach once.
    settled(slack, first, "the notifications workers to finish")
    assert everything_said()

    # Every command answered, once.
    for title in titles:
        assert len(slack.responses(reply_name(title))) == 1, (title, slack.responses(reply_name(title)))
    for number in acked:
        (said,) = slack.responses(f"ack-{number}")
        assert f"Acknowledged by {acker[number][1]}" in said["text"] and f"INC-{number}" in said["text"], said

    # Every incident once.
    store = first.store()
    try:
        stored = store.list(active_only=False, limit=100)
    finally:
        store.close()
    assert sorted(i.title for i in stored) == sorted(titles)

    # The rate-limit floor held across the processes posting into the same channels: Slack
    # refused (almost) nothing, though several workers posted there, one killed mid-way.
    refused = sum(1 for c in slack.calls("chat.postMessage") if c.status == 429)
    assert refused <= 2, f"{refused} posts refused with 429"
    posters = [n for n in (*NOTIFICATION_WORKERS, "notifications-3") if delivered_by(first, n, routed)]
    assert len(posters) >= 2, posters
    assert delivery_count(first, "dead_lettered") == 0


@pytest.fixture
def lone_stack(tmp_path: Path, redis_url: str, slack: FakeSlack) -> Iterator[Stack]:
    """An ingress without workers; the test starts and kills them. Held tasks come back after
    4 s, and the ledger of sent tasks is swept every second."""
    redis.Redis.from_url(redis_url).flushdb()
    running = start_stack(
        tmp_path,
        redis_url=redis_url,
        api_url=slack.api_url,
        token=slack.token,
        worker=False,
        extra_env={"CHATOPS_VISIBILITY_TIMEOUT_SECONDS": "4", "CHATOPS_SENT_SWEEP_SECONDS": "1"},
    )
    yield running
    running.stop()


def test_a_task_handed_to_a_worker_that_dies_before_taking_it_comes_back(
    lone_stack: Stack, slack: FakeSlack, redis_url: str
) -> None:
    """The moment of the kill above that loses a notification, made certain: Redis has handed
    the task to the worker (its BRPOP answered, the queue empty) and the worker is SIGKILLed
    before it read the answer and noted the task as unacknowledged. Another worker must still
    deliver it once: the maintenance worker finds it in the ledger of sent tasks, in neither
    the queue nor the unacknowledged set, and puts it back."""
    broker = redis.Redis.from_url(redis_url)
    db = broker.connection_pool.connection_kwargs.get("db", 0)
    publisher = TaskPublisher(redis_url)
    lone_stack.start("victim", worker_argv(queues=NOTIFICATIONS_QUEUE, concurrency=1))
    victim = lone_stack.processes["victim"]

    def waiting_in_brpop() -> bool:
        return any(
            c.get("cmd") == "brpop" and "b" in c.get("flags", "") and c.get("db") == str(db)
            for c in broker.client_list()
        )

    payload, inc = notification("SEV-3")
    handed = False
    for _ in range(20):  # the worker renews its BRPOP every second; catch one outstanding
        wait_on(slack, lone_stack, waiting_in_brpop, "the worker to wait for a task", timeout=60)
        os.kill(victim.pid, signal.SIGSTOP)
        if waiting_in_brpop():
            tid = publisher.send(NOTIFY_TASK, [payload, f"handed-{inc}"], queue=NOTIFICATIONS_QUEUE)
            if broker.llen(NOTIFICATIONS_QUEUE) == 0:
                handed = True
                break
            # Its BRPOP had just timed out: the task waits in the queue; take it back out (and
            # out of the ledger, which would bring it back).
            broker.delete(NOTIFICATIONS_QUEUE, SENT_KEY, SENT_INDEX_KEY)
        os.kill(victim.pid, signal.SIGCONT)
    assert handed and tid is not None, "never caught the worker waiting in BRPOP"
    assert broker.hlen("unacked") == 0  # the frozen worker has not noted it
    assert broker.hexists(SENT_KEY, tid)  # but it was recorded as sent
    lone_stack.kill("victim")
    lone_stack.start("heir", worker_argv(queues=NOTIFICATIONS_QUEUE, concurrency=1))
    lone_stack.start("maintenance", worker_argv(queues=MAINTENANCE_QUEUE, concurrency=1))
    lone_stack.start("beat", [sys.executable, "-m", "chatops_core.cli", "beat"])
    # Looked at once the visibility timeout (4 s) and a sweep interval (1 s) have passed since
    # it was sent, and put back by the next sweep that still finds it missing; the workers'
    # start-up takes long on a busy machine.
    wait_on(slack, lone_stack, lambda: slack.messages("incidents"), "the task to come back", timeout=60)
    settled(slack, lone_stack, "the worker to finish")
    assert posted_ids(slack, "incidents") == [inc]
    # Delivered and acknowledged: nothing is left in the ledger.
    wait_on(slack, lone_stack, lambda: not broker.hexists(SENT_KEY, tid), "the ledger to forget it")
    broker.close()
