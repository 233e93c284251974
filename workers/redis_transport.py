"""kombu's Redis transport, made to survive losing the broker while tasks are held.

When the connection to Redis is lost, Celery's consumer first lets kombu collect the
connection (which detaches the transport from its connection settings) and then closes it.
Closing the channel gives back the messages the worker holds (tasks waiting for their
countdown, tasks still running), and to do that kombu builds a new Redis client from the
transport's connection settings, which are gone by then: ``AttributeError: 'NoneType' object
has no attribute 'hostname'``, not a connection error, so the worker dies instead of
reconnecting.

Here that case is what it is, a connection error: the channel gives nothing back and the
consumer reconnects. Nothing is lost: every message a worker holds is also in Redis's
unacknowledged set (persisted with the append-only file), and comes back to the queue once
the visibility timeout has passed.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel


REDIS_SCHEMES = ("redis", "rediss")


def use_for_redis_urls() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use :class:`Transport` in this process.

    Through kombu's table of transport names, so that the URL (and every log line that shows
    it) keeps its scheme. Call it before the process opens its first broker connection.
    """
    for scheme in REDIS_SCHEMES:
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
