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

# A lock's release with what goes with it (see Held.also), nothing for a plain release: the
# lock's own release first (only if it is still ours), then each command in turn. ARGV: the
# token, then per command its name, the number of its arguments after the key, and those
# arguments; each command's key is the next of KEYS. A command that fails does not stop the
# others (pcall); the failures are counted in the reply.
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
        in one script with the release, so they are seen all at once; one that fails (a
        key of the wrong type, say) does not keep the others back."""
        self.extra.append(commands)


class LockKeeper:
    """Takes locks in Redis and keeps the ones this process holds alive.

    One thread per process renews the locks held, and sends the releases a holder left to
    it (``hold(..., release_later=True)``): those go out as soon as the thread gets to
    them, all that are waiting in one round trip, so the holder goes on at once instead of
    waiting for Redis.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl: float = LOCK_TTL_SECONDS,
        renew_every: float = RENEW_EVERY_SECONDS,
    ) -> None:
        self._redis = client
        # EVALSHA: the scripts' text is sent once, not with every release.
        self._release_with = client.register_script(_RELEASE_WITH)
        self._renew = client.register_script(_RENEW)
        self._ttl_ms = int(ttl * 1000)
        self._renew_every = renew_every
        self._held: dict[str, str] = {}
        # Releases left to the thread: (key, token, commands), and how many were ever left
        # and sent (flush() waits for the second to reach the first).
        self._releases: list[tuple[str, str, Commands]] = []
        self._left = 0
        self._sent = 0
        self._mutex = threading.Lock()
        self._changed = threading.Condition(self._mutex)
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def hold(self, name: str, *, take: Take | None = None, release_later: bool = False) -> Iterator[Held]:
        """Hold ``chatops:lock:<name>`` for the block; :class:`Busy` when it is taken.

        ``take(key, token, ttl_ms)``, if given, takes the lock in place of a plain ``SET NX``
        (say, together with what must be taken with it in the same round trip); it returns
        once the lock is set to ``token`` and raises (:class:`Busy` or its own exception)
        having taken nothing otherwise.

        ``release_later``: the release (with what :meth:`Held.also` added) is left to this
        process's lock thread, which sends it within moments (:meth:`flush` waits for it),
        so the block's end waits for no round trip. For a lock whose holder has nothing left
        to guard once the block ends (a delivery recorded as posted): another copy may find
        it held a little longer. A process killed before the thread sent it leaves the lock
        to expire (:data:`LOCK_TTL_SECONDS`), and its bookkeeping is lost.
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
            recorded = Commands()
            for commands in held.extra:
                commands(recorded)
            with self._mutex:
                self._held.pop(key, None)
                if release_later:
                    self._releases.append((key, token, recorded))
                    self._left += 1
                    self._changed.notify_all()
            if not release_later:
                self._let_go([(key, token, recorded)])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every release left to the lock thread so far has been sent (at most
        ``timeout`` seconds); False if some were not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            goal = self._left
            while self._sent < goal:
                left = deadline - time.monotonic()
                if left <= 0 or not self._running():
                    return False
                self._changed.wait(left)
        return True

    def _let_go(self, releases: list[tuple[str, str, Commands]]) -> None:
        """Release each lock (only if still ours: it may have expired and been taken by
        another) with the commands that go with it, in one round trip."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key, token, recorded in releases:
                # EVALSHA itself: a Script object in a pipeline costs a SCRIPT EXISTS round
                # trip before every execute.
                pipe.evalsha(
                    self._release_with.sha, 1 + len(recorded.keys), key, *recorded.keys, token, *recorded.args
                )
            answers = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            log.warning("could not release %s (they expire by themselves): %s", _keys(releases), exc)
            return
        for (key, token, recorded), answer in zip(releases, answers, strict=True):
            if isinstance(answer, redis.exceptions.NoScriptError):
                # Not loaded on this server yet (or flushed): the Script loads it and releases.
                try:
                    answer = self._release_with(keys=[key, *recorded.keys], args=[token, *recorded.args])
                except redis.RedisError as exc:
                    answer = exc
            if isinstance(answer, Exception):
                log.warning("could not release %s (it expires by itself): %s", key, answer)
            elif answer[1]:
                log.warning("%d command(s) sent with the release of %s failed", answer[1], key)

    def held(self) -> list[str]:
        with self._mutex:
            return list(self._held)

    def _running(self) -> bool:
        return self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()

    def _keep(self, key: str, token: str) -> None:
        with self._mutex:
            self._held[key] = token
            # After a fork the parent's thread does not exist in the child: start our own.
            if not self._running():
                self._pid = os.getpid()
                self._releases.clear()
                self._left = self._sent = 0
                self._thread = threading.Thread(target=self._run, name="chatops-locks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        renew_at = time.monotonic() + self._renew_every
        while True:
            with self._changed:
                while not self._releases and time.monotonic() < renew_at:
                    self._changed.wait(renew_at - time.monotonic())
                releases, self._releases = self._releases, []
            if releases:
                try:
                    self._let_go(releases)
                except Exception:  # the thread must go on renewing whatever happened here
                    log.exception("could not release %s (they expire by themselves)", _keys(releases))
                with self._changed:
                    self._sent += len(releases)
                    self._changed.notify_all()
            if time.monotonic() >= renew_at:
                try:
                    self._renew_held()
                except Exception:
                    log.exception("could not renew the locks held")
                renew_at = time.monotonic() + self._renew_every

    def _renew_held(self) -> None:
        with self._mutex:
            held = list(self._held.items())
        for key, token in held:
            try:
                renewed = self._renew(keys=[key], args=[token, self._ttl_ms])
                if not renewed and self._held.get(key) == token:
                    log.warning("lost lock %s before the work under it ended", key)
            except redis.RedisError as exc:
                log.warning("could not renew %s: %s", key, exc)


def _keys(releases: list[tuple[str, str, Commands]]) -> str:
    return ", ".join(key for key, _, _ in releases)
