"""The Slack client keeps its connection between calls, and copes when Slack closes it.

The real slack_sdk against the local server that plays Slack (which keeps connections
alive as Slack's HTTP/1.1 servers do).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from chatops_core.errors import ConnectionFailed
from chatops_core.providers.slack import client as slack_client
from chatops_core.providers.slack.client import KeptAliveWebClient, SlackApi
from tests.chatops_core.providers.slack_support import make_settings
from tests.fakes.local_server import LocalServer
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


class _Capture(BaseHTTPRequestHandler):
    """Keeps each request as it came (path, headers in order, body) and answers as Slack
    answers a post, or with ``answer`` (status, content type, body) when set."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, list[tuple[str, str]], bytes]] = []
    answer: tuple[int, str, bytes] | None = None

    def do_POST(self) -> None:  # noqa: N802 - the handler's own name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, list(self.headers.items()), body))
        status, content_type, reply = self.answer or (
            200,
            "application/json; charset=utf-8",
            json.dumps({"ok": True, "channel": "C1", "ts": "1700000000.000100"}).encode(),
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _CaptureServer(LocalServer):
    def __init__(self) -> None:
        self.handler = type("Capture", (_Capture,), {"seen": [], "answer": None})

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        return self.handler


@pytest.fixture
def capture() -> Iterator[tuple[str, type[_Capture]]]:
    with _CaptureServer() as server:
        yield f"{server.url}/api/", server.handler


BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*INC-7* Checkout errors"}}]


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "sdk-without-its-helpers"])
def test_posts_and_updates_send_what_the_sdks_own_methods_send(
    capture: tuple[str, type[_Capture]], monkeypatch: pytest.MonkeyPatch, lean: bool
) -> None:
    # Where an SDK release lacks the helpers call_json uses, it goes through api_call.
    monkeypatch.setattr(slack_client, "LEAN_CALLS", lean)
    url, handler = capture
    settings = make_settings(None, bot_token="xoxb-capture", api_url=url)
    api = SlackApi(settings)
    sdk = KeptAliveWebClient(token=settings.bot_token.get_secret_value(), base_url=url)
    metadata = {"event_type": "chatops_delivery", "event_payload": {"key": "n-1:slack:#incidents"}}
    api.post_message("#incidents", "INC-7", BLOCKS, metadata=metadata, thread_ts="1.0", broadcast=True)
    sdk.chat_postMessage(
        channel="#incidents",
        text="INC-7",
        blocks=BLOCKS,
        metadata=metadata,
        thread_ts="1.0",
        reply_broadcast=True,
    )
    api.update_message("C1", "1700000000.000100", "INC-7 resolved", BLOCKS)
    sdk.chat_update(channel="C1", ts="1700000000.000100", text="INC-7 resolved", blocks=BLOCKS)
    ours_post, sdks_post, ours_update, sdks_update = handler.seen
    # The same path, the same headers (the SDK's User-Agent, the token, the JSON content
    # type) in the same order, and the same body, byte for byte.
    assert ours_post == sdks_post
    assert ours_update == sdks_update
    assert ours_post[0] == "/api/chat.postMessage" and ours_update[0] == "/api/chat.update"
    assert json.loads(ours_post[2])["reply_broadcast"] is True


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((200, "application/json", b'{"ok": false, "error": "not_in_channel"}'), "not_in_channel"),
        ((200, "text/html", b"<html>a proxy's page</html>"), None),
    ],
    ids=["refusal", "not-json"],
)
def test_a_post_that_fails_fails_as_the_sdks_own_method_fails(
    capture: tuple[str, type[_Capture]], answer: tuple[int, str, bytes], error: str | None
) -> None:
    url, handler = capture
    handler.answer = answer
    settings = make_settings(None, bot_token="xoxb-capture", api_url=url)
    sdk = KeptAliveWebClient(token=settings.bot_token.get_secret_value(), base_url=url)
    with pytest.raises(SlackApiError) as by_sdk:
        sdk.chat_postMessage(channel="#incidents", text="INC-7", blocks=BLOCKS)
    with pytest.raises(SlackApiError) as ours:
        SlackApi(settings)._poster.call_json(
            "chat.postMessage", {"channel": "#incidents", "text": "INC-7", "blocks": BLOCKS}
        )
    assert ours.value.response.data == by_sdk.value.response.data
    assert ours.value.response.status_code == by_sdk.value.response.status_code
    if error is not None:
        assert ours.value.response["error"] == error
