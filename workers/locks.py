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

from chatops_core.pacing import Batch, send_carrying

log = logging.getLogger("chatops.locks")

LOCK_TTL_SECONDS = 10.0
# Renewed three times within one expiry, so one slow renewal does not lose the lock.
RENEW_EVERY_SECONDS = LOCK_TTL_SECONDS / 3
# How long a release left to the lock thread waits for the process's next lock to be taken,
# which carries it in its own round trip; past this the thread sends it alone.
CARRY_WAIT_SECONDS = 0.025

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


class Carried:
    """Releases a lock's taking sends in its own round trip, ahead of its own command: the
    ones this process left to its lock thread that the thread has not sent yet.

    Whoever takes the lock adds :meth:`queue` to the batch it sends and hands the batch's
    answers for them to :meth:`settle`, or the error to :meth:`lost` when the round trip
    failed.
    """

    def __init__(self, keeper: LockKeeper, releases: list[tuple[str, str, Commands]]) -> None:
        self._keeper = keeper
        self.releases = releases
        self.done = False

    def queue(self, batch: Batch) -> int:
        """Add the releases to ``batch``; return how many answers they take."""
        self._keeper._queue_releases(batch, self.releases)
        return len(self.releases)

    def settle(self, answers: list[object]) -> None:
        """The answers to what :meth:`queue` added, in order."""
        self.done = True
        self._keeper._released(self.releases, answers)

    def lost(self, error: BaseException) -> None:
        """The round trip failed: the locks expire by themselves, their bookkeeping is lost."""
        self.done = True
        self._keeper._released(self.releases, None, error)


