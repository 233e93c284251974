"""Publishing Celery task messages without Celery's per-message overhead.

Celery's ``send_task`` costs about 0.5 ms of CPU per message (argument reprs, a new Redis
client per publish, generic message building). The ingress publishes on every webhook, so
it uses this publisher instead: it writes an ordinary Celery protocol-2 message, in the
envelope kombu's Redis transport reads, with one round trip (``EVALSHA`` of a small Lua
script that pushes it) over a connection each thread holds. Celery workers consume these
messages like any other.

Every publish is bounded in time, well inside a chat platform's answer deadline, and a
failure means "not enqueued": the script is given a deadline on the Redis server's own
clock and refuses to push later, so a command that sat in a frozen server's socket and runs
after the caller gave up is never enqueued (the caller's retry would otherwise be a second
incident).

When a de-duplication key is given, the script also sets the key (``SET NX EX``) and pushes
the message atomically, so a platform's retry of the same event is enqueued once, still in
one round trip. :meth:`TaskPublisher.send_once` does the same for a client's
``Idempotency-Key`` and also hands back the id of the task the key first enqueued.

Brokers other than Redis (e.g. RabbitMQ) are served through kombu's ``Producer``, with
bounded connect and retry times.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatops_core.errors import ConnectionFailed

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
# json.dumps with separators builds a new encoder on every call; this one is built once.
_COMPACT = json.JSONEncoder(separators=(",", ":"))

# Every push is a Lua script that first reads the server's own clock (TIME) and refuses to
# push past the deadline the client gave it. A command that sat in the socket of a frozen
# server and runs after the client gave up (and answered "not enqueued") is never enqueued.
# Redis 5+ replicates scripts by their effects, so TIME before a write is allowed.
_EXPIRED = -1
# ARGV[1] is the deadline in microseconds since the epoch on the server's clock (exact in a
# Lua number until the year 2255).
_CLOCK = """
local t = redis.call('TIME')
if t[1] * 1000000 + t[2] > ARGV[1] + 0 then
  return %s
end
"""

# Every push also records the message in the ledger of sent messages (see
# workers.redis_transport, which names the keys too): delivery tag -> "when\nlist\nenvelope",
# and the tag's time in the index, in the push's own script. A worker that takes the message
# off its queue and dies before noting it would lose it; the maintenance worker finds it there
# and pushes it back. The tag is the envelope's last property (see _redis_envelope), read off
# its end; a tag with characters JSON escapes, or one too long to sit near the end, is read by
# decoding the envelope.
_SENT = """
local function sent(queue, envelope)
  local at = string.find(envelope, '"delivery_tag":"', -300, true)
  local tag = at and string.sub(envelope, at + 16, -4)
  if not tag or string.find(tag, '[\\\\"]') then
    tag = cjson.decode(envelope)['properties']['delivery_tag']
  end
  redis.call('HSET', 'chatops:sent', tag, t[1] .. '\\n' .. queue .. '\\n' .. envelope)
  redis.call('ZADD', 'chatops:sent:index', t[1], tag)
end
"""

# KEYS[1] queue; ARGV[1] deadline, ARGV[2] message.
# Returns the queue's length when pushed, -1 when past the deadline (a bare integer: the
# cheapest reply; the script is kept minimal, as it runs on every webhook).
_PUSH = (
    _CLOCK % "-1"
    + _SENT
    + """
sent(KEYS[1], ARGV[2])
return redis.call('LPUSH', KEYS[1], ARGV[2])
"""
)

# KEYS[1] idempotency key, KEYS[2] queue; ARGV[1] deadline as above, ARGV[2] ttl seconds,
# ARGV[3] task id, ARGV[4] message. Returns {1, task id} when this call pushed, {0, the task
# id stored by the first call} when the key was taken, {-1, ''} when past the deadline.
_IDEMPOTENT_PUSH = (
    _CLOCK % "{-1, ''}"
    + _SENT
    + """
if redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', tonumber(ARGV[2])) then
  sent(KEYS[2], ARGV[4])
  redis.call('LPUSH', KEYS[2], ARGV[4])
  return {1, ARGV[3]}
end
return {0, redis.call('GET', KEYS[1])}
"""
)

# KEYS[1] queue, KEYS[2] de-duplication key ('' for none), KEYS[3] replay key ('' for none),
# KEYS[4] the key naming the person behind the sender ('' for none), KEYS[5] the instance's
# bucket ('' for none); ARGV[1] deadline as above, ARGV[2] de-duplication ttl seconds, ARGV[3]
# replay ttl seconds, ARGV[4] the sender's own bucket name (used when KEYS[4] names no person),
# ARGV[5]/ARGV[6] the person's interval between commands (ms) and burst, ARGV[7]/ARGV[8] the
# instance's, ARGV[9] message.
#
# Admits a command in one round trip: a de-duplication or replay key seen before answers
# {0, 0, 0}; a person (or the instance) over its rate answers {2 or 3, ms to wait, 1 when
# this is the first refusal of the wait, so the person is told once}; otherwise it takes a
# slot in both buckets, marks both keys and pushes: {1, 0, 0}. Past the deadline {-1, 0, 0}.
#
# The buckets are GCRA (one key each holding the "theoretical arrival time" in ms on the
# server's clock): a command is admitted when the bucket's time minus burst intervals is not
# in the future; each admitted command moves it one interval on. The person is looked up
# through KEYS[4] (set by the workers once they know who a platform user is, so one person's
# users on several platforms share a bucket); the bucket key is built in the script, which a
# single Redis allows (not a cluster: the broker is one Redis).
_ADMIT = (
    _CLOCK % "{-1, 0, 0}"
    + _SENT
    + """
if KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0, 0} end
if KEYS[3] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then return {0, 0, 0} end
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local function over(key, interval, burst)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local wait = tat + interval - interval * burst - now
  if wait > 0 then return wait, tat end
  return 0, tat
