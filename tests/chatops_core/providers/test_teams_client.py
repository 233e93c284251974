"""The Teams client on :class:`FakeTeams` with the real httpx client: the bot's token cache,
webhook and Bot Connector failures as the error tree, and pacing per webhook."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from chatops_core.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    Permanent,
    RateLimited,
    ServerError,
)
from chatops_core.pacing import Pacer
from chatops_core.providers.teams.client import TOKEN_MARGIN_SECONDS, TeamsClient, TokenCache
from chatops_core.providers.teams.errors import WebhookRefused, WebhookRemoved
from chatops_core.providers.teams.pacing import PACING
from tests.fakes.teams_server import FakeTeams, ManualClock

MESSAGE = {"type": "message", "text": "hello"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeTeams]:
    with FakeTeams(clock=clock) as teams:
        yield teams


def _client(fake: FakeTeams, clock: ManualClock, password: str | None = None) -> TeamsClient:
    tokens = TokenCache(fake.token_url, fake.app_id, password or fake.app_password, clock=clock)
    return TeamsClient(timeout=2.0, tokens=tokens)


def _card() -> dict[str, Any]:
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "hi"}]}
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def test_the_bot_token_is_fetched_once_and_renewed_before_it_expires(
    fake: FakeTeams, clock: ManualClock
) -> None:
    client = _client(fake, clock)
    cid = fake.conversation_id("incidents")
    for _ in range(3):
        client.send_activity(fake.service_url, cid, MESSAGE)
    assert len(fake.calls("token")) == 1
    (request,) = fake.calls("token")
    assert request.json["grant_type"] == "client_credentials"
    assert request.json["scope"] == "https://api.botframework.com/.default"
    # Shortly before the hour is up, a new token is fetched rather than one about to expire.
    clock.advance(3600 - TOKEN_MARGIN_SECONDS + 1)
    client.send_activity(fake.service_url, cid, MESSAGE)
    assert len(fake.calls("token")) == 2
    assert [c.status for c in fake.calls("send_activity")] == [200] * 4
    client.close()


def test_threads_share_one_token_request(fake: FakeTeams, clock: ManualClock) -> None:
    client = _client(fake, clock)
    tokens: list[str] = []
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        tokens.append(client.token())

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert len(fake.calls("token")) == 1
    client.close()


def test_a_refused_app_password_is_permanent_and_never_echoed(fake: FakeTeams, clock: ManualClock) -> None:
    client = _client(fake, clock, password="wrong-password-value")
    with pytest.raises(AuthenticationFailed) as info:
        client.send_activity(fake.service_url, fake.conversation_id("incidents"), MESSAGE)
    assert "AADSTS7000215" in info.value.message
    assert "wrong-password-value" not in str(info.value.details) + info.value.message
    assert fake.calls("send_activity") == []
    client.close()


def test_a_token_the_connector_refuses_is_dropped_so_the_next_attempt_gets_a_new_one(
    fake: FakeTeams, clock: ManualClock
) -> None:
    client = _client(fake, clock)
    cid = fake.conversation_id("incidents")
    client.send_activity(fake.service_url, cid, MESSAGE)
    fake.fail("send_activity", status=401)
    with pytest.raises(AuthenticationFailed):
        client.send_activity(fake.service_url, cid, MESSAGE)
    client.send_activity(fake.service_url, cid, MESSAGE)
    assert len(fake.calls("token")) == 2
    client.close()


def test_workflow_and_connector_throttling_are_rate_limited(fake: FakeTeams, clock: ManualClock) -> None:
    client = TeamsClient(timeout=2.0)
    fake.fail("workflow_post", status=429, retry_after=7)
    with pytest.raises(RateLimited) as workflow:
        client.post_webhook("incidents", fake.workflow_url("incidents"), _card(), connector=False)
    assert workflow.value.retry_after == 7
    # A connector answers 200 with the 429 in its body.
    fake.fail("connector_post", status=429)
    with pytest.raises(RateLimited) as connector:
        client.post_webhook("incidents", fake.connector_url("incidents"), {"text": "x"}, connector=True)
    assert connector.value.retry_after > 0
    assert fake.calls("connector_post")[-1].status == 200
    assert fake.cards("incidents") == []
    client.close()


def test_webhook_failures_name_the_alias_never_the_url(fake: FakeTeams) -> None:
    client = TeamsClient(timeout=2.0)
    url = fake.workflow_url("incidents")
    fake.fail("workflow_post", status=503)
    with pytest.raises(ServerError) as server:
        client.post_webhook("incidents", url, _card(), connector=False)
    assert server.value.retryable
    forged = url.rpartition("sig=")[0] + "sig=forged-signature"
    with pytest.raises(WebhookRefused) as refused:
        client.post_webhook("incidents", forged, _card(), connector=False)
    fake.remove_webhook("incidents")
    with pytest.raises(WebhookRemoved) as removed:
        client.post_webhook("incidents", url, _card(), connector=False)
    for error in (server.value, refused.value, removed.value):
        text = error.message + str(error.details)
        assert "'incidents'" in text
        assert url not in text and "sig=" not in text and "forged-signature" not in text
    assert isinstance(refused.value, Permanent) and isinstance(removed.value, Permanent)
    assert "webhook_url" in removed.value.message
    client.close()


def test_an_unreachable_webhook_is_retryable_and_keeps_its_url_secret() -> None:
    client = TeamsClient(timeout=1.0)
    with socket_closed_port() as port:
        url = f"http://127.0.0.1:{port}/workflows/abc/triggers/manual/paths/invoke?sig=secret-signature"
        with pytest.raises(ConnectionFailed) as info:
            client.post_webhook("incidents", url, _card(), connector=False)
    assert info.value.details["outcome_unknown"] is False
    assert "secret-signature" not in info.value.message + str(info.value.details)
    client.close()


class socket_closed_port:  # noqa: N801 - used as a context manager
    """A local port nothing listens on."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        self._sock.close()
        return int(port)

    def __exit__(self, *exc: object) -> None:
        return None


