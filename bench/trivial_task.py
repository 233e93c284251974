"""A trivial task on the service's own Celery app: ``bench/fanout.py``'s yardstick.

The bench's worker imports this module (``celery worker --include bench.trivial_task``), so
the task runs with exactly the configuration deliveries run with (acknowledged late, one
message prefetched, the same broker transport). It does nothing; only the last task of a
batch, given a ``mark``, sets that key in Redis to the time it ran, so the bench sees the batch
is done and when (with one pool process the tasks of one queue run in the order they were
published).
"""

from __future__ import annotations

import os
import time

import redis

from workers.app import app

TRIVIAL_TASK = "bench.trivial"

_client: redis.Redis | None = None


@app.task(name=TRIVIAL_TASK, shared=False)
def trivial(mark: str | None = None) -> None:
    global _client
    if mark is None:
        return
    if _client is None:
        _client = redis.Redis.from_url(os.environ["CHATOPS_BROKER_URL"])
    _client.set(mark, repr(time.time()), ex=600)
