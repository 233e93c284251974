"""What an operator looks at: queues, workers, dead letters, deliveries and provider health.

One snapshot (:func:`take_snapshot`) feeds ``chatops status`` and the ingress's ``/metrics``
(:class:`OperationsCollector`). Every part is read with bounded waits and on its own: Redis
away leaves the database's part, and the other way round, each missing part saying why.

**Queues.** Celery's messages sit in one Redis list per queue (kombu pushes on the left and
workers take from the right), so the depth is the list's length. A Celery message carries no
time it was sent (neither kombu's envelope nor Celery's protocol-2 headers have one), so the
age of the message next in line is measured from when it was first seen there: each read
stores, beside the list, a digest of its front message and the Redis server's time when that
message was first seen at the front. The age is thus how long the queue has not moved past
that message, as seen by reads (a scrape every 15 s sees it within 15 s), measured by one
clock (the Redis server's) whichever process reads. A queue that keeps moving reads near 0
however long it is; a queue no worker serves grows by the scrape interval on every scrape.
One round trip (a small Lua script) reads every queue.

**Workers.** Celery's own ``ping`` broadcast: every worker answers through the broker within
the timeout (1 s by default), however busy its pool. It costs that timeout, so the ingress's
collector pings at most once every :data:`WORKERS_CACHE_SECONDS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatops_core.delivery_metrics import DeliveryCounter
from chatops_core.provider_health import (
    ProviderHealth,
    endpoint_host,
    explain,
    platform_name,
    read_health,
)
from chatops_core.tasks import QUEUES

if TYPE_CHECKING:
    from chatops_core.settings import Settings
    from chatops_core.store import IncidentStore

log = logging.getLogger("chatops.operations")

FRONT_PREFIX = "chatops:ops:front:"
# A front marker of a queue no one reads any more goes away by itself.
FRONT_TTL_SECONDS = 7 * 24 * 3600
REDIS_TIMEOUT_SECONDS = 1.0
PING_TIMEOUT_SECONDS = 1.0
WORKERS_CACHE_SECONDS = 30.0

# KEYS: the queue lists, then their front markers; ARGV[1]: the markers' TTL.
# Returns {depth_1, since_1, ..., now}: since is '' for an empty queue; times as strings of
# seconds on the server's clock.
_QUEUES_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local depth = redis.call('LLEN', KEYS[i])
  local since = ''
  if depth > 0 then
    local id = redis.sha1hex(redis.call('LINDEX', KEYS[i], -1))
    local held = redis.call('HMGET', KEYS[n + i], 'id', 'since')
    if held[1] == id and held[2] then
      since = held[2]
    else
      since = string.format('%.6f', now)
      redis.call('HSET', KEYS[n + i], 'id', id, 'since', since)
    end
    redis.call('EXPIRE', KEYS[n + i], tonumber(ARGV[1]))
  else
    redis.call('DEL', KEYS[n + i])
  end
  out[#out + 1] = depth
  out[#out + 1] = since
end
out[#out + 1] = string.format('%.6f', now)
return out
"""


class QueueState(BaseModel):
    name: str
    depth: int
    # Seconds the message next in line has been at the front (see the module); None: empty.
    oldest_age_seconds: float | None = None


class DeadLetters(BaseModel):
    count: int
    oldest: datetime | None = None


class ProviderState(BaseModel):
    instance: str
    type: str
    configured: bool
    health: ProviderHealth
    # The last error in an operator's words, while the instance is failing.
    advice: str | None = None


class Snapshot(BaseModel):
    taken_at: datetime
    queues: list[QueueState] | None = None
    workers: list[str] | None = None
    dead_letters: DeadLetters | None = None
    deliveries: dict[str, dict[str, int]] | None = None
    providers: list[ProviderState] | None = None
    # Why a part above is missing (None), one line each: "queues: Redis did not answer".
    unavailable: list[str] = []


