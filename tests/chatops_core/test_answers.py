"""The hand-over of in-response answers between a worker and the ingress, on a real Redis."""

from __future__ import annotations

import threading

import redis

from chatops_core.answers import AnswerExchange


def test_an_answer_handed_over_before_the_wait_is_taken(redis_url: str, redis_client: redis.Redis) -> None:
    exchange = AnswerExchange(redis_url)
    assert exchange.hand_over("k1", b"hello", "text/plain")
    assert exchange.await_answer("k1", 1.0) == (b"hello", "text/plain")
    # Taken once: nothing left for the key, and no second answer goes the same way.
    assert redis_client.keys("chatops:answer:k1:body") == []
    assert not exchange.hand_over("k1", b"again", "text/plain")


def test_an_answer_during_the_wait_ends_it(redis_url: str, redis_client: redis.Redis) -> None:
    exchange = AnswerExchange(redis_url)
    timer = threading.Timer(0.1, exchange.hand_over, args=("k2", b'{"a":1}', "application/json"))
    timer.start()
    assert exchange.await_answer("k2", 3.0) == (b'{"a":1}', "application/json")
    timer.join()


def test_after_giving_up_the_worker_is_told_to_post(redis_url: str, redis_client: redis.Redis) -> None:
    exchange = AnswerExchange(redis_url)
    assert exchange.await_answer("k3", 0.05) is None
    assert not exchange.hand_over("k3", b"late", "text/plain")


def test_an_answer_between_the_time_out_and_giving_up_is_not_lost(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # The worker hands over just after BLPOP timed out: giving up finds the answer and
    # sends it, instead of marking the key late while an answer sits unread.
    exchange = AnswerExchange(redis_url)
    assert exchange.hand_over("k4", b"just in time", "text/plain")
    assert exchange.give_up("k4") == (b"just in time", "text/plain")


def test_keys_expire(redis_url: str, redis_client: redis.Redis) -> None:
    exchange = AnswerExchange(redis_url, ttl=30)
    exchange.hand_over("k5", b"x", "text/plain")
    assert 0 < redis_client.ttl("chatops:answer:k5:state") <= 30
    assert 0 < redis_client.ttl("chatops:answer:k5:body") <= 30


def test_a_redis_that_does_not_answer_counts_as_late() -> None:
    exchange = AnswerExchange("redis://127.0.0.1:9/0", max_wait=0.2)
    assert exchange.await_answer("k6", 0.1) is None
