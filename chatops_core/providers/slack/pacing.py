"""How fast the bot posts to and updates in Slack.

``chat.postMessage`` allows about one message a second per channel (bursts are tolerated for a
moment, then 429); ``chat.update`` is Tier 3, about 50 a minute per workspace, so card updates
share one key for the whole workspace (https://docs.slack.dev/apis/web-api/rate-limits).
Slots sit a little over a second apart, so a post that runs a few milliseconds late does not
land within a second of the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatops_core.pacing import PacingPolicy


@dataclass(frozen=True)
class SlackPacing(PacingPolicy):
    """About one post a second per channel; updates paced per workspace (one installed app)."""

    post_interval: float = 1.05
    update_interval: float = 1.2
    post_gap: float = 1.02

    def update_key(self, instance: str, channel: str) -> str:
        return f"{instance}:update"


PACING = SlackPacing()
