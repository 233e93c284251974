"""Fixtures of the Slack provider tests: the local Slack and providers on it (or on nothing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatops_core.providers.slack import SlackProvider
from tests.chatops_core.providers.slack_support import make_provider, make_settings
from tests.fakes.slack_server import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def provider(fake: FakeSlack) -> SlackProvider:
    return make_provider(make_settings(fake))


@pytest.fixture
def offline() -> SlackProvider:
    """A provider for the ingress side, which never talks to Slack."""
    return make_provider(make_settings())
