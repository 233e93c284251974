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

# KEYS[1] queue; ARGV[1] deadline, ARGV[2] message.
# Returns the queue's length when pushed, -1 when past the deadline (a bare integer: the
# cheapest reply; the script is kept minimal, as it runs on every webhook).
_PUSH = (
    _CLOCK % "-1"
    + """
return redis.call('LPUSH', KEYS[1], ARGV[2])
"""
)

# KEYS[1] idempotency key, KEYS[2] queue; ARGV[1] deadline as above, ARGV[2] ttl seconds,
# ARGV[3] task id, ARGV[4] message. Returns {1, task id} when this call pushed, {0, the task
# id stored by the first call} when the key was taken, {-1, ''} when past the deadline.
_IDEMPOTENT_PUSH = (
    _CLOCK % "{-1, ''}"
    + """
if redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', tonumber(ARGV[2])) then
  redis.call('LPUSH', KEYS[2], ARGV[4])
  return {1, ARGV[3]}
end
return {0, redis.call('GET', KEYS[1])}
"""
)

IDEMPOTENCY_PREFIX = "chatops:idem:"
DEDUPE_PREFIX = "chatops:dedupe:"

# The longest a publish waits for Redis, connecting included: well inside the 3 s in which
# Slack (and Discord) must have their answer.
PUBLISH_TIMEOUT_SECONDS = 1.0
# A push that reaches Redis later than this after the publish began is refused by the
# script. The gap to the timeout covers the error in the clock offset and the reply's way
# back, so that once the client gives up no copy of the command can still be pushed.
PUBLISH_DEADLINE_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 0.5


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
