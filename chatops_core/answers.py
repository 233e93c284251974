"""Answers that travel in the webhook's own HTTP response, handed from a worker to the ingress.

Some platforms show only what their webhook's HTTP response carries (a Teams outgoing
webhook: no way to post later, 5 s to answer). For a command with an ``answer_key`` the
ingress enqueues the command as always, then waits a bounded time for the worker's first
answer under that key and sends it as its response. When the worker is late the ingress
answers that the result will follow, and the worker's answer is posted the platform's other
way (:meth:`~chatops_core.providers.base.Provider.reply`) instead.

Exactly one side gets each answer. Both steps are Redis scripts, so they cannot interleave:

- the worker's :meth:`AnswerExchange.hand_over` claims the key (``SET NX``) and pushes the
  answer, or finds the key already claimed (the ingress gave up, or this is a second answer)
  and returns False;
- the ingress waits with ``BLPOP``; on time-out, :meth:`AnswerExchange.give_up` takes an
  answer pushed in the meantime or claims the key as ``late``.

Keys expire after ``ttl`` seconds; they carry the command's key, never its content.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("chatops.answers")

PREFIX = "chatops:answer:"
_HAND_OVER = """
if redis.call('SET', KEYS[1], 'answered', 'NX', 'EX', ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
_GIVE_UP = """
local answer = redis.call('LPOP', KEYS[2])
if answer then
  redis.call('DEL', KEYS[2])
  return answer
end
redis.call('SET', KEYS[1], 'late', 'NX', 'EX', ARGV[1])
return false
"""


def _keys(key: str) -> tuple[str, str]:
    return f"{PREFIX}{key}:state", f"{PREFIX}{key}:body"


def _encode(body: bytes, content_type: str) -> bytes:
    return content_type.encode() + b"\n" + body


def _decode(payload: bytes) -> tuple[bytes, str]:
    content_type, _, body = payload.partition(b"\n")
    return body, content_type.decode()


class AnswerExchange:
    """The hand-over of answers between workers and the ingress, on the broker's Redis.

    ``max_wait`` bounds every wait; the client's socket time-out is set above it so a
    ``BLPOP`` is never cut short by the socket, while a Redis that stops answering still
    cannot hold a request past ``max_wait`` plus a second.
    """

    def __init__(self, url: str, *, ttl: int = 120, max_wait: float = 5.0) -> None:
        self.ttl = ttl
        self._redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=1,
            socket_timeout=max_wait + 1,
            retry=Retry(NoBackoff(), 0),
        )
        self._hand_over = self._redis.register_script(_HAND_OVER)
        self._give_up = self._redis.register_script(_GIVE_UP)

    @classmethod
    def from_client(cls, client: redis.Redis, *, ttl: int = 120) -> AnswerExchange:
        """An exchange on an existing client (a worker's), whose time-outs it keeps."""
        exchange = cls.__new__(cls)
        exchange.ttl = ttl
        exchange._redis = client
        exchange._hand_over = client.register_script(_HAND_OVER)
        exchange._give_up = client.register_script(_GIVE_UP)
        return exchange

    def hand_over(self, key: str, body: bytes, content_type: str) -> bool:
        """Give the ingress the answer for ``key``; False when it is no longer waiting for one
        (it gave up, or an answer went already): then the answer must go the other way.

        Raises :class:`redis.RedisError` when Redis does not answer (the caller retries).
        """
        state, bodies = _keys(key)
        taken: Any = self._hand_over(keys=[state, bodies], args=[_encode(body, content_type), self.ttl])
        return bool(taken)

    def await_answer(self, key: str, timeout: float) -> tuple[bytes, str] | None:
        """The worker's answer for ``key`` (body, content type), or None when it did not come
        within ``timeout`` seconds (then the key is marked late, and the worker posts its
        answer the other way). A Redis failure counts as late."""
        state, bodies = _keys(key)
        try:
            if timeout > 0:
                # BLPOP takes whole or fractional seconds (Redis >= 6); 0 would block forever.
                got: Any = self._redis.blpop([bodies], timeout=max(timeout, 0.01))
                if got is not None:
                    self._redis.delete(bodies)
                    return _decode(bytes(got[1]))
            late: Any = self._give_up(keys=[state, bodies], args=[self.ttl])
        except redis.RedisError as exc:
            log.warning("no answer for %s: Redis did not answer (%s)", key, type(exc).__name__)
            return None
        return None if late is None else _decode(bytes(late))

    def give_up(self, key: str) -> tuple[bytes, str] | None:
        """Stop waiting for ``key`` at once (no waiting slot free): an answer already handed
        over, else None and the key marked late."""
        return self.await_answer(key, 0)
