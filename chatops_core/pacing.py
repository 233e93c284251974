"""Proactive pacing: each provider's policy, and send slots shared through Redis.

A provider says how fast it may post and update (:class:`PacingPolicy`, its
:attr:`~chatops_core.providers.base.Provider.pacing`): the seconds between posts into one
channel, between card updates under one update key, and the least gap between two posts
checked as each goes out. The delivery machinery only asks it for keys and intervals.

:class:`Pacer` hands out the slots. Each key (e.g. ``slack:post:#incidents``) hands out send
slots ``interval`` seconds apart. A worker reserves the next slot in one atomic script and
learns how long until it comes; a task whose slot is in the future is retried with that
countdown rather than sleeping. :meth:`Pacer.spaced` then checks the actual moment of sending
against the last send, for tasks that run at another moment than their slot. A 429 pushes the
key's next slot and next send back by the platform's ``Retry-After``.
Times come from the Redis server's clock, so workers on several hosts agree.

Keys carry the instance name and the channel's alias as configured or routed, never a
platform secret (a webhook URL lives only in settings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import hiredis
import redis
from redis.connection import AbstractConnection


@dataclass(frozen=True)
class PacingPolicy:
    """How fast one provider instance may send: "how long to wait", kept apart from the
    retry decisions that the error tree makes.

    The defaults suit a platform that allows about one message a second per channel.
    Slots sit a little over a second apart, so a post that runs a few milliseconds late does
    not land within a second of the next one.
    """

    # Seconds between posts into one channel.
    post_interval: float = 1.05
    # Seconds between card updates under one update key.
    update_interval: float = 1.2
    # The least gap between two posts into one channel, checked as each post goes out (a
    # task may run later than its slot, or a dead worker's paced tasks may come back all at
    # once).
    post_gap: float = 1.02

    def post_key(self, instance: str, channel: str) -> str:
        """The pace key of posts into ``channel`` (an alias) on ``instance``."""
        return f"{instance}:post:{channel}"

    def update_key(self, instance: str, channel: str) -> str:
        """The pace key of card updates in ``channel`` on ``instance``: one per channel by
        default; a platform that limits updates per workspace shares one key for all."""
        return f"{instance}:update:{channel}"


# KEYS[1] the key; ARGV[1] interval seconds. Returns the wait in seconds, as a string.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, nxt)
local ttl = math.ceil((at + interval - now) * 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.6f', at + interval), 'PX', ttl)
return string.format('%.6f', at - now)
"""

