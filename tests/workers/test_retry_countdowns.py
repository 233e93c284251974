"""Every countdown a task waits stays below the visibility timeout, which is minutes, not an hour."""

from __future__ import annotations

import random

from chatops_core.errors import RateLimited, Retryable
from chatops_core.settings import Settings
from workers.retry import countdown

# What a worker needs on top of a countdown: the task's own run.
MARGIN_SECONDS = 60


def test_a_dead_workers_tasks_come_back_within_minutes() -> None:
    assert Settings.model_fields["visibility_timeout_seconds"].default <= 600


def test_no_countdown_outlasts_the_visibility_timeout() -> None:
    held_at_most = Settings.model_fields["visibility_timeout_seconds"].default - MARGIN_SECONDS
    rng = random.Random(7)
    assert max(countdown(Retryable(), attempt, rng) for attempt in range(30)) <= held_at_most
    # A platform that asks for an hour is asked again sooner, not run twice by two workers.
    assert countdown(RateLimited(retry_after=3600), attempt=0) <= held_at_most
    assert countdown(RateLimited(retry_after=7), attempt=0) == 7