def ops_redis(url: str, timeout: float = REDIS_TIMEOUT_SECONDS) -> redis.Redis:
    """A Redis client whose every call answers or fails within ``timeout`` (never retried)."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def queue_states(client: redis.Redis, queues: tuple[str, ...] = QUEUES) -> list[QueueState]:
    """Depth and front age of each queue, in one round trip. Raises :class:`redis.RedisError`."""
    keys = [*queues, *(FRONT_PREFIX + q for q in queues)]
    raw = client.eval(_QUEUES_SCRIPT, len(keys), *keys, FRONT_TTL_SECONDS)
    now = float(_text(raw[-1]))
    out = []
    for i, name in enumerate(queues):
        depth, since = int(raw[2 * i]), _text(raw[2 * i + 1])
        age = max(0.0, now - float(since)) if since else None
        out.append(QueueState(name=name, depth=depth, oldest_age_seconds=age))
    return out


def ping_workers(broker_url: str, timeout: float = PING_TIMEOUT_SECONDS) -> list[str]:
    """The names of the Celery workers that answer a ``ping`` within ``timeout`` seconds."""
    from celery import Celery

    app = Celery("chatops-ops", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_retry=False,
        broker_connection_max_retries=0,
        broker_connection_timeout=timeout,
        broker_transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout},
    )
    try:
        replies = app.control.ping(timeout=timeout)
    finally:
        app.close()
    return sorted(name for reply in replies or [] for name in reply)


def dead_letters(store: IncidentStore) -> DeadLetters:
    """How many dead letters are kept, and when the oldest was made."""
    from sqlalchemy import func, select

    from chatops_core.store.schema import DeadLetterRow

    with store._reading() as session:
        count, oldest = session.execute(
            select(func.count(DeadLetterRow.id), func.min(DeadLetterRow.created_at))
        ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return DeadLetters(count=int(count), oldest=oldest)


def deliveries(client: redis.Redis) -> dict[str, dict[str, int]]:
    """Deliveries by instance and outcome, counted since Redis's data began."""
    out: dict[str, dict[str, int]] = {}
    for (instance, outcome), value in DeliveryCounter(client).totals().items():
        out.setdefault(instance, {})[outcome] = value
    return out


def provider_states(client: redis.Redis, settings: Settings) -> list[ProviderState]:
    """Each provider instance's recorded health (configured ones first), with advice."""
    configured = settings.providers
    states = []
    for name, health in read_health(client, configured).items():
        conf = configured.get(name)
        kind = conf.type if conf is not None else "?"
        advice = None
        if health.failing and health.last_error is not None:
            host = endpoint_host(conf) if conf is not None else None
            advice = explain(health.last_error, platform=platform_name(kind), host=host)
        states.append(
            ProviderState(instance=name, type=kind, configured=conf is not None, health=health, advice=advice)
        )
    states.sort(key=lambda s: (not s.configured, s.instance))
    return states


def take_snapshot(
    settings: Settings,
    *,
    client: redis.Redis | None,
    store: IncidentStore | None,
    broker_url: str | None,
    workers: Callable[[], list[str]] | None = None,
) -> Snapshot:
    """Everything :mod:`chatops_core.operations` shows, each part read on its own.

    ``client``: a bounded Redis client on the broker (None: not Redis); ``store``: the
    incident database (None: not read); ``workers``: how to find the workers (default: a
    ``ping`` on ``broker_url``).
    """
    snap = Snapshot(taken_at=datetime.now(UTC))
    redis_ok = client is not None
    if client is None:
        snap.unavailable.append("queues, deliveries, providers: the broker is not Redis")
    else:
        try:
            snap.queues = queue_states(client)
            snap.deliveries = deliveries(client)
            snap.providers = provider_states(client, settings)
        except redis.RedisError as exc:
            redis_ok = False
            snap.unavailable.append(
                f"queues, deliveries, providers: Redis did not answer ({type(exc).__name__})"
            )
    if redis_ok or client is None:
        try:
            if workers is not None:
                snap.workers = workers()
            elif broker_url:
                snap.workers = ping_workers(broker_url)
        except Exception as exc:  # a broker that does not answer in time is a finding, not a crash
            snap.unavailable.append(f"workers: the broker did not answer the ping ({type(exc).__name__})")
    else:
        snap.unavailable.append("workers: not pinged, Redis did not answer")
    if store is not None:
        try:
            snap.dead_letters = dead_letters(store)
        except Exception as exc:
            snap.unavailable.append(f"dead letters: the database did not answer ({type(exc).__name__})")
    return snap


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- /metrics ------------------------------------------------------------------------------


