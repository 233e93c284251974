"""Microsoft Teams end to end, in both modes: real gunicorn, a real Celery worker and Redis, the
real client against the local server that plays Teams.

Webhook mode: commands come as Teams' outgoing webhook sends them (HMAC-signed, 5 s to answer)
and what Teams would show in the reply chain is what the ingress answered; notifications go
to the channels' Workflows and connector URLs. Bot mode: activities come signed with a JWT by
keys the fake publishes, cards are posted to and updated in the conversation, and every click
is on a button a posted card really shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from chatops_core.models import Status
from tests.e2e.stack import Stack, start_stack
from tests.e2e.stack import settled as _settled
from tests.e2e.stack import wait_on as _wait
from tests.fakes.teams_server import FakeTeams

pytestmark = pytest.mark.e2e

HOOK = "teams"  # webhook mode
BOT = "teamsbot"  # bot mode


def _config(fake: FakeTeams) -> str:
    return f"""
[providers.{HOOK}]
type = "teams"
outgoing_webhook_secret = "${{E2E_TEAMS_OUTGOING_SECRET}}"
default_channel = "incidents"
timeout = 5
[providers.{HOOK}.notification_channels]
"SEV-1" = "critical-incidents"
[providers.{HOOK}.channels.incidents]
webhook_url = "${{E2E_TEAMS_INCIDENTS_URL}}"
format = "adaptive"
[providers.{HOOK}.channels.critical-incidents]
webhook_url = "${{E2E_TEAMS_CRITICAL_URL}}"
format = "messagecard"

