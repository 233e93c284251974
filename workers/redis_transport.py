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

It also keeps a ledger of the messages sent, for the one moment kombu leaves a message
nowhere: a worker takes a message off its queue with ``BRPOP`` and notes it as
unacknowledged only afterwards, in a second round trip. A worker killed between the two
(the message in its socket's buffer, or read but not yet noted) loses the message for good:
it is neither in the queue nor in the unacknowledged set, so kombu's restore never sees it.

The ledger: every push of a task message also records it, in the same transaction (or, for
the ingress, the same script: :mod:`chatops_core.publisher`), in the hash :data:`SENT_KEY`
(delivery tag -> when, list, envelope) and the sorted set :data:`SENT_INDEX_KEY` (delivery
tag -> when it was last queued or looked at). Acknowledging (or rejecting) a message removes
its entry in the transaction kombu already sends; putting it back on its queue (kombu's
restore) records the envelope as pushed again. :func:`sweep_sent`, run by the maintenance
worker, pushes back the messages that are in neither place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis
from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

# The ledger of sent messages. The ingress's publish scripts (chatops_core.publisher) write
# these names too; a test holds the two in step.
SENT_KEY = "chatops:sent"
SENT_INDEX_KEY = "chatops:sent:index"
# Tags a sweep found in neither place, with when it first did (see sweep_sent).
SENT_MISSING_KEY = "chatops:sent:missing"
SENT_SWEEP_LOCK_KEY = "chatops:sent:sweeping"
# kombu's names for the unacknowledged messages (its defaults; the service sets no others).
UNACKED_KEY = "unacked"
# An entry is dropped, whatever became of its message, once it is this old (since last
# queued): the ledger cannot grow without bound, even if a message were never acknowledged.
SENT_MAX_AGE_SECONDS = 24 * 3600


def sent_entry(at: float, queue: str, envelope: str) -> str:
    """A ledger value: when the message was queued, on which list, and the envelope pushed
    (byte for byte, so the sweep can find it in its list)."""
    return f"{at:.0f}\n{queue}\n{envelope}"


class _Commands:
    """Collects the Redis commands kombu's ``_put`` would send (it takes a publish batch),
    so they can be sent in one transaction together with the ledger's."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, tuple[Any, ...]]] = []

    def add(self, name: str, *args: Any) -> None:
        self.commands.append((name, args))


class QoS(kombu_redis.QoS):
    def _forget(self, delivery_tag: str) -> Any:
        """The pipeline kombu sends to drop a message from the unacknowledged set, which now
        also drops its ledger entry."""
        return (
            self._remove_from_indices(delivery_tag)
            .hdel(SENT_KEY, delivery_tag)
            .zrem(SENT_INDEX_KEY, delivery_tag)
        )

    def ack(self, delivery_tag: str) -> None:
        self._forget(delivery_tag).execute()
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:
            # Put back on its queue: the ledger follows (Channel._do_restore_message).
            super().reject(delivery_tag, requeue=True)
            return
        self._forget(delivery_tag).execute()
        virtual.QoS.ack(self, delivery_tag)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        """Push the message and record it in the ledger, in one transaction (or in the
        caller's publish batch)."""
        batch = kwargs.pop("_publish_batch", None)
        collected = _Commands()
        super()._put(queue, message, _publish_batch=collected, **kwargs)
        commands = list(collected.commands)
        tag = message.get("properties", {}).get("delivery_tag")
        # Task messages only: the other messages put on lists (the replies to remote control,
        # such as `app.control.ping`) are read without acknowledgement, so their entries would
        # never go.
        if tag is not None and (message.get("headers") or {}).get("task"):
            now = time.time()
            for name, args in collected.commands:
                if name == "lpush":
                    key, raw = args
                    commands.append(("hset", (SENT_KEY, tag, sent_entry(now, key, raw))))
                    commands.append(("zadd", (SENT_INDEX_KEY, {tag: now})))
        if batch is not None:
            for name, args in commands:
                batch.add(name, *args)
            return
        with self.conn_or_acquire() as client, client.pipeline() as pipe:
            for name, args in commands:
                getattr(pipe, name)(*args)
            pipe.execute()

    def _do_restore_message(
        self, payload: dict[str, Any], exchange: str, routing_key: str, pipe: Any, leftmost: bool = False
    ) -> None:
        """Put a message back on its queue (kombu's restore), and record the envelope as
        pushed again (kombu marks it redelivered, so it is not the one first recorded)."""
        super()._do_restore_message(payload, exchange, routing_key, pipe, leftmost)
        tag = payload.get("properties", {}).get("delivery_tag")
        if tag is None:
            return
        now = time.time()
        # The same dumps of the same payload kombu just pushed: the same text.
        raw = dumps(payload)
        try:
            pri = self._get_message_priority(payload, reverse=False)
            queues = self._lookup(exchange, routing_key)
        except Exception:  # noqa: BLE001
            # kombu logged it and pushed nothing: the entry keeps the envelope first sent,
            # so the sweep brings the message back.
            return
        for queue in queues:
            pipe.hset(SENT_KEY, tag, sent_entry(now, self._q_for_pri(queue, pri), raw))
            pipe.zadd(SENT_INDEX_KEY, {tag: now})

    def _purge(self, queue: str) -> int:
        """Empty a queue, and forget its messages in the ledger (else the sweep would bring
        them back)."""
        purged: int = super()._purge(queue)
        lists = {self._q_for_pri(queue, pri) for pri in self.priority_steps}
        with self.conn_or_acquire() as client:
            for tag, entry in client.hscan_iter(SENT_KEY, count=500):
                if _entry_list(entry) in lists:
                    client.pipeline().hdel(SENT_KEY, tag).zrem(SENT_INDEX_KEY, tag).execute()
        return purged

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel


def _entry_list(entry: bytes | str) -> str:
    text = entry.decode("utf-8", "replace") if isinstance(entry, bytes) else entry
    parts = text.split("\n", 2)
    return parts[1] if len(parts) == 3 else ""


# KEYS[1] ledger, KEYS[2] its index, KEYS[3] kombu's unacknowledged hash, KEYS[4] the tags
# found missing, KEYS[5] the sweep's lock. ARGV[1] seconds since last queued before a message
# is looked at, ARGV[2] seconds a message must stay missing before it is pushed back, ARGV[3]
# the ledger's longest life, ARGV[4] how many entries to look at, ARGV[5] the lock's ms.
# Returns {-1} when another sweep holds the lock, else {looked at, newly missing, dropped,
# tags pushed back...}.
#
# One script, so it sees each message in one place: kombu's own moves (BRPOP excepted) are
# transactions, and two sweeps cannot both push a message back (the second finds it queued).
_SWEEP = """
if tonumber(ARGV[5]) > 0 and not redis.call('SET', KEYS[5], 1, 'NX', 'PX', ARGV[5]) then
  return {-1}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for _, tag in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if redis.call('HEXISTS', KEYS[1], tag) == 0 then redis.call('ZREM', KEYS[4], tag) end
end
local ceiling = now - tonumber(ARGV[1])
local tags = redis.call('ZRANGE', KEYS[2], '-inf', ceiling, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
local missing, dropped, restored = 0, 0, {}
for _, tag in ipairs(tags) do
  local entry = redis.call('HGET', KEYS[1], tag)
  local first = entry and string.find(entry, '\\n', 1, true)
  local second = first and string.find(entry, '\\n', first + 1, true)
  local at = second and tonumber(string.sub(entry, 1, first - 1))
  if not at or at < now - tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], tag)
    redis.call('ZREM', KEYS[2], tag)
    redis.call('ZREM', KEYS[4], tag)
    dropped = dropped + 1
  else
    local list = string.sub(entry, first + 1, second - 1)
    local envelope = string.sub(entry, second + 1)
    -- From the end workers pop at: a message queued this long is near it.
    if redis.call('HEXISTS', KEYS[3], tag) == 1 or redis.call('LPOS', list, envelope, 'RANK', -1) then
      -- Held by a worker (kombu gives it back if the worker dies) or still queued: look
      -- again later.
      redis.call('ZADD', KEYS[2], now, tag)
      redis.call('ZREM', KEYS[4], tag)
    else
      local since = redis.call('ZSCORE', KEYS[4], tag)
      if not since then
        redis.call('ZADD', KEYS[4], now, tag)
        missing = missing + 1
      elseif now - tonumber(since) >= tonumber(ARGV[2]) then
        -- At the end a worker pops first, as kombu's restore does.
        redis.call('RPUSH', list, envelope)
        redis.call('ZADD', KEYS[2], now, tag)
        redis.call('ZREM', KEYS[4], tag)
        restored[#restored + 1] = tag
      end
    end
  end
end
local reply = {#tags, missing, dropped}
for _, tag in ipairs(restored) do reply[#reply + 1] = tag end
return reply
"""


@dataclass(frozen=True)
class Sweep:
    """What :func:`sweep_sent` did: ``skipped`` when another sweep held the lock; how many
    entries it ``looked_at``, found newly ``missing`` and ``dropped`` (too old), and the
    delivery tags it pushed back (``restored``)."""

    skipped: bool = False
    looked_at: int = 0
    missing: int = 0
    dropped: int = 0
    restored: list[str] = field(default_factory=list)


def sweep_sent(
    client: redis.Redis,
    *,
    older_than: float,
    confirm_after: float,
    lock_for: float,
    max_age: float = SENT_MAX_AGE_SECONDS,
    limit: int = 1000,
) -> Sweep:
    """Push back the sent messages that are in neither their queue nor kombu's
    unacknowledged set: those a worker took off its queue and died before noting.

    Only entries last queued (or looked at) more than ``older_than`` seconds ago are looked
    at (the visibility timeout and a margin: a message held by a worker is kombu's to give
    back); one found queued or held is looked at again ``older_than`` later. One found in
    neither place is pushed back only when it is still missing at a later sweep, at least
    ``confirm_after`` seconds on, so a message a live worker is just taking (popped, not yet
    noted: a moment) is never pushed back; a lost one comes back once. Should a worker that
    was frozen in that moment (not dead) resume, the task runs twice: tasks are idempotent by
    their keys, so that is harmless. ``lock_for`` seconds (0: no lock) keep sweeps from
    following each other closer than that (a backlog of scheduled sweeps); the sweep itself
    is one script, so two at once cannot both push a message back. Entries older than
    ``max_age`` are dropped.
    """
    reply = client.eval(
        _SWEEP,
        5,
        SENT_KEY,
        SENT_INDEX_KEY,
        UNACKED_KEY,
        SENT_MISSING_KEY,
        SENT_SWEEP_LOCK_KEY,
        older_than,
        confirm_after,
        max_age,
        limit,
        int(lock_for * 1000),
    )
    if reply[0] == -1:
        return Sweep(skipped=True)
    looked_at, missing, dropped, *restored = reply
    return Sweep(
        looked_at=int(looked_at),
        missing=int(missing),
        dropped=int(dropped),
        restored=[t.decode() if isinstance(t, bytes) else str(t) for t in restored],
    )


REDIS_SCHEMES = ("redis", "rediss")


def use_for_redis_urls() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use :class:`Transport` in this process.

    Through kombu's table of transport names, so that the URL (and every log line that shows
    it) keeps its scheme. Call it before the process opens its first broker connection.
    """
    for scheme in REDIS_SCHEMES:
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
