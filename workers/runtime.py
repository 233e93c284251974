"""What a worker process holds: settings, the store and one provider per instance.

Built lazily, once per process (after the pool forks), from the one settings object.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property

import redis

from chatops_core.answers import AnswerExchange
from chatops_core.delivery_metrics import DeliveryCounter, RedisWrites, count_outcome
from chatops_core.errors import ProviderNotFound
from chatops_core.models import InboundCommand
from chatops_core.pacing import Pacer
from chatops_core.providers import Provider, build_providers
from chatops_core.publisher import TaskPublisher, is_redis_url, person_key
from chatops_core.settings import Settings
from chatops_core.store import IncidentStore
from workers.locks import LockKeeper

log = logging.getLogger("chatops.worker")


# How often a worker process refreshes the record of who a platform user is (a merge by
# e-mail can change it), and how long the record lives in Redis unused.
PERSON_RECHECK_SECONDS = 300.0
PERSON_KEY_TTL_SECONDS = 30 * 86400


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._people_told: dict[tuple[str, str], float] = {}

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
    def answers(self) -> AnswerExchange | None:
        """Where answers that travel in a webhook's own response go to the waiting ingress."""
        return AnswerExchange.from_client(self.redis) if self.redis is not None else None

    @cached_property
    def publisher(self) -> TaskPublisher | None:
        """Publishes the fan-out's delivery tasks on a Redis broker: one round trip each, on a
        connection the process keeps (Celery's ``send_task`` builds a producer and a Redis
        client for every message, about half a millisecond of CPU each)."""
        url = self.settings.broker_url
        if not url or not is_redis_url(url):
            return None
        return TaskPublisher(url)

    @cached_property
    def pacer(self) -> Pacer | None:
        return Pacer(self.redis) if self.redis is not None else None

    @cached_property
    def locks(self) -> LockKeeper | None:
        return LockKeeper(self.redis) if self.redis is not None else None

    @cached_property
    def counter(self) -> DeliveryCounter | None:
        return DeliveryCounter(self.redis) if self.redis is not None else None

    def remember_person(self, command: InboundCommand) -> None:
        """Tell the ingress who sent ``command``: the person behind the platform user, so
        their rate (checked at the ingress, which reads no database) follows the person
        across platforms. Looked up at most every few minutes per user and process; never
        fails the command."""
        if self.redis is None:
            return
        sender = (command.instance, command.user.user_id)
        now = time.monotonic()
        if now - self._people_told.get(sender, -PERSON_RECHECK_SECONDS) < PERSON_RECHECK_SECONDS:
            return
        person = self.store.person_for(*sender, command.user.user_name, command.user.email)
        try:
            self.redis.set(person_key(*sender), str(person.id), ex=PERSON_KEY_TTL_SECONDS)
        except redis.RedisError as exc:
            log.debug("could not record the person behind %s:%s: %s", *sender, type(exc).__name__)
            return
        self._people_told[sender] = now

    def count(self, instance: str, outcome: str) -> None:
        if self.counter is not None:
            try:
                self.counter.incr(instance, outcome)
            except redis.RedisError:
                log.warning("could not count delivery outcome %s", outcome)

    def count_into(self, writes: RedisWrites, instance: str, outcome: str) -> None:
        """Queue the count of ``outcome`` on ``writes`` (sent with other commands, one round trip)."""
        if self.counter is not None:
            count_outcome(writes, instance, outcome)

    def settle(self, timeout: float = 5.0) -> None:
        """Send what this process left to be sent later (lock releases and their bookkeeping),
        as it ends; at most ``timeout`` seconds."""
        locks = self.__dict__.get("locks")  # built only if it was used
        if locks is not None and not locks.flush(timeout):
            log.warning("lock releases still unsent after %.0fs; the locks expire by themselves", timeout)

    def on_shutdown(self, **_: object) -> None:
        """Celery's ``worker_process_shutdown`` and ``worker_shutdown``: :meth:`settle`."""
        self.settle()

    def provider(self, instance: str) -> Provider:
        try:
            return self.providers[instance]
        except KeyError:
            raise ProviderNotFound(f"no provider instance named {instance!r}") from None