# Takes a lock in place of LockKeeper's own SET NX: (key, token, expiry in ms, releases to
# carry in the same round trip, if any).
Take = Callable[[str, str, int, Carried | None], None]


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

    One thread per process renews the locks held. A holder may leave its release to the
    process (``hold(..., release_later=True)``) and go on at once instead of waiting for
    Redis: the next lock the process takes carries it in its own round trip, ahead of its
    own command; one no taking carries within :data:`CARRY_WAIT_SECONDS` the thread sends,
    all that are waiting in one round trip. A worker delivering one notification after
    another so spends one round trip per delivery on its lock instead of two.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl: float = LOCK_TTL_SECONDS,
        renew_every: float = RENEW_EVERY_SECONDS,
        carry_wait: float = CARRY_WAIT_SECONDS,
    ) -> None:
        self._redis = client
        self._carry_wait = carry_wait
        # EVALSHA: the scripts' text is sent once, not with every release.
        self._release_with = client.register_script(_RELEASE_WITH)
        self._renew = client.register_script(_RENEW)
        self._ttl_ms = int(ttl * 1000)
        self._renew_every = renew_every
        self._held: dict[str, str] = {}
        # Releases left to the thread: (key, token, commands), and how many were ever left
        # and sent (flush() waits for the second to reach the first); when the thread sends
        # those waiting unless a taking carries them first, and whether flush() asked it to
        # send them now.
        self._releases: list[tuple[str, str, Commands]] = []
        self._left = 0
        self._sent = 0
        self._send_at = 0.0
        self._hurry = False
        # When the thread wakes next, while it waits (0 while it is awake): a release left
        # meanwhile wakes it only when it would otherwise sleep past the release's moment.
        self._wake_at = 0.0
        self._mutex = threading.Lock()
        # What the thread waits on (releases left, a flush), and what flush() waits on
        # (releases sent): apart, so that a release sent does not wake the thread.
        self._changed = threading.Condition(self._mutex)
        self._sent_more = threading.Condition(self._mutex)
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def hold(self, name: str, *, take: Take | None = None, release_later: bool = False) -> Iterator[Held]:
        """Hold ``chatops:lock:<name>`` for the block; :class:`Busy` when it is taken.

        ``take(key, token, ttl_ms, carried)``, if given, takes the lock in place of a plain
        ``SET NX`` (say, together with what must be taken with it in the same round trip),
        sending the releases ``carried`` (a :class:`Carried`, or None) in that round trip
        too; it returns once the lock is set to ``token`` and raises (:class:`Busy` or its
        own exception) having taken nothing otherwise.

        ``release_later``: the release (with what :meth:`Held.also` added) is left to this
        process: the next lock it takes carries it, else the lock thread sends it within
        :data:`CARRY_WAIT_SECONDS` (:meth:`flush` sends it at once), so the block's end
        waits for no round trip. For a lock whose holder has nothing left to guard once the
        block ends (a delivery recorded as posted): another copy may find it held a little
        longer. A process killed before it was sent leaves the lock to expire
        (:data:`LOCK_TTL_SECONDS`), and its bookkeeping is lost.
        """
        key = f"chatops:lock:{name}"
        token = uuid.uuid4().hex
        carried = self._carry()
        try:
            if take is not None:
                take(key, token, self._ttl_ms, carried)
            elif not self._set_carrying(key, token, carried):
                remaining_ms = self._redis.pttl(key)
                raise Busy(key, retry_in(remaining_ms))
        finally:
            if carried is not None and not carried.done:
                # The taking did not send them (it failed before its round trip): the
                # thread sends them.
                self._leave(carried.releases)
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
                    self._left += 1
            if release_later:
                self._leave([(key, token, recorded)])
            else:
                self._let_go([(key, token, recorded)])

    def flush(self, timeout: float = 5.0) -> bool:
        """Send every release left so far, and wait until they have been sent (at most
        ``timeout`` seconds); False if some were not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            goal = self._left
            self._hurry = True
            self._changed.notify_all()
            while self._sent < goal:
                left = deadline - time.monotonic()
                if left <= 0 or not self._running():
                    return False
                self._sent_more.wait(left)
            if not self._releases:
                # All sent (some carried by takings): a release left later waits its turn
                # to be carried again.
                self._hurry = False
        return True

    def _leave(self, releases: list[tuple[str, str, Commands]]) -> None:
        """Leave ``releases`` to be carried by the next taking, or sent by the thread."""
        with self._changed:
            if not self._releases:
                self._send_at = time.monotonic() + self._carry_wait
                if self._send_at < self._wake_at:
                    self._changed.notify_all()
            self._releases.extend(releases)

    def _carry(self) -> Carried | None:
        """The releases waiting to be sent, for a taking to carry (None when there are none)."""
        with self._mutex:
            if not self._releases or self._pid != os.getpid():
                return None
            releases, self._releases = self._releases, []
        return Carried(self, releases)

    def _set_carrying(self, key: str, token: str, carried: Carried | None) -> bool:
        """``SET key token NX`` with the lock's expiry, after the releases ``carried`` in the
        same round trip; whether the lock was set."""
        if carried is None:
            return bool(self._redis.set(key, token, nx=True, px=self._ttl_ms))
        taken = send_carrying(
            self._redis, carried, lambda batch: batch.add("SET", key, token, "PX", self._ttl_ms, "NX")
        )
        if isinstance(taken, Exception):
            raise taken
        return bool(taken)

    def _queue_releases(self, batch: Batch, releases: list[tuple[str, str, Commands]]) -> None:
        for key, token, recorded in releases:
            # EVALSHA itself: a Script object would cost a SCRIPT EXISTS round trip every time.
            batch.evalsha(
                self._release_with.sha, 1 + len(recorded.keys), key, *recorded.keys, token, *recorded.args
            )

    def _released(
        self,
        releases: list[tuple[str, str, Commands]],
        answers: list[object] | None,
        error: BaseException | None = None,
    ) -> None:
        """Check the answers to releases left to the process (None: their round trip failed
        with ``error``), and count them as sent."""
        try:
            if answers is None:
                log.warning("could not release %s (they expire by themselves): %s", _keys(releases), error)
            else:
                self._check(releases, answers)
        finally:
            with self._mutex:
                self._sent += len(releases)
                self._sent_more.notify_all()

    def _let_go(self, releases: list[tuple[str, str, Commands]]) -> None:
        """Release each lock (only if still ours: it may have expired and been taken by
        another) with the commands that go with it, in one round trip."""
        try:
            batch = Batch()
            self._queue_releases(batch, releases)
            answers = batch.send(self._redis)
        except redis.RedisError as exc:
            log.warning("could not release %s (they expire by themselves): %s", _keys(releases), exc)
            return
        self._check(releases, answers)

    def _check(self, releases: list[tuple[str, str, Commands]], answers: list[object]) -> None:
        for (key, token, recorded), answer in zip(releases, answers, strict=True):
            if isinstance(answer, redis.exceptions.NoScriptError):
                # Not loaded on this server yet (or flushed): the Script loads it and releases.
                try:
                    answer = self._release_with(keys=[key, *recorded.keys], args=[token, *recorded.args])
                except redis.RedisError as exc:
                    answer = exc
            if isinstance(answer, Exception):
                log.warning("could not release %s (it expires by itself): %s", key, answer)
            elif isinstance(answer, list) and answer[1]:
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
                self._hurry, self._wake_at = False, 0.0
                self._thread = threading.Thread(target=self._run, name="chatops-locks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        renew_at = time.monotonic() + self._renew_every
        while True:
            with self._changed:
                while True:
                    now = time.monotonic()
                    due = self._releases and (self._hurry or now >= self._send_at)
                    if due or now >= renew_at:
                        break
                    self._wake_at = min(renew_at, self._send_at) if self._releases else renew_at
                    self._changed.wait(self._wake_at - now)
                    self._wake_at = 0.0
                releases, self._releases = (self._releases, []) if due else ([], self._releases)
                if not self._releases:
                    self._hurry = False
            if releases:
                try:
                    self._let_go(releases)
                except Exception:  # the thread must go on renewing whatever happened here
                    log.exception("could not release %s (they expire by themselves)", _keys(releases))
                with self._mutex:
                    self._sent += len(releases)
                    self._sent_more.notify_all()
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
