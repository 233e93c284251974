"""Discord interactions into neutral commands: each interaction type, each subcommand, both
modal shapes, field errors, and what Discord is answered at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from chatops_core.models import InboundCommand
from chatops_core.providers.base import Inbound, InboundKind, WebhookRequest
from chatops_core.providers.discord import DiscordProvider, commands, render
from chatops_core.providers.discord.config import DiscordSettings
from tests.fakes.discord_server import FakeDiscord, Outgoing, UserRef


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        yield server


@pytest.fixture(scope="module")
def provider(fake: FakeDiscord) -> DiscordProvider:
    settings = DiscordSettings(
        application_id=fake.application_id,
        public_key=fake.public_key_hex,
        bot_token=SecretStr(fake.token),
        api_url=fake.api_url,
        guild_id=fake.guild_id,
    )
    made = DiscordProvider("dc", settings)
    made.client.bulk_overwrite_commands(fake.application_id, [commands.definition()], fake.guild_id)
    return made


def _parse(provider: DiscordProvider, outgoing: Outgoing) -> Inbound:
    request = WebhookRequest(
        body=outgoing.body, headers=dict(outgoing.headers), content_type="application/json"
    )
    provider.verify(request)
    return provider.parse(request)


def _answer(inbound: Inbound) -> dict[str, Any]:
    return dict(json.loads(inbound.body))


def _command(inbound: Inbound) -> InboundCommand:
    assert inbound.kind is InboundKind.COMMAND and inbound.command is not None
    return inbound.command


def test_ping_is_answered_pong(fake: FakeDiscord, provider: DiscordProvider) -> None:
    inbound = _parse(provider, fake.ping())
    assert inbound.kind is InboundKind.ANSWER and _answer(inbound) == {"type": 1}


SUBCOMMANDS = [
    ("declare", {"title": "Database timeouts", "severity": "sev2"}, "declare sev2 Database timeouts", False),
    ("declare", {"title": "P1 checkout"}, "declare P1 checkout", False),
    ("ack", {"incident": "INC-7"}, "ack INC-7", False),
    ("ack", {}, "ack", False),
    ("mitigate", {"incident": "7", "note": "Failed over"}, "mitigate 7 Failed over", False),
    ("resolve", {"incident": "INC-7", "note": "Pool raised"}, "resolve INC-7 Pool raised", False),
    ("close", {"incident": "INC-7"}, "close INC-7", False),
    ("reopen", {"incident": "#7"}, "reopen #7", False),
    ("escalate", {"incident": "INC-7", "severity": "sev1"}, "escalate INC-7 sev1", False),
    ("note", {"note": "Rolled back", "incident": "INC-7"}, "note INC-7 Rolled back", False),
    ("join", {"incident": "INC-7"}, "join INC-7", False),
    ("leave", {}, "leave", False),
    ("status", {"incident": "INC-7"}, "status INC-7", True),
    ("list", {"filter": "all", "severity": "sev1"}, "list all sev1", True),
    ("help", {"command": "declare"}, "help declare", True),
]


@pytest.mark.parametrize(("word", "options", "text", "private"), SUBCOMMANDS)
def test_a_subcommand_with_typed_options_is_the_command_text_deferred(
    fake: FakeDiscord, provider: DiscordProvider, word: str, options: dict[str, str], text: str, private: bool
) -> None:
    outgoing = fake.command(word, options, user="alice", channel="incidents")
    inbound = _parse(provider, outgoing)
    command = _command(inbound)
    assert command.text == text
    assert command.user.user_id == fake.user_id("alice") and command.user.user_name == "Alice"
    assert command.channel_id == fake.channel_id("incidents") and command.source == "command"
    assert command.key == f"discord:dc:{outgoing.id}" == inbound.dedupe_key
    assert command.reply_to["token"] == outgoing.token
    assert command.reply_to["application_id"] == fake.application_id
    assert _answer(inbound) == ({"type": 5, "data": {"flags": 64}} if private else {"type": 5})


def test_assign_takes_a_user_option_as_a_mention_of_that_person(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    bob = fake.user_id("bob")
    command = _command(
        _parse(provider, fake.command("assign", {"user": UserRef("bob"), "incident": "INC-7"}))
    )
    assert command.text == f"assign INC-7 <@{bob}>"
    (person,) = command.mentioned
    assert (person.instance, person.user_id, person.display) == ("dc", bob, "Bob")


@pytest.mark.parametrize("options", [{}, {"severity": "sev1"}])
def test_declare_without_a_title_answers_the_modal_and_enqueues_nothing(
    fake: FakeDiscord, provider: DiscordProvider, options: dict[str, str]
) -> None:
    inbound = _parse(provider, fake.command("declare", options))
    assert inbound.kind is InboundKind.ANSWER and inbound.command is None
    answer = _answer(inbound)
    assert answer["type"] == 9 and answer["data"]["custom_id"] == render.MODAL_DECLARE
    fields = {row["components"][0]["custom_id"]: row["components"][0] for row in answer["data"]["components"]}
    assert set(fields) == {"title", "severity", "description"}
    assert fields["severity"]["value"] == options.get("severity", "sev3")


def _card(fake: FakeDiscord, version: int = 3) -> str:
    buttons = [
        {"type": 2, "style": 1, "label": label, "custom_id": render.action_id(action, "INC-7", version)}
        for action, label in (("ack", "Acknowledge"), ("resolve", "Resolve"), ("escalate", "Escalate"))
    ]
    return fake.add_message(
        "incidents", "card", user="alice", components=[{"type": 1, "components": buttons}]
    )


def test_a_click_is_the_action_command_with_the_card_version_deferred_as_an_update(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    message_id = _card(fake)
    outgoing = fake.component_click(message_id, render.action_id("ack", "INC-7", 3), user="bob")
    inbound = _parse(provider, outgoing)
    command = _command(inbound)
    assert _answer(inbound) == {"type": 6}
    assert (command.text, command.source, command.card_version) == ("ack INC-7", "action", 3)
    assert command.user.user_id == fake.user_id("bob") and command.message_id == message_id
    assert command.reply_to["deferred"] == "update" and inbound.dedupe_key == f"discord:dc:{outgoing.id}"


def test_the_severity_and_commander_menus_escalate_and_assign(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    menus = [
        {
            "type": 1,
            "components": [
                {
                    "type": 3,
                    "custom_id": "im|severity|INC-7|3",
                    "options": [{"label": "SEV-1", "value": "sev1"}],
                }
            ],
        },
        {"type": 1, "components": [{"type": 5, "custom_id": "im|commander|INC-7|3"}]},
    ]
    message_id = fake.add_message("incidents", "card", components=menus)
    escalated = _command(
        _parse(provider, fake.component_click(message_id, "im|severity|INC-7|3", values=["sev1"]))
    )
    assert (escalated.text, escalated.card_version, escalated.source) == ("escalate INC-7 sev1", 3, "action")
    bob = fake.user_id("bob")
    assigned = _command(
        _parse(provider, fake.component_click(message_id, "im|commander|INC-7|3", values=[bob]))
    )
    assert assigned.text == f"assign INC-7 <@{bob}>" and assigned.mentioned[0].user_id == bob


def test_resolve_click_answers_the_resolve_modal_at_once(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    message_id = _card(fake, version=4)
    inbound = _parse(provider, fake.component_click(message_id, render.action_id("resolve", "INC-7", 4)))
    assert inbound.kind is InboundKind.ANSWER
    answer = _answer(inbound)
    assert answer["type"] == 9 and answer["data"]["custom_id"] == "im|modal|resolve|INC-7|4"


def test_an_unknown_button_is_answered_privately(fake: FakeDiscord, provider: DiscordProvider) -> None:
    message_id = fake.add_message(
        "incidents",
        "x",
        components=[
            {"type": 1, "components": [{"type": 2, "style": 1, "label": "Old", "custom_id": "v1:ack"}]}
        ],
    )
    inbound = _parse(provider, fake.component_click(message_id, "v1:ack"))
    assert inbound.kind is InboundKind.ANSWER
    assert _answer(inbound)["type"] == 4 and _answer(inbound)["data"]["flags"] == 64


@pytest.mark.parametrize("shape", ["action_row", "label"])
def test_a_declare_modal_submission_in_either_shape_runs_declare(
    fake: FakeDiscord, provider: DiscordProvider, shape: str
) -> None:
    values = {"title": "  Database   timeouts ", "severity": "SEV-1", "description": "Primary is slow"}
    outgoing = fake.modal_submit(values, custom_id=render.MODAL_DECLARE, shape=shape, user="carol")
    inbound = _parse(provider, outgoing)
    command = _command(inbound)
    assert _answer(inbound) == {"type": 5}
    assert (command.text, command.source, command.description) == (
        "declare sev1 Database timeouts",
        "form",
        "Primary is slow",
    )
    assert command.user.user_id == fake.user_id("carol")


@pytest.mark.parametrize("shape", ["action_row", "label"])
def test_a_resolve_modal_submission_in_either_shape_runs_resolve_with_the_note(
    fake: FakeDiscord, provider: DiscordProvider, shape: str
) -> None:
    outgoing = fake.modal_submit({"note": "Failed over"}, custom_id="im|modal|resolve|INC-7|4", shape=shape)
    command = _command(_parse(provider, outgoing))
    assert (command.text, command.card_version) == ("resolve INC-7 Failed over", 4)


@pytest.mark.parametrize(
    ("title", "said"), [("   ", "Give the incident a title"), ("x" * 201, "200 characters")]
)
def test_field_errors_are_answered_privately_in_the_submissions_own_response(
    fake: FakeDiscord, provider: DiscordProvider, title: str, said: str
) -> None:
    inbound = _parse(provider, fake.modal_submit({"title": title}, custom_id=render.MODAL_DECLARE))
    assert inbound.kind is InboundKind.ANSWER and inbound.command is None
    answer = _answer(inbound)
    assert answer["type"] == 4 and answer["data"]["flags"] == 64 and said in answer["data"]["content"]


def test_another_applications_interaction_does_nothing(fake: FakeDiscord, provider: DiscordProvider) -> None:
    data = dict(fake.command("ack", {"incident": "INC-7"}).data, application_id="123456789012345678")
    inbound = _parse(provider, fake.outgoing(data))
    assert inbound.kind is InboundKind.ANSWER


def test_unreadable_bodies_are_400(fake: FakeDiscord, provider: DiscordProvider) -> None:
    from chatops_core.errors import InvalidWebhook

    for body in (b"not json", b"[1]", b'{"type": "x"}', b'{"type": 99}'):
        request = WebhookRequest(
            body=body, headers=fake.signed_headers(body), content_type="application/json"
        )
        provider.verify(request)
        with pytest.raises(InvalidWebhook) as info:
            provider.parse(request)
        assert info.value.http_status == 400


def test_the_command_definition_is_one_command_with_a_subcommand_per_word() -> None:
    from chatops_core.commands.grammar import CommandName

    definition = commands.definition()
    assert definition["name"] == "im" and definition["type"] == 1
    subs = {o["name"]: o for o in definition["options"]}
    assert set(subs) == {word.value for word in CommandName} and all(o["type"] == 1 for o in subs.values())
    declare = {o["name"]: o for o in subs["declare"]["options"]}
    assert set(declare) == {"title", "severity"}
    assert [c["value"] for c in declare["severity"]["choices"]] == ["sev1", "sev2", "sev3", "sev4"]
    assert {o["name"]: o["type"] for o in subs["assign"]["options"]}["user"] == 6
    assert all(o["name"] == "incident" for o in subs["ack"]["options"])
    assert len(json.dumps(definition)) < 8000