class OperationsCollector(Collector):
    """The snapshot as Prometheus gauges, read on each scrape.

    Redis is read with bounded timeouts, so a scrape answers while Redis is away (without
    these gauges); the workers' ping runs at most once every ``workers_cache_seconds``.
    """

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        *,
        store: Callable[[], IncidentStore] | None = None,
        workers: Callable[[], list[str]] | None = None,
        workers_cache_seconds: float = WORKERS_CACHE_SECONDS,
    ) -> None:
        self._settings = settings
        self._client = client
        self._store = store
        broker_url = settings.broker_url or ""
        self._ping = workers or (lambda: ping_workers(broker_url, timeout=0.5))
        self._cache_seconds = workers_cache_seconds
        self._workers: tuple[float, list[str]] | None = None

    def _cached_workers(self) -> list[str]:
        now = time.monotonic()
        if self._workers is None or now - self._workers[0] >= self._cache_seconds:
            self._workers = (now, self._ping())
        return self._workers[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = None
        if self._store is not None:
            try:
                store = self._store()
            except Exception:
                store = None
        snap = take_snapshot(
            self._settings, client=self._client, store=store, broker_url=None, workers=self._cached_workers
        )
        yield from snapshot_metrics(snap)


def snapshot_metrics(snap: Snapshot) -> Iterator[GaugeMetricFamily]:
    """The gauges of ``snap``; a part that could not be read is left out (no stale zeros)."""
    if snap.queues is not None:
        depth = GaugeMetricFamily("chatops_queue_depth", "Messages waiting in each queue", labels=["queue"])
        age = GaugeMetricFamily(
            "chatops_queue_oldest_age_seconds",
            "Seconds the message next in line has waited at the front of its queue (0 when empty)",
            labels=["queue"],
        )
        for q in snap.queues:
            depth.add_metric([q.name], q.depth)
            age.add_metric([q.name], q.oldest_age_seconds or 0.0)
        yield depth
        yield age
    if snap.workers is not None:
        yield GaugeMetricFamily(
            "chatops_workers_seen", "Celery workers that answered a ping", value=len(snap.workers)
        )
    if snap.dead_letters is not None:
        yield GaugeMetricFamily(
            "chatops_dead_letters", "Tasks that gave up and wait for a replay", value=snap.dead_letters.count
        )
    if snap.providers is not None:
        failures = GaugeMetricFamily(
            "chatops_provider_consecutive_failures",
            "Calls to the instance's platform that failed since its last success",
            labels=["instance"],
        )
        success = GaugeMetricFamily(
            "chatops_provider_last_success_timestamp",
            "Unix time of the instance's last successful call (absent: none recorded)",
            labels=["instance"],
        )
        error = GaugeMetricFamily(
            "chatops_provider_last_error_timestamp",
            "Unix time of the instance's last failed call (absent: none recorded)",
            labels=["instance"],
        )
        healthy = GaugeMetricFamily(
            "chatops_provider_up",
            "1 while the instance's last call succeeded (or none was made), 0 while failing",
            labels=["instance"],
        )
        kinds = GaugeMetricFamily(
            "chatops_provider_failing",
            "1 for the kind of the failing instance's last error",
            labels=["instance", "kind"],
        )
        for p in snap.providers:
            h = p.health
            failures.add_metric([p.instance], h.consecutive_failures)
            healthy.add_metric([p.instance], 0 if h.failing else 1)
            if h.last_success is not None:
                success.add_metric([p.instance], h.last_success.timestamp())
            if h.last_error_at is not None:
                error.add_metric([p.instance], h.last_error_at.timestamp())
            if h.failing and h.last_error is not None:
                kinds.add_metric([p.instance, h.last_error.kind.value], 1)
        yield from (failures, success, error, healthy, kinds)
