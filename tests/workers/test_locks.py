"""Delivery locks on a real Redis: kept while the holder lives, lost soon after it dies."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid

import pytest
import redis

from tests.fakes.slack_server import wait_for
from workers import locks
from workers.locks import Busy, LockKeeper


def test_a_held_lock_refuses_a_second_holder_and_says_when_it_lapses(redis_client: redis.Redis) -> None:
    first = LockKeeper(redis_client, ttl=5.0)
    second = LockKeeper(redis_client, ttl=5.0)
    with first.hold("d1"):
        with pytest.raises(Busy) as busy, second.hold("d1"):
            pass
        assert 0 < busy.value.retry_in <= 5.0
        # Another name is another lock.
        with second.hold("d2"):
            pass
    with second.hold("d1"):
        assert second.held() == ["chatops:lock:d1"]
    assert second.held() == []
    assert redis_client.exists("chatops:lock:d1") == 0


def test_a_live_holder_keeps_its_lock_past_the_expiry(redis_client: redis.Redis) -> None:
    keeper = LockKeeper(redis_client, ttl=0.3, renew_every=0.05)
    other = LockKeeper(redis_client, ttl=0.3)
    with keeper.hold("slow"):
        # Work that outlasts three expiries: the lock is still ours.
        time.sleep(0.9)
        with pytest.raises(Busy), other.hold("slow"):
            pass
    with other.hold("slow"):
        pass


def test_releasing_never_frees_a_lock_taken_over_by_another(redis_client: redis.Redis) -> None:
    keeper = LockKeeper(redis_client, ttl=5.0)
    with keeper.hold("x"):
        # The lock lapsed (say, the holder stalled) and another copy took it.
        redis_client.set("chatops:lock:x", "someone-else", px=5000)
    assert redis_client.get("chatops:lock:x") == b"someone-else"


def _hold_forever(url: str, ready: multiprocessing.synchronize.Event) -> None:
    keeper = LockKeeper(redis.Redis.from_url(url), ttl=1.0, renew_every=0.2)
    with keeper.hold("crash"):
        ready.set()
        threading.Event().wait(60)


def test_a_holder_killed_with_sigkill_loses_the_lock_within_its_expiry(
    redis_url: str, redis_client: redis.Redis
) -> None:
    ready = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_forever, args=(redis_url, ready))
    holder.start()
    try:
        assert ready.wait(10)
        other = LockKeeper(redis_client, ttl=1.0)
        with pytest.raises(Busy), other.hold("crash"):
            pass
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(5)

        def free() -> bool:
            try:
                with other.hold("crash"):
                    return True
            except Busy:
                return False

        wait_for(free, timeout=3, message="the dead holder's lock never lapsed")
    finally:
        if holder.is_alive():
            holder.kill()


def test_commands_queued_on_a_held_lock_go_out_with_its_release(redis_client: redis.Redis) -> None:
    keeper = LockKeeper(redis_client, ttl=5.0)
    with keeper.hold("c") as held:
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
        # Not sent before the lock is let go.
        assert redis_client.hget("counts", "delivered") is None
    assert redis_client.hget("counts", "delivered") == b"1"
    assert redis_client.exists("chatops:lock:c") == 0


def test_a_failing_command_sent_with_the_release_still_releases(redis_client: redis.Redis) -> None:
    redis_client.set("not-a-hash", "x")
    keeper = LockKeeper(redis_client, ttl=5.0)
    with keeper.hold("f") as held:
        held.also(lambda pipe: pipe.hincrby("not-a-hash", "delivered", 1))
        # One failing command does not keep the others from being applied.
        held.also(lambda pipe: pipe.hset("health", mapping={"last_success": "1.5", "failures": 0}))
    assert redis_client.exists("chatops:lock:f") == 0
    assert redis_client.hgetall("health") == {b"last_success": b"1.5", b"failures": b"0"}
    # A lock another copy took over is not freed, with or without commands beside the release.
    with keeper.hold("g") as held:
        redis_client.set("chatops:lock:g", "someone-else", px=5000)
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
    assert redis_client.get("chatops:lock:g") == b"someone-else"
    assert redis_client.hget("counts", "delivered") == b"1"


def test_a_release_with_commands_loads_its_script_where_the_server_lacks_it(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script text this server has never run (as after its restart): the release loads it.
    monkeypatch.setattr(locks, "_RELEASE_WITH", f"{locks._RELEASE_WITH} -- {uuid.uuid4().hex}")
    keeper = LockKeeper(redis_client, ttl=5.0)
    with keeper.hold("n") as held:
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
    assert redis_client.exists("chatops:lock:n") == 0
    assert redis_client.hget("counts", "delivered") == b"1"


def test_a_release_left_to_the_lock_thread_goes_out_without_the_holder_waiting(
    redis_client: redis.Redis,
) -> None:
    keeper = LockKeeper(redis_client, ttl=5.0)
    with keeper.hold("later", release_later=True) as held:
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
    # No longer held by this process (nor renewed); its release and count go out from the
    # lock thread: flush() waits for them.
    assert keeper.held() == []
    assert keeper.flush(timeout=10)
    assert redis_client.exists("chatops:lock:later") == 0
    assert redis_client.hget("counts", "delivered") == b"1"
    # Several left at once all go out, each lock released only if still ours.
    for name in ("a", "b", "c"):
        with keeper.hold(name, release_later=True) as held:
            if name == "b":
                redis_client.set("chatops:lock:b", "someone-else", px=5000)
            held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
    assert keeper.flush(timeout=10)
    assert redis_client.get("chatops:lock:b") == b"someone-else"
    assert not redis_client.exists("chatops:lock:a") and not redis_client.exists("chatops:lock:c")
    assert redis_client.hget("counts", "delivered") == b"4"


def test_a_worker_process_that_ends_sends_the_releases_it_left(
    redis_client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pool process ends (Celery's worker_process_shutdown) right after a delivery: the
    # worker's app has it wait for what its lock thread has not sent yet.
    from celery.signals import worker_process_shutdown

    from chatops_core.settings import Settings
    from workers.celery_app import make_celery
    from workers.runtime import Runtime

    runtime = Runtime(Settings(broker_url=redis_url))
    keeper = LockKeeper(redis_client, ttl=5.0)
    runtime.__dict__["locks"] = keeper
    flushed: list[bool] = []
    flush = keeper.flush
    monkeypatch.setattr(keeper, "flush", lambda timeout=5.0: flushed.append(flush(timeout)) or flushed[-1])
    make_celery(runtime.settings, runtime)  # connects the worker's shutdown signals
    with keeper.hold("ending", release_later=True) as held:
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
    worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    assert flushed == [True]
    assert redis_client.hget("counts", "delivered") == b"1"
    assert redis_client.exists("chatops:lock:ending") == 0


def test_the_lock_thread_goes_on_after_a_release_it_could_not_send(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    keeper = LockKeeper(redis_client, ttl=5.0)
    let_go = keeper._let_go
    broken = [True]

    def failing_once(releases: list[tuple[str, str, locks.Commands]]) -> None:
        if broken.pop() if broken else False:
            raise RuntimeError("a bug in the bookkeeping")
        let_go(releases)

    monkeypatch.setattr(keeper, "_let_go", failing_once)
    with keeper.hold("first", release_later=True):
        pass
    assert keeper.flush(timeout=10)  # counted as handled: it expires by itself
    # The thread is still there: the next release goes out.
    with keeper.hold("second", release_later=True) as held:
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
    assert keeper.flush(timeout=10)
    assert redis_client.exists("chatops:lock:second") == 0
    assert redis_client.hget("counts", "delivered") == b"1"


def test_the_next_lock_taken_carries_the_release_left_before_it(
    redis_client: redis.Redis, round_trips: list[int]
) -> None:
    # The thread would wait far longer than this test: what releases the first lock is the
    # second one's taking.
    keeper = LockKeeper(redis_client, ttl=5.0, carry_wait=60.0)
    with keeper.hold("first", release_later=True) as held:
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
    assert redis_client.exists("chatops:lock:first") == 1
    round_trips.clear()
    with keeper.hold("second", release_later=True):
        # One round trip took this lock and released the first, with its count.
        assert len(round_trips) == 1
        assert redis_client.exists("chatops:lock:first") == 0
        assert redis_client.hget("counts", "delivered") == b"1"
    assert keeper.flush(timeout=10)
    assert redis_client.exists("chatops:lock:second") == 0


def test_a_release_no_taking_carries_goes_out_by_itself(redis_client: redis.Redis) -> None:
    keeper = LockKeeper(redis_client, ttl=5.0, renew_every=60.0, carry_wait=0.05)
    with keeper.hold("first", release_later=True):
        pass
    assert keeper.flush(timeout=10)
    # The thread is asleep until its next renewal, a minute away: it wakes for the release.
    wait_for(lambda: keeper._wake_at > 0, timeout=5)
    with keeper.hold("alone", release_later=True) as held:
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))
    # Nothing else is taken and nobody flushes: the lock thread sends it after the wait.
    wait_for(lambda: redis_client.exists("chatops:lock:alone") == 0, timeout=5)
    assert redis_client.hget("counts", "delivered") == b"1"


def test_a_taking_that_fails_before_its_round_trip_leaves_the_carried_releases_to_the_thread(
    redis_client: redis.Redis,
) -> None:
    keeper = LockKeeper(redis_client, ttl=5.0, carry_wait=60.0)
    with keeper.hold("posted", release_later=True) as held:
        held.also(lambda pipe: pipe.hincrby("counts", "delivered", 1))

    def broken(key: str, token: str, ttl_ms: int, carried: locks.Carried | None) -> None:
        raise RuntimeError("a bug before any round trip")

    with pytest.raises(RuntimeError), keeper.hold("next", take=broken):
        pass
    assert redis_client.exists("chatops:lock:posted") == 1
    assert keeper.flush(timeout=10)
    assert redis_client.exists("chatops:lock:posted") == 0
    assert redis_client.hget("counts", "delivered") == b"1"


def test_a_flush_with_nothing_left_does_not_hurry_the_next_release(redis_client: redis.Redis) -> None:
    # The thread wakes every 50 ms (renewals), and would send a release at once only when a
    # flush asked it to: one that found nothing to send asks nothing of the next release.
    keeper = LockKeeper(redis_client, ttl=5.0, renew_every=0.05, carry_wait=60.0)
    with keeper.hold("warm", release_later=True):
        pass
    assert keeper.flush(timeout=10)
    assert keeper.flush(timeout=10)  # nothing left
    with keeper.hold("next", release_later=True):
        pass
    # Left for the next taking to carry, not sent alone by the thread on its next wake.
    with pytest.raises(TimeoutError):
        wait_for(lambda: redis_client.exists("chatops:lock:next") == 0, timeout=0.3)
    with keeper.hold("after"):
        # The taking carried it.
        assert redis_client.exists("chatops:lock:next") == 0
