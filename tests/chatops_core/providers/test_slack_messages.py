"""The Slack provider's messages: text from outside never becomes markup, long text is cut
within Block Kit's limits, alerts go in the card's thread and to the channel, and a post is
never sent twice by the client itself. Real slack_sdk against the local server that plays
Slack, and plain sockets for a connection that breaks mid-request."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from chatops_core.errors import ConnectionFailed
from chatops_core.models import Severity, Status
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.base import Capability
from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.render import alert_blocks, alert_text
from tests.chatops_core.providers.slack_support import (
    announcement_blocks,
    announcement_text,
    make_provider,
    make_settings,
)
from tests.fakes.slack_server import FakeSlack
from workers.delivery import may_have_posted

CREATED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
MARKUP = ("<!channel>", "<!here>", "<!everyone>", "<#C1>", "<@U1>")


def snapshot(**overrides: Any) -> IncidentSnapshot:
    values: dict[str, Any] = {
        "id": "INC-7",
        "title": "Database timeouts",
        "severity": Severity.SEV2,
        "status": Status.OPEN,
        "created_at": CREATED,
        "version": 2,
    }
    values.update(overrides)
    # Built without validation: the renderer must stand on its own, whatever reaches it.
    return IncidentSnapshot.model_construct(**values)


def announcement(**overrides: Any) -> Announcement:
    values: dict[str, Any] = {
        "type": "incident.created",
        "incident": snapshot(),
        "actor": "alice",
        "summary": "Declared by alice",
        "incident_url": "https://incidents.example.com/incidents/INC-7",
    }
    values.update(overrides)
    return Announcement.model_construct(**values)


def rendered(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def mrkdwn(blocks: Any) -> str:
    """Every mrkdwn text in ``blocks``: what Slack reads for mentions and links (plain_text,
    button values and block ids are never formatted)."""
    found: list[str] = []
    if isinstance(blocks, dict):
        if blocks.get("type") == "mrkdwn":
            found.append(str(blocks.get("text")))
        for value in blocks.values():
            found.append(mrkdwn(value))
    elif isinstance(blocks, list):
        found.extend(mrkdwn(item) for item in blocks)
    return "\n".join(part for part in found if part)


# --- Block Kit's own validation ---------------------------------------------------------------

LONG = "x" * 400 + " <!channel> & <@U1>"


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("severity", list(Severity))
@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"incident": {"title": LONG * 3, "commander": "<@U0CAROL>"}, "summary": LONG * 10},
        {"incident": {"commander": "carol", "commander_instance": "slack", "commander_user_id": "U0CAROL"}},
        {"incident": {"commander": "dave", "commander_instance": "other", "commander_user_id": "U0DAVE"}},
        {"incident": {"channel_id": "C0123ABC", "version": None}, "incident_url": "javascript:alert(1)"},
        {"incident": {"origin": "external"}, "actor": "ext <b>", "incident_url": None, "actionable": False},
        {"actor": None, "summary": ""},
    ],
    ids=["plain", "long-text", "commander-here", "commander-elsewhere", "channel", "external", "bare"],
)
def test_every_card_is_valid_block_kit_as_slack_sdk_checks_it(
    status: Status, severity: Severity, variant: dict[str, Any]
) -> None:
    # The card is built as plain JSON (it is rendered for every notification); slack_sdk's
    # Block Kit models must read it, accept it (their validators enforce Block Kit's limits)
    # and give the same JSON back.
    incident = {"status": status, "severity": severity, **variant.get("incident", {})}
    fields = {k: v for k, v in variant.items() if k != "incident"}
    card = announcement(incident=snapshot(**incident), **fields)
    for instance in (None, "slack"):
        blocks = announcement_blocks(card, now=CREATED, instance=instance)
        assert [block.to_dict() for block in Block.parse_all(blocks)] == blocks
        kinds = [block["type"] for block in blocks]
        assert kinds[:4] == ["header", "section", "section", "context"]
        if not fields.get("actionable", True):
            assert "actions" not in kinds


# --- escaping -------------------------------------------------------------------------------


def test_no_field_from_outside_becomes_markup() -> None:
    hostile = announcement(
        incident=snapshot(
            id="EXT-<!channel>",
            title="<!here> & <@U1>",
            channel_id="C1>|<!channel",
            commander="<!everyone>",
        ),
        actor="<#C1>",
        summary="<!channel> & co",
        incident_url="https://incidents.example.com/x?a=<b>|<!channel>",
    )
    for text in (
        mrkdwn(announcement_blocks(hostile)),
        announcement_text(hostile),
        mrkdwn(alert_blocks(hostile)),
        alert_text(hostile),
    ):
        assert text
        for markup in MARKUP:
            assert markup not in text
    blocks = mrkdwn(announcement_blocks(hostile))
    assert "EXT-&lt;!channel&gt;" in blocks and "C1&gt;|&lt;!channel" in blocks
    # The link we build stays a link, its label and address escaped.
    assert (
        "<https://incidents.example.com/x?a=&lt;b&gt;%7C&lt;!channel&gt;|Open EXT-&lt;!channel&gt;>" in blocks
    )


def test_an_actor_from_the_incident_system_is_a_name_never_a_mention() -> None:
    theirs = announcement(actor="<@U0123ABC>")
    assert "<@U0123ABC>" not in mrkdwn(announcement_blocks(theirs)) + mrkdwn(alert_blocks(theirs))
    assert "&lt;@U0123ABC&gt;" in mrkdwn(announcement_blocks(theirs))
    # A person who acted in chat is mentioned.
    ours = announcement(actor="U0123ABC", incident=snapshot(origin="chat"))
    assert "<@U0123ABC>" in mrkdwn(announcement_blocks(ours))
    assert "<@U0123ABC>" in mrkdwn(alert_blocks(ours))


def test_a_slack_channel_id_is_still_a_channel_link() -> None:
    blocks = rendered(announcement_blocks(announcement(incident=snapshot(channel_id="C0123ABC"))))
    assert "<#C0123ABC>" in blocks


def test_a_long_summary_is_cut_within_the_section_never_inside_an_escape() -> None:
    long = announcement(summary="&" * 2000)
    section = announcement_blocks(long)[1]["text"]["text"]
    assert len(section) <= 3000 and section.endswith("&amp;…")
    text = announcement_text(long)
    assert len(text) <= 3000 and text.endswith("&amp;…")


# --- alerts ---------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def provider(fake: FakeSlack) -> SlackProvider:
    return make_provider(make_settings(fake))


def breach() -> Announcement:
    return announcement(type="incident.sla_breach", summary="Not acknowledged within 15 min (SLA for SEV-2)")


def test_an_alert_goes_in_the_cards_thread_and_to_the_channel(
    provider: SlackProvider, fake: FakeSlack
) -> None:
    assert provider.supports(Capability.ALERT_IN_THREAD)
    card = provider.announce("#incidents", announcement(), key="card-key")
    ref = provider.alert("#incidents", breach(), thread=card, key="alert-key")
    card_message, alert = fake.messages("incidents")
    assert (alert["ts"], alert["thread_ts"]) == (ref.message_id, card.message_id)
    assert alert["subtype"] == "thread_broadcast"
    assert "SLA" in alert["text"] and "INC-7" in alert["text"] and "Database timeouts" in alert["text"]
    assert "actions" not in [b["type"] for b in alert["blocks"]]
    assert card_message["edited"] == 0
    # Found again by its key, in the thread and in the channel's history (it was sent there too).
    assert provider.find_announcement("#incidents", "alert-key", 0, thread=card) == ref
    assert provider.find_announcement("#incidents", "alert-key", 0) == ref
    assert provider.find_announcement("#incidents", "other-key", 0, thread=card) is None


def test_an_alert_without_a_card_is_a_message_in_the_channel(
    provider: SlackProvider, fake: FakeSlack
) -> None:
    ref = provider.alert("#incidents", breach(), key="alert-key")
    (message,) = fake.messages("incidents")
    assert message["ts"] == ref.message_id and not message.get("thread_ts")


def test_an_alert_into_a_channel_the_bot_is_not_in_joins_it_first(
    provider: SlackProvider, fake: FakeSlack
) -> None:
    card = provider.announce("#incidents", announcement())
    fake.require_membership = True
    provider.alert("#incidents", breach(), thread=card)
    assert len(fake.calls("conversations.join")) == 1
    assert len(fake.messages("incidents")) == 2


def test_a_refused_lookup_is_a_permanent_error(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("conversations.history", status=200, error="missing_scope")
    with pytest.raises(Exception) as info:
        provider.find_announcement("#incidents", "k", 0)
    assert not getattr(info.value, "retryable", True)


# --- a post is never re-sent by the client --------------------------------------------------


class _Cutoff:
    """A server that reads each request and closes the connection without answering: the
    post may have been taken, the answer never comes."""

    def __init__(self) -> None:
        self.requests = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(5)
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests += 1

    def close(self) -> None:
        self._sock.close()


def test_a_post_cut_off_mid_request_is_not_sent_again_and_its_outcome_is_unknown() -> None:
    server = _Cutoff()
    try:
        prov = make_provider(make_settings(api_url=f"http://127.0.0.1:{server.port}/api/"))
        with pytest.raises(ConnectionFailed) as info:
            prov.announce("#incidents", announcement())
        assert server.requests == 1
        assert may_have_posted(info.value)
    finally:
        server.close()


def test_a_refused_connection_says_nothing_was_posted() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prov = make_provider(make_settings(api_url=f"http://127.0.0.1:{port}/api/"))
    with pytest.raises(ConnectionFailed) as info:
        prov.announce("#incidents", announcement())
    assert not may_have_posted(info.value)
