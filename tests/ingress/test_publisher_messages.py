"""What the publisher puts on Redis is the Celery message kombu's Redis transport reads,
byte for byte the envelope built field by field, whatever the arguments hold."""

from __future__ import annotations

import json

import pytest
import redis

from chatops_core.publisher import TaskPublisher, _redis_envelope, build_task_message
from tests.celery_messages import queued

TRICKY = [
    {"text": 'dé"cl\\are\n\u2028 \x00 </script>', "n": [1, 2.5, None, True], "nested": {"a": []}},
    "INC-7",
]


@pytest.mark.parametrize("kwargs", [{}, {"key": "v\u00e9"}])
def test_a_published_message_is_the_envelope_built_field_by_field(
    redis_url: str, redis_client: redis.Redis, kwargs: dict[str, str]
) -> None:
    publisher = TaskPublisher(redis_url)
    try:
        for queue, task in (("interactive", "chatops.command"), ("notifications", "chatops.notify")):
            task_id = publisher.send(task, TRICKY, kwargs, queue=queue)
            assert task_id is not None
            raw = redis_client.lpop(queue)
            assert raw is not None
            body, headers, properties = build_task_message(
                task, TRICKY, kwargs, task_id=task_id, origin=publisher.origin
            )
            assert raw.decode() == _redis_envelope(body, headers, properties, queue, task_id)
            redis_client.lpush(queue, raw)
            assert queued(redis_client, queue) == [(task, TRICKY, kwargs)]
            assert json.loads(raw)["headers"]["id"] == task_id
            redis_client.delete(queue)
    finally:
        publisher.close()


def test_a_task_id_given_by_the_caller_is_quoted_as_json(redis_url: str, redis_client: redis.Redis) -> None:
    publisher = TaskPublisher(redis_url)
    try:
        publisher.send("chatops.notify", [], queue="notifications", task_id='odd"id\\')
        envelope = json.loads(redis_client.lpop("notifications") or b"")
        assert envelope["headers"]["id"] == envelope["properties"]["delivery_tag"] == 'odd"id\\'
    finally:
        publisher.close()
