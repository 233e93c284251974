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
CAP_SECONDS = 300.0


def countdown(error: Retryable, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before retry ``attempt`` (0-based).

    A rate limit waits exactly what the platform asked. Anything else backs off
    exponentially with full jitter, capped, so retries of many tasks do not align.
    """
    if isinstance(error, RateLimited):
        return max(0.0, error.retry_after)
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
