"""The shared pacer on a real Redis: slots handed out ahead, sends spaced as they happen."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry

from chatops_core import pacing
from chatops_core.pacing import Batch, Pacer
from chatops_core.stack import free_port


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


def test_the_lock_and_the_pacing_are_taken_together_or_not_at_all(redis_client: redis.Redis) -> None:
    pacer = Pacer(redis_client)
    lock = "chatops:lock:d1"
    # Free lock, slot now, gap kept: the lock is ours (token, expiry) and the slot and the
    # send are counted, as reserve() and spaced() would count them.
    gate = pacer.lock_and_pace(
        lock, "me", 5000, slot=("s:post:C1", 1.0), tolerance=0.05, gap=("s:post:C1", 1.0)
    )
    assert gate.taken
    assert redis_client.get(lock) == b"me"
    assert 0 < redis_client.pttl(lock) <= 5000
    assert pacer.reserve("s:post:C1", 1.0) == pytest.approx(1.0, abs=0.05)
    assert pacer.spaced("s:post:C1", 1.0) == pytest.approx(1.0, abs=0.05)

    # A held lock: nothing is taken, and the holder's expiry comes back.
    before = redis_client.get("chatops:pace:s:post:C2")
    gate = pacer.lock_and_pace(lock, "other", 5000, slot=("s:post:C2", 1.0), gap=("s:post:C2", 1.0))
    assert not gate.taken and gate.busy_ms is not None and 0 < gate.busy_ms <= 5000
    assert redis_client.get(lock) == b"me"
    assert redis_client.get("chatops:pace:s:post:C2") == before is None
    assert redis_client.get("chatops:pace:sent:s:post:C2") is None


def test_a_slot_in_the_future_is_kept_for_the_retry_and_the_lock_stays_free(
    redis_client: redis.Redis,
) -> None:
    pacer = Pacer(redis_client)
    lock = "chatops:lock:d2"
    assert pacer.reserve("s:post:C1", 2.0) == 0.0
    gate = pacer.lock_and_pace(
        lock, "me", 5000, slot=("s:post:C1", 2.0), tolerance=0.05, gap=("s:post:C1", 1.0)
    )
    assert not gate.taken and gate.busy_ms is None
    assert gate.wait == pytest.approx(2.0, abs=0.05)
    assert redis_client.exists(lock) == 0
    # That slot is taken (the next is two intervals away); the send was not counted.
    assert pacer.reserve("s:post:C1", 2.0) == pytest.approx(4.0, abs=0.05)
    assert pacer.spaced("s:post:C1", 1.0) == 0.0
    # The retry at its slot passes no slot: only the gap is checked, and it says wait.
    gate = pacer.lock_and_pace(lock, "me", 5000, gap=("s:post:C1", 1.0))
    assert not gate.taken and gate.wait == pytest.approx(1.0, abs=0.05)
    assert redis_client.exists(lock) == 0
    # A wait within the tolerance counts as now.
    pacer.hold_off("s:update:C1", 0.02)
    assert pacer.lock_and_pace(lock, "me", 5000, slot=("s:update:C1", 1.0), tolerance=0.05).taken


def test_a_hold_off_keeps_the_lock_and_pace_from_sending(redis_client: redis.Redis) -> None:
    pacer = Pacer(redis_client)
    pacer.hold_off("s:post:C1", 30)
    gate = pacer.lock_and_pace("chatops:lock:d3", "me", 5000, gap=("s:post:C1", 1.0))
    assert not gate.taken and gate.wait == pytest.approx(30, abs=0.5)


class _Counted:
    """Commands carried ahead of a lock and pace: one INCR, whose answer is kept."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.answers: list[object] | None = None
        self.error: BaseException | None = None

    def queue(self, batch: Batch) -> int:
        batch.add("INCR", self.key)
        return 1

    def settle(self, answers: list[object]) -> None:
        self.answers = answers

    def lost(self, error: BaseException) -> None:
        self.error = error


