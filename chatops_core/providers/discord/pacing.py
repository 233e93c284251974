"""How fast the bot posts to Discord.

Discord's per-route limits are learnt from its headers, not documented as numbers; posting
into one channel holds to about five messages in five seconds, and a bot may make about 50
requests a second in all (https://discord.com/developers/docs/topics/rate-limits). Posts
into one channel keep to about one a second, shared by every worker through the pacer, so a
burst of notifications reads as a sequence and stays well inside the channel's bucket; card
edits (their own route) keep to the same pace per channel. The client adds the
bucket headers and the global limit within each process (:mod:`.client`).
"""

from __future__ import annotations

from dataclasses import dataclass

from chatops_core.pacing import PacingPolicy


@dataclass(frozen=True)
class DiscordPacing(PacingPolicy):
    """About one post a second per channel; card edits paced per channel too."""

    post_interval: float = 1.05
    update_interval: float = 1.05
    post_gap: float = 1.02


PACING = DiscordPacing()
