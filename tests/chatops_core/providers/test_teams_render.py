"""What Teams shows: incident cards (Adaptive Cards, MessageCards) and answers, posted to
:class:`FakeTeams` through the provider, which checks them as Teams would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from chatops_core.cards import IncidentCard
from chatops_core.models import Actor, InboundCommand, Incident, Reply, Severity, Status, utcnow
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.teams import TeamsProvider, render
from chatops_core.providers.teams.config import TeamsSettings
from tests.fakes.teams_server import FakeTeams

TITLE = "DB <at>Everyone</at> **down** [click](https://evil.example)"


@pytest.fixture
def fake() -> Iterator[FakeTeams]:
    with FakeTeams() as teams:
        yield teams


@pytest.fixture
def provider(fake: FakeTeams) -> Iterator[TeamsProvider]:
    settings = TeamsSettings(
        outgoing_webhook_secret=SecretStr(fake.outgoing_secret),
        app_id=fake.app_id,
        app_password=SecretStr(fake.app_password),
        openid_metadata_url=fake.openid_metadata_url,
        token_url=fake.token_url,
        channels={
            "incidents": {"webhook_url": fake.workflow_url("incidents")},
            "general": {"webhook_url": fake.connector_url("general"), "format": "messagecard"},
            "critical-incidents": {
                "conversation_id": fake.conversation_id("critical-incidents"),
                "service_url": fake.service_url,
            },
        },
        timeout=2.0,
    )
    made = TeamsProvider("teams", settings)
    yield made
    made.close()


def announcement(
    title: str = "Database timeouts", *, status: Status = Status.OPEN, origin: str = "chat", version: int = 3
) -> Announcement:
    return Announcement(
        type="incident.created",
        incident=IncidentSnapshot(
            id="INC-7",
            title=title,
            severity=Severity.SEV1,
            status=status,
            created_at=utcnow() - timedelta(minutes=5),
            version=version,
            origin=origin,  # type: ignore[arg-type]
            url="https://incidents.example/INC-7",
        ),
        actor="alice",
        summary="Declared by alice",
        incident_url="https://incidents.example/INC-7",
        actionable=origin == "chat",
    )


def _actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return list(card.get("actions") or [])


def _texts(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["body"] if b.get("type") == "TextBlock"]


def test_a_bot_channels_card_has_a_button_per_allowed_action(
    fake: FakeTeams, provider: TeamsProvider
) -> None:
    provider.announce("critical-incidents", announcement())
    (shown,) = fake.activities("critical-incidents")
    attachment = shown["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    submits = [a for a in _actions(card) if a["type"] == "Action.Submit"]
    # A SEV-1 cannot be escalated further: no Escalate button.
    assert [a["title"] for a in submits] == ["Acknowledge", "Mitigate", "Resolve"]
    assert submits[0]["data"] == {"chatops": 1, "action": "ack", "incident": "INC-7", "version": 3}
    assert [a.get("style") for a in submits] == [None, None, "positive"]
    (link,) = [a for a in _actions(card) if a["type"] == "Action.OpenUrl"]
    assert link["url"] == "https://incidents.example/INC-7"
    assert "INC-7: Database timeouts" in _texts(card)
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Severity"] == "SEV-1" and facts["Status"] == "Open" and facts["Commander"] == "unassigned"
    assert shown["summary"].startswith("Incident declared: [SEV-1] INC-7")


def test_an_incident_of_the_incident_system_gets_no_buttons(fake: FakeTeams, provider: TeamsProvider) -> None:
    provider.announce("critical-incidents", announcement(origin="external"))
    card = fake.activities("critical-incidents")[0]["attachments"][0]["content"]
    assert [a["type"] for a in _actions(card)] == ["Action.OpenUrl"]
    assert not any("Mention the bot" in t for t in _texts(card))


def test_a_workflow_card_takes_only_links_and_lists_the_commands(
    fake: FakeTeams, provider: TeamsProvider
) -> None:
    provider.announce("incidents", announcement())
    (run,) = fake.flow_runs("incidents")
    assert run["status"] == "Succeeded", run["error"]
    assert run["body"]["attachments"][0]["contentUrl"] is None
    (shown,) = fake.cards("incidents")
    card = shown["card"]
    assert {a["type"] for a in _actions(card)} == {"Action.OpenUrl"}
    assert any("ack INC-7" in t and "resolve INC-7" in t for t in _texts(card))


def test_a_connector_gets_a_message_card(fake: FakeTeams, provider: TeamsProvider) -> None:
    provider.announce("general", announcement())
    (shown,) = fake.cards("general")
    assert shown["kind"] == "messagecard"
    card = shown["card"]
    assert card["@type"] == "MessageCard" and card["@context"] == "http://schema.org/extensions"
    assert card["summary"].startswith("Incident declared") and card["themeColor"] == "D13438"
    facts = {f["name"]: f["value"] for f in card["sections"][0]["facts"]}
    assert facts["Status"] == "Open"
    (action,) = card["potentialAction"]
    assert action["@type"] == "OpenUri"
    assert action["targets"] == [{"os": "default", "uri": "https://incidents.example/INC-7"}]


def test_typed_text_is_shown_as_typed_not_as_markup(fake: FakeTeams, provider: TeamsProvider) -> None:
    provider.announce("incidents", announcement(TITLE))
    card = fake.cards("incidents")[0]["card"]
    (title,) = [t for t in _texts(card) if t.startswith("INC-7:")]
    assert "](https://" not in title  # no link
    provider.announce("general", announcement(TITLE))
    message_card = fake.cards("general")[0]["card"]
    assert "<at>" not in message_card["title"] and r"\*\*down\*\*" in message_card["title"]
    reply = Reply(text="ok", incident=_incident(TITLE))
    text = render.reply_text(reply)
    assert "<at>" not in text and "&lt;at&gt;Everyone&lt;/at&gt;" in text
    assert r"\[click\](https://evil.example)" in text


def _incident(title: str, number: int = 7) -> Incident:
    now = utcnow()
    return Incident(
        number=number,
        title=title,
        severity=Severity.SEV2,
        status=Status.OPEN,
        declared_by="alice",
        created_at=now,
        updated_at=now,
    )


def test_answers_stay_within_teams_message_size(provider: TeamsProvider) -> None:
    command = InboundCommand(
        key="k",
        instance="teams",
        platform="teams",
        text="list all",
        user=Actor(user_id="u"),
        answer_key="teams:1",
    )
    incidents = [_incident("x" * 500, n) for n in range(1, 400)]
    body, content_type = provider.answer_body(command, Reply(text="y" * 50_000, incidents=incidents))
    assert content_type == "application/json"
    assert len(body) < 28_000
    assert json.loads(body)["type"] == "message"
    long = announcement("t" * 500).model_copy(update={"summary": "s" * 20_000})
    long_card = render.incident_card(IncidentCard.of(long), buttons=True)
    assert len(json.dumps(long_card)) < 28_000