# KEYS[1] the key; ARGV[1] seconds to hold off from now.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > nxt then
  redis.call('SET', KEYS[1], string.format('%.6f', until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 60000)
end
return 1
"""


# KEYS[1] the key; ARGV[1] the least gap in seconds. Returns the wait in seconds (0: go now,
# and the next send of this key is ARGV[1] seconds away).
_SPACED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if nxt > now then
  return string.format('%.6f', nxt - now)
end
local gap = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.6f', now + gap), 'PX', math.ceil(gap * 1000) + 60000)
return '0'
"""


# The lock of a delivery and its pacing in one atomic script (one round trip where three were):
# KEYS[1] the lock, KEYS[2] the slot key, KEYS[3] the sent key; ARGV[1] the lock's token,
# ARGV[2] its expiry in ms, ARGV[3] the slot interval ('' for no slot), ARGV[4] the wait a slot
# may be taken with now, ARGV[5] the least gap ('' for no check). Returns {'busy', pttl ms} when
# the lock is held (nothing taken), {'later', seconds} when the slot or the gap is further away
# (the slot stays reserved; the lock is not taken), else {'ok'} with the lock taken.
_LOCK_AND_PACE = """
local held = redis.call('PTTL', KEYS[1])
if held ~= -2 then
  return {'busy', tostring(held)}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if ARGV[3] ~= '' then
  local interval = tonumber(ARGV[3])
  local nxt = tonumber(redis.call('GET', KEYS[2]) or '0')
  local at = math.max(now, nxt)
  local ttl = math.ceil((at + interval - now) * 1000) + 60000
  redis.call('SET', KEYS[2], string.format('%.6f', at + interval), 'PX', ttl)
  if at - now > tonumber(ARGV[4]) then
    return {'later', string.format('%.6f', at - now)}
  end
end
if ARGV[5] ~= '' then
  local nxt = tonumber(redis.call('GET', KEYS[3]) or '0')
  if nxt > now then
    return {'later', string.format('%.6f', nxt - now)}
  end
  local gap = tonumber(ARGV[5])
  redis.call('SET', KEYS[3], string.format('%.6f', now + gap), 'PX', math.ceil(gap * 1000) + 60000)
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'ok'}
"""


@dataclass(frozen=True)
class Gate:
    """What :meth:`Pacer.lock_and_pace` found: ``taken`` (the lock is ours, the slot and the
    gap allow sending now), else ``busy_ms`` (the lock is held: its remaining expiry in ms, -1
    for none) or ``wait`` (the seconds until the slot or the gap allows sending)."""

    taken: bool
    busy_ms: int | None = None
    wait: float = 0.0


class Batch:
    """Redis commands sent in one round trip, their answers read back as the server gave
    them (no reply conversion), an error answer in its place.

    What ``pipeline(transaction=False).execute(raise_on_error=False)`` does for the commands
    the workers send on every delivery (``EVALSHA``, ``SET``), on a connection of the client's
    pool and with the client's retries, without the pipeline's command objects and reply
    callbacks: those took more than half the CPU of the round trip.
    """

    def __init__(self) -> None:
        self.commands: list[tuple[str | bytes | int | float, ...]] = []

    def add(self, *args: str | bytes | int | float) -> None:
        """One command: its name, then its arguments."""
        self.commands.append(args)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | bytes | int | float) -> None:
        self.add("EVALSHA", sha, numkeys, *keys_and_args)

    def send(self, client: redis.Redis) -> list[object]:
        """Send the commands; return their answers in order. A lost connection is retried
        as the client retries its own commands (the whole batch again), then raised."""
        own = client.connection
        pool = client.connection_pool
        conn = own or pool.get_connection()
        try:
            return list(
                conn.retry.call_with_retry(lambda: self._round_trip(conn), lambda _error: conn.disconnect())
            )
        except BaseException:
            # Answers may be left unread (a time limit cut the task short, say): the
            # connection goes, so no later command reads them as its own.
            conn.disconnect()
            raise
        finally:
            if own is None:
                pool.release(conn)

    def _round_trip(self, conn: AbstractConnection) -> list[object]:
        encoder = conn.encoder
        if encoder.encoding == "utf-8" and encoder.encoding_errors == "strict":
            # hiredis packs text as UTF-8, as the client's own encoder would.
            # (hiredis's stub types its argument as a one-element tuple.)
            packed: object = [
                b"".join(hiredis.pack_command(command) for command in self.commands)  # type: ignore[arg-type]
            ]
        else:
            packed = conn.pack_commands(self.commands)
        conn.send_packed_command(packed)
        answers: list[object] = []
        for _ in self.commands:
            try:
                answers.append(conn.read_response())
            except redis.ResponseError as exc:
                answers.append(exc)
        return answers


class Carry(Protocol):
    """Commands sent ahead of :meth:`Pacer.lock_and_pace`'s own, in its round trip (a
    worker's pending lock releases, :class:`workers.locks.Carried`)."""

    def queue(self, batch: Batch) -> int:
        """Add the commands to ``batch``; return how many answers they take."""
        ...

    def settle(self, answers: list[object]) -> None:
        """The answers to the commands, in order (an error in place of a failed one's)."""
        ...

    def lost(self, error: BaseException) -> None:
        """The round trip failed with ``error``."""
        ...


