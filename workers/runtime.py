"""What a worker process holds: settings, the store and one provider per instance.

Built lazily, once per process (after the pool forks), from the one settings object.
"""

from __future__ import annotations

import logging
from functools import cached_property

import redis

from chatops_core.delivery_metrics import DeliveryCounter
from chatops_core.errors import ProviderNotFound
from chatops_core.pacing import Pacer
from chatops_core.providers import Provider, build_providers
from chatops_core.publisher import is_redis_url
from chatops_core.settings import Settings
from chatops_core.store import IncidentStore
from workers.locks import LockKeeper

log = logging.getLogger("chatops.worker")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def store(self) -> IncidentStore:
        return IncidentStore.from_settings(self.settings)

    @cached_property
    def providers(self) -> dict[str, Provider]:
        return build_providers(self.settings.providers, webhook_url=self.settings.public_webhook_url)

    @cached_property
    def redis(self) -> redis.Redis | None:
        """A Redis client on the broker, when the broker is Redis (for pacing and counts)."""
        url = self.settings.broker_url
        if not url or not is_redis_url(url):
            return None
        return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)

    @cached_property
    def pacer(self) -> Pacer | None:
        return Pacer(self.redis) if self.redis is not None else None

    @cached_property
    def locks(self) -> LockKeeper | None:
        return LockKeeper(self.redis) if self.redis is not None else None

    @cached_property
    def counter(self) -> DeliveryCounter | None:
        return DeliveryCounter(self.redis) if self.redis is not None else None

    def count(self, instance: str, outcome: str) -> None:
        if self.counter is not None:
            try:
                self.counter.incr(instance, outcome)
            except redis.RedisError:
                log.warning("could not count delivery outcome %s", outcome)

    def provider(self, instance: str) -> Provider:
        try:
            return self.providers[instance]
        except KeyError:
            raise ProviderNotFound(f"no provider instance named {instance!r}") from None
