"""The Teams provider on :class:`FakeTeams`: what each mode can do, cards posted, clicked,
edited and alerted on in bot mode, answers in both modes, and the webhook-mode fallbacks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from chatops_core.errors import AuthenticationFailed, InvalidWebhook, OperationNotSupported, Permanent
from chatops_core.models import Reply, Severity, Status, utcnow
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.base import Capability, InboundKind, WebhookRequest
from chatops_core.providers.registry import provider_packages
from chatops_core.providers.teams import TeamsProvider
from chatops_core.providers.teams.config import TeamsSettings
from tests.fakes.teams_server import FakeTeams


@pytest.fixture
def fake() -> Iterator[FakeTeams]:
    with FakeTeams() as teams:
        yield teams


def _settings(fake: FakeTeams, *, webhook: bool = True, bot: bool = True, **extra: Any) -> TeamsSettings:
    channels: dict[str, Any] = {"incidents": {"webhook_url": fake.workflow_url("incidents")}}
    values: dict[str, Any] = {"channels": channels, "timeout": 2.0}
    if webhook:
        values["outgoing_webhook_secret"] = SecretStr(fake.outgoing_secret)
    if bot:
        values.update(
            app_id=fake.app_id,
            app_password=SecretStr(extra.pop("app_password", fake.app_password)),
            openid_metadata_url=fake.openid_metadata_url,
            token_url=fake.token_url,
        )
        channels["critical-incidents"] = {
            "conversation_id": fake.conversation_id("critical-incidents"),
            "service_url": fake.service_url,
        }
    values.update(extra)
    return TeamsSettings(**values)


@pytest.fixture
def provider(fake: FakeTeams) -> Iterator[TeamsProvider]:
    made = TeamsProvider("teams", _settings(fake))
    yield made
    made.close()


def announcement(
    status: Status = Status.OPEN, version: int = 1, kind: str = "incident.created"
) -> Announcement:
    return Announcement(
        type=kind,  # type: ignore[arg-type]
        incident=IncidentSnapshot(
            id="INC-7",
            title="Database timeouts",
            severity=Severity.SEV2,
            status=status,
            created_at=utcnow() - timedelta(minutes=5),
            version=version,
            origin="chat",
        ),
        actor="alice",
        summary="Declared by alice",
    )


def _request(outgoing: Any) -> WebhookRequest:
    return WebhookRequest(body=outgoing.body, headers=dict(outgoing.headers), content_type="application/json")


def _parse(provider: TeamsProvider, outgoing: Any) -> Any:
    request = _request(outgoing)
    provider.verify(request)
    return provider.parse(request)


def test_what_each_mode_offers(fake: FakeTeams) -> None:
    never = [
        Capability.PRIVATE_REPLY,
        Capability.FORMS,
        Capability.CHANNELS,
        Capability.PIN,
        Capability.FIND_POSTED,
        Capability.MENTIONS,
    ]
    bot_only = [Capability.BUTTONS, Capability.UPDATE_MESSAGE, Capability.THREADS, Capability.ALERT_IN_THREAD]
    webhook = TeamsProvider("w", _settings(fake, bot=False))
    both = TeamsProvider("b", _settings(fake))
    bot_without_bot_channel = TeamsProvider(
        "n",
        _settings(fake).model_copy(update={"channels": {"incidents": _settings(fake).channels["incidents"]}}),
    )
    assert webhook.supports(Capability.ANSWER_IN_RESPONSE)
    assert not any(webhook.supports(c) for c in bot_only + never)
    assert all(both.supports(c) for c in [*bot_only, Capability.ANSWER_IN_RESPONSE])
    assert not any(both.supports(c) for c in never)
    assert not any(bot_without_bot_channel.supports(c) for c in bot_only)
    with pytest.raises(OperationNotSupported):
        both.create_channel("inc-7")
    for made in (webhook, both, bot_without_bot_channel):
        made.close()


def test_the_registry_knows_teams() -> None:
    package = provider_packages()["teams"]
    assert package.provider is TeamsProvider and package.settings_model is TeamsSettings


def test_a_card_is_clicked_answered_in_its_thread_edited_in_place_and_alerted_on(
    fake: FakeTeams, provider: TeamsProvider
) -> None:
    ref = provider.announce("critical-incidents", announcement())
    assert ref.channel_id == fake.conversation_id("critical-incidents")
    card = fake.activity(ref.message_id)
    assert card is not None
    ack = next(a for a in card["attachments"][0]["content"]["actions"] if a.get("title") == "Acknowledge")
    # Alice clicks Acknowledge: the click is a command run as her, naming the card's version.
    inbound = _parse(provider, fake.submit_click(ref.message_id, ack["data"], user="alice"))
    command = inbound.command
    assert inbound.kind is InboundKind.COMMAND and command is not None
    assert (command.source, command.text, command.card_version) == ("action", "ack INC-7", 1)
    assert command.message_id == ref.message_id and command.answer_key is None
    provider.reply(command, Reply(text="INC-7 acknowledged by Alice"))
    answer = fake.activities("critical-incidents")[-1]
    assert answer["text"] == "INC-7 acknowledged by Alice" and answer["replyToId"] == ref.message_id
    # The card is edited in place: still one thread root, now acknowledged.
    provider.update_announcement(ref, announcement(Status.ACKNOWLEDGED, version=2))
    (root,) = fake.activities("critical-incidents", replies=False)
    assert root["id"] == ref.message_id and root["version"] == 2
    facts = {f["title"]: f["value"] for f in root["attachments"][0]["content"]["body"][2]["facts"]}
    assert facts["Status"] == "Acknowledged"
    # An escalation is a card of its own in the card's thread.
    alert = provider.alert(
        "critical-incidents", announcement(kind="incident.sla_breach"), thread=ref, key="n3:teams"
    )
    shown = fake.activity(alert.message_id)
    assert shown is not None and shown["replyToId"] == ref.message_id
    assert "SLA breached" in shown["attachments"][0]["content"]["body"][0]["text"]
    assert len(fake.activities("critical-incidents", replies=False)) == 1


def test_an_answer_to_a_typed_command_goes_to_its_thread_or_the_channel(
    fake: FakeTeams, provider: TeamsProvider
) -> None:
    inbound = _parse(provider, fake.bot_activity("status INC-7", conversation="critical-incidents"))
    assert inbound.status == 200 and inbound.body == b""
    command = inbound.command
    assert command.reply_to["mode"] == "bot"
    # The fake keeps no user posts as thread roots, as a deleted first post would be: the
    # answer is then posted to the channel itself rather than lost.
    provider.reply(command, Reply(text="INC-7 is open"))
    (answer,) = fake.activities("critical-incidents")
    assert answer["text"] == "INC-7 is open" and not answer.get("replyToId")
    # In a personal chat the answer follows the message.
    fake.add_conversation("alice-dm")
    chat = _parse(provider, fake.bot_activity("list", conversation="alice-dm", mention=False)).command
    provider.reply(chat, Reply(text="No open incidents"))
    (dm,) = fake.activities("alice-dm")
    assert dm["text"] == "No open incidents" and dm["replyToId"] == chat.reply_to["activity_id"]


def test_webhook_mode_answers_in_the_response_and_posts_a_late_answer(
    fake: FakeTeams, provider: TeamsProvider
) -> None:
    inbound = _parse(provider, fake.outgoing_activity("status INC-7", channel="incidents"))
    command = inbound.command
    assert command.answer_key and inbound.answer_wait == provider.settings.answer_wait_seconds
    body, content_type = provider.answer_body(command, Reply(text="INC-7 is open"))
    assert content_type == "application/json"
    assert body == b'{"type": "message", "text": "INC-7 is open"}'
    # Late: the answer is a card in default_channel saying who asked what.
    provider.reply(command, Reply(text="INC-7 is open"))
    (posted,) = fake.cards("incidents")
    texts = [b["text"] for b in posted["card"]["body"]]
    assert texts == ["Alice ran: status INC-7", "INC-7 is open"]


def test_a_late_answer_with_nowhere_to_go_is_given_up(fake: FakeTeams) -> None:
    provider = TeamsProvider("teams", _settings(fake, bot=False, default_channel=None))
    command = _parse(provider, fake.outgoing_activity("status INC-7", channel="incidents")).command
    with pytest.raises(Permanent, match="default_channel"):
        provider.reply(command, Reply(text="late"))
    assert fake.calls("workflow_post") == []
    provider.close()


def test_webhook_channels_get_a_new_card_per_change_and_alerts_as_cards(
    fake: FakeTeams, provider: TeamsProvider
) -> None:
    ref = provider.announce("incidents", announcement())
    assert ref.channel_id == "incidents" and "http" not in ref.model_dump_json()
    provider.update_announcement(ref, announcement(Status.ACKNOWLEDGED, version=2))
    # The instance edits cards on its bot channel; a webhook channel cannot, so its threadless
    # alert is a new card in the channel too.
    provider.alert("incidents", announcement(kind="incident.escalated"), thread=ref)
    shown = fake.cards("incidents")
    assert len(shown) == 3
    assert "Acknowledged" in str(shown[1]["card"]) and "Incident escalated" in str(shown[2]["card"])
    assert [r["status"] for r in fake.flow_runs("incidents")] == ["Succeeded"] * 3


def test_an_unknown_alias_is_permanent_without_a_call(fake: FakeTeams, provider: TeamsProvider) -> None:
    with pytest.raises(Permanent, match="no channel alias 'nowhere'"):
        provider.announce("#nowhere", announcement())
    assert fake.calls() == []


def test_a_request_without_a_known_scheme_is_refused(fake: FakeTeams) -> None:
    webhook_only = TeamsProvider("teams", _settings(fake, bot=False))
    bot_request = _request(fake.bot_activity("status", conversation="incidents"))
    with pytest.raises(InvalidWebhook) as info:
        webhook_only.verify(bot_request)
    assert info.value.http_status == 401
    with pytest.raises(InvalidWebhook) as parse:
        webhook_only.parse(WebhookRequest(body=b"{}", headers={}))
    assert parse.value.http_status == 401
    webhook_only.close()


def test_health_checks_the_bots_credentials(fake: FakeTeams, provider: TeamsProvider) -> None:
    assert "credentials accepted" in provider.health()
    bad = TeamsProvider("teams", _settings(fake, app_password="not-the-password"))
    with pytest.raises(AuthenticationFailed):
        bad.health()
    bad.close()