def send_carrying(client: redis.Redis, carried: Carry, command: Callable[[Batch], object]) -> object:
    """Send ``carried``'s commands, then the one ``command`` adds to the batch, in one round
    trip; return that command's answer (its error, if it failed, is returned, not raised).
    ``carried`` is told how its own commands went (:meth:`Carry.settle`, :meth:`Carry.lost`)."""
    batch = Batch()
    count = carried.queue(batch)
    command(batch)
    try:
        answers = batch.send(client)
    except redis.RedisError as exc:
        carried.lost(exc)
        raise
    carried.settle(answers[:count])
    return answers[count]


class Pacer:
    """Send slots per key, shared by every worker through Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "chatops:pace:") -> None:
        self._client = client
        self._prefix = prefix
        self._reserve = client.register_script(_RESERVE)
        self._hold = client.register_script(_HOLD)
        self._spaced = client.register_script(_SPACED)
        self._lock_and_pace = client.register_script(_LOCK_AND_PACE)

    def reserve(self, key: str, interval: float) -> float:
        """Take the next slot of ``key``; return the seconds until it (0 when now)."""
        return max(0.0, float(self._reserve(keys=[self._prefix + key], args=[interval])))

    def spaced(self, key: str, gap: float) -> float:
        """Check the moment of sending: 0 (and the send is counted) when the last send of
        ``key`` was at least ``gap`` seconds ago and no hold-off is on, else the seconds to
        wait. Slots are handed out ahead of time; this catches a task that runs at a moment
        other than its slot (late after a busy spell, or all at once after a dead worker's
        tasks come back), so such tasks never land closer together than the platform allows.
        """
        return max(0.0, float(self._spaced(keys=[self._prefix + "sent:" + key], args=[gap])))

    def lock_and_pace(
        self,
        lock: str,
        token: str,
        ttl_ms: int,
        *,
        slot: tuple[str, float] | None = None,
        tolerance: float = 0.0,
        gap: tuple[str, float] | None = None,
        carried: Carry | None = None,
    ) -> Gate:
        """Take the lock ``lock`` (the Redis key, set to ``token`` for ``ttl_ms``) together
        with the pacing of what is sent under it, in one atomic round trip: exactly what
        taking the lock, then :meth:`reserve` (``slot``: key and interval; a wait up to
        ``tolerance`` counts as now), then :meth:`spaced` (``gap``: key and least gap) would
        do, stopping at the first that says "not now". A held lock takes no slot; a slot in
        the future stays reserved for the retry at that moment, which then passes no ``slot``.

        ``carried``: commands to send ahead in the same round trip (they run whatever this
        finds).
        """
        keys = [
            lock,
            self._prefix + slot[0] if slot else lock,
            self._prefix + "sent:" + gap[0] if gap else lock,
        ]
        args: list[str | int] = [
            token,
            ttl_ms,
            repr(slot[1]) if slot else "",
            repr(tolerance),
            repr(gap[1]) if gap else "",
        ]
        if carried is None:
            answer = self._lock_and_pace(keys=keys, args=args)
        else:
            # EVALSHA itself: a Script object would cost a SCRIPT EXISTS round trip.
            sha = self._lock_and_pace.sha
            answer = send_carrying(
                self._client, carried, lambda batch: batch.evalsha(sha, len(keys), *keys, *args)
            )
            if isinstance(answer, redis.exceptions.NoScriptError):
                # Not loaded on this server yet (or flushed): the Script loads it and runs.
                answer = self._lock_and_pace(keys=keys, args=args)
            elif isinstance(answer, Exception):
                raise answer
        what = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        if what == "ok":
            return Gate(taken=True)
        if what == "busy":
            return Gate(taken=False, busy_ms=int(answer[1]))
        return Gate(taken=False, wait=max(0.0, float(answer[1])))

    def hold_off(self, key: str, seconds: float) -> None:
        """No slot of ``key``, and no send, before ``seconds`` from now (after a 429)."""
        self._hold(keys=[self._prefix + key], args=[seconds])
        self._hold(keys=[self._prefix + "sent:" + key], args=[seconds])
