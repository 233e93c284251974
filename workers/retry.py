"""How long a task waits before its next attempt."""

from __future__ import annotations

import random

from chatops_core.errors import RateLimited, Retryable

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