def test_paced_posts_stay_within_a_webhooks_limits(
    fake: FakeTeams, clock: ManualClock, redis_client: redis.Redis
) -> None:
    """Posts sent at the slots the pacer hands out never meet the connector's 4/s and 60/30 s
    (95 posts: within the hour's 100, which pacing does not spread); the same burst unpaced
    does."""
    pacer = Pacer(redis_client, prefix="test:teams:")
    key = PACING.post_key("teams", "incidents")
    assert "incidents" in key and "http" not in key
    waits = [pacer.reserve(key, PACING.post_interval) for _ in range(95)]
    client = TeamsClient(timeout=2.0)
    url = fake.connector_url("incidents")
    start = clock()
    for wait in waits:
        clock.advance(start + wait - clock())
        client.post_webhook("incidents", url, {"text": "paced"}, connector=True)
    assert len(fake.cards("incidents")) == 95
    assert waits[-1] > 45  # spread over more than one 30 s window
    # Unpaced, the fifth post in one second is throttled.
    fake.add_channel("burst")
    burst = fake.connector_url("burst")
    with pytest.raises(RateLimited):
        for _ in range(5):
            client.post_webhook("burst", burst, {"text": "burst"}, connector=True)
    assert len(fake.cards("burst")) == 4
    client.close()


def test_updates_share_the_posts_slots() -> None:
    assert PACING.update_key("teams", "incidents") == PACING.post_key("teams", "incidents")
    assert 1 / PACING.post_interval <= 4 and 30 / PACING.post_interval < 60


def test_a_timeout_after_sending_may_have_posted(fake: FakeTeams) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = TeamsClient(http=httpx.Client(transport=httpx.MockTransport(slow)))
    with pytest.raises(ConnectionFailed) as info:
        client.post_webhook("incidents", fake.workflow_url("incidents"), _card(), connector=False)
    assert info.value.details["outcome_unknown"] is True
    client.close()
