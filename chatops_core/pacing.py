"""Proactive pacing shared through Redis, so many workers do not stampede one channel.

Each key (e.g. ``slack:acme:post:C0123``) hands out send slots ``interval`` seconds
apart. A worker reserves the next slot in one atomic script and learns how long until it
comes; a task whose slot is in the future is retried with that countdown rather than
sleeping. A 429 pushes the key's next slot back by the platform's ``Retry-After``.
Times come from the Redis server's clock, so workers on several hosts agree.
"""

from __future__ import annotations

import redis

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


class Pacer:
    """Send slots per key, shared by every worker through Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "chatops:pace:") -> None:
        self._client = client
        self._prefix = prefix
        self._reserve = client.register_script(_RESERVE)
        self._hold = client.register_script(_HOLD)

    def reserve(self, key: str, interval: float) -> float:
        """Take the next slot of ``key``; return the seconds until it (0 when now)."""
        return max(0.0, float(self._reserve(keys=[self._prefix + key], args=[interval])))

    def hold_off(self, key: str, seconds: float) -> None:
        """No slot of ``key`` before ``seconds`` from now (after a 429)."""
        self._hold(keys=[self._prefix + key], args=[seconds])
