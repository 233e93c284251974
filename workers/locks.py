"""Short Redis locks that live exactly as long as their holder.

A delivery holds a lock while it posts, so two copies of one task (a redelivery while the
first copy still runs) never post at once. The lock is set with a short expiry and a
thread in the holding process renews it while the work goes on: a holder that is alive
keeps it however slow the platform is, and a holder killed with SIGKILL loses it within
:data:`LOCK_TTL_SECONDS`, so the redelivered copy goes on soon after instead of waiting
out a long fixed expiry.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import redis

log = logging.getLogger("chatops.locks")

LOCK_TTL_SECONDS = 10.0
# Renewed three times within one expiry, so one slow renewal does not lose the lock.
RENEW_EVERY_SECONDS = LOCK_TTL_SECONDS / 3

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# The release with what goes with it (see Held.also): the lock's own release first, then each
# command in turn. ARGV: the token, then per command its name, the number of its arguments
# after the key, and those arguments; each command's key is the next of KEYS. A command that
# fails does not stop the others (pcall); the failures are counted in the reply.
_RELEASE_WITH = """
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then released = redis.call('DEL', KEYS[1]) end
local failed, a, k = 0, 2, 2
while a <= #ARGV do
  local n = tonumber(ARGV[a + 1])
  local reply = redis.pcall(ARGV[a], KEYS[k], unpack(ARGV, a + 2, a + 1 + n))
  if type(reply) == 'table' and reply.err then failed = failed + 1 end
  a, k = a + 2 + n, k + 1
end
return {released, failed}
"""
_RENEW = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
)


def retry_in(remaining_ms: object) -> float:
    """When to look again at a lock whose ``PTTL`` is ``remaining_ms``: when it lapses at the
    latest; -2 (gone since) or -1 (no expiry, never set so by us): soon either way."""
    return remaining_ms / 1000 if isinstance(remaining_ms, int) and remaining_ms > 0 else 0.2


class Busy(Exception):
    """Someone else holds the lock; it is free at the latest in ``retry_in`` seconds."""

    def __init__(self, key: str, retry_in: float) -> None:
        super().__init__(f"{key} is held (free in at most {retry_in:.1f}s)")
        self.key = key
        self.retry_in = retry_in


# Takes a lock in place of LockKeeper's own SET NX: (key, token, expiry in ms).
Take = Callable[[str, str, int], None]


class Commands:
    """Write commands sent with a lock's release (:meth:`Held.also`): the subset of a Redis
    pipeline's methods that bookkeeping uses, recorded to run in the release's script."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.args: list[str | bytes | int | float] = []

    def _add(self, command: str, key: str, *args: str | bytes | int | float) -> None:
        self.keys.append(key)
        self.args += [command, len(args), *args]

    def sadd(self, name: str, *values: str) -> None:
        self._add("SADD", name, *values)

    def hset(self, name: str, *, mapping: Mapping[str, str | bytes | int | float]) -> None:
        self._add("HSET", name, *(part for pair in mapping.items() for part in pair))

    def hincrby(self, name: str, key: str, amount: int = 1) -> None:
        self._add("HINCRBY", name, key, amount)


class Held:
    """A lock held for a block: :meth:`also` adds commands to the round trip that releases it."""

    def __init__(self) -> None:
        self.extra: list[Callable[[Commands], object]] = []

    def also(self, commands: Callable[[Commands], object]) -> None:
        """Queue ``commands(recorder)`` to be sent with the release, in one round trip (for
        bookkeeping such as a count, which then costs no round trip of its own). They run
        in one script with the release: all of them are seen at once, or none."""
        self.extra.append(commands)


class LockKeeper:
    """Takes locks in Redis and keeps the ones this process holds alive."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl: float = LOCK_TTL_SECONDS,
        renew_every: float = RENEW_EVERY_SECONDS,
    ) -> None:
        self._redis = client
        # EVALSHA: the scripts' text is sent once, not with every release.
        self._release = client.register_script(_RELEASE)
        self._release_with = client.register_script(_RELEASE_WITH)
        self._renew = client.register_script(_RENEW)
        self._ttl_ms = int(ttl * 1000)
        self._renew_every = renew_every
        self._held: dict[str, str] = {}
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def hold(self, name: str, *, take: Take | None = None) -> Iterator[Held]:
        """Hold ``chatops:lock:<name>`` for the block; :class:`Busy` when it is taken.

        ``take(key, token, ttl_ms)``, if given, takes the lock in place of a plain ``SET NX``
        (say, together with what must be taken with it in the same round trip); it returns
        once the lock is set to ``token`` and raises (:class:`Busy` or its own exception)
        having taken nothing otherwise.
        """
        key = f"chatops:lock:{name}"
        token = uuid.uuid4().hex
        if take is not None:
            take(key, token, self._ttl_ms)
        elif not self._redis.set(key, token, nx=True, px=self._ttl_ms):
            remaining_ms = self._redis.pttl(key)
            raise Busy(key, retry_in(remaining_ms))
        self._keep(key, token)
        held = Held()
        try:
            yield held
        finally:
            with self._mutex:
                self._held.pop(key, None)
            self._let_go(key, token, held.extra)

    def _let_go(self, key: str, token: str, extra: list[Callable[[Commands], object]]) -> None:
        # Release only our own lock (it may have expired and been taken by another).
        try:
            if not extra:
                self._release(keys=[key], args=[token])
                return
            recorded = Commands()
            for commands in extra:
                commands(recorded)
            _, failed = self._release_with(keys=[key, *recorded.keys], args=[token, *recorded.args])
        except redis.RedisError as exc:
            log.warning("could not release %s (it expires by itself): %s", key, exc)
            return
        if failed:
            log.warning("%d command(s) sent with the release of %s failed", failed, key)

    def held(self) -> list[str]:
        with self._mutex:
            return list(self._held)

    def _keep(self, key: str, token: str) -> None:
        with self._mutex:
            self._held[key] = token
            pid = os.getpid()
            # After a fork the parent's thread does not exist in the child: start our own.
            if self._thread is None or self._pid != pid or not self._thread.is_alive():
                self._pid = pid
                self._thread = threading.Thread(target=self._renew_loop, name="chatops-locks", daemon=True)
                self._thread.start()

    def _renew_loop(self) -> None:
        while True:
            time.sleep(self._renew_every)
            with self._mutex:
                held = list(self._held.items())
            for key, token in held:
                try:
                    renewed = self._renew(keys=[key], args=[token, self._ttl_ms])
                    if not renewed and self._held.get(key) == token:
                        log.warning("lost lock %s before the work under it ended", key)
                except redis.RedisError as exc:
                    log.warning("could not renew %s: %s", key, exc)