def test_commands_carried_with_a_lock_and_pace_run_in_its_round_trip(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    pacer = Pacer(redis_client)
    carried = _Counted("carried")
    gate = pacer.lock_and_pace("chatops:lock:d4", "me", 5000, slot=("s:post:C4", 1.0), carried=carried)
    assert gate.taken and redis_client.get("chatops:lock:d4") == b"me"
    assert carried.answers == [1] and carried.error is None
    # They run whatever the lock and pace finds (here the lock is held), and a server that
    # lacks the script (as after its restart: a text it has never run) gets it.
    monkeypatch.setattr(pacing, "_LOCK_AND_PACE", f"{pacing._LOCK_AND_PACE} -- {uuid.uuid4().hex}")
    pacer = Pacer(redis_client)
    carried = _Counted("carried")
    gate = pacer.lock_and_pace("chatops:lock:d4", "other", 5000, carried=carried)
    assert gate.busy_ms is not None and 0 < gate.busy_ms <= 5000
    assert carried.answers == [2]


def test_a_batch_answers_each_command_in_order_with_an_error_in_its_place(redis_client: redis.Redis) -> None:
    redis_client.set("text", "x")
    batch = Batch()
    batch.add("SET", "lock", "me", "PX", 5000, "NX")
    batch.add("INCR", "text")  # not a number: Redis refuses this one alone
    batch.add("SET", "lock", "other", "PX", 5000, "NX")
    batch.add("INCRBYFLOAT", "counter", 1.5)
    answers = batch.send(redis_client)
    assert answers[0] == b"OK"
    assert isinstance(answers[1], redis.ResponseError) and "not an integer" in str(answers[1])
    assert answers[2] is None  # already held
    assert answers[3] == b"1.5"
    assert redis_client.get("lock") == b"me"


@pytest.mark.parametrize(("encoding", "stored"), [("utf-8", "é".encode()), ("latin-1", b"\xe9")])
def test_a_batch_encodes_text_as_its_client_does(redis_url: str, encoding: str, stored: bytes) -> None:
    client = redis.Redis.from_url(redis_url, encoding=encoding)
    try:
        client.delete("word")
        batch = Batch()
        batch.add("SET", "word", "é")
        assert batch.send(client) == [b"OK"]
        assert client.get("word") == stored
    finally:
        client.close()


def test_a_batch_replaces_a_connection_redis_closed(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    watcher = redis.Redis.from_url(redis_url)
    try:
        batch = Batch()
        batch.add("CLIENT", "ID")
        batch.add("PING")
        connection_id, pong = batch.send(client)
        assert pong == b"PONG"
        assert watcher.client_kill_filter(_id=str(connection_id)) == 1
        again = Batch()
        again.add("INCR", "after-kill")
        assert again.send(client) == [1]
    finally:
        client.close()
        watcher.close()


def test_a_batch_that_cannot_reach_redis_raises_a_connection_error() -> None:
    client = redis.Redis(
        port=free_port(),
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 1),
        single_connection_client=False,
    )
    batch = Batch()
    batch.add("PING")
    with pytest.raises(redis.ConnectionError):
        batch.send(client)


def test_a_batch_cut_short_leaves_no_answer_for_the_next_one(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One connection, kept (no pool to notice answers waiting on it when it is next used).
    client = redis.Redis.from_url(redis_url, single_connection_client=True)
    try:
        client.set("first", "1")
        client.delete("counted")
        original = AbstractConnection.read_response
        calls: list[int] = []

        def cut_short(self: AbstractConnection, *args: object, **kwargs: object) -> object:
            calls.append(1)
            if len(calls) == 2:
                raise SoftTimeLimitExceeded()  # a task's time limit, not a connection error
            return original(self, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "read_response", cut_short)
        batch = Batch()
        batch.add("GET", "first")
        batch.add("GET", "first")
        batch.add("GET", "first")
        with pytest.raises(SoftTimeLimitExceeded):
            batch.send(client)
        monkeypatch.undo()
        again = Batch()
        again.add("INCR", "counted")
        assert again.send(client) == [1]
    finally:
        client.close()