end
local buckets = {}
local person_interval = tonumber(ARGV[5])
if person_interval > 0 then
  local who = ARGV[4]
  if KEYS[4] ~= '' then who = redis.call('GET', KEYS[4]) or who end
  local key = 'chatops:rl:person:' .. who
  local wait, tat = over(key, person_interval, tonumber(ARGV[6]))
  -- The sender's own bucket counts too: what they ran before a worker named their person
  -- (or after that name expired) is not forgotten when the bucket changes.
  local own = 'chatops:rl:person:' .. ARGV[4]
  if own ~= key then
    local own_wait, own_tat = over(own, person_interval, tonumber(ARGV[6]))
    if own_tat > tat then wait, tat = own_wait, own_tat end
    buckets[#buckets + 1] = {own, tat + person_interval}
  end
  if wait > 0 then
    local told = redis.call('SET', 'chatops:rl:told:' .. who, 1, 'NX', 'PX', math.ceil(wait)) and 1 or 0
    return {2, math.ceil(wait), told}
  end
  buckets[#buckets + 1] = {key, tat + person_interval}
end
local instance_interval = tonumber(ARGV[7])
if KEYS[5] ~= '' and instance_interval > 0 then
  local wait, tat = over(KEYS[5], instance_interval, tonumber(ARGV[8]))
  if wait > 0 then
    local told = redis.call('SET', KEYS[5] .. ':told:' .. ARGV[4], 1, 'NX', 'PX', math.ceil(wait)) and 1 or 0
    return {3, math.ceil(wait), told}
  end
  buckets[#buckets + 1] = {KEYS[5], tat + instance_interval}
end
for _, b in ipairs(buckets) do
  redis.call('SET', b[1], b[2], 'PX', math.max(1, b[2] - now))
end
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], 1, 'EX', tonumber(ARGV[2])) end
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], 1, 'EX', tonumber(ARGV[3])) end
sent(KEYS[1], ARGV[9])
redis.call('LPUSH', KEYS[1], ARGV[9])
return {1, 0, 0}
"""
)

IDEMPOTENCY_PREFIX = "chatops:idem:"
REPLAY_PREFIX = "chatops:replay:"
PERSON_OF_PREFIX = "chatops:person-of:"
INSTANCE_BUCKET_PREFIX = "chatops:rl:instance:"
DEDUPE_PREFIX = "chatops:dedupe:"

# The longest a publish waits for Redis, connecting included: well inside the 3 s in which
# Slack (and Discord) must have their answer.
PUBLISH_TIMEOUT_SECONDS = 1.0
# A push that reaches Redis later than this after the publish began is refused by the
# script. The gap to the timeout covers the error in the clock offset and the reply's way
# back, so that once the client gives up no copy of the command can still be pushed.
PUBLISH_DEADLINE_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Rate:
    """At most ``per_minute`` commands a minute on average, in bursts of up to ``burst``."""

    per_minute: float
    burst: int

    @property
    def interval_ms(self) -> int:
        return max(1, round(60_000 / self.per_minute))


@dataclass(frozen=True)
class Admission:
    """What :meth:`TaskPublisher.admit` did with a command.

    ``outcome``: ``enqueued``; ``duplicate`` (its de-duplication or replay key was seen
    before: nothing enqueued); ``limited`` (over a rate: nothing enqueued). When limited,
    ``limited_by`` says whose rate (``person`` or ``instance``), ``retry_after`` how long to
    wait in seconds, and ``tell`` is True for the first refusal of that wait only.
    """

    outcome: str
    retry_after: float = 0.0
    limited_by: str | None = None
    tell: bool = False


def person_key(instance: str, user_id: str) -> str:
    """The Redis key naming the person behind a platform user (see :meth:`TaskPublisher.admit`)."""
    return f"{PERSON_OF_PREFIX}{instance}:{user_id}"


class BrokerUnavailable(ConnectionFailed):
    """The broker did not take the message."""

    code = "broker_unavailable"


def build_task_message(
    task_name: str,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    task_id: str,
    origin: str,
) -> tuple[bytes, dict[str, Any], dict[str, Any]]:
    """Body, headers and properties of a Celery protocol-2 task message (JSON)."""
    body = _COMPACT.encode([list(args), kwargs, _EMBED]).encode()
    headers = {
        "lang": "py",
        "task": task_name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "",
        "kwargsrepr": "",
        "origin": origin,
        "ignore_result": True,
    }
    properties = {"correlation_id": task_id, "reply_to": ""}
    return body, headers, properties


def _redis_envelope(
    body: bytes, headers: dict[str, Any], properties: dict[str, Any], queue: str, task_id: str
) -> str:
    # The envelope kombu's Redis transport reads for a message published to the default
    # exchange: the routing key names the list. Without ``body_encoding`` kombu takes the
    # body as it is (no base64), which Celery then decodes as JSON.
    return json.dumps(
        {
            "body": body.decode("utf-8"),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "delivery_tag": task_id,
            },
        },
        separators=(",", ":"),
    )


# Stand-ins for the values that differ between messages of one task and queue.
_BODY_SLOT = "\x00body\x00"
_ID_SLOT = "\x00id\x00"


class _EnvelopeTemplates:
    """The Redis envelope as text with holes for the body and the task id.

    Rendering the whole envelope with ``json.dumps`` on every publish costs about as much
    CPU as the push itself; messages of one task and queue differ only in the body and the
    id, so the envelope is rendered once with stand-ins and then filled by joining strings.
    The text is the JSON :func:`_redis_envelope` gives (a test holds the two equal).
    """

    def __init__(self, origin: str) -> None:
        self._origin = origin
        self._cache: dict[tuple[str, str], tuple[list[str], list[bool]]] = {}

    def _template(self, task_name: str, queue: str) -> tuple[list[str], list[bool]]:
        """The text between the holes, and for each hole whether it takes the body (else the id)."""
        _, headers, properties = build_task_message(task_name, (), {}, task_id=_ID_SLOT, origin=self._origin)
        text = _redis_envelope(_BODY_SLOT.encode(), headers, properties, queue, _ID_SLOT)
        body_token, id_token = json.dumps(_BODY_SLOT), json.dumps(_ID_SLOT)
        pieces: list[str] = []
        takes_body: list[bool] = []
        for part in text.split(body_token):
            if pieces:
                takes_body.append(True)
            for i, piece in enumerate(part.split(id_token)):
                if i:
                    takes_body.append(False)
                pieces.append(piece)
        # One piece more than holes; anything else would mean a stand-in was mangled.
        if len(pieces) != len(takes_body) + 1:
            raise AssertionError("envelope template out of step")
        return pieces, takes_body

    def render(
        self, task_name: str, queue: str, args: Sequence[Any], kwargs: dict[str, Any], task_id: str
    ) -> str:
        held = self._cache.get((task_name, queue))
        if held is None:
            held = self._cache[(task_name, queue)] = self._template(task_name, queue)
        pieces, takes_body = held
        body = json.dumps(_COMPACT.encode([list(args), kwargs, _EMBED]))
        quoted_id = json.dumps(task_id)
        out = [pieces[0]]
        for is_body, piece in zip(takes_body, pieces[1:], strict=True):
            out.append(body if is_body else quoted_id)
            out.append(piece)
        return "".join(out)


def is_redis_url(url: str) -> bool:
    return url.split("://", 1)[0] in {"redis", "rediss", "redis+socket", "unix"}


def _redis_client(url: str, timeout: float) -> redis.Redis:
    # No retries inside redis-py: a retry is decided here, where the time budget is known.
    options: dict[str, Any] = {
        "socket_connect_timeout": min(CONNECT_TIMEOUT_SECONDS, timeout),
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }
    if url.startswith("redis+socket://"):
        return redis.Redis(unix_socket_path=url[len("redis+socket://") :].split("?", 1)[0], **options)
    return redis.Redis.from_url(url, **options)


class _Held:
    """A thread's connection and the offset from the local monotonic clock to the server's."""

    __slots__ = ("conn", "offset_us", "pid", "poll")

    def __init__(self, conn: Any) -> None:
        self.pid = os.getpid()
        self.conn = conn
        self.offset_us = 0.0
        # Polls the connection's socket for a close by the server: far cheaper than a read.
        self.poll: Any = None


class _RedisLine:
    """One Redis connection per thread, held for the process's life, with a time budget per push.

    Taking a connection from redis-py's pool and giving it back costs more CPU than the
    command itself; the ingress publishes on every request, so each thread keeps its own.

    Every push runs a script given a deadline on the server's clock (see ``_CLOCK``). The
    offset from the local monotonic clock to the server's is learnt once per connection
    (``TIME`` right after connecting), so a push is still one round trip (``EVALSHA``).
    """

    def __init__(self, client: redis.Redis, *, timeout: float, deadline: float) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()
        self.timeout = timeout
        self.deadline = deadline

    def _held(self) -> _Held:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            held = _Held(self._pool.make_connection())
            self._local.held = held
        return held

    def _open(self, held: _Held, give_up: float) -> None:
        """(Re)connect and learn the server's clock: ``TIME``, once per connection."""
        conn = held.conn
        conn.disconnect()
        try:
            conn.connect()  # bounded by the connect and socket timeouts
            asked = time.monotonic()
            conn.send_command("TIME", check_health=False)
            seconds, micros = conn.read_response(timeout=max(0.001, give_up - asked))
            answered = time.monotonic()
        except BaseException:
            conn.disconnect()
            raise
        # The server read its clock somewhere between asking and the answer; taking the
        # answer's time errs towards an earlier deadline, never a later one.
        held.offset_us = int(seconds) * 1_000_000 + int(micros) - answered * 1_000_000
        sock = getattr(conn, "_sock", None)
        held.poll = None
        if isinstance(sock, socket.socket):
            held.poll = select.poll()
            held.poll.register(sock, select.POLLIN)

    @staticmethod
    def _closed_by_server(held: _Held) -> bool:
        """True when the server closed the connection (a restart) or left stray data on it.

        Between pushes nothing may be waiting on the socket: anything readable (an end of
        file, a reset, stray bytes) means the connection cannot be trusted with a push.
        """
        if held.poll is not None:
            return bool(held.poll.poll(0))
        try:
            return bool(held.conn.can_read(timeout=0))
        except (redis.ConnectionError, OSError):
            return True

    def run(self, script: str, sha: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` with ``ARGV[1]`` = the push's deadline on the server's clock.

        Raises ``redis.TimeoutError`` past the budget. A command is sent again only when it
        surely never reached the server (connecting or writing failed), never after a
        timeout or a lost answer, so a push is never made twice.
        """
        started = time.monotonic()
        give_up = started + self.timeout
        held = self._held()
        conn = held.conn
        # Without a connection, or with one the server closed (Redis restarted), connect
        # first: a command written into a dead connection would fail with no way to know
        # whether it ran.
        reconnected = not conn.is_connected or self._closed_by_server(held)
        if reconnected:
            self._open(held, give_up)
        for attempt in (1, 2):
            deadline_us = int((started + self.deadline) * 1_000_000 + held.offset_us)
            try:
                conn.send_command("EVALSHA", sha, len(keys), *keys, deadline_us, *args, check_health=False)
            except redis.ConnectionError:
                # The command did not leave whole, so the server never ran it.
                if attempt == 2:
                    raise
                self._open(held, give_up)
                reconnected = True
                continue
            # The socket's own timeout is the budget; once connecting took part of it, the
            # rest is what the answer may take.
            wait: Any = {"timeout": max(0.001, give_up - time.monotonic())} if reconnected else {}
            try:
                reply = conn.read_response(**wait)
            except redis.exceptions.NoScriptError:
                conn.send_command("EVAL", script, len(keys), *keys, deadline_us, *args, check_health=False)
                reply = conn.read_response(timeout=max(0.001, give_up - time.monotonic()))
            return reply
        raise AssertionError("unreachable")

    def close(self) -> None:
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None:
            held.conn.disconnect()
            self._local.held = None


class TaskPublisher:
    """Publishes task messages to the broker; safe to share between threads.

    Every publish is bounded: it succeeds or raises :class:`BrokerUnavailable` within
    ``timeout_seconds`` (about; a broker other than Redis within a few times that). On Redis
    a :class:`BrokerUnavailable` means the message was not enqueued and never will be: the
    push is a script that refuses to run later than ``deadline_seconds`` after the publish
    began, on the server's own clock. (The one case that cannot be told apart is a Redis
    that dies between running the push and sending its answer.)
    """

    def __init__(
        self,
        broker_url: str,
        *,
        dedupe_ttl: int = 3600,
        timeout_seconds: float = PUBLISH_TIMEOUT_SECONDS,
        deadline_seconds: float = PUBLISH_DEADLINE_SECONDS,
    ) -> None:
        if not 0 < deadline_seconds < timeout_seconds:
            raise ValueError("deadline_seconds must be positive and shorter than timeout_seconds")
        self.broker_url = broker_url
        self.dedupe_ttl = dedupe_ttl
        self.timeout_seconds = timeout_seconds
        self.deadline_seconds = deadline_seconds
        self.origin = f"{os.getpid()}@{socket.gethostname()}"
        self._envelopes = _EnvelopeTemplates(self.origin)
        self._redis: redis.Redis | None = None
        self._line: _RedisLine | None = None
        self._push_sha = hashlib.sha1(_PUSH.encode()).hexdigest()
        self._idempotent_sha = hashlib.sha1(_IDEMPOTENT_PUSH.encode()).hexdigest()
        self._admit_sha = hashlib.sha1(_ADMIT.encode()).hexdigest()
        self._kombu_lock = threading.Lock()
        self._kombu_conn: Any = None
        if is_redis_url(broker_url):
            self._redis = _redis_client(broker_url, timeout_seconds)
            self._line = _RedisLine(self._redis, timeout=timeout_seconds, deadline=deadline_seconds)

    def send(
        self,
        task_name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str,
        dedupe_key: str | None = None,
        task_id: str | None = None,
    ) -> str | None:
        """Enqueue one task; return its id, or ``None`` when ``dedupe_key`` was seen before.

        Raises :class:`BrokerUnavailable` when the broker does not take it.
        """
        if dedupe_key is None:
            return self._publish(task_name, args, kwargs, queue, task_id, None)[0]
        tid, enqueued = self._publish(
            task_name, args, kwargs, queue, task_id, (DEDUPE_PREFIX + dedupe_key, None)
        )
        return tid if enqueued else None

    def admit(
        self,
        task_name: str,
        args: Sequence[Any],
        *,
        queue: str,
        sender: tuple[str, str],
        dedupe_key: str | None = None,
        replay_key: str | None = None,
        replay_ttl: int = 600,
        person_rate: Rate | None = None,
        instance_rate: Rate | None = None,
    ) -> Admission:
        """Enqueue a person's command unless it was seen before or they (or their instance)
        are over their rate, all in one round trip.

        ``sender`` is ``(instance, user id)``: their bucket is their person's where a worker
        has recorded who that user is (:func:`person_key`), so one person's users on several
        platforms share it; else the platform user's own. ``replay_key`` marks the request
        itself (a digest of its signed body) for ``replay_ttl`` seconds: the same request
        again is a duplicate. The buckets live in Redis, so the rates hold across every
        ingress process and survive their restarts; they refill on Redis's own clock.

        On a broker other than Redis there are no keys and no rates: the command is sent.
        Raises :class:`BrokerUnavailable` when the broker does not take it.
        """
        tid = str(uuid.uuid4())
        if self._line is None:
            self._publish(task_name, args, None, queue, tid, None)
            return Admission("enqueued")
        instance, user_id = sender
        envelope = self._envelopes.render(task_name, queue, args, {}, tid)
        keys = (
            queue,
            DEDUPE_PREFIX + dedupe_key if dedupe_key else "",
            REPLAY_PREFIX + replay_key if replay_key else "",
            person_key(instance, user_id) if person_rate else "",
            INSTANCE_BUCKET_PREFIX + instance if instance_rate else "",
        )
        argv = (
            self.dedupe_ttl,
            replay_ttl,
            f"{instance}:{user_id}",
            person_rate.interval_ms if person_rate else 0,
            person_rate.burst if person_rate else 0,
            instance_rate.interval_ms if instance_rate else 0,
            instance_rate.burst if instance_rate else 0,
            envelope,
        )
        try:
            outcome, wait_ms, told = self._line.run(_ADMIT, self._admit_sha, keys, argv)
        except (redis.RedisError, OSError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc
        if outcome == _EXPIRED:
            raise BrokerUnavailable(
                f"broker unavailable: the push expired (Redis took over {self.deadline_seconds} s)"
            )
        if outcome == 1:
            return Admission("enqueued")
        if outcome == 0:
            return Admission("duplicate")
        return Admission(
            "limited",
            retry_after=int(wait_ms) / 1000,
            limited_by="person" if outcome == 2 else "instance",
            tell=bool(told),
        )

    def send_once(
        self,
        task_name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str,
        idempotency_key: str,
        task_id: str | None = None,
        ttl: int | None = None,
    ) -> tuple[str, bool]:
        """Enqueue one task unless ``idempotency_key`` already enqueued one; return ``(id, enqueued)``.

        The first call with a key enqueues the task under ``task_id`` (a new uuid4 when not
        given) and returns ``(task_id, True)``. Later calls with the same key, for ``ttl``
        seconds (default: the publisher's ``dedupe_ttl``), enqueue nothing and return
        ``(id of the first task, False)``. Check and push are one atomic Lua script, one
        round trip, so concurrent callers in any process agree on the one task. The key is
        stored as ``chatops:idem:<idempotency_key>``: callers namespace it (``notify:<key>``).
        A call refused with :class:`BrokerUnavailable` leaves the key free.

        On brokers other than Redis the key is not applied: the task is sent as by
        :meth:`send` and ``(task_id, True)`` returned.

        Raises :class:`BrokerUnavailable` when the broker does not answer.
        """
        return self._publish(
            task_name, args, kwargs, queue, task_id, (IDEMPOTENCY_PREFIX + idempotency_key, ttl)
        )

    def _publish(
        self,
        task_name: str,
        args: Sequence[Any],
        kwargs: dict[str, Any] | None,
        queue: str,
        task_id: str | None,
        once: tuple[str, int | None] | None,
    ) -> tuple[str, bool]:
        """Push one task message; with ``once = (redis key, ttl)``, only if the key is new.

        Returns ``(id, enqueued)``: the id of the task that holds the key when nothing was
        pushed. Keys are applied on Redis only (other brokers always push).
        """
        tid = task_id or str(uuid.uuid4())
        if self._line is None:
            body, headers, properties = build_task_message(
                task_name, args, kwargs or {}, task_id=tid, origin=self.origin
            )
            self._send_kombu(body, headers, properties, queue)
            return tid, True
        envelope = self._envelopes.render(task_name, queue, args, kwargs or {}, tid)
        try:
            if once is None:
                pushed, stored = self._line.run(_PUSH, self._push_sha, (queue,), (envelope,)), None
            else:
                key, ttl = once
                pushed, stored = self._line.run(
                    _IDEMPOTENT_PUSH,
                    self._idempotent_sha,
                    (key, queue),
                    (ttl or self.dedupe_ttl, tid, envelope),
                )
        except (redis.RedisError, OSError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc
        if pushed == _EXPIRED:
            raise BrokerUnavailable(
                f"broker unavailable: the push expired (Redis took over {self.deadline_seconds} s)"
            )
        if once is None:
            return tid, True
        first_id = stored.decode() if isinstance(stored, bytes) else str(stored)
        # A caller that gives its own task id and repeats a call it did not hear back from
        # finds its own id under the key: that task was enqueued.
        return first_id, bool(pushed) or first_id == tid

    def _send_kombu(
        self,
        body: bytes,
        headers: dict[str, Any],
        properties: dict[str, Any],
        queue: str,
    ) -> None:
        from kombu import Connection, Producer, Queue
        from kombu.exceptions import KombuError

        # De-duplication keys are not applied on this path: the workers' own keys cover it.
        # Connecting and the one retry are bounded so the caller can still answer in time.
        retry_policy = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
        with self._kombu_lock:
            if self._kombu_conn is None:
                self._kombu_conn = Connection(
                    self.broker_url,
                    connect_timeout=min(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds),
                    transport_options=dict(retry_policy),
                )
            conn = self._kombu_conn
            try:
                producer = Producer(conn.default_channel)
                producer.publish(
                    body,
                    exchange="",
                    routing_key=queue,
                    declare=[Queue(queue, routing_key=queue)],
                    content_type="application/json",
                    content_encoding="utf-8",
                    headers=headers,
                    retry=True,
                    retry_policy=retry_policy,
                    timeout=self.timeout_seconds,
                    **properties,
                )
            except (KombuError, OSError, *conn.connection_errors, *conn.channel_errors) as exc:
                self._kombu_conn = None
                conn.release()
                raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def ping(self) -> None:
        """Raise :class:`BrokerUnavailable` unless the broker answers."""
        try:
            if self._redis is not None:
                self._redis.ping()
                return
            from kombu import Connection

            with Connection(self.broker_url, connect_timeout=self.timeout_seconds) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def close(self) -> None:
        if self._line is not None:
            self._line.close()
        if self._redis is not None:
            self._redis.close()
        if self._kombu_conn is not None:
            self._kombu_conn.release()
