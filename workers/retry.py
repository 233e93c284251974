"""How long a task waits before its next attempt."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import kombu.exceptions
import redis
import sqlalchemy.exc

from chatops_core.errors import RateLimited, Retryable, Unavailable

BASE_SECONDS = 1.0
# The longest countdown of a retry. A worker holds a task with a countdown unacknowledged
# until it is due, and the broker hands a task held longer than its visibility timeout
# (Settings.visibility_timeout_seconds, 300 s by default) to another worker as well: every
# countdown stays below it, with a margin for the task's own run.
CAP_SECONDS = 180.0


def countdown(error: Retryable, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before retry ``attempt`` (0-based), at most :data:`CAP_SECONDS`.

    A rate limit waits what the platform asked (a longer wait is cut to the cap; the
    attempt then finds the limit again and waits once more). Anything else backs off
    exponentially with full jitter, capped, so retries of many tasks do not align.
    """
    if isinstance(error, RateLimited):
        return min(CAP_SECONDS, max(0.0, error.retry_after))
    ceiling = min(CAP_SECONDS, BASE_SECONDS * (2**attempt))
    return (rng or random).uniform(ceiling / 2, ceiling)


# Our own database, Redis or broker out of reach: worth another attempt, like a 5xx.
_UNAVAILABLE = (
    redis.RedisError,
    kombu.exceptions.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)
_MAX_DETAIL = 300


@contextmanager
def unavailable_is_retryable() -> Iterator[None]:
    """Turn our own infrastructure's transient errors into :class:`Unavailable`."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise Unavailable(describe(exc)) from exc


def describe(exc: BaseException) -> str:
    """``Type: message``, on one line and short (a statement's text is cut off)."""
    text = " ".join(str(exc).split())
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
