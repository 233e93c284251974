"""The Mattermost provider through its real REST client against the local Mattermost
(``tests/fakes/mattermost_server.py``): requests are built the way Mattermost sends them,
cards are clicked as posted, and every effect is checked in the fake's state and calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from chatops_core.errors import InvalidWebhook, Permanent, RateLimited, TriggerExpired
from chatops_core.models import Actor, InboundCommand, Incident, Person, Reply, Severity, Status
from chatops_core.notifications import Announcement, IncidentSnapshot, Notification
from chatops_core.providers.base import Capability, InboundKind, WebhookRequest
from chatops_core.providers.mattermost import DELIVERY_PROP, PROVIDER, MattermostProvider
from chatops_core.providers.mattermost.config import MattermostSettings
from chatops_core.providers.mattermost.errors import MissingPermission
from chatops_core.providers.mattermost.verify import verify_context
from tests.fakes.mattermost_server import (
    DEFAULT_OUTGOING_TOKEN,
    FakeMattermost,
    Outgoing,
    button_click_payload,
    trigger_word_of,
)

SECRET = "buttons-key-0123456789abcdefghij"
WEBHOOK_URL = "https://chatops.example.com/webhooks/mm"
CREATED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def mm() -> Iterator[FakeMattermost]:
    with FakeMattermost() as server:
        yield server


def _settings(mm: FakeMattermost, **extra: Any) -> MattermostSettings:
    return MattermostSettings(
        url=mm.url,
        bot_token=SecretStr(mm.token),
        command_token=SecretStr(mm.command_token),
        actions_secret=SecretStr(SECRET),
        team_id=mm.team_id,
        webhook_url=WEBHOOK_URL,
        timeout=5,
        **extra,
    )


@pytest.fixture
def provider(mm: FakeMattermost) -> Iterator[MattermostProvider]:
    made = MattermostProvider("mm", _settings(mm))
    yield made
    made.close()


def _request(outgoing: Outgoing, **headers: str) -> WebhookRequest:
    return WebhookRequest(body=outgoing.body, headers={**outgoing.headers, **headers})


def _announcement(
    status: Status = Status.OPEN,
    severity: Severity = Severity.SEV2,
    *,
    version: int = 1,
    commander: tuple[str, str, str] | None = None,
    kind: str = "incident.created",
) -> Announcement:
    who = {}
    if commander is not None:
        who = dict(commander=commander[0], commander_instance=commander[1], commander_user_id=commander[2])
    snapshot = IncidentSnapshot(
        id="INC-7",
        title="Database timeouts @channel",
        severity=severity,
        status=status,
        created_at=CREATED,
        version=version,
        origin="chat",
        url="https://incidents.example.com/incidents/INC-7",
        **who,
    )
    return Announcement.of(
        Notification(type=kind, incident=snapshot, summary="Declared by alice", actor="alice")  # type: ignore[arg-type]
    )


def _buttons(post: dict[str, Any]) -> dict[str, dict[str, Any]]:
    attachments = post["props"]["attachments"]
    return {a["id"]: a for a in attachments[0].get("actions") or [] if a["type"] == "button"}


def _menus(post: dict[str, Any]) -> dict[str, dict[str, Any]]:
    attachments = post["props"]["attachments"]
    return {a["id"]: a for a in attachments[0].get("actions") or [] if a["type"] == "select"}


# -- what the provider declares --------------------------------------------------------------


def test_the_package_exposes_its_provider_type_settings_and_capabilities(
    provider: MattermostProvider,
) -> None:
    assert PROVIDER is MattermostProvider
    assert PROVIDER.type == "mattermost"
    assert PROVIDER.settings_model is MattermostSettings
    for capability in (
        Capability.PRIVATE_REPLY,
        Capability.THREADS,
        Capability.UPDATE_MESSAGE,
        Capability.FORMS,
        Capability.BUTTONS,
        Capability.PIN,
        Capability.CHANNELS,
        Capability.FIND_POSTED,
    ):
        assert provider.supports(capability)
    # Replies under a root post do not reach the channel. Mentions come in through an outgoing
    # webhook, but MENTIONS also stands for the timeline reaction, which Mattermost cannot send.
    assert not provider.supports(Capability.ALERT_IN_THREAD)
    assert not provider.supports(Capability.MENTIONS)
    assert not provider.supports(Capability.ANSWER_IN_RESPONSE)
    assert provider.pacing.post_key("mm", "incidents") == "mm:post:incidents"
    assert provider.pacing.update_key("mm", "incidents") == "mm:update"


# -- ingress side: verify and parse ----------------------------------------------------------


def test_a_slash_command_with_the_token_becomes_a_neutral_command(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    outgoing = mm.slash_command("declare sev2 Database timeouts", user="alice", channel="incidents")
    request = _request(outgoing)
    provider.verify(request)
    inbound = provider.parse(request)
    assert inbound.kind is InboundKind.COMMAND and inbound.status == 200
    command = inbound.command
    assert command is not None
    assert command.platform == "mattermost" and command.instance == "mm"
    assert command.text == "declare sev2 Database timeouts"
    assert command.source == "command"
    assert command.user == Actor(user_id=mm.user_id("alice"), user_name="alice")
    assert (command.channel_id, command.channel_name) == (mm.channel_id("incidents"), "incidents")
    assert command.reply_to["response_url"] == outgoing.response_url
    assert command.reply_to["trigger_id"] == outgoing.trigger_id
    # Nothing Mattermost-shaped outside reply_to; the token is nowhere in the command.
    assert mm.command_token not in json.dumps(command.model_dump(mode="json"))


@pytest.mark.parametrize(
    "token, headers",
    [
        ("wrong-token-000000000000000", {}),
        ("", {}),
        (None, {"Authorization": "Token wrong-token"}),
    ],
)
def test_a_slash_command_without_the_token_is_401(
    mm: FakeMattermost, provider: MattermostProvider, token: str | None, headers: dict[str, str]
) -> None:
    outgoing = mm.slash_command("ack INC-7", token=token)
    with pytest.raises(InvalidWebhook) as caught:
        provider.verify(_request(outgoing, **headers))
    assert caught.value.http_status == 401


def test_a_click_on_a_posted_card_verifies_and_becomes_the_action(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ref = provider.announce("incidents", _announcement(version=3), key="n1:mm:incidents")
    click = mm.button_click(ref.message_id, "ack", user="bob")
    assert click.url == WEBHOOK_URL
    request = _request(click)
    provider.verify(request)
    inbound = provider.parse(request)
    assert inbound.kind is InboundKind.COMMAND
    assert json.loads(inbound.body) == {}  # the post stays; the card is edited once announced
    command = inbound.command
    assert command is not None
    assert command.text == "ack INC-7" and command.source == "action"
    assert command.card_version == 3
    assert command.message_id == ref.message_id
    assert command.user == Actor(user_id=mm.user_id("bob"), user_name="bob")
    assert command.reply_to == {"trigger_id": click.trigger_id}


def test_a_click_on_resolve_asks_for_the_resolve_form(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ref = provider.announce("incidents", _announcement())
    inbound = provider.parse(_request(mm.button_click(ref.message_id, "resolve")))
    assert inbound.command is not None
    assert (inbound.command.text, inbound.command.form) == ("resolve INC-7", "resolve")


def _forged(mm: FakeMattermost, ref_id: str, change: dict[str, Any]) -> WebhookRequest:
    click = mm.button_click(ref_id, "ack")
    data = dict(click.data)
    data["context"] = {**data["context"], **change}
    return WebhookRequest(body=json.dumps(data).encode(), headers=click.headers)


@pytest.mark.parametrize(
    "change",
    [
        {"incident": "INC-1"},  # another incident
        {"action": "resolve"},  # another action
        {"version": 99},
        {"sig": "AAAA"},
        {"extra": "x"},
    ],
)
def test_a_click_whose_context_does_not_verify_is_401(
    mm: FakeMattermost, provider: MattermostProvider, change: dict[str, Any]
) -> None:
    ref = provider.announce("incidents", _announcement())
    request = _forged(mm, ref.message_id, change)
    with pytest.raises(InvalidWebhook) as caught:
        provider.verify(request)
    assert caught.value.http_status == 401


def test_a_click_with_no_context_is_401(mm: FakeMattermost, provider: MattermostProvider) -> None:
    data = button_click_payload(
        user_id=mm.user_id("alice"),
        user_name="alice",
        post_id="x" * 26,
        channel_id=mm.channel_id("incidents"),
        channel_name="incidents",
        team_id=mm.team_id,
        team_domain="example",
        trigger_id="",
        context={},
    )
    request = WebhookRequest(body=json.dumps(data).encode(), headers={"Content-Type": "application/json"})
    with pytest.raises(InvalidWebhook) as caught:
        provider.verify(request)
    assert caught.value.http_status == 401


def test_a_click_signed_under_another_secret_is_401(mm: FakeMattermost) -> None:
    other = MattermostProvider("mm", _settings(mm).model_copy(update={"actions_secret": SecretStr("z" * 32)}))
    mine = MattermostProvider("mm", _settings(mm))
    ref = other.announce("incidents", _announcement())
    with pytest.raises(InvalidWebhook):
        mine.verify(_request(mm.button_click(ref.message_id, "ack")))


# -- the card's menus ---------------------------------------------------------------------


def test_the_card_has_a_severity_menu_and_a_commander_menu_with_signed_contexts(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    post = mm.post(provider.announce("incidents", _announcement(version=4)).message_id)
    assert post is not None
    actions = post["props"]["attachments"][0]["actions"]
    assert [a["id"] for a in actions] == ["ack", "mitigate", "resolve", "escalate", "severity", "commander"]
    menus = _menus(post)
    severity, commander = menus["severity"], menus["commander"]
    assert severity["name"] == "Severity" and "data_source" not in severity
    assert severity["options"] == [
        {"text": "SEV-1", "value": "sev1"},
        {"text": "SEV-2", "value": "sev2"},
        {"text": "SEV-3", "value": "sev3"},
        {"text": "SEV-4", "value": "sev4"},
    ]
    assert severity["default_option"] == "sev2"  # the card's own severity
    assert commander["name"] == "Commander" and commander["data_source"] == "users"
    assert "options" not in commander
    now = datetime.now(UTC).timestamp()
    for menu in (severity, commander):
        assert menu["integration"]["url"] == WEBHOOK_URL
    assert verify_context(SECRET, severity["integration"]["context"], now) == {
        "action": "severity",
        "incident": "INC-7",
        "version": 4,
        "options": "sev1,sev2,sev3,sev4",  # what the menu offers is signed with it
    }
    assert verify_context(SECRET, commander["integration"]["context"], now) == {
        "action": "commander",
        "incident": "INC-7",
        "version": 4,
    }
    # Menus go with the buttons: a resolved card has neither.
    resolved = mm.post(provider.announce("incidents", _announcement(Status.RESOLVED)).message_id)
    assert resolved is not None and "actions" not in resolved["props"]["attachments"][0]


def _chosen(
    mm: FakeMattermost, ref_id: str, menu: str, option: str, change: dict[str, Any]
) -> WebhookRequest:
    choice = mm.menu_choice(ref_id, menu, option)
    data = dict(choice.data)
    data["context"] = {**data["context"], **change}
    return WebhookRequest(body=json.dumps(data).encode(), headers=choice.headers)


@pytest.mark.parametrize(
    ("menu", "option", "change"),
    [
        ("severity", "sev1", {"incident": "INC-1"}),
        ("severity", "sev1", {"version": 99}),
        ("severity", "sev0", {"options": "sev0,sev1,sev2,sev3,sev4"}),  # an option added
        ("severity", "sev1", {"action": "commander"}),
        ("commander", "bob", {"action": "severity"}),
        ("commander", "bob", {"incident": "INC-1"}),
        ("commander", "bob", {"sig": "AAAA"}),
        ("commander", "bob", {"extra": "x"}),
    ],
)
def test_a_menu_choice_whose_context_does_not_verify_is_401(
    mm: FakeMattermost, provider: MattermostProvider, menu: str, option: str, change: dict[str, Any]
) -> None:
    ref = provider.announce("incidents", _announcement())
    with pytest.raises(InvalidWebhook) as caught:
        provider.verify(_chosen(mm, ref.message_id, menu, option, change))
    assert caught.value.http_status == 401


def test_a_severity_choice_becomes_an_escalate_to_that_severity(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ref = provider.announce("incidents", _announcement(version=3))
    choice = mm.menu_choice(ref.message_id, "severity", "sev1", user="bob")
    assert choice.data["type"] == "select" and choice.data["context"]["selected_option"] == "sev1"
    request = _request(choice)
    provider.verify(request)  # the choice is not signed: Mattermost adds it
    inbound = provider.parse(request)
    assert inbound.kind is InboundKind.COMMAND and json.loads(inbound.body) == {}
    command = inbound.command
    assert command is not None
    assert command.text == "escalate INC-7 sev1" and command.source == "action"
    assert command.card_version == 3 and command.message_id == ref.message_id
    assert command.user == Actor(user_id=mm.user_id("bob"), user_name="bob")
    assert command.form is None and command.mentioned == []
    # A severity not above the incident's is still the escalate it asks for: the worker
    # refuses it and tells the person privately, as for a typed one.
    lower = provider.parse(_request(mm.menu_choice(ref.message_id, "severity", "sev3")))
    assert lower.command is not None and lower.command.text == "escalate INC-7 sev3"


@pytest.mark.parametrize("option", ["sev0", "sev5", "SEV-1", "critical", "sev1,sev2"])
def test_a_severity_the_menu_did_not_offer_is_answered_and_runs_nothing(
    mm: FakeMattermost, provider: MattermostProvider, option: str
) -> None:
    ref = provider.announce("incidents", _announcement())
    request = _request(mm.menu_choice(ref.message_id, "severity", option))
    provider.verify(request)
    inbound = provider.parse(request)
    assert inbound.kind is InboundKind.ANSWER and inbound.command is None
    assert json.loads(inbound.body) == {"ephemeral_text": "Choose one of the severities the menu offers."}


def test_a_menu_request_without_a_choice_does_nothing(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ref = provider.announce("incidents", _announcement())
    inbound = provider.parse(_request(mm.button_click(ref.message_id, "severity")))
    assert inbound.kind is InboundKind.ANSWER and json.loads(inbound.body) == {}


def test_a_user_choice_becomes_an_assign_of_that_person(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ref = provider.announce("incidents", _announcement(version=2))
    bob = mm.user_id("bob")
    choice = mm.menu_choice(ref.message_id, "commander", "bob", user="alice")
    assert choice.data["data_source"] == "users" and choice.data["context"]["selected_option"] == bob
    request = _request(choice)
    provider.verify(request)
    inbound = provider.parse(request)
    command = inbound.command
    assert command is not None and json.loads(inbound.body) == {}
    assert command.text == f"assign INC-7 <@{bob}>" and command.card_version == 2
    # The choice carries only the id: the worker names them when it shows the card.
    assert command.mentioned == [Person(instance="mm", user_id=bob, display=bob)]
    assert command.user == Actor(user_id=mm.user_id("alice"), user_name="alice")

    not_a_user = provider.parse(_request(mm.menu_choice(ref.message_id, "commander", "Bob Smith")))
    assert not_a_user.command is None
    assert json.loads(not_a_user.body) == {"ephemeral_text": "Choose a user of the team as commander."}


def test_a_commander_chosen_by_id_is_mentioned_by_the_username_looked_up_once(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    bob = mm.user_id("bob")
    ann = _announcement(commander=(bob, "mm", bob), kind="incident.updated")
    ref = provider.announce("incidents", ann)
    post = mm.post(ref.message_id)
    assert post is not None
    assert {f["title"]: f["value"] for f in post["props"]["attachments"][0]["fields"]}["Commander"] == "@bob"
    assert [c.path for c in mm.calls("get_user")] == [f"/api/v4/users/{bob}"]
    provider.update_announcement(ref, ann)
    command = _command_from(mm, provider)
    incident = Incident(
        number=7,
        title="Database timeouts",
        severity=Severity.SEV2,
        status=Status.OPEN,
        commander=bob,
        commander_instance="mm",
        commander_user_id=bob,
        created_at=CREATED,
        updated_at=CREATED,
    )
    provider.reply(command, Reply(text="INC-7", incident=incident, incidents=[incident]))
    assert "Commander: @bob" in mm.responses()[-1]["text"]
    assert len(mm.calls("get_user")) == 1  # remembered
    # A commander stored with their name is not looked up.
    provider.announce("incidents", _announcement(commander=("alice", "mm", mm.user_id("alice"))))
    assert len(mm.calls("get_user")) == 1


def test_a_passing_failure_to_look_a_commander_up_is_raised_so_the_card_is_tried_again(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    bob = mm.user_id("bob")
    mm.fail("get_user", status=429, reset=1)
    with pytest.raises(RateLimited):
        provider.announce("incidents", _announcement(commander=(bob, "mm", bob)))
    assert mm.calls("create_post") == []
    post = mm.post(provider.announce("incidents", _announcement(commander=(bob, "mm", bob))).message_id)
    assert post is not None
    assert {f["title"]: f["value"] for f in post["props"]["attachments"][0]["fields"]}["Commander"] == "@bob"


def test_a_commander_id_the_server_does_not_know_is_shown_but_not_mentioned(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    gone = "z" * 26
    post = mm.post(provider.announce("incidents", _announcement(commander=(gone, "mm", gone))).message_id)
    assert post is not None
    fields = {f["title"]: f["value"] for f in post["props"]["attachments"][0]["fields"]}
    assert fields["Commander"] == gone


def test_an_unreadable_body_is_400(provider: MattermostProvider) -> None:
    for body, kind in ((b"{not json", "application/json"), (b"text=hi", "application/x-www-form-urlencoded")):
        with pytest.raises(InvalidWebhook) as caught:
            provider.verify(WebhookRequest(body=body, headers={"Content-Type": kind}, content_type=kind))
        assert caught.value.http_status == 400


# -- mentions through an outgoing webhook ----------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mattermost"


@pytest.fixture
def listening(mm: FakeMattermost) -> Iterator[MattermostProvider]:
    """A provider with mentions on: the outgoing webhook's token is configured."""
    made = MattermostProvider(
        "mm", _settings(mm, outgoing_webhook_token=SecretStr(mm.outgoing_webhook_token))
    )
    yield made
    made.close()


