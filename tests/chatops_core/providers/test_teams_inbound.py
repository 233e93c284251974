"""Teams activities into neutral commands: the documentation's payloads
(tests/fixtures/teams/) and the local Teams' activities, in both modes."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from chatops_core.providers.base import InboundKind, WebhookRequest
from chatops_core.providers.teams.config import TeamsSettings
from chatops_core.providers.teams.inbound import parse
from tests.fakes.teams_server import FakeTeams

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "teams"
SECRET = "dGhlLW91dGdvaW5nLXdlYmhvb2stc2VjdXJpdHktdG9rZW4="


def _fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


def _settings(**extra: Any) -> TeamsSettings:
    values: dict[str, Any] = {
        "outgoing_webhook_secret": SecretStr(SECRET),
        "app_id": "c9e8c047-2a74-40a2-b28b-b262d5f5327c",
        "app_password": SecretStr("pw"),
        "channels": {"incidents": {"webhook_url": "https://example.invalid/workflows/1"}},
    }
    values.update(extra)
    return TeamsSettings(**values)


def _request(data: dict[str, Any] | bytes) -> WebhookRequest:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return WebhookRequest(
        body=body, headers={"Content-Type": "application/json"}, received_at=1_780_000_000.0
    )


@pytest.fixture(scope="module")
def teams() -> Iterator[FakeTeams]:
    with FakeTeams() as fake:
        fake.add_conversation("dm-alice", "personal")
        fake.add_conversation("oncall-chat", "groupChat")
        yield fake


def test_the_documented_channel_message_is_a_webhook_command() -> None:
    request = _request(_fixture("outgoing_webhook_activity.json"))
    inbound = parse("teams", _settings(), request, "webhook")
    assert inbound.kind is InboundKind.COMMAND and inbound.status == 200
    assert inbound.content_type == "application/json"
    assert json.loads(inbound.body) == {
        "type": "message",
        "text": "Working on it: the result will be posted to the incidents channel.",
    }
    assert inbound.dedupe_key == "teams:teams:body:" + hashlib.sha256(request.body).hexdigest()
    command = inbound.command
    assert command is not None
    # The bot's mention is taken off; another person's stays, as a mention.
    assert command.text == "Hello @Jingjing.Xia"
    assert [(p.user_id, p.display) for p in command.mentioned] == [
        (
            "29:1jnFbZYs0qXMLH-O4S9-sDLNc3NVEIMWWnC-q0tVdEa-8BRosfojI35QdNoB-yW8iutWLJzHUm_mqEZSSU8si0Q",
            "Jingjing Xia",
        )
    ]
    assert command.user.user_name == "Richard Moe"
    assert command.user.user_id.startswith("29:1XJKJMvc5GBtc2JwZq0oj8")  # no aadObjectId in the example
    assert command.channel_id == "19:253b1f352670408fb6fe51050b6e5ceb@thread.skype"
    assert command.source == "command"
    assert command.answer_key == "teams:1485983408511"
    assert command.key == "teams:teams:1485983408511"
    assert command.reply_to == {
        "mode": "webhook",
        "conversation_id": "19:253b1f341670408fb6fe51050b6e6ceb@thread.skype;messageid=1485983194839",
    }


def test_without_a_routed_channel_the_notice_says_the_result_follows() -> None:
    settings = _settings(default_channel=None, channels={})
    inbound = parse("teams", settings, _request(_fixture("outgoing_webhook_activity.json")), "webhook")
    assert json.loads(inbound.body)["text"] == "Working on it: the result will follow."


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        ("<at>IncidentBot</at>&nbsp;declare sev2 DB&nbsp;down", "declare sev2 DB down"),
        ("<p><at>IncidentBot</at> declare sev2 <b>DB</b> &amp; cache</p>", "declare sev2 DB & cache"),
        ("<div><at>IncidentBot</at></div><div>status   INC-3</div>", "status INC-3"),
        ("<at>IncidentBot</at> note INC-3 1 &lt; 2", "note INC-3 1 < 2"),
        ("<at>IncidentBot</at>", "help"),
        ("<at>IncidentBot</at>&nbsp;", "help"),
    ],
)
def test_the_command_is_the_text_after_the_mention_as_plain_text(typed: str, command: str) -> None:
    data = _fixture("outgoing_webhook_activity.json")
    bot = data["recipient"]
    data["text"] = typed
    data["entities"] = [{"type": "mention", "mentioned": bot, "text": "<at>IncidentBot</at>"}]
    inbound = parse("teams", _settings(), _request(data), "webhook")
    assert inbound.command is not None and inbound.command.text == command


def test_outgoing_webhook_from_the_local_teams(teams: FakeTeams) -> None:
    outgoing = teams.outgoing_activity("declare sev1 Checkout down", user="bob")
    inbound = parse("teams", _settings(), _request(outgoing.body), "webhook")
    assert inbound.command is not None
    assert inbound.command.text == "declare sev1 Checkout down"
    bob = teams.user("bob")
    assert inbound.command.user.user_id == bob["aadObjectId"]
    assert inbound.command.user.user_name == bob["name"]
    assert inbound.command.channel_name == "incidents"


@pytest.mark.parametrize("conversation", ["incidents", "oncall-chat", "dm-alice"])
def test_bot_messages_in_channels_group_chats_and_personal_chats(teams: FakeTeams, conversation: str) -> None:
    mention = conversation != "dm-alice"  # a personal chat needs no mention
    outgoing = teams.bot_activity("ack INC-7", conversation=conversation, mention=mention)
    inbound = parse("teams", _settings(app_id=teams.app_id), _request(outgoing.body), "bot")
    assert inbound.kind is InboundKind.COMMAND and inbound.status == 200 and inbound.body == b""
    assert inbound.dedupe_key == f"teams:teams:activity:{outgoing.id}"
    command = inbound.command
    assert command is not None and command.text == "ack INC-7" and command.answer_key is None
    assert command.reply_to == {
        "mode": "bot",
        "service_url": teams.service_url,
        "conversation_id": outgoing.data["conversation"]["id"],
        "activity_id": outgoing.id,
    }


def test_a_channel_message_that_does_not_mention_the_bot_is_ignored(teams: FakeTeams) -> None:
    outgoing = teams.bot_activity("ack INC-7", conversation="incidents", mention=False)
    inbound = parse("teams", _settings(app_id=teams.app_id), _request(outgoing.body), "bot")
    assert inbound.kind is InboundKind.IGNORE and inbound.command is None


def test_a_message_from_the_bot_itself_is_ignored(teams: FakeTeams) -> None:
    data = dict(teams.bot_activity("ack INC-7").data)
    data["from"] = {"id": f"28:{teams.app_id}", "name": "IncidentBot"}
    inbound = parse("teams", _settings(app_id=teams.app_id), _request(data), "bot")
    assert inbound.kind is InboundKind.IGNORE


def test_an_action_submit_click_runs_the_action_as_the_clicker() -> None:
    data = _fixture("card_action_activity.json")
    data["value"] = {"chatops": 1, "action": "mitigate", "incident": "INC-7", "version": 3}
    inbound = parse("teams", _settings(), _request(data), "bot")
    command = inbound.command
    assert inbound.kind is InboundKind.COMMAND and inbound.body == b""
    assert command is not None
    assert (command.source, command.text, command.card_version) == ("action", "mitigate INC-7", 3)
    assert command.message_id == "1575667808184"
    assert command.user.user_name == "John Smith"
    assert command.channel_id == "19:malejcou081i20ojmlcau0@thread.skype"
    assert inbound.dedupe_key == "teams:teams:activity:f:5261769396935243054"
    assert command.reply_to["activity_id"] == "f:5261769396935243054"


def test_a_click_from_the_local_teams(teams: FakeTeams) -> None:
    """A card the bot posted through the Bot Connector, clicked as Teams sends the click."""
    data = {"chatops": 1, "action": "resolve", "incident": "INC-2", "version": 5}
    request = urllib.request.Request(
        teams.token_url,
        data=f"grant_type=client_credentials&client_id={teams.app_id}&client_secret={teams.app_password}"
        f"&scope=https%3A%2F%2Fapi.botframework.com%2F.default".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        access = json.loads(resp.read())["access_token"]
    cid = teams.conversation_id("incidents")
    send = urllib.request.Request(
        f"{teams.service_url}v3/conversations/{cid}/activities",
        data=json.dumps({"type": "message", "text": "card"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {access}"},
    )
    with urllib.request.urlopen(send, timeout=5) as resp:
        activity_id = json.loads(resp.read())["id"]
    click = teams.submit_click(activity_id, data, user="carol")
    inbound = parse("teams", _settings(app_id=teams.app_id), _request(click.body), "bot")
    assert inbound.command is not None
    assert (inbound.command.text, inbound.command.message_id) == ("resolve INC-2", activity_id)
    assert inbound.command.card_version == 5


@pytest.mark.parametrize(
    "value",
    [{"property": "propertyValue"}, {"chatops": 2, "action": "ack", "incident": "INC-1"}, "text"],
)
def test_a_value_that_is_not_our_button_is_acknowledged_and_dropped(value: Any) -> None:
    data = _fixture("card_action_activity.json")
    data["value"] = value
    inbound = parse("teams", _settings(), _request(data), "bot")
    assert inbound.kind is InboundKind.IGNORE and inbound.status == 200


@pytest.mark.parametrize(
    "value",
    [
        {"chatops": 1, "action": "delete", "incident": "INC-1"},
        {"chatops": 1, "action": "ack", "incident": "; drop"},
        {"chatops": 1, "action": "ack"},
    ],
)
def test_our_button_with_unknown_data_is_refused(value: Any) -> None:
    data = _fixture("card_action_activity.json")
    data["value"] = value
    with pytest.raises(ValueError):
        parse("teams", _settings(), _request(data), "bot")


def test_a_click_in_webhook_mode_is_ignored() -> None:
    data = _fixture("card_action_activity.json")
    data["value"] = {"chatops": 1, "action": "ack", "incident": "INC-1", "version": 1}
    assert parse("teams", _settings(), _request(data), "webhook").kind is InboundKind.IGNORE


@pytest.mark.parametrize(
    "activity_type", ["conversationUpdate", "invoke", "messageReaction", "installationUpdate", "typing"]
)
def test_other_activity_types_are_answered_with_nothing_enqueued(activity_type: str) -> None:
    data = _fixture("outgoing_webhook_activity.json")
    data["type"] = activity_type
    inbound = parse("teams", _settings(), _request(data), "bot")
    assert (inbound.kind, inbound.status, inbound.command) == (InboundKind.IGNORE, 200, None)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"text": "no type"}',
        "\u00e9".encode("latin-1"),
        b'{"type": "message", "text": "x"}',
    ],
)
def test_unreadable_bodies_are_value_errors(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse("teams", _settings(), _request(body), "bot")
