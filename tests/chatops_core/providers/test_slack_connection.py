"""The Slack client keeps its connection between calls, and copes when Slack closes it.

The real slack_sdk against the local server that plays Slack (which keeps connections
alive as Slack's HTTP/1.1 servers do).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from chatops_core.errors import ConnectionFailed
from chatops_core.providers.slack.client import KeptAliveWebClient, SlackApi
from tests.chatops_core.providers.slack_support import make_settings
from tests.fakes.slack_server import FakeSlack


def slack_api(fake: FakeSlack, **settings: Any) -> SlackApi:
    return SlackApi(make_settings(fake, **settings), retry_interval=FixedValueRetryIntervalCalculator(0.01))


def texts(fake: FakeSlack, channel: str) -> list[str]:
    return [m["text"] for m in fake.messages(channel)]


def test_calls_share_one_connection(fake: FakeSlack) -> None:
    api = slack_api(fake)
    for n in range(5):
        api.post_message("#incidents", f"update {n}", [])
    assert texts(fake, "incidents") == [f"update {n}" for n in range(5)]
    # The provider's poster opened one connection for the five posts.
    assert fake.connections_opened == 1


def test_each_thread_has_its_own_connection(fake: FakeSlack) -> None:
    api = slack_api(fake)

    def post(n: int) -> None:
        for i in range(3):
            api.post_message("#incidents", f"t{n}-{i}", [])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(texts(fake, "incidents")) == sorted(f"t{n}-{i}" for n in range(3) for i in range(3))
    assert fake.connections_opened == 3


def test_a_slack_that_went_away_and_came_back_is_reached_on_a_new_connection() -> None:
    fake = FakeSlack().start()
    try:
        api = slack_api(fake)
        api.post_message("#incidents", "before", [])
        port = fake.port
        fake.stop()
        # Down: the kept connection is closed with it, so the call fails as a refused one,
        # which certainly posted nothing.
        with pytest.raises(ConnectionFailed) as failed:
            api.post_message("#incidents", "while down", [])
        assert failed.value.details.get("outcome_unknown") is False
        fake._port = port
        fake.start()
        api.post_message("#incidents", "after", [])
        assert texts(fake, "incidents") == ["before", "after"]
    finally:
        fake.stop()


def test_a_call_cut_off_mid_answer_leaves_a_fresh_connection_for_the_next(fake: FakeSlack) -> None:
    api = slack_api(fake, timeout=0.3)
    api.post_message("#incidents", "first", [])
    # The answer never comes in time: the call times out, its outcome unknown.
    fake.hold("chat.postMessage", after=True)
    with pytest.raises(ConnectionFailed) as failed:
        api.post_message("#incidents", "held", [])
    assert failed.value.details.get("outcome_unknown") is not False
    fake.release()
    # The next call does not read the late answer of the one before: a new connection.
    api.post_message("#incidents", "next", [])
    assert texts(fake, "incidents") == ["first", "held", "next"]
    assert fake.connections_opened == 2


def test_an_answer_that_is_not_a_success_is_read_as_the_sdk_reads_it(fake: FakeSlack) -> None:
    client = KeptAliveWebClient(token=fake.token, base_url=fake.api_url, timeout=2)
    fake.fail("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="#incidents", text="x")
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["Retry-After"] == "7"
    assert refused.value.response["error"] == "ratelimited"
    # The connection stays usable after a refusal.
    assert client.chat_postMessage(channel="#incidents", text="y")["ok"] is True
    assert fake.connections_opened == 1
