"""What the Slack provider tests share: settings, a provider with short retry pauses, the
recorded request bodies, and what a post of an announcement carries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from chatops_core.cards import IncidentCard
from chatops_core.notifications import Announcement
from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.render import card_blocks, card_text
from tests.fakes.slack_server import FakeSlack

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "slack"
SECRET = "test-signing-secret-0123456789"
FORM = "application/x-www-form-urlencoded"
JSON_CT = "application/json"


def make_settings(fake: FakeSlack | None = None, **overrides: Any) -> SlackSettings:
    values: dict[str, Any] = {
        "bot_token": fake.token if fake else "xoxb-unused",
        "signing_secret": SECRET,
        "api_url": fake.api_url if fake else "http://127.0.0.1:9/api/",
        "timeout": 2.0,
    }
    values.update(overrides)
    return SlackSettings(**values)


def make_provider(settings: SlackSettings, name: str = "acme") -> SlackProvider:
    # Short pauses between the client's retries keep the tests fast.
    return SlackProvider(name, settings, retry_interval=FixedValueRetryIntervalCalculator(0.01))


def announcement_blocks(
    announcement: Announcement, *, now: datetime | None = None, instance: str | None = None
) -> list[dict[str, Any]]:
    """The blocks a post of ``announcement`` carries: its card's."""
    return card_blocks(IncidentCard.of(announcement), now=now, instance=instance)


def announcement_text(announcement: Announcement) -> str:
    """The fallback text a post of ``announcement`` carries: its card's."""
    return card_text(IncidentCard.of(announcement))
