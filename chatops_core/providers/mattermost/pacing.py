"""How fast the bot posts to Mattermost.

Mattermost's own limiter (``RateLimitSettings``, off by default, 10 requests a second with
bursts of 100 when on) counts requests per session, that is per bot token, not per
channel (https://docs.mattermost.com/configure/rate-limiting-configuration-settings.html).
Posts into one channel keep to about one a second, as on other platforms, so a burst of
notifications reads as a sequence and a proxy's per-channel limit is met; card updates
share one key for the whole instance, at a pace well inside the server's default.
A 429 still holds the channel off for the server's ``X-Ratelimit-Reset``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatops_core.pacing import PacingPolicy


@dataclass(frozen=True)
class MattermostPacing(PacingPolicy):
    """About one post a second per channel; updates paced per instance (one bot session)."""

    post_interval: float = 1.05
    update_interval: float = 0.25
    post_gap: float = 1.02

    def update_key(self, instance: str, channel: str) -> str:
        return f"{instance}:update"


PACING = MattermostPacing()