def _mention_request(
    mm: FakeMattermost, message: str, *, user: str = "alice", root_id: str = "", **kwargs: Any
) -> tuple[str, WebhookRequest]:
    post_id = mm.add_post("incidents", message, user=user, root_id=root_id)
    kwargs.setdefault("trigger_word", trigger_word_of(message, ["@incident-bot"]) or "@incident-bot")
    return post_id, _request(mm.outgoing_webhook(post_id, **kwargs))


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_mention_becomes_a_command_answered_in_its_thread(
    mm: FakeMattermost, listening: MattermostProvider, content_type: str
) -> None:
    post_id, request = _mention_request(mm, "@incident-bot what's open?", content_type=content_type)
    listening.verify(request)
    inbound = listening.parse(request)
    assert inbound.kind is InboundKind.COMMAND and inbound.status == 200
    assert json.loads(inbound.body) == {} and inbound.content_type == "application/json"
    command = inbound.command
    assert command is not None
    assert (command.source, command.text, command.thread_id) == ("mention", "what's open?", post_id)
    assert command.user == Actor(user_id=mm.user_id("alice"), user_name="alice")
    assert (command.channel_id, command.channel_name) == (mm.channel_id("incidents"), "incidents")
    # Keyed by the post: the same post delivered twice runs once.
    assert command.key == inbound.dedupe_key == f"mattermost:mm:mention:{post_id}"
    assert listening.parse(request).dedupe_key == inbound.dedupe_key
    assert mm.outgoing_webhook_token not in json.dumps(command.model_dump(mode="json"))


