"""Delivery outcomes counted in Redis, so every worker process adds to one count and the
ingress's ``/metrics`` shows the total."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import redis
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

KEY = "chatops:metrics:deliveries"
OUTCOMES = ("delivered", "duplicate", "retried", "rate_limited", "unverified", "dead_lettered", "stale")


class RedisWrites(Protocol):
    """The writes delivery bookkeeping makes: a Redis client's or pipeline's, or those of the
    recorder that sends them with the release of a delivery's lock (``workers.locks``)."""

    def sadd(self, name: str, *values: str) -> Any: ...

    def hset(self, name: str, *, mapping: Mapping[Any, Any]) -> Any: ...

    def hincrby(self, name: str, key: str, amount: int = 1) -> Any: ...


def count_outcome(writes: RedisWrites, instance: str, outcome: str) -> None:
    """Count one delivery of ``instance`` that ended as ``outcome`` (sent with ``writes``)."""
    writes.hincrby(KEY, f"{instance}|{outcome}", 1)


class DeliveryCounter:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def incr(self, instance: str, outcome: str) -> None:
        count_outcome(self._client, instance, outcome)

    def totals(self) -> dict[tuple[str, str], int]:
        raw = self._client.hgetall(KEY)
        out: dict[tuple[str, str], int] = {}
        for field, value in raw.items():
            name = field.decode() if isinstance(field, bytes) else str(field)
            instance, _, outcome = name.partition("|")
            out[(instance, outcome)] = int(value)
        return out


class DeliveryCollector(Collector):
    """Exposes the counts as ``chatops_deliveries_total{instance, outcome}``."""

    def __init__(self, counter: DeliveryCounter) -> None:
        self._counter = counter

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "chatops_deliveries", "Notification deliveries by outcome", labels=["instance", "outcome"]
        )
        try:
            totals = self._counter.totals()
        except redis.RedisError:
            totals = {}
        for (instance, outcome), value in sorted(totals.items()):
            family.add_metric([instance, outcome], value)
        yield family
