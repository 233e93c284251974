"""The Slack provider's interactive side: the incident card's controls, clicks, forms, mentions,
direct messages and reactions coming in, and the forms, thread replies, pins and archives
going out (through the real slack_sdk against a local server that plays Slack).

Recorded-shape payloads live in ``tests/fixtures/slack/``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block

from chatops_core.errors import (
    ChannelNotFound,
    InvalidWebhook,
    MessageNotFound,
    OperationNotSupported,
    Permanent,
    ProviderError,
    TriggerExpired,
)
from chatops_core.models import Actor, InboundCommand, MessageRef, Person, PostedText, Reply, Severity, Status
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.base import Capability, Inbound, InboundKind, Provider, WebhookRequest
from chatops_core.providers.slack import SlackProvider, map_slack_error
from chatops_core.providers.slack.actions import decode_metadata, encode_metadata, incident_from_block_id
from chatops_core.providers.slack.render import age
from tests.chatops_core.providers.slack_support import (
    FIXTURES,
    FORM,
    JSON_CT,
    SECRET,
    announcement_blocks,
    announcement_text,
    make_provider,
    make_settings,
)
from tests.fakes.slack_server import FakeSlack, signed_headers

NOW = 1_714_565_700.0
CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BOT = "UBOT0001"
CARD_ACTIONS = {"im:ack", "im:mitigate", "im:resolve", "im:escalate", "im:severity", "im:assign"}


# -- helpers --------------------------------------------------------------------------------


def load(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


def signed(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> WebhookRequest:
    all_headers = {**signed_headers(body, SECRET, int(NOW)), "Content-Type": content_type, **(headers or {})}
    return WebhookRequest(body=body, headers=all_headers, content_type=content_type, received_at=NOW)


def interaction(payload: dict[str, Any]) -> WebhookRequest:
    """An interaction request as Slack sends it: one form field, ``payload``, holding JSON."""
    return signed(urlencode({"payload": json.dumps(payload)}).encode(), FORM)


def event_request(data: dict[str, Any], headers: dict[str, str] | None = None) -> WebhookRequest:
    return signed(json.dumps(data).encode(), JSON_CT, headers)


def parse(prov: SlackProvider, request: WebhookRequest) -> Inbound:
    prov.verify(request)
    return prov.parse(request)


def parsed_command(prov: SlackProvider, request: WebhookRequest) -> InboundCommand:
    inbound = parse(prov, request)
    assert inbound.kind is InboundKind.COMMAND, inbound
    assert (inbound.status, inbound.body) == (200, b"")
    assert inbound.command is not None
    return inbound.command


def snapshot(**overrides: Any) -> IncidentSnapshot:
    values: dict[str, Any] = {
        "id": "INC-12",
        "title": "Database timeouts",
        "severity": Severity.SEV2,
        "status": Status.OPEN,
        "commander": "U2147483697",
        "url": "https://incidents.example.com/incidents/INC-12",
        "created_at": CREATED,
        "version": 3,
    }
    values.update(overrides)
    return IncidentSnapshot(**values)


def card(**overrides: Any) -> Announcement:
    return Announcement(
        type="incident.created",
        incident=snapshot(**overrides),
        actor="U2147483697",
        summary="Declared by Steve",
        incident_url="https://incidents.example.com/incidents/INC-12",
    )


def controls(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    found = [b for b in blocks if b["type"] == "actions"]
    assert len(found) <= 1
    return found[0] if found else None


def element_ids(blocks: list[dict[str, Any]]) -> list[str]:
    block = controls(blocks)
    return [e["action_id"] for e in block["elements"]] if block else []


def command(response_url: str | None, **overrides: Any) -> InboundCommand:
    values: dict[str, Any] = {
        "key": "slack:acme:1",
        "instance": "acme",
        "platform": "slack",
        "text": "declare",
        "user": Actor(user_id="U2147483697", user_name="steve"),
        "channel_id": "C0001",
        "reply_to": {"response_url": response_url} if response_url else {},
    }
    values.update(overrides)
    return InboundCommand(**values)


def triggered(
    trigger_id: str, *, age: float = 0.0, response_url: str = "https://hooks.slack.com/c/1"
) -> InboundCommand:
    """A command typed ``age`` seconds ago whose trigger may open a form."""
    return command(
        None,
        reply_to={"response_url": response_url, "trigger_id": trigger_id, "team_id": "T0001"},
        received_at=datetime.now(UTC) - timedelta(seconds=age),
    )


def submitted(opened: dict[str, Any], values: dict[str, Any], user: str = "U2147483697") -> dict[str, Any]:
    """The view_submission Slack sends when ``user`` submits the view ``opened`` with ``values``."""
    view = {**opened, "state": {"values": values}}
    return {
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "example"},
        "user": {"id": user, "username": "steve", "name": "steve", "team_id": "T0001"},
        "api_app_id": "A0001",
        "trigger_id": "6237462881100.1395872398.0a1b2c3d4e5f",
        "view": view,
    }


# -- the incident card ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "severity", "expected"),
    [
        (Status.OPEN, Severity.SEV2, CARD_ACTIONS),
        (Status.ACKNOWLEDGED, Severity.SEV2, CARD_ACTIONS - {"im:ack"}),
        (Status.MITIGATED, Severity.SEV3, CARD_ACTIONS - {"im:ack", "im:mitigate"}),
        (Status.OPEN, Severity.SEV1, CARD_ACTIONS - {"im:escalate"}),
        (Status.MITIGATED, Severity.SEV1, {"im:resolve", "im:severity", "im:assign"}),
        (Status.RESOLVED, Severity.SEV2, set()),
        (Status.CLOSED, Severity.SEV2, set()),
    ],
)
def test_card_controls_follow_the_status(status: Status, severity: Severity, expected: set[str]) -> None:
    blocks = announcement_blocks(card(status=status, severity=severity))
    ids = element_ids(blocks)
    assert set(ids) == expected
    assert len(ids) == len(set(ids))
    if not expected:
        assert controls(blocks) is None


def test_card_buttons_come_in_order_with_their_styles() -> None:
    block = controls(announcement_blocks(card()))
    assert block is not None
    buttons = [e for e in block["elements"] if e["type"] == "button"]
    assert [(b["action_id"], b["text"]["text"], b.get("style")) for b in buttons] == [
        ("im:ack", "Acknowledge", None),
        ("im:mitigate", "Mitigate", None),
        ("im:resolve", "Resolve", "primary"),
        ("im:escalate", "Escalate", "danger"),
    ]


def test_every_control_names_its_incident() -> None:
    block = controls(announcement_blocks(card(id="INC-4711")))
    assert block is not None
    assert incident_from_block_id(block["block_id"]) == "INC-4711"
    for element in block["elements"]:
        if element["type"] == "button":
            assert element["value"] == "INC-4711"
    # A new block_id for each version of the card, so clients show the new menu choices.
    assert block["block_id"] == "im:INC-4711:v3"
    unversioned = controls(announcement_blocks(card(version=None)))
    assert unversioned is not None and unversioned["block_id"] == "im:INC-12"


def test_card_menus_show_the_current_severity_and_commander() -> None:
    block = controls(announcement_blocks(card(severity=Severity.SEV3, commander="<@U061F7AUR>")))
    assert block is not None
    menus = {e["action_id"]: e for e in block["elements"] if e["type"] != "button"}
    severity = menus["im:severity"]
    assert severity["type"] == "static_select"
    assert [o["value"] for o in severity["options"]] == ["sev1", "sev2", "sev3", "sev4"]
    assert [o["text"]["text"] for o in severity["options"]] == ["SEV-1", "SEV-2", "SEV-3", "SEV-4"]
    assert severity["initial_option"]["value"] == "sev3"
    assign = menus["im:assign"]
    assert assign["type"] == "users_select"
    assert assign["placeholder"]["text"] == "Commander"
    assert assign["initial_user"] == "U061F7AUR"
    nobody = controls(announcement_blocks(card(commander=None)))
    assert nobody is not None
    assert "initial_user" not in [e for e in nobody["elements"] if e["action_id"] == "im:assign"][0]
    named = controls(announcement_blocks(card(commander="steve")))
    assert named is not None
    assert "initial_user" not in [e for e in named["elements"] if e["action_id"] == "im:assign"][0]


@pytest.mark.parametrize("status", list(Status))
def test_card_is_valid_block_kit(status: Status) -> None:
    blocks = announcement_blocks(card(status=status, title="<!channel> & " + "x" * 300))
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        assert parsed.to_dict() == block  # to_dict() validates against Block Kit's limits
    assert len(blocks) <= 50


def test_card_shows_its_age_and_link() -> None:
    blocks = announcement_blocks(card(), now=CREATED + timedelta(minutes=5, seconds=20))
    context = [b for b in blocks if b["type"] == "context"][0]
    text = context["elements"][0]["text"]
    assert "<https://incidents.example.com/incidents/INC-12|Open INC-12>" in text
    assert f"declared <!date^{int(CREATED.timestamp())}^{{ago}}|5 min ago>" in text


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=-30), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(minutes=1), "1 min ago"),
        (timedelta(minutes=59, seconds=59), "59 min ago"),
        (timedelta(hours=2, minutes=10), "2 h ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=3, hours=5), "3 days ago"),
    ],
)
def test_age(delta: timedelta, expected: str) -> None:
    assert age(CREATED, CREATED + delta) == expected


def test_card_keeps_its_text_fallback() -> None:
    assert announcement_text(card()) == (
        "Incident declared: [SEV-2] INC-12 Database timeouts (open) — Declared by Steve"
    )


def test_announced_card_carries_its_controls(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.announce("#incidents", card())
    (message,) = fake.messages("incidents")
    assert set(element_ids(message["blocks"])) == CARD_ACTIONS
    assert "INC-12" in message["text"]


# -- clicks (block_actions) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "form"),
    [
        ("block_actions_ack.json", "ack INC-12", None),
        ("block_actions_mitigate.json", "mitigate INC-12", None),
        ("block_actions_resolve.json", "resolve INC-12", "resolve"),
        ("block_actions_escalate.json", "escalate INC-12", None),
        ("block_actions_severity.json", "escalate INC-12 sev1", None),
        ("block_actions_assign.json", "assign INC-12 <@U061F7AUR>", None),
    ],
)
def test_parse_card_clicks(name: str, text: str, form: str | None, offline: SlackProvider) -> None:
    payload = load(name)
    cmd = parsed_command(offline, interaction(payload))
    action = payload["actions"][0]
    assert (cmd.text, cmd.form, cmd.source) == (text, form, "action")
    assert cmd.key == f"slack:acme:action:{action['action_ts']}"
    assert cmd.user == Actor(user_id="U2147483697", user_name="steve")
    assert (cmd.channel_id, cmd.channel_name) == ("C0001", "incidents")
    assert cmd.message_id == "1714564800.000100"
    assert cmd.reply_to == {
        "response_url": payload["response_url"],
        "trigger_id": payload["trigger_id"],
        "team_id": "T0001",
    }
    assert cmd.thread_id is None and cmd.description is None
    assert cmd.received_at == datetime.fromtimestamp(NOW, tz=UTC)


def test_parse_open_form_click_on_an_ephemeral_message(offline: SlackProvider) -> None:
    payload = load("block_actions_open_form.json")
    assert "message" not in payload  # Slack sends no message for an ephemeral one
    cmd = parsed_command(offline, interaction(payload))
    assert (cmd.text, cmd.form, cmd.source) == ("declare", "declare", "action")
    assert cmd.message_id == "1714564800.000100"  # from the container
    resolve = parsed_command(offline, interaction(load("block_actions_open_form_resolve.json")))
    assert (resolve.text, resolve.form) == ("resolve INC-12", "resolve")


def test_parse_unknown_click_is_acknowledged(offline: SlackProvider) -> None:
    inbound = parse(offline, interaction(load("block_actions_unknown.json")))
    assert (inbound.kind, inbound.status, inbound.body) == (InboundKind.IGNORE, 200, b"")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p: p["actions"][0].update(selected_option=None), id="severity-cleared"),
        pytest.param(
            lambda p: p["actions"][0]["selected_option"].update(value="sev9"), id="unknown-severity"
        ),
        pytest.param(lambda p: p["actions"][0].update(block_id="Xy1+"), id="block-without-incident"),
    ],
)
def test_parse_unusable_severity_choice_is_ignored(change: Any, offline: SlackProvider) -> None:
    payload = load("block_actions_severity.json")
    change(payload)
    assert parse(offline, interaction(payload)).kind is InboundKind.IGNORE


def test_parse_click_without_action_ts_keys_on_the_trigger(offline: SlackProvider) -> None:
    payload = load("block_actions_ack.json")
    del payload["actions"][0]["action_ts"]
    cmd = parsed_command(offline, interaction(payload))
    assert cmd.key == f"slack:acme:action:{payload['trigger_id']}"


def test_parse_button_falls_back_to_the_block_id(offline: SlackProvider) -> None:
    payload = load("block_actions_ack.json")
    del payload["actions"][0]["value"]
    assert parsed_command(offline, interaction(payload)).text == "ack INC-12"


def test_parse_block_actions_without_actions_or_user(offline: SlackProvider) -> None:
    empty = load("block_actions_ack.json")
    empty["actions"] = []
    assert parse(offline, interaction(empty)).kind is InboundKind.IGNORE
    anonymous = load("block_actions_ack.json")
    del anonymous["user"]
    with pytest.raises(InvalidWebhook) as info:
        parse(offline, interaction(anonymous))
    assert info.value.http_status == 400


def test_parse_legacy_click_fixture_is_still_ignored(offline: SlackProvider) -> None:
    # The older fixture's button ("ack", block "incident-12") is not one of ours.
    body = (FIXTURES / "block_actions.txt").read_bytes().rstrip(b"\n")
    assert parse(offline, signed(body, FORM)).kind is InboundKind.IGNORE


# -- forms (view_submission) ----------------------------------------------------------------


def test_parse_declare_form(offline: SlackProvider) -> None:
    payload = load("view_submission_declare.json")
    cmd = parsed_command(offline, interaction(payload))
    # Typed text arrives unescaped; surrounding spaces go.
    assert cmd.text == "declare sev2 Checkout errors & timeouts <EU>"
    assert cmd.description == "Checkout p99 above 4s since 10:40.\nEU only."
    assert (cmd.source, cmd.form) == ("form", None)
    assert cmd.user == Actor(user_id="U2147483697", user_name="steve")
    assert (cmd.channel_id, cmd.channel_name) == ("C0001", "incidents")
    assert cmd.reply_to["response_url"] == (
        "https://hooks.slack.com/commands/T0001/6246771400001/kq1hZ0CwYvUu8sXbJ3mD"
    )
    assert cmd.key == "slack:acme:view:V06ABCD1234:1714565200.Xb3ZqL2w"
    assert cmd.reply_to["trigger_id"] == payload["trigger_id"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("view_submission_declare_empty_title.json", "Give the incident a title"),
        ("view_submission_declare_too_long.json", "200 characters or fewer (this one has 201)"),
    ],
)
def test_parse_declare_form_refuses_a_bad_title(name: str, fragment: str, offline: SlackProvider) -> None:
    inbound = parse(offline, interaction(load(name)))
    assert inbound.kind is InboundKind.ANSWER
    assert inbound.status == 200
    assert inbound.content_type.startswith("application/json")
    answer = json.loads(inbound.body)
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["title"]
    assert fragment in answer["errors"]["title"]
    assert inbound.command is None


def test_parse_declare_form_title_limit_counts_after_trimming(offline: SlackProvider) -> None:
    payload = load("view_submission_declare.json")
    payload["view"]["state"]["values"]["title"]["title"]["value"] = "   " + "y" * 200 + "  "
    assert parsed_command(offline, interaction(payload)).text == "declare sev2 " + "y" * 200


def test_parse_declare_form_without_severity_or_description(offline: SlackProvider) -> None:
    payload = load("view_submission_declare.json")
    values = payload["view"]["state"]["values"]
    values["severity"]["severity"]["selected_option"] = None
    values["description"]["description"]["value"] = None
    values["title"]["title"]["value"] = "P1 checkout down"
    cmd = parsed_command(offline, interaction(payload))
    # The severity always leads, so a title that opens with "P1" stays a title.
    assert cmd.text == "declare sev3 P1 checkout down"
    assert cmd.description is None


def test_parse_resolve_form(offline: SlackProvider) -> None:
    cmd = parsed_command(offline, interaction(load("view_submission_resolve.json")))
    assert cmd.text == "resolve INC-12 Raised the connection pool to 200.\nWatching for an hour."
    assert (cmd.source, cmd.channel_id) == ("form", "C0001")
    assert cmd.reply_to["response_url"] == (
        "https://hooks.slack.com/actions/T0001/6246771408736/Zn8pX2jvRMH8b1nTlVZCv6sQ"
    )
    assert cmd.key == "slack:acme:view:V06ABCD5678:1714565300.Qw9PzT1k"


def test_parse_resolve_form_without_note(offline: SlackProvider) -> None:
    payload = load("view_submission_resolve.json")
    payload["view"]["state"]["values"]["note"]["note"]["value"] = None
    assert parsed_command(offline, interaction(payload)).text == "resolve INC-12"


def test_parse_resolve_form_that_lost_its_incident(offline: SlackProvider) -> None:
    payload = load("view_submission_resolve.json")
    payload["view"]["private_metadata"] = json.dumps({"channel_id": "C0001"})
    inbound = parse(offline, interaction(payload))
    assert inbound.kind is InboundKind.ANSWER
    assert list(json.loads(inbound.body)["errors"]) == ["note"]


def test_parse_form_with_unreadable_metadata(offline: SlackProvider) -> None:
    payload = load("view_submission_declare.json")
    payload["view"]["private_metadata"] = "not json"
    cmd = parsed_command(offline, interaction(payload))
    assert (cmd.channel_id, cmd.reply_to.get("response_url")) == (None, None)


def test_parse_form_without_hash_keys_on_the_trigger(offline: SlackProvider) -> None:
    payload = load("view_submission_declare.json")
    del payload["view"]["hash"]
    cmd = parsed_command(offline, interaction(payload))
    assert cmd.key == f"slack:acme:view:V06ABCD1234:{payload['trigger_id']}"


def test_parse_closed_and_unknown_views_are_acknowledged(offline: SlackProvider) -> None:
    closed = parse(offline, interaction(load("view_closed.json")))
    assert (closed.kind, closed.status, closed.body) == (InboundKind.IGNORE, 200, b"")
    other = load("view_submission_declare.json")
    other["view"]["callback_id"] = "someone_elses_form"
    assert parse(offline, interaction(other)).kind is InboundKind.IGNORE
    shortcut = {"type": "shortcut", "callback_id": "x", "user": {"id": "U1"}, "trigger_id": "1.2.a"}
    assert parse(offline, interaction(shortcut)).kind is InboundKind.IGNORE


# -- Events API -----------------------------------------------------------------------------


def test_parse_mention_in_a_channel(offline: SlackProvider) -> None:
    data = load("event_app_mention_channel.json")
    inbound = parse(offline, event_request(data))
    assert inbound.kind is InboundKind.COMMAND
    assert (inbound.status, inbound.body) == (200, b"")
    assert inbound.dedupe_key == "Ev0701A1B2C3"
    cmd = inbound.command
    assert cmd is not None
    # The mention goes, and Slack's escaping is undone.
    assert cmd.text == "declare sev2 Orders & payments <EU> failing"
    assert (cmd.source, cmd.user, cmd.channel_id) == ("mention", Actor(user_id="U2147483697"), "C0001")
    assert cmd.thread_id == "1714565400.000200"  # answered in a thread under the mention
    assert cmd.key == "slack:acme:event:Ev0701A1B2C3"
    # No way to answer but the thread, and no form to open.
    assert cmd.reply_to == {"team_id": "T0001"} and cmd.form is None


def test_parse_mention_in_a_thread(offline: SlackProvider) -> None:
    cmd = parsed_command(offline, event_request(load("event_app_mention_thread.json")))
    assert cmd.text == "assign INC-12 <@U061F7AUR>"  # other people's mentions stay
    assert cmd.thread_id == "1714564800.000100"


def test_parse_direct_message(offline: SlackProvider) -> None:
    inbound = parse(offline, event_request(load("event_message_im.json")))
    assert inbound.dedupe_key == "Ev0701G7H8I9"
    cmd = inbound.command
    assert cmd is not None
    assert (cmd.text, cmd.source, cmd.channel_id) == ("status INC-12", "mention", "D0701AB12CD")
    assert cmd.thread_id is None  # answered in the conversation itself


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@UBOT0001> ack INC-4", "ack INC-4"),
        ("<@UBOT0001|incident-bot>   ack INC-4  ", "ack INC-4"),
        ("hey <@UBOT0001> what's open?", "hey what's open?"),
        ("<@UBOT0001>", ""),
        ("note INC-4 ping <@U061F7AUR> &amp; <@UBOT0001>", "note INC-4 ping <@U061F7AUR> &"),
    ],
)
def test_mention_text(text: str, expected: str, offline: SlackProvider) -> None:
    data = load("event_app_mention_channel.json")
    data["event"]["text"] = text
    assert parsed_command(offline, event_request(data)).text == expected


def test_mention_without_knowing_the_bot_drops_the_leading_mention(offline: SlackProvider) -> None:
    # The older fixture has no authorizations and the settings name no bot.
    cmd = parsed_command(offline, event_request(load("event_callback_app_mention.json")))
    assert cmd.text == "declare sev1 checkout is down"
    assert cmd.user.user_id == "U061F7AUR"


@pytest.mark.parametrize(
    "name", ["event_message_bot.json", "event_message_own_user.json", "event_message_changed.json"]
)
def test_parse_ignores_bots_and_edits(name: str, offline: SlackProvider) -> None:
    data = load(name)
    inbound = parse(offline, event_request(data))
    assert (inbound.kind, inbound.status, inbound.body) == (InboundKind.IGNORE, 200, b"")
    assert inbound.dedupe_key == data["event_id"]


def test_parse_ignores_the_bot_named_in_settings(fake: FakeSlack) -> None:
    data = load("event_message_own_user.json")
    data["event"]["user"] = "UOTHERBOT"
    del data["authorizations"]
    prov = make_provider(make_settings(bot_user_id="UOTHERBOT"))
    assert parse(prov, event_request(data)).kind is InboundKind.IGNORE
    assert parse(make_provider(make_settings()), event_request(data)).kind is InboundKind.COMMAND


def test_parse_a_persons_authorization_is_not_the_bot(offline: SlackProvider) -> None:
    # Slack's own examples show an authorization for a person (is_bot false): their messages count.
    data = load("event_message_im.json")
    data["authorizations"] = [{"team_id": "T0001", "user_id": "U2147483697", "is_bot": False}]
    assert parse(offline, event_request(data)).kind is InboundKind.COMMAND


def test_parse_ignores_messages_outside_direct_messages(offline: SlackProvider) -> None:
    data = load("event_message_im.json")
    data["event"]["channel_type"] = "channel"
    data["event"]["channel"] = "C0001"
    inbound = parse(offline, event_request(data))
    assert (inbound.kind, inbound.dedupe_key) == (InboundKind.IGNORE, "Ev0701G7H8I9")


def test_parse_timeline_reaction(offline: SlackProvider) -> None:
    inbound = parse(offline, event_request(load("event_reaction_pushpin.json")))
    assert inbound.dedupe_key == "Ev0701S1T2U3"
    cmd = inbound.command
    assert cmd is not None
    assert (cmd.source, cmd.text, cmd.user.user_id) == ("reaction", "", "U061F7AUR")
    assert (cmd.channel_id, cmd.message_id) == ("C0701INC12", "1714565600.000800")
    assert cmd.key == "slack:acme:event:Ev0701S1T2U3"


def test_parse_other_reactions_are_ignored(offline: SlackProvider) -> None:
    inbound = parse(offline, event_request(load("event_reaction_other.json")))
    assert (inbound.kind, inbound.dedupe_key) == (InboundKind.IGNORE, "Ev0701V4W5X6")
    eyes = make_provider(make_settings(timeline_reaction=":eyes:"))
    assert parse(eyes, event_request(load("event_reaction_other.json"))).kind is InboundKind.COMMAND
    assert parse(eyes, event_request(load("event_reaction_pushpin.json"))).kind is InboundKind.IGNORE


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda e: e["item"].update(type="file"), id="not-a-message"),
        pytest.param(lambda e: e.update(user=BOT), id="by-the-bot"),
        pytest.param(lambda e: e["item"].pop("ts"), id="no-ts"),
    ],
)
def test_parse_unusable_reactions_are_ignored(change: Any, offline: SlackProvider) -> None:
    data = load("event_reaction_pushpin.json")
    change(data["event"])
    assert parse(offline, event_request(data)).kind is InboundKind.IGNORE


def test_parse_pushpin_with_a_skin_tone(offline: SlackProvider) -> None:
    data = load("event_reaction_pushpin.json")
    data["event"]["reaction"] = "pushpin::skin-tone-3"
    assert parse(offline, event_request(data)).kind is InboundKind.COMMAND


def test_retried_event_has_the_same_dedupe_key(offline: SlackProvider) -> None:
    data = load("event_app_mention_channel.json")
    first = parse(offline, event_request(data))
    retries = [
        parse(
            offline,
            event_request(data, {"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"}),
        )
        for n in (1, 2, 3)
    ]
    for retry in retries:
        assert retry.kind is InboundKind.COMMAND
        assert retry.dedupe_key == first.dedupe_key == "Ev0701A1B2C3"
        assert retry.command is not None and first.command is not None
        assert retry.command.key == first.command.key
        assert retry.command.text == first.command.text


def test_other_events_are_acknowledged_with_their_key(offline: SlackProvider) -> None:
    data = load("event_app_mention_channel.json")
    data["event"] = {"type": "channel_created", "channel": {"id": "C9", "name": "x"}}
    inbound = parse(offline, event_request(data))
    assert (inbound.kind, inbound.dedupe_key) == (InboundKind.IGNORE, "Ev0701A1B2C3")
    del data["event"]
    assert parse(offline, event_request(data)).kind is InboundKind.IGNORE


# -- forms going out ------------------------------------------------------------------------

CONTEXT = {"channel_id": "C0001", "channel_name": "incidents", "response_url": "https://hooks.slack.com/c/1"}


FORM_CONTEXT = {"channel_id": "C0001", "channel_name": "incidents"}


def test_open_declare_form(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.open_form(triggered("123.456.abc"), "declare", incident_id=None, context=FORM_CONTEXT)
    (opened,) = fake.views()
    assert opened["trigger_id"] == "123.456.abc"
    view = opened["view"]
    assert view["type"] == "modal" and view["callback_id"] == "im:declare"
    assert [b["block_id"] for b in view["blocks"]] == ["title", "severity", "description"]
    assert [b.get("optional", False) for b in view["blocks"]] == [False, False, True]
    assert view["blocks"][0]["element"]["max_length"] == 200
    assert view["blocks"][1]["element"]["initial_option"]["value"] == "sev3"
    assert view["blocks"][2]["element"]["multiline"] is True
    assert decode_metadata(view["private_metadata"]) == CONTEXT


def test_open_resolve_form(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.open_form(triggered("123.456.abd"), "resolve", incident_id="INC-12", context=FORM_CONTEXT)
    view = fake.views()[0]["view"]
    assert view["callback_id"] == "im:resolve"
    assert view["title"]["text"] == "Resolve INC-12"
    assert [b["block_id"] for b in view["blocks"]] == ["note"]
    assert decode_metadata(view["private_metadata"]) == {**CONTEXT, "incident_id": "INC-12"}
    with pytest.raises(ProviderError):
        provider.open_form(triggered("123.456.abe"), "resolve", incident_id=None, context=FORM_CONTEXT)


def test_long_incident_id_keeps_the_modal_title_short(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.open_form(triggered("123.456.abf"), "resolve", incident_id="INC-123456789012345678", context={})
    assert len(fake.views()[0]["view"]["title"]["text"]) <= 24


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda fake: fake.expire_triggers(), "expired_trigger_id"),
        (lambda fake: fake.expire_triggers("123.456.abc"), "expired_trigger_id"),
        (lambda fake: None, "exchanged_trigger_id"),
    ],
)
def test_open_form_with_a_dead_trigger(
    setup: Any, code: str, provider: SlackProvider, fake: FakeSlack
) -> None:
    if code == "exchanged_trigger_id":
        provider.open_form(triggered("123.456.abc"), "declare", incident_id=None, context=FORM_CONTEXT)
    setup(fake)
    with pytest.raises(TriggerExpired) as info:
        provider.open_form(triggered("123.456.abc"), "declare", incident_id=None, context=FORM_CONTEXT)
    assert isinstance(info.value, Permanent)
    assert info.value.details["slack_error"] == code
    assert fake.calls("views.open")[-1].error == code


def test_open_form_with_a_malformed_trigger(provider: SlackProvider) -> None:
    with pytest.raises(TriggerExpired):
        provider.open_form(triggered("not-a-trigger"), "declare", incident_id=None, context=FORM_CONTEXT)


@pytest.mark.parametrize("age", [2.5, 3.0, 60.0])
def test_a_trigger_too_old_opens_no_form(age: float, provider: SlackProvider, fake: FakeSlack) -> None:
    # A trigger_id lives 3 s: one this old is not even tried.
    with pytest.raises(TriggerExpired):
        provider.open_form(
            triggered("123.456.abc", age=age), "declare", incident_id=None, context=FORM_CONTEXT
        )
    assert fake.views() == [] and fake.calls("views.open") == []


def test_a_command_without_a_trigger_opens_no_form(provider: SlackProvider, fake: FakeSlack) -> None:
    with pytest.raises(TriggerExpired):
        provider.open_form(command(None), "declare", incident_id=None, context=FORM_CONTEXT)
    assert fake.calls("views.open") == []


def test_submitting_an_opened_form_round_trips(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.open_form(triggered("123.456.abc"), "declare", incident_id=None, context=FORM_CONTEXT)
    opened = fake.views()[0]["view"]
    values = {
        "title": {"title": {"type": "plain_text_input", "value": "Queue backlog"}},
        "severity": {"severity": {"type": "static_select", "selected_option": {"value": "sev1"}}},
        "description": {"description": {"type": "plain_text_input", "value": None}},
    }
    cmd = parsed_command(provider, interaction(submitted(opened, values)))
    assert cmd.text == "declare sev1 Queue backlog"
    # The way to answer the person comes back with the form.
    assert (cmd.channel_id, cmd.channel_name, cmd.reply_to["response_url"]) == (
        "C0001",
        "incidents",
        "https://hooks.slack.com/c/1",
    )
    assert cmd.key == f"slack:acme:view:{opened['id']}:{opened['hash']}"


def test_metadata_stays_within_slacks_limit() -> None:
    context = {"channel_id": "C0001", "channel_name": "n" * 2000, "response_url": "https://h/" + "r" * 2000}
    text = encode_metadata(context, "INC-12")
    assert len(text) <= 3000
    assert decode_metadata(text)["channel_id"] == "C0001"
    assert decode_metadata(text)["incident_id"] == "INC-12"
    huge = encode_metadata({"channel_id": "C0001", "other": "x" * 5000}, "INC-1")
    assert decode_metadata(huge) == {"channel_id": "C0001", "incident_id": "INC-1"}


def test_offer_form_through_the_response_url(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.offer_form(command(fake.response_url("r"), source="action"), "resolve", "INC-12")
    (posted,) = fake.responses("r")
    assert posted["response_type"] == "ephemeral"
    assert posted["replace_original"] is False
    assert "INC-12" in posted["text"]
    block = posted["blocks"][-1]
    (button,) = block["elements"]
    assert (button["action_id"], button["value"], button["text"]["text"]) == (
        "im:open_form",
        "resolve",
        "Open the form",
    )
    assert incident_from_block_id(block["block_id"]) == "INC-12"
    # Clicking the button asks for the form again, with a fresh trigger.
    click = load("block_actions_open_form_resolve.json")
    click["actions"][0].update(block_id=block["block_id"], value=button["value"])
    again = parsed_command(provider, interaction(click))
    assert (again.text, again.form) == ("resolve INC-12", "resolve")


def test_offer_form_without_a_response_url(provider: SlackProvider, fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    provider.offer_form(command(None, channel_id=channel), "declare", None)
    (message,) = fake.ephemeral_messages("incidents")
    assert message["user"] == "U2147483697"
    (button,) = message["blocks"][-1]["elements"]
    assert (button["action_id"], button["value"]) == ("im:open_form", "declare")
    assert "block_id" not in message["blocks"][-1]
    with pytest.raises(ProviderError):
        provider.offer_form(command(None, channel_id=None), "declare", None)


# -- replies --------------------------------------------------------------------------------


def test_reply_to_a_click_never_replaces_the_card(provider: SlackProvider, fake: FakeSlack) -> None:
    provider.reply(command(fake.response_url("r"), source="action"), Reply(text="INC-12 is already resolved"))
    (posted,) = fake.responses("r")
    assert posted["response_type"] == "ephemeral"
    assert posted["replace_original"] is False
    provider.reply(command(fake.response_url("s"), source="command"), Reply(text="ok"))
    assert "replace_original" not in fake.responses("s")[0]


def test_reply_in_thread(provider: SlackProvider, fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    parent = fake.add_message("incidents", "<@UBOT0001> status INC-12")
    ref = provider.reply_in_thread(channel, parent, Reply(text="INC-12 is *open*"))
    assert ref.channel_id == channel
    posted = [m for m in fake.messages("incidents") if m["ts"] == ref.message_id][0]
    assert posted["thread_ts"] == parent
    assert posted["text"] == "INC-12 is *open*"
    assert posted["blocks"][0]["type"] == "section"


def test_reply_in_a_direct_message(provider: SlackProvider, fake: FakeSlack) -> None:
    dm = fake.add_im("U2147483697")
    ref = provider.reply_in_thread(dm, None, Reply(text="nothing open"))
    (message,) = fake.messages(dm)
    assert message["ts"] == ref.message_id and message["thread_ts"] is None
    assert "thread_ts" not in fake.calls("chat.postMessage")[0].params


# -- pins, archives, messages ---------------------------------------------------------------


def test_pin(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.announce("#incidents", card())
    provider.pin(ref.channel_id, ref.message_id)
    provider.pin(ref.channel_id, ref.message_id)  # already_pinned is fine
    assert fake.messages("incidents")[0]["pinned"] is True
    assert [c.error for c in fake.calls("pins.add")] == [None, "already_pinned"]
    with pytest.raises(MessageNotFound):
        provider.pin(ref.channel_id, "1.000009")


def test_archive(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.create_channel("inc-12-database-timeouts")
    provider.archive(ref.channel_id)
    provider.archive(ref.channel_id)  # already_archived is fine
    channel = fake.channel(ref.channel_id)
    assert channel is not None and channel["is_archived"] is True
    assert [c.error for c in fake.calls("conversations.archive")] == [None, "already_archived"]
    with pytest.raises(ChannelNotFound):
        provider.archive("C9999")
    with pytest.raises(ProviderError) as info:
        provider.archive(fake.channel_id("general"))
    assert info.value.details["slack_error"] == "cant_archive_general"


def test_message_text(provider: SlackProvider, fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    first = fake.add_message("incidents", "rolled back 10:40 deploy", user="U061F7AUR")
    fake.add_message("incidents", "later message", user="U2147483697")
    fake.add_user("U061F7AUR", "erin")
    assert provider.message_text(channel, first) == PostedText(
        author=Person(instance="acme", user_id="U061F7AUR", display="erin"),
        text="rolled back 10:40 deploy",
        at=datetime.fromtimestamp(float(first), tz=UTC),
    )
    (call,) = fake.calls("conversations.history")
    assert call.params["latest"] == first
    assert call.params["inclusive"] in ("1", "true", True)
    assert call.params["limit"] == "1"


def test_message_text_of_a_thread_reply(provider: SlackProvider, fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    parent = fake.add_message("incidents", "what changed?", user="U2147483697")
    reply = fake.add_message("incidents", "the pool size", user="U061F7AUR", thread_ts=parent)
    posted = provider.message_text(channel, reply)
    assert (posted.author and posted.author.user_id, posted.text) == ("U061F7AUR", "the pool size")
    assert [c.method for c in fake.calls()] == [
        "conversations.history",
        "conversations.replies",
        "users.info",
    ]


def test_message_text_of_someone_slack_will_not_name(provider: SlackProvider, fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    first = fake.add_message("incidents", "rolled back", user="U061F7AUR")
    fake.fail("users.info", status=200, body={"ok": False, "error": "missing_scope"})
    posted = provider.message_text(channel, first)
    assert posted.author == Person(instance="acme", user_id="U061F7AUR", display="U061F7AUR")


def test_message_text_of_the_bots_own_post(provider: SlackProvider, fake: FakeSlack) -> None:
    ref = provider.announce("#incidents", card())
    posted = provider.message_text(ref.channel_id, ref.message_id)
    assert posted.author is not None and posted.author.user_id == BOT and "INC-12" in posted.text


def test_message_text_not_found(provider: SlackProvider, fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    fake.add_message("incidents", "older", user="U061F7AUR")
    with pytest.raises(MessageNotFound):
        provider.message_text(channel, "9999999999.000001")
    with pytest.raises(ChannelNotFound):
        provider.message_text("C9999", "1.000001")


# -- errors and the interface ---------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id", "trigger_exchanged"]
)
def test_trigger_codes_map_to_trigger_expired(code: str) -> None:
    class Response:
        status_code = 200
        headers: ClassVar[dict[str, str]] = {}
        data: ClassVar[dict[str, Any]] = {"ok": False, "error": code}

    mapped = map_slack_error(SlackApiError("failed", Response()), method="views.open")
    assert type(mapped) is TriggerExpired
    assert not mapped.retryable


def test_invalid_arguments_naming_the_trigger_is_trigger_expired(
    provider: SlackProvider, fake: FakeSlack
) -> None:
    fake.fail(
        "views.open",
        status=200,
        body={
            "ok": False,
            "error": "invalid_arguments",
            "response_metadata": {"messages": ["invalid `trigger_id`"]},
        },
    )
    with pytest.raises(TriggerExpired):
        provider.open_form(triggered("123.456.abc"), "declare", incident_id=None, context={})


def test_providers_without_these_operations_say_so() -> None:
    class Minimal(Provider):
        type: ClassVar[str] = "minimal"
        capabilities: ClassVar[frozenset[Capability]] = frozenset()

        def verify(self, request: WebhookRequest) -> None:
            return None

        def parse(self, request: WebhookRequest) -> Inbound:
            return Inbound(kind=InboundKind.IGNORE)

        def health(self) -> str:
            return "ok"

        def reply(self, command: InboundCommand, reply: Reply) -> None:
            return None

        def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
            return MessageRef(channel_id=channel, message_id="1")

    minimal = Minimal("m", None)
    calls = [
        lambda: minimal.open_form(triggered("1.2.a"), "declare", incident_id=None, context={}),
        lambda: minimal.offer_form(command(None), "declare", None),
        lambda: minimal.reply_in_thread("C1", None, Reply(text="x")),
        lambda: minimal.message_text("C1", "1.1"),
        lambda: minimal.pin("C1", "1.1"),
        lambda: minimal.archive("C1"),
        lambda: minimal.update_announcement(MessageRef(channel_id="C1", message_id="1.1"), card()),
        lambda: minimal.create_channel("inc-1"),
    ]
    for call in calls:
        with pytest.raises(OperationNotSupported):
            call()


def test_slack_declares_interactive_and_mentions(offline: SlackProvider) -> None:
    assert offline.supports(Capability.FORMS)
    assert offline.supports(Capability.BUTTONS)
    assert offline.supports(Capability.MENTIONS)


# -- which card a click was made on, and who a mention names ---------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "block_actions_ack.json",
        "block_actions_mitigate.json",
        "block_actions_resolve.json",
        "block_actions_escalate.json",
        "block_actions_severity.json",
        "block_actions_assign.json",
    ],
)
def test_a_click_carries_the_version_of_its_card(name: str, offline: SlackProvider) -> None:
    payload = load(name)
    assert parsed_command(offline, interaction(payload)).card_version == 1
    payload["actions"][0]["block_id"] = "im:INC-12:v7"
    assert parsed_command(offline, interaction(payload)).card_version == 7
    payload["actions"][0]["block_id"] = "im:INC-12"
    assert parsed_command(offline, interaction(payload)).card_version is None


def test_a_commander_chosen_from_the_menu_is_a_person_of_this_workspace(offline: SlackProvider) -> None:
    cmd = parsed_command(offline, interaction(load("block_actions_assign.json")))
    assert cmd.text == "assign INC-12 <@U061F7AUR>"
    assert [p.model_dump() for p in cmd.mentioned] == [
        {"instance": "acme", "user_id": "U061F7AUR", "display": "U061F7AUR"}
    ]


@pytest.mark.parametrize(("typed", "display"), [("<@U061F7AUR|erin>", "erin"), ("<@U061F7AUR>", "U061F7AUR")])
def test_a_typed_mention_is_a_person_of_this_workspace(
    typed: str, display: str, offline: SlackProvider
) -> None:
    body = urlencode(
        {"command": "/im", "user_id": "U2147483697", "text": f"assign INC-12 {typed}", "trigger_id": "1.2.3"}
    ).encode()
    cmd = parsed_command(offline, signed(body, FORM))
    assert cmd.text == f"assign INC-12 {typed}"
    assert [p.model_dump() for p in cmd.mentioned] == [
        {"instance": "acme", "user_id": "U061F7AUR", "display": display}
    ]