@pytest.mark.parametrize(
    "message, text",
    [
        ("@incident-bot ack INC-4", "ack INC-4"),
        ("@incident-bot: status of 12", "status of 12"),
        ("  @incident-bot,   who is on INC-4?  ", "who is on INC-4?"),
        ("@incident-bot", ""),
    ],
)
def test_the_text_is_what_follows_the_trigger_word(
    mm: FakeMattermost, listening: MattermostProvider, message: str, text: str
) -> None:
    _, request = _mention_request(mm, message)
    inbound = listening.parse(request)
    assert inbound.command is not None and inbound.command.text == text


@pytest.mark.parametrize("token", ["wrong-token-00000000000000", "", None])
def test_a_mention_without_the_outgoing_token_is_401(
    mm: FakeMattermost, listening: MattermostProvider, token: str | None
) -> None:
    post_id = mm.add_post("incidents", "@incident-bot ack INC-7")
    outgoing = mm.outgoing_webhook(post_id, token=token if token is not None else "")
    data = dict(outgoing.data)
    if token is None:
        del data["token"]
    request = WebhookRequest(body=json.dumps(data).encode(), headers=outgoing.headers)
    with pytest.raises(InvalidWebhook) as caught:
        listening.verify(request)
    assert caught.value.http_status == 401