[providers.{BOT}]
type = "teams"
app_id = "{fake.app_id}"
app_password = "${{E2E_TEAMS_APP_PASSWORD}}"
openid_metadata_url = "{fake.openid_metadata_url}"
token_url = "{fake.token_url}"
default_channel = "general"
enable_notifications = true
timeout = 5
[providers.{BOT}.channels.general]
conversation_id = "{fake.conversation_id("general")}"
service_url = "{fake.service_url}"
"""


@pytest.fixture(scope="module")
def teams() -> Iterator[FakeTeams]:
    with FakeTeams() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, teams: FakeTeams) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    running = start_stack(
        Path(tmp_path_factory.mktemp("teamsstack")),
        redis_url=redis_url,
        config=_config(teams),
        instance=HOOK,
        concurrency=4,
        extra_env={
            "E2E_TEAMS_OUTGOING_SECRET": teams.outgoing_secret,
            "E2E_TEAMS_INCIDENTS_URL": teams.webhook_url("incidents", "adaptive"),
            "E2E_TEAMS_CRITICAL_URL": teams.webhook_url("critical-incidents", "messagecard"),
            "E2E_TEAMS_APP_PASSWORD": teams.app_password,
        },
    )
    yield running
    running.stop()


def _url(stack: Stack, instance: str) -> str:
    return f"{stack.base_url}/webhooks/{instance}"


def _card_texts(card: Any) -> str:
    """Every text a card shows, joined (to find an incident's id and status in it)."""
    if isinstance(card, dict):
        return " ".join(_card_texts(v) for k, v in card.items() if k not in ("url", "data"))
    if isinstance(card, list):
        return " ".join(_card_texts(v) for v in card)
    return card if isinstance(card, str) else ""


def _submit_actions(card: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(card, dict):
        if card.get("type") == "Action.Submit":
            found.append(card)
        for value in card.values():
            found.extend(_submit_actions(value))
    elif isinstance(card, list):
        for value in card:
            found.extend(_submit_actions(value))
    return found


def _adaptive(activity: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = [
        a
        for a in activity.get("attachments") or []
        if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
    ]
    return dict(attachment["content"])


# -- webhook mode ----------------------------------------------------------------------------


def test_declare_is_answered_in_the_reply_then_carded_in_the_routed_channel(
    teams: FakeTeams, stack: Stack
) -> None:
    delivered = teams.send_outgoing(_url(stack, HOOK), "declare sev2 Checkout is slow", channel="general")
    shown = delivered.shown or {}
    assert delivered.status == 200 and not delivered.timed_out, shown
    assert delivered.elapsed < 5.0
    answer = (shown.get("text") or "") + _card_texts(shown.get("attachments"))
    assert "INC-" in answer and "Checkout is slow" in answer, shown
    assert shown["unsupported_actions"] == []
    incident_id = "INC-" + answer.split("INC-", 1)[1].split()[0].strip(".:,*")

    def carded() -> dict[str, Any] | None:
        for card in teams.cards("incidents"):
            if incident_id in _card_texts(card["card"]):
                return card
        return None

    card = _wait(teams, stack, carded, "the incident's card in #incidents")
    assert card["source"] == "workflow" and card["kind"] == "adaptive"
    runs = teams.flow_runs("incidents")
    assert runs and all(run["status"] == "Succeeded" for run in runs), runs


def test_ack_and_status_are_answered_in_the_reply(teams: FakeTeams, stack: Stack) -> None:
    declared = teams.send_outgoing(_url(stack, HOOK), "declare sev3 Queue backlog", channel="general")
    text = (declared.shown or {}).get("text") or _card_texts((declared.shown or {}).get("attachments"))
    incident_id = "INC-" + text.split("INC-", 1)[1].split()[0].strip(".:,*")
    acked = teams.send_outgoing(_url(stack, HOOK), f"ack {incident_id}", channel="general", user="bob")
    shown = acked.shown or {}
    assert acked.status == 200 and "acknowledged" in (json.dumps(shown).lower()), shown
    status = teams.send_outgoing(_url(stack, HOOK), f"status {incident_id}", channel="general")
    shown = status.shown or {}
    words = json.dumps(shown)
    assert incident_id in words and "Queue backlog" in words, shown
    number = int(incident_id.split("-")[1])
    assert stack.store().get(number).status is Status.ACKNOWLEDGED


def test_forged_or_missing_hmac_is_401_and_nothing_happens(teams: FakeTeams, stack: Stack) -> None:
    before = len(stack.store().list(active_only=False, limit=1000))
    wrong = teams.send_outgoing(
        _url(stack, HOOK), "declare sev1 Forged", secret="Zm9yZ2VkLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"
    )
    missing = teams.send_outgoing(_url(stack, HOOK), "declare sev1 Unsigned", signature="")
    assert (wrong.status, missing.status) == (401, 401)
    _settled(teams, stack, "the worker idle")
    assert len(stack.store().list(active_only=False, limit=1000)) == before


def test_a_replayed_outgoing_request_acts_once(teams: FakeTeams, stack: Stack) -> None:
    before = len(stack.store().list(active_only=False, limit=1000))
    outgoing = teams.outgoing_activity("declare sev3 Replayed once", url=_url(stack, HOOK), channel="general")
    first = teams.deliver_outgoing(outgoing)
    again = teams.deliver_outgoing(outgoing)
    assert first.status == 200 and again.status == 200
    _settled(teams, stack, "the worker idle")
    titles = [i.title for i in stack.store().list(active_only=False, limit=1000)]
    assert len(titles) == before + 1 and titles.count("Replayed once") == 1


def test_a_throttling_connector_still_gets_each_notification_once(teams: FakeTeams, stack: Stack) -> None:
    # The legacy connector answers 200 with "HTTP error 429" in the body when over its limit.
    teams.set_limits("critical-incidents", "connector", ((1, 1), (30, 60)))
    teams.fail("connector_post", times=2, status=429)
    ids = []
    for n in range(4):
        shown = (
            teams.send_outgoing(_url(stack, HOOK), f"declare sev1 Outage part {n}", channel="general").shown
            or {}
        )
        text = (shown.get("text") or "") + _card_texts(shown.get("attachments"))
        ids.append("INC-" + text.split("INC-", 1)[1].split()[0].strip(".:,*"))

    def all_posted() -> list[str] | None:
        texts = [_card_texts(c["card"]) for c in teams.cards("critical-incidents")]
        counts = [sum(1 for t in texts if f"{i}:" in t or f"{i} " in t) for i in ids]
        return counts if all(counts) else None

    counts = _wait(teams, stack, all_posted, "every SEV-1 card in the connector's channel", timeout=40)
    _settled(teams, stack, "the worker idle")
    texts = [_card_texts(c["card"]) for c in teams.cards("critical-incidents")]
    assert [sum(1 for t in texts if f"{i}:" in t or f"{i} " in t) for i in ids] == [1, 1, 1, 1], counts
    limited = [c for c in teams.calls("connector_post") if b"HTTP error 429" in bytes(c.response or b"")]
    assert limited, "the connector never throttled: the test proves nothing"
    assert all(c["kind"] == "messagecard" for c in teams.cards("critical-incidents"))


# -- bot mode ---------------------------------------------------------------------------------


def test_bot_declare_card_then_acknowledge_by_clicking(teams: FakeTeams, stack: Stack) -> None:
    activity = teams.bot_activity("declare sev2 Payments failing", conversation="general")
    answered = teams.deliver(activity, _url(stack, BOT))
    assert answered.status in (200, 202), answered.body

    def card() -> dict[str, Any] | None:
        for shown in teams.activities("general"):
            content = [a for a in shown.get("attachments") or [] if "adaptive" in a.get("contentType", "")]
            if content and "Payments failing" in _card_texts(content[0]["content"]):
                return shown
        return None

    posted = _wait(teams, stack, card, "the incident's card in the bot conversation")
    actions = {a.get("title"): a for a in _submit_actions(_adaptive(posted))}
    assert "Acknowledge" in actions, list(actions)
    click = teams.submit_click(posted["id"], actions["Acknowledge"]["data"], user="bob")
    assert teams.deliver(click, _url(stack, BOT)).status in (200, 202)

    def updated() -> dict[str, Any] | None:
        shown = teams.activity(posted["id"])
        return shown if shown and "Acknowledged" in _card_texts(_adaptive(shown)) else None

    _wait(teams, stack, updated, "the card updated in place to Acknowledged")
    number = int(_card_texts(_adaptive(posted)).split("INC-", 1)[1].split()[0].strip(".:,*"))
    assert stack.store().get(number).status is Status.ACKNOWLEDGED
    # A second click on the same button acts once.
    again = teams.submit_click(posted["id"], actions["Acknowledge"]["data"], user="bob")
    assert teams.deliver(again, _url(stack, BOT)).status in (200, 202)
    _settled(teams, stack, "the worker idle")
    entries = [e for e in stack.store().timeline(number) if e.kind.value == "acknowledged"]
    assert len(entries) == 1, entries


@pytest.mark.parametrize(
    "forgery",
    [{"audience": "someone-else"}, {"expired": True}, {"foreign_key": True}],
    ids=["wrong-audience", "expired", "foreign-key"],
)
def test_forged_bot_tokens_are_401(teams: FakeTeams, stack: Stack, forgery: dict[str, Any]) -> None:
    before = len(stack.store().list(active_only=False, limit=1000))
    activity = teams.bot_activity("declare sev1 Forged bot", conversation="general", **forgery)
    assert teams.deliver(activity, _url(stack, BOT)).status == 401
    _settled(teams, stack, "the worker idle")
    assert len(stack.store().list(active_only=False, limit=1000)) == before
