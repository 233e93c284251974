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
from collections.abc import Iterator
from contextlib import contextmanager

import redis

log = logging.getLogger("chatops.locks")

LOCK_TTL_SECONDS = 10.0
# Renewed three times within one expiry, so one slow renewal does not lose the lock.
RENEW_EVERY_SECONDS = LOCK_TTL_SECONDS / 3

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
)


class Busy(Exception):
    """Someone else holds the lock; it is free at the latest in ``retry_in`` seconds."""

    def __init__(self, key: str, retry_in: float) -> None:
        super().__init__(f"{key} is held (free in at most {retry_in:.1f}s)")
        self.key = key
        self.retry_in = retry_in


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
        self._ttl_ms = int(ttl * 1000)
        self._renew_every = renew_every
        self._held: dict[str, str] = {}
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold ``chatops:lock:<name>`` for the block; :class:`Busy` when it is taken."""
        key = f"chatops:lock:{name}"
        token = uuid.uuid4().hex
        if not self._redis.set(key, token, nx=True, px=self._ttl_ms):
            remaining_ms = self._redis.pttl(key)
            # -2: gone since; -1: no expiry (never set so by us): try again soon either way.
            retry_in = remaining_ms / 1000 if isinstance(remaining_ms, int) and remaining_ms > 0 else 0.2
            raise Busy(key, retry_in)
        self._keep(key, token)
        try:
            yield
        finally:
            with self._mutex:
                self._held.pop(key, None)
            try:
                # Release only our own lock (it may have expired and been taken by another).
                self._redis.eval(_RELEASE, 1, key, token)
            except redis.RedisError as exc:
                log.warning("could not release %s (it expires by itself): %s", key, exc)

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
                    renewed = self._redis.eval(_RENEW, 1, key, token, self._ttl_ms)
                    if not renewed and self._held.get(key) == token:
                        log.warning("lost lock %s before the work under it ended", key)
                except redis.RedisError as exc:
                    log.warning("could not renew %s: %s", key, exc)