def test_mentions_are_refused_without_an_outgoing_token_configured(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    assert provider.settings.outgoing_webhook_token is None
    _, request = _mention_request(mm, "@incident-bot what's open?")
    with pytest.raises(InvalidWebhook) as caught:
        provider.verify(request)
    assert caught.value.http_status == 401


def test_the_command_token_does_not_pass_for_the_outgoing_token(
    mm: FakeMattermost, listening: MattermostProvider
) -> None:
    _, request = _mention_request(mm, "@incident-bot ack INC-7", token=mm.command_token)
    with pytest.raises(InvalidWebhook) as caught:
        listening.verify(request)
    assert caught.value.http_status == 401


def test_the_bots_own_post_is_ignored(mm: FakeMattermost, listening: MattermostProvider) -> None:
    _, request = _mention_request(mm, "@incident-bot ack INC-7", user="incident-bot")
    listening.verify(request)
    inbound = listening.parse(request)
    assert inbound.kind is InboundKind.IGNORE and inbound.command is None
    assert json.loads(inbound.body) == {}
    # Known by its user id too, whatever name it goes by.
    renamed = MattermostProvider(
        "mm",
        _settings(
            mm,
            outgoing_webhook_token=SecretStr(mm.outgoing_webhook_token),
            bot_name="pager",
            bot_user_id=mm.bot_user_id,
        ),
    )
    try:
        assert renamed.parse(request).kind is InboundKind.IGNORE
    finally:
        renamed.close()


def test_a_webhook_without_a_trigger_word_is_ignored(
    mm: FakeMattermost, listening: MattermostProvider
) -> None:
    # A webhook set on a channel without trigger words sends every message, with trigger_word "".
    _, request = _mention_request(mm, "the deploy is done", trigger_word="")
    listening.verify(request)
    assert listening.parse(request).kind is InboundKind.IGNORE


def test_the_documented_outgoing_webhook_request_parses(mm: FakeMattermost) -> None:
    data = json.loads((FIXTURES / "outgoing_webhook.json").read_text())
    made = MattermostProvider("mm", _settings(mm, outgoing_webhook_token=SecretStr(DEFAULT_OUTGOING_TOKEN)))
    try:
        assert data["token"] == DEFAULT_OUTGOING_TOKEN
        request = WebhookRequest(
            body=json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
            content_type="application/json",
        )
        made.verify(request)
        command = made.parse(request).command
    finally:
        made.close()
    assert command is not None
    assert (command.text, command.thread_id, command.channel_name) == (
        "text here",
        "axdygg1957njfe5pu38saikdho",
        "town-square",
    )
    assert command.user == Actor(user_id="rnina9994bde8mua79zqcg5hmo", user_name="somename")


# -- worker side: replies --------------------------------------------------------------------


def _command_from(mm: FakeMattermost, provider: MattermostProvider, text: str = "status") -> InboundCommand:
    inbound = provider.parse(_request(mm.slash_command(text)))
    assert inbound.command is not None
    return inbound.command


def test_reply_goes_to_the_response_url_ephemeral_or_in_channel(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    command = _command_from(mm, provider)
    provider.reply(command, Reply(text="Only you see this"))
    provider.reply(command, Reply(text="Everyone sees this", ephemeral=False))
    sent = mm.responses(command.reply_to["response_url"])
    assert [r["response_type"] for r in sent] == ["ephemeral", "in_channel"]
    assert sent[0]["text"].startswith("Only you see this")
    assert [p["message"] for p in mm.posts("incidents")] == ["Everyone sees this"]
    # The bot token never goes to a response URL.
    assert all("authorization" not in c.headers for c in mm.calls("command_response"))


def test_reply_to_a_click_is_an_ephemeral_post(mm: FakeMattermost, provider: MattermostProvider) -> None:
    ref = provider.announce("incidents", _announcement())
    command = provider.parse(_request(mm.button_click(ref.message_id, "ack", user="carol"))).command
    assert command is not None
    provider.reply(command, Reply(text="INC-7 is already acknowledged"))
    [ephemeral] = mm.ephemeral_posts("incidents")
    assert ephemeral["user_id"] == mm.user_id("carol")
    assert ephemeral["post"]["message"].startswith("INC-7 is already acknowledged")


def test_without_the_ephemeral_permission_a_click_is_answered_in_the_cards_thread(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    mm.ephemeral_allowed = False  # create_post_ephemeral: system admins only by default
    ref = provider.announce("incidents", _announcement())
    command = provider.parse(_request(mm.button_click(ref.message_id, "ack", user="carol"))).command
    assert command is not None
    provider.reply(command, Reply(text="INC-7 is already acknowledged"))
    reply = mm.posts("incidents")[-1]
    assert reply["root_id"] == ref.message_id
    assert reply["message"].startswith("@carol INC-7 is already acknowledged")


def test_reply_shows_an_incident_without_markup_from_its_title(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    command = _command_from(mm, provider)
    incident = Incident(
        number=7,
        title="**bold** @all",
        severity=Severity.SEV1,
        status=Status.OPEN,
        created_at=CREATED,
        updated_at=CREATED,
    )
    provider.reply(command, Reply(text="INC-7", incident=incident))
    text = mm.responses()[-1]["text"]
    assert "\\*\\*bold\\*\\*" in text and "@\u200ball" in text


# -- worker side: the card -------------------------------------------------------------------


def test_announce_posts_the_card_with_signed_buttons_and_its_delivery_key(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ann = _announcement(commander=("alice", "mm", mm.user_id("alice")))
    ref = provider.announce("incidents", ann, key="ntf_1:mm:incidents")
    assert ref.channel_id == mm.channel_id("incidents")
    post = mm.post(ref.message_id)
    assert post is not None
    assert post["props"][DELIVERY_PROP] == "ntf_1:mm:incidents"
    [attachment] = post["props"]["attachments"]
    assert attachment["color"] == "#f57c00"  # SEV-2
    assert attachment["title"] == "INC-7: Database timeouts @channel"
    assert attachment["title_link"] == "https://incidents.example.com/incidents/INC-7"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Status"] == "Open" and fields["Commander"] == "@alice"
    assert "SEV-2" in fields["Severity"] and fields["Declared"].endswith("ago")
    buttons = _buttons(post)
    assert list(buttons) == ["ack", "mitigate", "resolve", "escalate"]
    assert [b["name"] for b in buttons.values()] == ["Acknowledge", "Mitigate", "Resolve", "Escalate"]
    for name, button in buttons.items():
        assert button["integration"]["url"] == WEBHOOK_URL
        payload = verify_context(SECRET, button["integration"]["context"], datetime.now(UTC).timestamp())
        assert payload == {"action": name, "incident": "INC-7", "version": 1}
    # The API never answers a context: it stays with the server.
    answered = mm.calls("create_post")[-1].response
    assert all("integration" not in a for a in answered["props"]["attachments"][0]["actions"])


def test_a_commander_from_another_instance_is_named_not_mentioned(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ref = provider.announce("incidents", _announcement(commander=("Alice Smith", "slack", "U024BE7LH")))
    post = mm.post(ref.message_id)
    assert post is not None
    fields = {f["title"]: f["value"] for f in post["props"]["attachments"][0]["fields"]}
    assert fields["Commander"] == "Alice Smith"


def test_a_resolved_card_has_no_buttons_and_a_sev1_card_no_escalate(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    resolved = mm.post(provider.announce("incidents", _announcement(Status.RESOLVED)).message_id)
    assert resolved is not None and _buttons(resolved) == {}
    sev1 = mm.post(provider.announce("incidents", _announcement(severity=Severity.SEV1)).message_id)
    assert sev1 is not None and list(_buttons(sev1)) == ["ack", "mitigate", "resolve"]


def test_without_a_webhook_url_the_card_says_what_to_type(mm: FakeMattermost) -> None:
    settings = _settings(mm).model_copy(update={"webhook_url": None})
    provider = MattermostProvider("mm", settings)
    post = mm.post(provider.announce("incidents", _announcement()).message_id)
    assert post is not None
    attachment = post["props"]["attachments"][0]
    assert "actions" not in attachment
    assert "`/im ack INC-7`" in attachment["text"]


def test_update_patches_the_card_in_place_and_keeps_its_key(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ref = provider.announce("incidents", _announcement(), key="ntf_1:mm:incidents")
    acked = _announcement(
        Status.ACKNOWLEDGED,
        version=2,
        commander=("bob", "mm", mm.user_id("bob")),
        kind="incident.acknowledged",
    )
    provider.update_announcement(ref, acked)
    assert len(mm.calls("patch_post")) == 1 and mm.calls("update_post") == []
    post = mm.post(ref.message_id)
    assert post is not None
    assert post["props"][DELIVERY_PROP] == "ntf_1:mm:incidents"
    attachment = post["props"]["attachments"][0]
    assert attachment["pretext"] == "**Incident acknowledged**"
    assert list(_buttons(post)) == ["mitigate", "resolve", "escalate"]
    context = _buttons(post)["resolve"]["integration"]["context"]
    assert context["version"] == 2
    assert len(mm.posts("incidents")) == 1


def test_find_announcement_finds_the_post_by_its_key(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    since = datetime.now(UTC).timestamp() - 5
    assert provider.find_announcement("incidents", "k1", since) is None
    ref = provider.announce("incidents", _announcement(), key="k1")
    provider.announce("incidents", _announcement(), key="k2")
    assert provider.find_announcement("incidents", "k1", since) == ref
    assert provider.find_announcement("~incidents", "k3", since) is None


def test_an_alert_is_a_post_of_its_own_in_the_channel_linking_the_card(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    card = provider.announce("incidents", _announcement())
    sent = provider.alert("incidents", _announcement(kind="incident.sla_breach"), thread=card, key="alert-1")
    post = mm.post(sent.message_id)
    assert post is not None
    assert post["root_id"] == ""  # a reply would not show in the channel
    assert "Incident SLA breached" in post["message"]
    assert f"/_redirect/pl/{card.message_id}" in post["message"]
    assert "@\u200bchannel" in post["message"]
    assert provider.find_announcement("incidents", "alert-1", 0, thread=card) == sent


def test_reply_in_thread_posts_under_the_root(mm: FakeMattermost, provider: MattermostProvider) -> None:
    root = mm.add_post("incidents", "help", user="alice")
    ref = provider.reply_in_thread("incidents", root, Reply(text="On it"))
    post = mm.post(ref.message_id)
    assert post is not None and post["root_id"] == root


def test_a_mention_written_in_a_thread_is_answered_under_the_threads_root(
    mm: FakeMattermost, listening: MattermostProvider
) -> None:
    root = mm.add_post("incidents", "payments are slow", user="bob")
    reply_id, request = _mention_request(mm, "@incident-bot what's open?", root_id=root)
    command = listening.parse(request).command
    assert command is not None and command.thread_id == reply_id
    ref = listening.reply_in_thread(command.channel_id or "", command.thread_id, Reply(text="Nothing open"))
    post = mm.post(ref.message_id)
    assert post is not None and post["root_id"] == root
    # The server refused the reply as a root first; the root was then looked up.
    assert [c.status for c in mm.calls("create_post")] == [400, 201]
    assert len(mm.calls("get_post")) == 1


# -- failures --------------------------------------------------------------------------------


def test_a_429_is_rate_limited_with_the_servers_wait(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    mm.fail("create_post", status=429, reset=3)
    with pytest.raises(RateLimited) as caught:
        provider.announce("incidents", _announcement(), key="k")
    assert caught.value.retry_after == 3
    assert caught.value.retryable
    assert mm.posts("incidents") == []
    # The next attempt goes through.
    provider.announce("incidents", _announcement(), key="k")
    assert len(mm.posts("incidents")) == 1


def test_a_per_channel_limit_answers_429_until_it_resets(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    mm.limit_channel("incidents", 1)
    provider.announce("incidents", _announcement())
    with pytest.raises(RateLimited) as caught:
        provider.announce("incidents", _announcement())
    assert caught.value.retry_after >= 1


def test_a_permanent_refusal_is_not_retried(mm: FakeMattermost, provider: MattermostProvider) -> None:
    mm.fail("create_post", status=403)
    with pytest.raises(MissingPermission) as caught:
        provider.announce("incidents", _announcement())
    assert isinstance(caught.value, Permanent) and not caught.value.retryable
    assert len(mm.calls("create_post")) == 1
    assert mm.token not in str(caught.value)


def test_an_unknown_channel_name_is_channel_not_found(provider: MattermostProvider) -> None:
    from chatops_core.errors import ChannelNotFound

    with pytest.raises(ChannelNotFound):
        provider.announce("no-such-channel", _announcement())


# -- forms -----------------------------------------------------------------------------------


def test_open_form_opens_the_declare_dialog_and_its_submission_is_checked_then_enqueued(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    command = _command_from(mm, provider, "declare")
    provider.open_form(command, "declare", incident_id=None, context={})
    [opened] = mm.dialogs()
    assert opened["url"] == WEBHOOK_URL
    assert opened["dialog"]["callback_id"] == "declare"
    assert [e["name"] for e in opened["dialog"]["elements"]] == ["title", "severity", "description"]

    empty = mm.dialog_submission({"title": "  ", "severity": "sev2"})
    provider.verify(_request(empty))
    answer = provider.parse(_request(empty))
    assert answer.kind is InboundKind.ANSWER
    assert json.loads(answer.body) == {"errors": {"title": "Give the incident a title."}}

    long = provider.parse(_request(mm.dialog_submission({"title": "x" * 201})))
    assert "200 characters" in json.loads(long.body)["errors"]["title"]

    good = mm.dialog_submission({"title": "Checkout down", "severity": "sev1", "description": "500s"})
    provider.verify(_request(good))
    inbound = provider.parse(_request(good))
    assert inbound.kind is InboundKind.COMMAND and json.loads(inbound.body) == {}
    submitted = inbound.command
    assert submitted is not None
    assert submitted.text == "declare sev1 Checkout down" and submitted.source == "form"
    assert submitted.description == "500s"
    assert submitted.user.user_name == "alice"
    assert submitted.reply_to == {"response_url": command.reply_to["response_url"]}
    assert submitted.channel_id == mm.channel_id("incidents")


def test_a_resolve_dialog_submits_the_resolve_command_with_its_note(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    ref = provider.announce("incidents", _announcement())
    clicked = provider.parse(_request(mm.button_click(ref.message_id, "resolve"))).command
    assert clicked is not None
    provider.open_form(clicked, "resolve", incident_id="INC-7", context={})
    assert mm.dialogs()[-1]["dialog"]["title"] == "Resolve INC-7"
    inbound = provider.parse(_request(mm.dialog_submission({"note": "Failed over"})))
    assert inbound.command is not None and inbound.command.text == "resolve INC-7 Failed over"


def test_a_forged_dialog_state_is_401(mm: FakeMattermost, provider: MattermostProvider) -> None:
    command = _command_from(mm, provider, "declare")
    provider.open_form(command, "declare", incident_id=None, context={})
    submission = mm.dialog_submission({"title": "x"})
    data = {**submission.data, "state": submission.data["state"][:-2] + "AA"}
    with pytest.raises(InvalidWebhook) as caught:
        provider.verify(WebhookRequest(body=json.dumps(data).encode(), headers=submission.headers))
    assert caught.value.http_status == 401


def test_a_stale_trigger_is_trigger_expired_and_the_form_is_offered_instead(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    command = _command_from(mm, provider, "declare")
    old = command.model_copy(update={"received_at": datetime.now(UTC) - timedelta(seconds=10)})
    with pytest.raises(TriggerExpired):
        provider.open_form(old, "declare", incident_id=None, context={})
    # A trigger the server refuses (used once already) is TriggerExpired too.
    provider.open_form(command, "declare", incident_id=None, context={})
    with pytest.raises(TriggerExpired):
        provider.open_form(command, "declare", incident_id=None, context={})

    provider.offer_form(command, "declare", None)
    offered = mm.responses(command.reply_to["response_url"])[-1]
    assert offered["response_type"] == "ephemeral"
    [button] = offered["attachments"][0]["actions"]
    assert button["integration"]["url"] == WEBHOOK_URL
    # A click on it opens the form afresh.
    click = button_click_payload(
        user_id=mm.user_id("alice"),
        user_name="alice",
        post_id="",
        channel_id=mm.channel_id("incidents"),
        channel_name="incidents",
        team_id=mm.team_id,
        team_domain="example",
        trigger_id=mm.new_trigger_id("alice"),
        context=button["integration"]["context"],
    )
    request = WebhookRequest(body=json.dumps(click).encode(), headers={"Content-Type": "application/json"})
    provider.verify(request)
    again = provider.parse(request).command
    assert again is not None and (again.text, again.form) == ("declare", "declare")
    provider.open_form(again, "declare", incident_id=None, context={})
    assert len(mm.dialogs()) == 2


# -- channels --------------------------------------------------------------------------------


def test_incident_channels_are_created_in_the_team_with_a_suffix_when_taken(
    mm: FakeMattermost, provider: MattermostProvider
) -> None:
    name = provider.channel_name_for("INC-12", "Database timeouts!")
    assert name == "inc-12-database-timeouts"
    mm.add_channel(name)
    ref = provider.create_channel(name, topic="INC-12 [SEV-2] Database timeouts @here")
    assert ref.name == "inc-12-database-timeouts-2"
    created = mm.channel(ref.channel_id)
    assert created is not None
    assert created["team_id"] == mm.team_id
    assert created["display_name"] == "INC-12 Database timeouts!"
    assert "@\u200bhere" in created["header"]
    assert provider.resolve_channel(ref.name) == ref.channel_id
    assert provider.resolve_channel(ref.channel_id) == ref.channel_id

    alice, bob = mm.user_id("alice"), mm.user_id("bob")
    provider.invite(ref.channel_id, [alice, bob, alice])
    provider.kick(ref.channel_id, bob)
    provider.kick(ref.channel_id, bob)  # not a member any more: fine
    members = mm.channel(ref.channel_id)["members"]  # type: ignore[index]
    assert alice in members and bob not in members

    card = provider.announce(ref.channel_id, _announcement())
    provider.pin(card.channel_id, card.message_id)
    assert mm.post(card.message_id)["is_pinned"]  # type: ignore[index]
    provider.archive(ref.channel_id)
    provider.archive(ref.channel_id)  # already archived: fine
    assert mm.channel(ref.channel_id)["delete_at"] > 0  # type: ignore[index]


def test_health_names_the_bot(provider: MattermostProvider) -> None:
    assert provider.health().startswith("@incident-bot (")


def test_message_text_reads_a_post(mm: FakeMattermost, provider: MattermostProvider) -> None:
    post_id = mm.add_post("incidents", "the disk is full", user="bob")
    posted = provider.message_text(mm.channel_id("incidents"), post_id)
    assert posted.text == "the disk is full"
    assert posted.author is not None and posted.author.user_id == mm.user_id("bob")
    assert posted.at is not None


# -- dev tools -------------------------------------------------------------------------------


def test_a_simulated_request_is_a_slash_command_the_provider_accepts(provider: MattermostProvider) -> None:
    from chatops_core.providers.mattermost.devtools import DEFAULT_USER_ID, simulated_id, simulated_request

    body, headers, content_type = simulated_request(
        provider.settings,
        "declare sev2 Disk full",
        user=Actor(user_id=DEFAULT_USER_ID, user_name="simulator"),
        channel_id=None,
        channel_name="incidents",
        reply_url="http://127.0.0.1:9/answers/1",
    )
    request = WebhookRequest(body=body, headers=headers, content_type=content_type)
    provider.verify(request)
    command = provider.parse(request).command
    assert command is not None
    assert command.text == "declare sev2 Disk full" and command.user.user_name == "simulator"
    assert command.user.user_id == DEFAULT_USER_ID == simulated_id("user:simulator")
    assert command.reply_to["response_url"] == "http://127.0.0.1:9/answers/1"
    assert command.channel_id == simulated_id("channel:incidents")


def test_the_simulated_person_is_the_one_named() -> None:
    from chatops_core.providers.mattermost.devtools import DEFAULT_USER_ID, simulated_id, simulated_person

    # With no --user, --user-name picks the person, with the playground's id for that name.
    assert simulated_person(Actor(user_id=DEFAULT_USER_ID, user_name="bob")) == (
        simulated_id("user:bob"),
        "bob",
    )
    assert simulated_person(Actor(user_id=DEFAULT_USER_ID)) == (DEFAULT_USER_ID, "simulator")
    assert simulated_person(Actor(user_id="u" * 26, user_name="@dana")) == ("u" * 26, "dana")


def test_the_playground_prints_what_the_bot_does() -> None:
    import tomllib

    from chatops_core.providers.mattermost.devtools import Playground, simulated_id

    lines: list[str] = []
    playground = Playground(out=lines.append)
    playground.start()
    try:
        block = tomllib.loads(playground.config_toml("mm", webhook_url=WEBHOOK_URL))["providers"]["mm"]
        provider = MattermostProvider("mm", MattermostSettings(**block))
        assert provider.health().startswith("@incident-bot")
        # The people and channels a simulated command names are the playground's own.
        assert playground.server.user_id("alice") == simulated_id("user:alice")
        assert playground.server.channel_id("incidents") == simulated_id("channel:incidents")
        ref = provider.announce("critical-incidents", _announcement(severity=Severity.SEV1))
        provider.pin(ref.channel_id, ref.message_id)
        channel = provider.create_channel(provider.channel_name_for("INC-7", "Disk full"), topic="INC-7")
        provider.invite(channel.channel_id, [playground.server.user_id("bob")])
        provider.invite(channel.channel_id, [playground.server.user_id("bob")])  # already there
        provider.close()
    finally:
        playground.stop()
    card = "[mm ~critical-incidents] (posted) Incident declared: [SEV-1] INC-7 Database timeouts"
    assert lines[0].startswith(card), lines
    assert lines[1].startswith("    [Acknowledge] [Mitigate] [Resolve]"), lines
    assert lines[2].startswith("[mm ~critical-incidents] (pinned) Incident declared: [SEV-1] INC-7"), lines
    assert lines[3] == "[mm ~inc-7-disk-full] (channel created) INC-7 Disk full", lines
    assert [ln for ln in lines if "(added)" in ln] == ["[mm ~inc-7-disk-full] (added) @bob"], lines


def test_the_playground_answers_simulate_through_a_response_url_it_prints() -> None:
    import urllib.request

    from chatops_core.providers.mattermost.devtools import DEFAULT_USER_ID, Playground, answer_lines
    from chatops_core.simulate import ResponseListener

    lines: list[str] = []
    playground = Playground(out=lines.append)
    playground.start()
    try:
        with ResponseListener() as listener:
            request = {
                "user_id": DEFAULT_USER_ID,
                "user_name": "dana",
                "channel_id": "",
                "channel_name": "incidents",
                "trigger": "t-1",
                "forward_url": listener.url,
            }
            session = _post(f"{playground.url}/playground/session", request)
            assert session["channel_name"] == "incidents"
            answer = {"response_type": "ephemeral", "text": "**INC-1** is _open_ :large_orange_circle:"}
            _post(session["reply_url"], answer)
            forwarded = listener.wait(5)
        with urllib.request.urlopen(f"{playground.url}/playground/names", timeout=5) as resp:
            names = json.loads(resp.read())
    finally:
        playground.stop()
    assert forwarded == answer
    assert lines == ["[mm ~incidents] (answer only @dana sees) INC-1 is open 🟠"]
    assert answer_lines(forwarded, "incidents", names) == ["bot (only you see this):", "INC-1 is open 🟠"]
    assert "dana" in names.values() and names[session["channel_id"]] == "incidents"


def test_a_dialog_opened_on_a_simulated_command_is_shown_to_its_person() -> None:
    from chatops_core.providers.mattermost.devtools import DEFAULT_USER_ID, Playground, answer_lines
    from chatops_core.simulate import ResponseListener

    lines: list[str] = []
    playground = Playground(out=lines.append)
    playground.start()
    dialog = {
        "title": "Declare an incident",
        "elements": [
            {"display_name": "Title", "name": "title", "type": "text"},
            {"display_name": "Severity", "name": "sev", "type": "select", "options": [{"text": "SEV-1"}]},
        ],
    }
    try:
        with ResponseListener() as listener:
            session = {"user_id": DEFAULT_USER_ID, "trigger": "t-7", "forward_url": listener.url}
            _post(f"{playground.url}/playground/session", {**session, "channel_name": "incidents"})
            client = MattermostProvider("mm", _playground_settings(playground))._client
            client.open_dialog("t-7", WEBHOOK_URL, dialog)
            forwarded = listener.wait(5)
            # A trigger works once, as the server's.
            with pytest.raises(TriggerExpired):
                client.open_dialog("t-7", WEBHOOK_URL, dialog)
    finally:
        playground.stop()
    assert forwarded is not None
    assert answer_lines(forwarded, "incidents", {}) == [
        "bot opened a form for you:",
        "Declare an incident",
        "Title: [text]",
        "Severity: [SEV-1]",
    ]
    assert lines[0] == "[mm] (form opened for @simulator) Declare an incident", lines


def _playground_settings(playground: Any) -> MattermostSettings:
    import tomllib

    block = tomllib.loads(playground.config_toml("mm", webhook_url=WEBHOOK_URL))["providers"]["mm"]
    return MattermostSettings(**block)


def _post(url: str, body: dict[str, Any]) -> Any:
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        raw = resp.read()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode()


def test_answer_lines_show_markdown_as_text_and_a_card_with_its_buttons() -> None:
    from chatops_core.providers.mattermost.devtools import answer_lines

    attachment = {
        "fallback": "Incident declared: [SEV-2] INC-1 Database timeouts (open)",
        "pretext": "**Incident declared**",
        "title": "INC-1: Database timeouts",
        "fields": [
            {"title": "Severity", "value": ":large_orange_circle: SEV-2"},
            {"title": "Commander", "value": "_unassigned_"},
        ],
        "actions": [{"name": "Acknowledge", "type": "button"}, {"name": "Severity", "type": "select"}],
    }
    answer = {"response_type": "in_channel", "text": "Channel \\#inc-1 made", "attachments": [attachment]}
    assert answer_lines(answer, "incidents", {}) == [
        "bot (in ~incidents, everyone sees this):",
        "Channel #inc-1 made",
        "Incident declared",
        "INC-1: Database timeouts",
        "Severity: 🟠 SEV-2 · Commander: unassigned",
        "[Acknowledge] [Severity ▾]",
    ]
