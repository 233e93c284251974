"""A worker runtime on the real store (SQLite) and the real Slack provider, whose slack_sdk
talks to the local server that plays Slack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.settings import Settings
from tests.fakes.slack_server import FakeSlack
from workers.runtime import Runtime


class NoWait:
    """No pause between slack_sdk's own retries of a 5xx, so the tests stay fast."""

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return 0.0


def slack_runtime(tmp_path: Path, slack: FakeSlack, *, broker_url: str | None = None, **keys: Any) -> Runtime:
    """A runtime with one Slack instance ``slack``; ``keys`` are its settings beyond the
    token, signing secret and API URL (``create_incident_channels``, ``timeout``...)."""
    settings = Settings(
        data_dir=tmp_path,
        broker_url=broker_url,
        providers={
            "slack": SlackSettings(bot_token=slack.token, signing_secret="s", api_url=slack.api_url, **keys)
        },
    )
    runtime = Runtime(settings)
    runtime.store.upgrade()
    runtime.providers["slack"] = SlackProvider("slack", settings.providers["slack"], retry_interval=NoWait())
    return runtime
