"""How fast the service posts to Microsoft Teams.

An incoming webhook URL takes at most 4 posts a second and 60 in 30 seconds (then 100 an
hour, 150 in two hours, 1800 a day), counted in fixed windows per URL
(https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#rate-limiting-for-connectors).
One post every 0.51 s keeps both short windows: at most two a second, at most 59 in any 30
seconds, shared by every worker through the pacer. The Bot Connector limits a bot per
conversation thread too, with values Microsoft does not promise
(https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit); the same
pace keeps a bot channel well inside what is observed.

On a webhook channel a card "update" is a new post to the same URL, and on a bot channel an
edit counts against the same conversation, so updates share the posts' key: the limit is the
URL's (or the conversation's), whatever is sent. Keys carry the instance and the channel
**alias**, never the webhook URL (a secret).
"""

from __future__ import annotations

from dataclasses import dataclass

from chatops_core.pacing import PacingPolicy

# Seconds between two posts to one webhook URL: 60 per 30 s and 4 per second, with margin.
WEBHOOK_INTERVAL = 0.51


@dataclass(frozen=True)
class TeamsPacing(PacingPolicy):
    """One send every 0.51 s per channel alias, posts and updates sharing the slots."""

    post_interval: float = WEBHOOK_INTERVAL
    update_interval: float = WEBHOOK_INTERVAL
    post_gap: float = 0.5

    def update_key(self, instance: str, channel: str) -> str:
        return self.post_key(instance, channel)


PACING = TeamsPacing()
