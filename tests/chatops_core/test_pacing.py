"""The shared pacer on a real Redis: slots handed out ahead, sends spaced as they happen."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from chatops_core.pacing import Pacer


def test_slots_are_handed_out_an_interval_apart(redis_client: redis.Redis) -> None:
    pacer = Pacer(redis_client)
    waits = [pacer.reserve("slack:post:C1", 1.0) for _ in range(4)]
    assert waits[0] == 0.0
    for earlier, later in zip(waits, waits[1:], strict=False):
        assert later - earlier == pytest.approx(1.0, abs=0.05)
    # Another channel has its own slots.
    assert pacer.reserve("slack:post:C2", 1.0) == 0.0


def test_slots_taken_at_once_by_many_workers_never_coincide(redis_client: redis.Redis) -> None:
    pacer = Pacer(redis_client)
    with ThreadPoolExecutor(8) as pool:
        waits = sorted(pool.map(lambda _: pacer.reserve("slack:post:C1", 0.5), range(16)))
    gaps = [b - a for a, b in zip(waits, waits[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.5, abs=0.05)


def test_a_hold_off_pushes_back_the_next_slot_and_send(redis_client: redis.Redis) -> None:
    pacer = Pacer(redis_client)
    pacer.hold_off("slack:post:C1", 30)
    assert pacer.reserve("slack:post:C1", 1.0) == pytest.approx(30, abs=0.5)
    assert pacer.spaced("slack:post:C1", 1.0) == pytest.approx(30, abs=0.5)
    # A shorter hold-off never shortens a longer one.
    pacer.hold_off("slack:post:C1", 2)
    assert pacer.spaced("slack:post:C1", 1.0) == pytest.approx(30, abs=0.5)


def test_sends_are_spaced_whatever_moment_their_tasks_run(redis_client: redis.Redis) -> None:
    pacer = Pacer(redis_client)
    # Tasks that come back all at once (a dead worker's): one goes, each other is told how
    # long to wait.
    waits = [pacer.spaced("slack:post:C1", 1.0) for _ in range(3)]
    assert waits[0] == 0.0
    assert all(0.9 < wait <= 1.0 for wait in waits[1:]), waits
    assert pacer.spaced("slack:post:C2", 1.0) == 0.0
