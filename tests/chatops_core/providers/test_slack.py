"""The Slack provider, through the real slack_sdk against a local server that plays Slack."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from chatops_core.errors import (
    AuthenticationFailed,
    ChannelNotFound,
    ConnectionFailed,
    InvalidWebhook,
    MessageNotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Retryable,
    ServerError,
    UserNotFound,
)
from chatops_core.models import (
    Actor,
    EntryKind,
    InboundCommand,
    Incident,
    MessageRef,
    Reply,
    Severity,
    Status,
    TimelineEntry,
)
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.base import Capability, InboundKind, WebhookRequest
from chatops_core.providers.registry import default_registry
from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.errors import map_slack_error, retry_after_seconds
from tests.chatops_core.providers.slack_support import (
    FIXTURES,
    FORM,
    JSON_CT,
    SECRET,
    make_provider,
    make_settings,
)
from tests.fakes.slack_server import FakeSlack, signed_headers, wait_for

NOW = 1_700_000_000.0

# The example on https://docs.slack.dev/authentication/verifying-requests-from-slack/
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TS = "1531420618"
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
VALID_CHANNEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,78}[a-z0-9_])?$")


def fixture(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    # Recorded bodies are stored with a final newline; Slack's bodies have none.
    return data.rstrip(b"\n") if name.endswith(".txt") else data


def signed_request(
    body: bytes,
    content_type: str = FORM,
    *,
    secret: str = SECRET,
    timestamp: float = NOW,
    received_at: float = NOW,
) -> WebhookRequest:
    headers = signed_headers(body, secret, int(timestamp))
    headers["Content-Type"] = content_type
    return WebhookRequest(body=body, headers=headers, content_type=content_type, received_at=received_at)


def incident(**overrides: Any) -> Incident:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "number": 12,
        "title": "Database timeouts",
        "severity": Severity.SEV2,
        "status": Status.OPEN,
        "commander": "U2147483697",
        "declared_by": "U2147483697",
        "description": "Checkout p99 above 4s",
        "created_at": at,
        "updated_at": at + timedelta(minutes=5),
    }
    values.update(overrides)
    return Incident(**values)


def snapshot(**overrides: Any) -> IncidentSnapshot:
    return IncidentSnapshot.of(incident(**overrides))


def announcement(**overrides: Any) -> Announcement:
    values: dict[str, Any] = {
        "type": "incident.created",
        "incident": IncidentSnapshot.of(incident()),
        "actor": "U2147483697",
        "summary": "Declared by Steve",
        "incident_url": "https://incidents.example.com/incidents/INC-12",
    }
    values.update(overrides)
    return Announcement(**values)


def command(response_url: str | None, **overrides: Any) -> InboundCommand:
    values: dict[str, Any] = {
        "key": "slack:acme:1",
        "instance": "acme",
        "platform": "slack",
        "text": "status INC-12",
        "user": Actor(user_id="U2147483697", user_name="steve"),
        "channel_id": "C0001",
        "reply_to": {"response_url": response_url} if response_url else {},
    }
    values.update(overrides)
    return InboundCommand(**values)


def block_text(blocks: list[dict[str, Any]]) -> str:
    """All the text in a list of blocks, for assertions."""
    return json.dumps(blocks, ensure_ascii=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- interface ------------------------------------------------------------------------------


def test_declares_what_it_implements(offline: SlackProvider) -> None:
    assert offline.type == "slack"
    for capability in (
        Capability.PRIVATE_REPLY,
        Capability.THREADS,
        Capability.UPDATE_MESSAGE,
        Capability.FORMS,
        Capability.BUTTONS,
        Capability.PIN,
        Capability.CHANNELS,
        Capability.FIND_POSTED,
        Capability.MENTIONS,
        Capability.ALERT_IN_THREAD,
    ):
        assert offline.supports(capability)
    # Slack answers a command through its response_url, never in the webhook's own response.
    assert not offline.supports(Capability.ANSWER_IN_RESPONSE)


def test_registry_builds_it() -> None:
    built = default_registry().create("work", make_settings())
    assert isinstance(built, SlackProvider)
    assert built.name == "work"


# -- verify ---------------------------------------------------------------------------------


def vector_request(body: bytes | None = None, **header_overrides: str | None) -> WebhookRequest:
    headers = {"X-Slack-Request-Timestamp": VECTOR_TS, "X-Slack-Signature": VECTOR_SIGNATURE}
    for key, value in header_overrides.items():
        name = {"timestamp": "X-Slack-Request-Timestamp", "signature": "X-Slack-Signature"}[key]
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return WebhookRequest(
        body=fixture("slash_command_signed.txt") if body is None else body,
        headers=headers,
        content_type=FORM,
        received_at=float(VECTOR_TS),
    )


def vector_provider() -> SlackProvider:
    return make_provider(make_settings(signing_secret=VECTOR_SECRET))


def test_verify_accepts_the_documented_test_vector() -> None:
    vector_provider().verify(vector_request())


def test_verify_accepts_any_header_case() -> None:
    original = vector_request()
    lower = WebhookRequest(
        body=original.body,
        headers={k.lower(): v for k, v in original.headers.items()},
        received_at=original.received_at,
    )
    vector_provider().verify(lower)
    upper = WebhookRequest(
        body=original.body,
        headers={k.upper(): v for k, v in original.headers.items()},
        received_at=original.received_at,
    )
    vector_provider().verify(upper)


@pytest.mark.parametrize(
    "request_factory",
    [
        pytest.param(lambda: vector_request(signature="v0=" + "0" * 64), id="bad-signature"),
        pytest.param(lambda: vector_request(signature=VECTOR_SIGNATURE[:-1] + "4"), id="one-digit-off"),
        pytest.param(lambda: vector_request(signature=None), id="missing-signature"),
        pytest.param(lambda: vector_request(timestamp=None), id="missing-timestamp"),
        pytest.param(lambda: vector_request(timestamp=None, signature=None), id="missing-both"),
        pytest.param(lambda: vector_request(timestamp="soon"), id="non-numeric-timestamp"),
        pytest.param(lambda: vector_request(timestamp="1531420618.5"), id="fractional-timestamp"),
        pytest.param(lambda: vector_request(signature="v0=\u00e9" * 10), id="non-ascii-signature"),
        pytest.param(
            lambda: vector_request(
                body=fixture("slash_command_signed.txt").replace(b"roadrunner", b"coyote")
            ),
            id="tampered-body",
        ),
        pytest.param(lambda: vector_request(body=b"\xff\xfe not utf-8"), id="non-utf8-body"),
    ],
)
def test_verify_rejects(request_factory: Any) -> None:
    with pytest.raises(InvalidWebhook) as info:
        vector_provider().verify(request_factory())
    assert info.value.http_status == 401


def test_verify_rejects_a_wrong_secret() -> None:
    other = make_provider(make_settings(signing_secret="not-the-secret"))
    with pytest.raises(InvalidWebhook) as info:
        other.verify(vector_request())
    assert info.value.http_status == 401


@pytest.mark.parametrize("skew", [-360, 360, 301])
def test_verify_rejects_a_stale_or_future_timestamp(skew: int, offline: SlackProvider) -> None:
    body = fixture("slash_command.txt")
    # Correctly signed, but received 6 minutes (or just over 5) away from its timestamp.
    request = signed_request(body, timestamp=NOW, received_at=NOW + skew)
    with pytest.raises(InvalidWebhook) as info:
        offline.verify(request)
    assert info.value.http_status == 401
    assert "window" in str(info.value)


def test_verify_accepts_a_timestamp_inside_the_window(offline: SlackProvider) -> None:
    offline.verify(signed_request(fixture("slash_command.txt"), timestamp=NOW, received_at=NOW + 299))
    offline.verify(signed_request(fixture("slash_command.txt"), timestamp=NOW, received_at=NOW - 299))


def test_verify_never_echoes_the_secret(offline: SlackProvider) -> None:
    with pytest.raises(InvalidWebhook) as info:
        offline.verify(signed_request(b"text=x", secret="wrong"))
    assert SECRET not in str(info.value)


# -- parse ----------------------------------------------------------------------------------


def test_parse_slash_command(offline: SlackProvider) -> None:
    body = fixture("slash_command.txt")
    inbound = offline.parse(signed_request(body, received_at=NOW))
    assert inbound.kind is InboundKind.COMMAND
    assert (inbound.status, inbound.body) == (200, b"")
    cmd = inbound.command
    assert cmd is not None
    assert cmd.key == "slack:acme:13345224609.738474920.8088930838d88f008e0"
    # Slack does not retry slash commands; the command's key makes a repeat run once.
    assert inbound.dedupe_key is None
    assert cmd.instance == "acme"
    assert cmd.platform == "slack"
    assert cmd.command == "/im"
    assert cmd.text == "declare sev2 Database timeouts on <#C1|checkout> & payments"
    assert cmd.user == Actor(user_id="U2147483697", user_name="Steve")
    assert (cmd.channel_id, cmd.channel_name) == ("C2147483705", "incidents")
    assert cmd.reply_to == {
        "response_url": "https://hooks.slack.com/commands/1234/5678",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team_id": "T0001",
    }
    assert cmd.received_at == datetime.fromtimestamp(NOW, tz=UTC)


def test_parse_documented_vector_with_empty_text(offline: SlackProvider) -> None:
    inbound = offline.parse(signed_request(fixture("slash_command_signed.txt")))
    assert inbound.command is not None
    assert inbound.command.text == ""
    assert inbound.command.command == "/webhook-collect"


def test_parse_slash_command_without_trigger_id_keys_on_the_body(offline: SlackProvider) -> None:
    body = fixture("slash_command_no_trigger.txt")
    inbound = offline.parse(signed_request(body))
    assert inbound.command is not None
    assert inbound.command.key == "slack:acme:" + hashlib.sha256(body).hexdigest()
    assert "trigger_id" not in inbound.command.reply_to


@pytest.mark.parametrize("drop", ["user_id", "command"])
def test_parse_slash_command_missing_a_required_field(drop: str, offline: SlackProvider) -> None:
    fields = dict(parse_qsl(fixture("slash_command.txt").decode(), keep_blank_values=True))
    if drop == "command":
        fields["command"] = ""
    else:
        del fields[drop]
    with pytest.raises(InvalidWebhook) as info:
        offline.parse(signed_request(urlencode(fields).encode()))
    assert info.value.http_status == 400


def test_parse_ssl_check(offline: SlackProvider) -> None:
    inbound = offline.parse(signed_request(fixture("ssl_check.txt")))
    assert inbound.kind is InboundKind.ANSWER
    assert (inbound.status, inbound.body) == (200, b"")


def test_parse_interaction_is_acknowledged(offline: SlackProvider) -> None:
    body = fixture("block_actions.txt")
    assert json.loads(dict(parse_qsl(body.decode()))["payload"]) == json.loads(fixture("block_actions.json"))
    inbound = offline.parse(signed_request(body))
    assert inbound.kind is InboundKind.IGNORE
    assert inbound.status == 200


def test_parse_interaction_with_a_broken_payload(offline: SlackProvider) -> None:
    with pytest.raises(InvalidWebhook) as info:
        offline.parse(signed_request(urlencode({"payload": "{not json"}).encode()))
    assert info.value.http_status == 400


def test_parse_url_verification(offline: SlackProvider) -> None:
    inbound = offline.parse(signed_request(fixture("url_verification.json"), JSON_CT))
    assert inbound.kind is InboundKind.ANSWER
    assert inbound.status == 200
    assert inbound.content_type.startswith("application/json")
    assert json.loads(inbound.body) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_parse_event_callback_dedupes_on_event_id(offline: SlackProvider) -> None:
    inbound = offline.parse(
        signed_request(fixture("event_callback_app_mention.json"), "application/json; charset=utf-8")
    )
    assert inbound.kind is InboundKind.COMMAND
    assert inbound.status == 200
    assert inbound.dedupe_key == "Ev0LAN670R"


def test_parse_app_rate_limited_notice_is_acknowledged(offline: SlackProvider) -> None:
    inbound = offline.parse(signed_request(fixture("app_rate_limited.json"), JSON_CT))
    assert (inbound.kind, inbound.status) == (InboundKind.IGNORE, 200)


def test_parse_json_without_content_type(offline: SlackProvider) -> None:
    body = fixture("url_verification.json")
    inbound = offline.parse(WebhookRequest(body=body, headers={}, received_at=NOW))
    assert inbound.kind is InboundKind.ANSWER


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b'{"type": "something_else"}', JSON_CT, id="unknown-event-type"),
        pytest.param(b'{"type": "event_callback"}', JSON_CT, id="event-without-id"),
        pytest.param(b'{"type": "url_verification"}', JSON_CT, id="verification-without-challenge"),
        pytest.param(b"{broken", JSON_CT, id="invalid-json"),
        pytest.param(b"[1, 2]", JSON_CT, id="json-array"),
        pytest.param(b"\xff\xfe", JSON_CT, id="not-utf8"),
        pytest.param(b"team_id=T1&user_id=U1", FORM, id="form-without-command"),
        pytest.param(b"hello", "text/plain", id="unsupported-content-type"),
        pytest.param(b"<xml/>", "application/xml", id="xml"),
    ],
)
def test_parse_rejects(body: bytes, content_type: str, offline: SlackProvider) -> None:
    with pytest.raises(InvalidWebhook) as info:
        offline.parse(signed_request(body, content_type))
    assert info.value.http_status == 400


# -- reply ----------------------------------------------------------------------------------


def test_reply_is_ephemeral_by_default(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.reply(command(fake.response_url("r")), Reply(text="INC-12 is *open*"))
    (posted,) = fake.responses("r")
    assert posted["response_type"] == "ephemeral"
    assert posted["text"] == "INC-12 is *open*"
    assert posted["blocks"][0]["type"] == "section"


def test_reply_in_channel(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.reply(command(fake.response_url("pub")), Reply(text="Declared INC-12", ephemeral=False))
    (posted,) = fake.responses("pub")
    assert posted["response_type"] == "in_channel"
    assert posted["text"] == "Declared INC-12"


def test_reply_escapes_user_text(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.reply(command(fake.response_url()), Reply(text="title: <!channel> & co"))
    (posted,) = fake.responses("r")
    assert posted["text"] == "title: &lt;!channel&gt; &amp; co"
    assert "<!channel>" not in block_text(posted["blocks"])


def test_reply_renders_incident_timeline_and_list(provider: SlackProvider, fake: FakeSlack) -> None:
    inc = incident(channel_id="C0009", platform="slack")
    timeline = [
        TimelineEntry(
            incident_number=12,
            at=inc.created_at + timedelta(minutes=i),
            kind=EntryKind.NOTE,
            actor="U1AAA",
            text=f"note {i}",
        )
        for i in range(60)
    ]
    others = [incident(number=n, title=f"Incident {n}") for n in range(1, 46)]
    reply = Reply(text="Here you go", incident=inc, timeline=timeline, incidents=others)
    provider.reply(command(fake.response_url()), reply)
    (posted,) = fake.responses("r")
    text = block_text(posted["blocks"])
    assert "INC-12: Database timeouts" in text
    assert "SEV-2" in text and "Open" in text and "<@U2147483697>" in text and "<#C0009>" in text
    # Only the most recent 40 entries, oldest first.
    assert re.findall(r"note (\d+)", text) == [str(i) for i in range(20, 60)]
    assert "20 earlier entries not shown" in text
    assert "*INC-1*" in text and "and 5 more" in text
    assert len(posted["blocks"]) <= 50
    for block in posted["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000


def test_reply_without_response_url_goes_to_the_channel(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.reply(command(None, channel_id=fake.channel_id("incidents")), Reply(text="only you"))
    (message,) = fake.ephemeral_messages("incidents")
    assert message["user"] == "U2147483697"
    assert message["text"] == "only you"
    provider.reply(
        command(None, channel_id=fake.channel_id("incidents")), Reply(text="everyone", ephemeral=False)
    )
    assert [m["text"] for m in fake.messages("incidents")] == ["everyone"]


def test_reply_without_anywhere_to_answer(provider: SlackProvider) -> None:
    with pytest.raises(ProviderError):
        provider.reply(command(None, channel_id=None), Reply(text="lost"))


def test_reply_rate_limited(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("response", status=429, retry_after=7)
    with pytest.raises(RateLimited) as info:
        provider.reply(command(fake.response_url()), Reply(text="x"))
    assert info.value.retry_after == 7
    assert len(fake.calls("response")) == 1
    assert fake.responses() == []


def test_reply_server_error_after_retries(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("response", times=3, status=503)
    with pytest.raises(ServerError):
        provider.reply(command(fake.response_url()), Reply(text="x"))
    assert len(fake.calls("response")) == 3


@pytest.mark.parametrize("code", ["expired_url", "used_url"])
def test_reply_to_a_dead_response_url(code: str, provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("response", status=404, error=code)
    with pytest.raises(ProviderError) as info:
        provider.reply(command(fake.response_url()), Reply(text="x"))
    assert info.value.details["slack_error"] == code
    assert not info.value.retryable


def test_reply_past_the_response_url_limit(fake: FakeSlack) -> None:
    with FakeSlack(max_response_posts=5) as strict:
        prov = make_provider(make_settings(strict))
        for i in range(5):
            prov.reply(command(strict.response_url("once")), Reply(text=f"answer {i}"))
        with pytest.raises(ProviderError) as info:
            prov.reply(command(strict.response_url("once")), Reply(text="one too many"))
        assert info.value.details["slack_error"] == "used_url"
        assert len(strict.responses("once")) == 5


# -- announce / update ----------------------------------------------------------------------


def test_announce(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.announce("#incidents", announcement())
    assert ref.channel_id == fake.channel_id("incidents")
    (message,) = fake.messages("incidents")
    assert ref.message_id == message["ts"]
    assert (
        "INC-12" in message["text"] and "Database timeouts" in message["text"] and "SEV-2" in message["text"]
    )
    text = block_text(message["blocks"])
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "INC-12: Database timeouts", "emoji": True},
    }
    for expected in ("SEV-2", "Open", "<@U2147483697>", "INC-12", "Declared by Steve"):
        assert expected in text
    assert "<https://incidents.example.com/incidents/INC-12|Open INC-12>" in text
    (call,) = fake.calls("chat.postMessage")
    assert call.json["channel"] == "#incidents"


def test_announce_by_id_and_without_link(provider: SlackProvider, fake: FakeSlack) -> None:
    channel_id = fake.channel_id("major-incidents")
    ref = provider.announce(channel_id, announcement(incident_url=None, actor=None))
    assert ref.channel_id == channel_id
    assert "incidents.example.com" not in block_text(fake.messages(channel_id)[0]["blocks"])


def test_announce_escapes_titles(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.announce(
        "incidents", announcement(incident=snapshot(title="<!here> & <@U123>"), summary="<!channel>")
    )
    (message,) = fake.messages("incidents")
    assert "<!here>" not in message["text"] and "<!channel>" not in message["text"]
    assert "<!here>" not in block_text(message["blocks"][1:])
    assert "&lt;!channel&gt;" in block_text(message["blocks"])


def test_announce_long_title_fits_block_kit(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.announce("incidents", announcement(incident=snapshot(title="x" * 500), summary="y" * 5000))
    (message,) = fake.messages("incidents")
    assert len(message["blocks"][0]["text"]["text"]) <= 150
    assert all(
        len(b["text"]["text"]) <= 3000 for b in message["blocks"] if b["type"] == "section" and "text" in b
    )


def test_update_announcement(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.announce("#incidents", announcement())
    provider.update_announcement(
        ref,
        announcement(type="incident.resolved", incident=snapshot(status=Status.RESOLVED), summary="Resolved"),
    )
    (message,) = fake.messages("incidents")
    assert message["edited"] == 1
    assert message["ts"] == ref.message_id
    assert "resolved" in message["text"].lower()
    assert "Resolved" in block_text(message["blocks"])
    (call,) = fake.calls("chat.update")
    assert (call.json["channel"], call.json["ts"]) == (ref.channel_id, ref.message_id)


def test_update_of_a_missing_message(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = MessageRef(channel_id=fake.channel_id("incidents"), message_id="1.000001")
    with pytest.raises(MessageNotFound):
        provider.update_announcement(ref, announcement())


# -- channels -------------------------------------------------------------------------------


def test_create_channel_with_topic(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.create_channel("inc-12-database-timeouts", topic="INC-12 SEV-2: Database timeouts")
    assert ref.name == "inc-12-database-timeouts"
    channel = fake.channel(ref.channel_id)
    assert channel is not None
    assert channel["name"] == "inc-12-database-timeouts"
    assert channel["topic"]["value"] == "INC-12 SEV-2: Database timeouts"
    assert [c.method for c in fake.calls()] == ["conversations.create", "conversations.setTopic"]


def test_create_channel_without_topic(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.create_channel("inc-1")
    assert [c.method for c in fake.calls()] == ["conversations.create"]


def test_create_channel_takes_the_next_free_suffix(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.add_channel("inc-12-db")
    fake.add_channel("inc-12-db-2")
    ref = provider.create_channel("inc-12-db")
    assert ref.name == "inc-12-db-3"
    assert [c.params["name"] for c in fake.calls("conversations.create")] == [
        "inc-12-db",
        "inc-12-db-2",
        "inc-12-db-3",
    ]
    assert [c.error for c in fake.calls("conversations.create")] == ["name_taken", "name_taken", None]


def test_create_channel_suffix_keeps_80_characters(provider: SlackProvider, fake: FakeSlack) -> None:
    long_name = "a" * 80
    fake.add_channel(long_name)
    ref = provider.create_channel(long_name)
    assert ref.name == "a" * 78 + "-2"
    assert len(ref.name) == 80


def test_create_channel_gives_up_after_20_names(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.add_channel("busy")
    for n in range(2, 21):
        fake.add_channel(f"busy-{n}")
    with pytest.raises(ProviderError) as info:
        provider.create_channel("busy")
    assert info.value.details["slack_error"] == "name_taken"
    assert len(fake.calls("conversations.create")) == 20


def test_create_channel_normalizes_the_requested_name(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.create_channel("#INC-3 Payments.Down")
    assert ref.name == "inc-3-payments-down"


def test_invite(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.create_channel("inc-5")
    provider.invite(ref.channel_id, ["U1AAA", "U2BBB", "U1AAA"])
    channel = fake.channel(ref.channel_id)
    assert channel is not None and {"U1AAA", "U2BBB"} <= set(channel["members"])
    (call,) = fake.calls("conversations.invite")
    assert call.params["users"] == "U1AAA,U2BBB"


def test_invite_ignores_members_and_the_bot(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.create_channel("inc-6")
    provider.invite(ref.channel_id, ["U1AAA"])
    provider.invite(ref.channel_id, ["U1AAA"])  # already_in_channel
    provider.invite(ref.channel_id, [fake.bot_user_id])  # cant_invite_self
    provider.invite(ref.channel_id, ["U1AAA", "U3CCC", fake.bot_user_id])  # mixed: falls back to one by one
    channel = fake.channel(ref.channel_id)
    assert channel is not None and {"U1AAA", "U3CCC"} <= set(channel["members"])


def test_invite_nobody_makes_no_call(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.invite(fake.channel_id("incidents"), [])
    assert fake.calls() == []


def test_invite_unknown_user(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.remove_user("U9GONE")
    with pytest.raises(UserNotFound):
        provider.invite(fake.channel_id("incidents"), ["U9GONE"])


def test_kick(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.create_channel("inc-7")
    provider.invite(ref.channel_id, ["U1AAA"])
    provider.kick(ref.channel_id, "U1AAA")
    provider.kick(ref.channel_id, "U1AAA")  # not_in_channel is fine
    channel = fake.channel(ref.channel_id)
    assert channel is not None and "U1AAA" not in channel["members"]
    assert [c.error for c in fake.calls("conversations.kick")] == [None, "not_in_channel"]


def test_channel_operations_on_a_missing_channel(provider: SlackProvider) -> None:
    with pytest.raises(ChannelNotFound):
        provider.invite("C9999", ["U1AAA"])
    with pytest.raises(ChannelNotFound):
        provider.kick("C9999", "U1AAA")


def test_fake_validates_names_like_slack(fake: FakeSlack) -> None:
    client = WebClient(token=fake.token, base_url=fake.api_url, timeout=2)
    for name, code in [
        ("Upper", "invalid_name_specials"),
        ("has space", "invalid_name_specials"),
        ("dot.ted", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("---", "invalid_name_punctuation"),
        ("", "invalid_name_required"),
        ("incidents", "name_taken"),
    ]:
        with pytest.raises(SlackApiError) as info:
            client.conversations_create(name=name)
        assert info.value.response["error"] == code, name


# -- errors ---------------------------------------------------------------------------------


def test_429_surfaces_with_retry_after_and_is_not_retried(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=30)
    with pytest.raises(RateLimited) as info:
        provider.announce("#incidents", announcement())
    assert info.value.retry_after == 30
    assert isinstance(info.value, Retryable)
    assert len(fake.calls("chat.postMessage")) == 1  # no in-process sleep-and-retry
    assert fake.messages("incidents") == []


def test_429_without_retry_after_defaults_to_one_second(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=None)
    with pytest.raises(RateLimited) as info:
        provider.announce("#incidents", announcement())
    assert info.value.retry_after == 1


@pytest.mark.parametrize("code", ["ratelimited", "rate_limited", "message_limit_exceeded"])
def test_rate_limit_codes_with_http_200(code: str, provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=200, error=code)
    with pytest.raises(RateLimited) as info:
        provider.announce("#incidents", announcement())
    assert info.value.details["slack_error"] == code
    assert info.value.retry_after == 1


def test_per_channel_rate_limit(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.limit_channel("incidents", per_second=0.2)
    provider.announce("#incidents", announcement())
    with pytest.raises(RateLimited) as info:
        provider.announce("#incidents", announcement())
    assert info.value.retry_after >= 1
    provider.announce("#general", announcement())  # other channels are not limited
    assert len(fake.messages("incidents")) == 1


def test_503_until_retries_give_up(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", times=3, status=503)
    with pytest.raises(ServerError) as info:
        provider.announce("#incidents", announcement())
    assert info.value.details["status"] == 503
    assert len(fake.calls("chat.postMessage")) == 3  # one try and two retries


def test_one_503_is_retried_transparently(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", times=1, status=503)
    ref = provider.announce("#incidents", announcement())
    assert [c.status for c in fake.calls("chat.postMessage")] == [503, 200]
    assert fake.messages("incidents")[0]["ts"] == ref.message_id


def test_502_is_a_server_error(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.fail("chat.update", status=502)
    with pytest.raises(ServerError):
        provider.update_announcement(MessageRef(channel_id="C0001", message_id="1.1"), announcement())


def test_channel_not_found(provider: SlackProvider) -> None:
    with pytest.raises(ChannelNotFound) as info:
        provider.announce("#no-such-channel", announcement())
    assert isinstance(info.value, Permanent)


def test_archived_channel(provider: SlackProvider, fake: FakeSlack) -> None:
    fake.archive_channel("general")
    with pytest.raises(ChannelNotFound) as info:
        provider.announce("#general", announcement())
    assert info.value.details["slack_error"] == "is_archived"


def test_invalid_auth(fake: FakeSlack) -> None:
    wrong = make_provider(make_settings(fake, bot_token="xoxb-wrong-token-123"))
    with pytest.raises(AuthenticationFailed) as info:
        wrong.announce("#incidents", announcement())
    assert "xoxb-wrong-token-123" not in str(info.value)
    assert "xoxb-wrong-token-123" not in repr(info.value.details)
    assert fake.calls("chat.postMessage")[0].error == "invalid_auth"


def test_connection_refused() -> None:
    port = closed_port()
    prov = make_provider(make_settings(api_url=f"http://127.0.0.1:{port}/api/"))
    with pytest.raises(ConnectionFailed) as info:
        prov.announce("#incidents", announcement())
    assert info.value.retryable


def test_response_url_connection_refused(provider: SlackProvider) -> None:
    with pytest.raises(ConnectionFailed):
        provider.reply(command(f"http://127.0.0.1:{closed_port()}/response/r"), Reply(text="x"))


def test_read_timeout_is_a_connection_failure() -> None:
    # A socket that accepts connections (the kernel's backlog) but never answers.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        port = sock.getsockname()[1]
        prov = make_provider(make_settings(api_url=f"http://127.0.0.1:{port}/api/", timeout=0.3))
        with pytest.raises(ConnectionFailed):
            prov.announce("#incidents", announcement())


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (200, "channel_not_found", ChannelNotFound),
        (200, "is_archived", ChannelNotFound),
        (200, "user_not_found", UserNotFound),
        (200, "users_not_found", UserNotFound),
        (200, "message_not_found", MessageNotFound),
        (200, "invalid_auth", AuthenticationFailed),
        (200, "not_authed", AuthenticationFailed),
        (200, "account_inactive", AuthenticationFailed),
        (200, "token_revoked", AuthenticationFailed),
        (200, "token_expired", AuthenticationFailed),
        (200, "internal_error", ServerError),
        (500, None, ServerError),
        (504, None, ServerError),
        (429, None, RateLimited),
        (200, "restricted_action", ProviderError),
        (400, "invalid_arguments", ProviderError),
    ],
)
def test_map_slack_error(status: int, code: str | None, expected: type[Exception]) -> None:
    class Response:
        status_code = status
        headers = {"retry-after": "12"}
        data = {"ok": False, "error": code} if code else {"ok": False}

    exc = SlackApiError("failed", Response())
    mapped = map_slack_error(exc, method="chat.postMessage")
    assert type(mapped) is expected
    if code:
        assert mapped.details["slack_error"] == code
        assert code in str(mapped)
    if expected is RateLimited:
        assert isinstance(mapped, RateLimited) and mapped.retry_after == 12


def test_map_slack_error_network_errors() -> None:
    import urllib.error

    assert isinstance(map_slack_error(urllib.error.URLError(ConnectionRefusedError())), ConnectionFailed)
    assert isinstance(map_slack_error(TimeoutError("timed out")), ConnectionFailed)
    assert isinstance(map_slack_error(TimeoutError()), ConnectionFailed)
    assert isinstance(map_slack_error(ConnectionResetError()), ConnectionFailed)
    assert isinstance(map_slack_error(RuntimeError("x")), ProviderError)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "30"}, 30.0), ({"retry-after": ["4"]}, 4.0), ({"Retry-After": "soon"}, 1.0), ({}, 1.0)],
)
def test_retry_after_parsing(headers: dict[str, Any], expected: float) -> None:
    assert retry_after_seconds(headers) == expected


# -- channel names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incident_id", "title", "expected"),
    [
        ("INC-12", "Database timeouts!", "inc-12-database-timeouts"),
        ("INC-1", "Café crème brûlée", "inc-1-cafe-creme-brulee"),
        ("INC-1", "🔥 Checkout down 🔥", "inc-1-checkout-down"),
        ("INC-1", "db🔥down", "inc-1-db-down"),
        ("INC-1", "DB: timeouts (again)!!! 100%", "inc-1-db-timeouts-again-100"),
        ("INC-1", "v1.2.3 rollout...", "inc-1-v1-2-3-rollout"),
        ("INC-1", "snake_case thing", "inc-1-snake_case-thing"),
        ("INC-1", "Ｆｕｌｌｗｉｄｔｈ ﬁle", "inc-1-fullwidth-file"),
        ("INC-1", "Łódź — outage", "inc-1-odz-outage"),
        ("INC-7", "データベース障害", "inc-7"),
        ("INC-7", "   ", "inc-7"),
        ("INC-7", "", "inc-7"),
        ("INC-7", "---", "inc-7"),
        ("", "Database", "incident-database"),
    ],
)
def test_channel_name_for(incident_id: str, title: str, expected: str, offline: SlackProvider) -> None:
    assert offline.channel_name_for(incident_id, title) == expected


def test_channel_name_for_a_long_title(offline: SlackProvider) -> None:
    title = ("Payments degraded in eu-west " * 10)[:200]
    name = offline.channel_name_for("INC-123456789", title)
    assert len(name) <= 80
    assert name.startswith("inc-123456789-payments-degraded")
    assert VALID_CHANNEL.match(name)
    assert not name.endswith("-")
    one_word = offline.channel_name_for("INC-1", "x" * 200)
    assert one_word == "inc-1-" + "x" * 74


@pytest.mark.parametrize(
    "title",
    [
        "Ünïcödé ẞ 🚀 title",
        "...",
        "a.b.c",
        "<!channel> & stuff",
        "tab\tand\nnewline",
        "Ω≈ç√∫",
        "x" * 200,
        "-_-",
    ],
)
def test_channel_names_are_accepted_by_slack(title: str, provider: SlackProvider) -> None:
    name = provider.channel_name_for("INC-42", title)
    assert VALID_CHANNEL.match(name), name
    assert provider.create_channel(name).name == name


# -- the fake itself ------------------------------------------------------------------------


def test_wait_for_is_bounded() -> None:
    with pytest.raises(TimeoutError, match="the answer"):
        wait_for(lambda: None, timeout=0.05, message="the answer")


def test_fake_wait_for_sees_posts_from_another_thread(provider: SlackProvider, fake: FakeSlack) -> None:
    worker = threading.Thread(
        target=provider.reply, args=(command(fake.response_url("bg")), Reply(text="later"))
    )
    worker.start()
    posted = fake.wait_for(lambda: fake.responses("bg"), timeout=5)
    worker.join(timeout=5)
    assert posted[0]["text"] == "later"
    with pytest.raises(TimeoutError, match="calls so far"):
        fake.wait_for(lambda: fake.responses("never"), timeout=0.05)


def test_parse_undoes_slack_escaping_of_command_text(offline: SlackProvider) -> None:
    # Slack sends &, < and > in typed text as &amp;, &lt; and &gt;.
    fields = dict(parse_qsl(fixture("slash_command.txt").decode(), keep_blank_values=True))
    fields["text"] = "declare sev2 Orders &amp; payments &lt;EU&gt; down"
    inbound = offline.parse(signed_request(urlencode(fields).encode()))
    assert inbound.command is not None
    assert inbound.command.text == "declare sev2 Orders & payments <EU> down"
