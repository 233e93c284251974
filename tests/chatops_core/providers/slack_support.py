"""What the Slack provider tests share: settings, a provider with short retry pauses, and the
recorded request bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.config import SlackSettings
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
