"""The worker's part in rate limits: it tells the ingress who a platform user is (so a
person's rate follows them across platforms), and it tells a person refused at the door to
slow down, where the platform's webhook response could not."""

from __future__ import annotations

from pathlib import Path

import redis

from chatops_core.publisher import Rate, TaskPublisher, person_key
from chatops_core.tasks import REFUSED_TASK
from tests.fakes.recording_provider import RecordingProvider
from tests.fakes.recording_runtime import World, recording_runtime


def world(tmp_path: Path, broker_url: str | None, provider: RecordingProvider) -> World:
    return World(recording_runtime(tmp_path, provider, broker_url=broker_url), provider)


def test_a_command_records_the_person_behind_its_user(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    w = world(tmp_path, redis_url, RecordingProvider("rec"))
    w.run("declare sev3 Disk filling up")
    person = w.runtime.store.find_person("rec", w.command("x").user.user_id)
    assert person is not None
    assert redis_client.get(person_key("rec", w.command("x").user.user_id)) == str(person.id).encode()


def test_the_recorded_person_shares_a_bucket_with_their_other_users(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    # The same person on two instances (merged by e-mail): commands from either count once.
    w = world(tmp_path, redis_url, RecordingProvider("rec"))
    inbound = w.command("status")
    store = w.runtime.store
    first = store.person_for("rec", inbound.user.user_id, "alice", "alice@example.com")
    second = store.person_for("other", "U-OTHER", "alice", "alice@example.com")
    assert first.id == second.id
    w.runtime.remember_person(inbound)
    w.runtime.remember_person(
        inbound.model_copy(
            update={
                "instance": "other",
                "user": inbound.user.model_copy(update={"user_id": "U-OTHER", "email": "alice@example.com"}),
            }
        )
    )
    publisher = TaskPublisher(redis_url)
    rate = Rate(60, 2)
    outcomes = [
        publisher.admit("t", [n], queue="interactive", sender=sender, person_rate=rate).outcome
        for n, sender in enumerate(
            [("rec", inbound.user.user_id), ("other", "U-OTHER"), ("rec", inbound.user.user_id)]
        )
    ]
    assert outcomes == ["enqueued", "enqueued", "limited"]


def test_the_refusal_notice_reaches_the_person_privately(tmp_path: Path, redis_url: str) -> None:
    provider = RecordingProvider("rec")
    w = world(tmp_path, redis_url, provider)
    inbound = w.command("ack INC-1", source="action")
    w.celery().tasks[REFUSED_TASK].apply(
        args=[inbound.model_dump(mode="json"), "Slow down: try again in 3 s."]
    )
    assert [(reply.text, where) for reply, where in provider.answers()] == [
        ("Slow down: try again in 3 s.", "private")
    ]
    assert w.runtime.store.list(active_only=False) == []
