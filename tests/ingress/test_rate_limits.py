"""Rate limits and replay protection at the ingress, on a real Redis.

Per person (across platforms, once a worker has said who a platform user is) and per
instance, checked with the replay and de-duplication keys and the push in one script: over
the limit nothing is enqueued and the person is told to slow down; the limits hold across
ingress processes and restarts and refill on time. A signed request seen again is answered
without acting again.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import redis
from flask import Flask

from chatops_core.access.settings import AccessSettings, RateLimitSettings
from chatops_core.models import InboundCommand
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.devtools import slash_command_body
from chatops_core.publisher import Rate, TaskPublisher, person_key
from chatops_core.settings import Settings
from chatops_core.tasks import REFUSED_TASK
from ingress.app import create_app
from tests.celery_messages import task_body
from tests.fakes.slack_server import signed_headers

SECRET = "rate-limit-signing-secret"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slack"


def settings_for(redis_url: str, tmp_path: Path, **limits: int) -> Settings:
    return Settings(
        broker_url=redis_url,
        data_dir=tmp_path,
        providers={"slack": SlackSettings(bot_token="xoxb-unit", signing_secret=SECRET)},
        access=AccessSettings(rate_limit=RateLimitSettings(**limits)),
    )


def slash(app: Flask, user: str, n: int, text: str = "status") -> tuple[int, Any]:
    body = slash_command_body(
        command="/im",
        text=text,
        user_id=user,
        user_name=user.lower(),
        channel_id="C1",
        channel_name="general",
        response_url="http://127.0.0.1:9/r",
        trigger_id=f"{user}.{n}.{time.monotonic_ns()}",
    )
    response = app.test_client().post("/webhooks/slack", data=body, headers=signed_headers(body, SECRET))
    return response.status_code, response.get_json(silent=True)


def queued(client: redis.Redis) -> list[tuple[str, list[Any]]]:
    """(task name, args) of every message on the interactive queue, oldest first."""
    out = []
    for raw in reversed(client.lrange("interactive", 0, -1)):
        envelope = json.loads(raw)
        out.append((envelope["headers"]["task"], task_body(envelope)[0]))
    return out


def test_a_burst_over_the_limit_is_refused_and_the_person_told(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    app = create_app(settings_for(redis_url, tmp_path, commands_per_minute=6, burst=4))
    answers = [slash(app, "U1", n) for n in range(7)]
    assert all(status == 200 for status, _ in answers)
    assert [a for _, a in answers[:4]] == [None] * 4  # admitted: Slack's empty acknowledgement
    for _, refused in answers[4:]:
        assert refused["response_type"] == "ephemeral"
        assert refused["text"].startswith("Slow down: you can run 6 commands a minute (bursts of 4).")
        wait = int(refused["text"].split("Try again in ")[1].split(" s")[0])
        assert 1 <= wait <= 10  # one interval is 10 s at 6 a minute
    assert [name for name, _ in queued(redis_client)] == ["chatops.command"] * 4
    # Another person is not held back by the first.
    assert slash(app, "U2", 0) == (200, None)
    assert len(queued(redis_client)) == 5


def test_the_limit_refills_on_time(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> None:
    # 1200 a minute: one command every 50 ms once the burst of 2 is spent.
    app = create_app(settings_for(redis_url, tmp_path, commands_per_minute=1200, burst=2))
    assert [slash(app, "U1", n)[1] for n in range(2)] == [None, None]
    assert slash(app, "U1", 2)[1] is not None
    deadline = time.monotonic() + 3
    while slash(app, "U1", 3)[1] is not None:
        assert time.monotonic() < deadline, "the bucket never refilled"
        time.sleep(0.01)
    assert len(queued(redis_client)) == 3


def test_the_limit_holds_across_a_restart_of_the_ingress(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = settings_for(redis_url, tmp_path, commands_per_minute=2, burst=2)
    first = create_app(settings)
    assert [slash(first, "U1", n)[1] for n in range(2)] == [None, None]
    again = create_app(settings)  # a new process's app: its own publisher and connections
    assert slash(again, "U1", 2)[1]["text"].startswith("Slow down")
    assert len(queued(redis_client)) == 2


def _admit_many(redis_url: str, count: int, go: Any, out: Any) -> None:
    publisher = TaskPublisher(redis_url)
    publisher.ping()  # connected before the start, so the processes really run at once
    go.wait(30)
    admitted = 0
    for n in range(count):
        got = publisher.admit(
            "chatops.command",
            [{"n": n}],
            queue="interactive",
            sender=("slack", "U1"),
            person_rate=Rate(6, 10),
        )
        admitted += got.outcome == "enqueued"
    out.put(admitted)


def test_the_limit_holds_across_ingress_processes(redis_url: str, redis_client: redis.Redis) -> None:
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    go = context.Event()
    workers = [context.Process(target=_admit_many, args=(redis_url, 15, go, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    go.set()
    admitted = sum(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(30)
    # 45 tries from three processes: the burst of 10, and nothing more (the next command is
    # allowed only 10 s later, at 6 a minute).
    assert admitted == 10
    assert redis_client.llen("interactive") == admitted


def test_one_persons_users_on_two_platforms_share_a_bucket(redis_url: str, redis_client: redis.Redis) -> None:
    publisher = TaskPublisher(redis_url)
    # A worker recorded that both platform users are person 7.
    redis_client.set(person_key("slack", "U1"), "7")
    redis_client.set(person_key("mm", "abc"), "7")
    rate = Rate(60, 3)
    outcomes = [
        publisher.admit("t", [n], queue="interactive", sender=sender, person_rate=rate).outcome
        for n, sender in enumerate([("slack", "U1"), ("mm", "abc"), ("slack", "U1"), ("mm", "abc")])
    ]
    assert outcomes == ["enqueued", "enqueued", "enqueued", "limited"]
    # Someone else entirely still gets through.
    assert publisher.admit("t", [9], queue="interactive", sender=("mm", "xyz"), person_rate=rate).outcome == (
        "enqueued"
    )


def test_the_instance_ceiling_holds_everyone_back(redis_url: str, redis_client: redis.Redis) -> None:
    publisher = TaskPublisher(redis_url)
    outcomes = [
        publisher.admit(
            "t",
            [n],
            queue="interactive",
            sender=("slack", f"U{n}"),
            person_rate=Rate(60, 5),
            instance_rate=Rate(60, 3),
        )
        for n in range(5)
    ]
    assert [o.outcome for o in outcomes] == ["enqueued"] * 3 + ["limited"] * 2
    assert {o.limited_by for o in outcomes[3:]} == {"instance"}
    # Each person refused is told once, not once per try.
    assert [o.tell for o in outcomes[3:]] == [True, True]
    again = publisher.admit(
        "t",
        [9],
        queue="interactive",
        sender=("slack", "U4"),
        person_rate=Rate(60, 5),
        instance_rate=Rate(60, 3),
    )
    assert again.outcome == "limited" and not again.tell


def test_a_replayed_signed_request_acts_once(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    app = create_app(settings_for(redis_url, tmp_path))
    body = slash_command_body(
        command="/im",
        text="declare sev1 Replayed",
        user_id="U1",
        user_name="alice",
        channel_id="C1",
        channel_name="general",
        response_url="http://127.0.0.1:9/r",
        trigger_id="replay.1.abc",
    )
    headers = signed_headers(body, SECRET)
    client = app.test_client()
    assert client.post("/webhooks/slack", data=body, headers=headers).status_code == 200
    assert client.post("/webhooks/slack", data=body, headers=headers).status_code == 200
    assert len(queued(redis_client)) == 1


def test_a_click_over_the_limit_is_told_once_through_a_worker(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # A Slack click's response shows nothing to the person: the ingress asks a worker to tell
    # them, once per wait, and runs nothing of the click.
    payload = json.loads((FIXTURES / "block_actions_ack.json").read_text())
    app = create_app(settings_for(redis_url, tmp_path, commands_per_minute=1, burst=1))
    client = app.test_client()
    for n in range(3):
        payload["trigger_id"] = f"12466734323.{n}"
        payload["actions"][0]["action_ts"] = f"1548426417.84018{n}"
        user_id = payload["user"]["id"]
        body = ("payload=" + quote_plus(json.dumps(payload))).encode()
        assert (
            client.post("/webhooks/slack", data=body, headers=signed_headers(body, SECRET)).status_code == 200
        )
    tasks = queued(redis_client)
    assert [name for name, _ in tasks] == ["chatops.command", REFUSED_TASK]
    command, text = tasks[1][1]
    assert InboundCommand.model_validate(command).user.user_id == user_id
    assert text.startswith("Slow down: you can run 1 commands a minute")


def test_naming_the_person_midway_does_not_refill_their_bucket(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # A user's first commands count against their own bucket; once a worker records which
    # person they are, the person's bucket takes over, and what they spent still counts.
    publisher = TaskPublisher(redis_url)
    rate = Rate(20, 10)

    def admit(n: int) -> str:
        return publisher.admit(
            "t", [n], queue="interactive", sender=("slack", "U1"), person_rate=rate
        ).outcome

    assert [admit(n) for n in range(10)] == ["enqueued"] * 10
    redis_client.set(person_key("slack", "U1"), "7")
    assert admit(10) == "limited"
