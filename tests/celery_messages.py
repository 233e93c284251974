"""Reading Celery task messages off a Redis list, as kombu's Redis transport does."""

from __future__ import annotations

import base64
import json
from typing import Any


def task_body(envelope: dict[str, Any]) -> Any:
    """The decoded ``[args, kwargs, embed]`` body of a message envelope."""
    body = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    return json.loads(body)
