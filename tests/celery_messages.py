"""Reading Celery task messages off a Redis list, as kombu's Redis transport does."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis


def task_body(envelope: dict[str, Any]) -> Any:
    """The decoded ``[args, kwargs, embed]`` body of a message envelope."""
    body = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    return json.loads(body)


def queued(client: redis.Redis, queue: str) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """The Celery messages on ``queue``, oldest first: (task name, args, kwargs)."""
    messages = []
    for raw in reversed(client.lrange(queue, 0, -1)):
        envelope = json.loads(raw)
        assert envelope["content-type"] == "application/json"
        assert envelope["properties"]["delivery_info"]["routing_key"] == queue
        args, kwargs, _embed = task_body(envelope)
        messages.append((envelope["headers"]["task"], args, kwargs))
    return messages
