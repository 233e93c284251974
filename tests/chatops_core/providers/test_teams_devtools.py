"""The Teams dev tools: simulated requests pass the provider's own checks, the playground
prints what is posted to its channels and passes it on, answers read as a person sees them."""

from __future__ import annotations

import json
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from chatops_core.models import Actor
from chatops_core.providers.base import WebhookRequest
from chatops_core.providers.devtools import SESSION_PATH
from chatops_core.providers.teams import devtools
from chatops_core.providers.teams.config import TeamsSettings
from chatops_core.providers.teams.inbound import parse
from chatops_core.providers.teams.verify import TeamsVerifier
from chatops_core.simulate import ResponseListener

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "teams"
SIMULATOR = Actor(user_id=devtools.DEFAULT_USER_ID, user_name=None)


@pytest.fixture(scope="module")
def playground() -> Iterator[devtools.TeamsPlayground]:
    lines: list[str] = []
    ground = devtools.TeamsPlayground(out=lines.append)
    ground.printed = lines  # type: ignore[attr-defined]
    ground.start()
    try:
        yield ground
    finally:
        ground.stop()


def _settings_of(ground: devtools.TeamsPlayground) -> TeamsSettings:
    table = tomllib.loads(ground.config_toml("teams"))["providers"]["teams"]
    return TeamsSettings(**table)


def test_a_simulated_command_is_a_signed_outgoing_webhook_request(
    playground: devtools.TeamsPlayground,
) -> None:
    settings = _settings_of(playground)
    body, headers, content_type = devtools.simulated_request(
        settings,
        "declare sev2 Database timeouts",
        user=SIMULATOR,
        channel_id=None,
        channel_name="incidents",
        reply_url="",
    )
    request = WebhookRequest(body=body, headers=headers, content_type=content_type)
    mode = TeamsVerifier(settings).verify(request)
    assert mode == "webhook"
    inbound = parse("teams", settings, request, mode)
    assert inbound.command is not None
    assert inbound.command.text == "declare sev2 Database timeouts"
    assert inbound.command.user == Actor(user_id=devtools.DEFAULT_USER_ID, user_name="simulator")
    assert inbound.command.channel_name == "incidents"


def test_a_simulated_bot_activity_verifies_against_the_playground_keys(
    playground: devtools.TeamsPlayground,
) -> None:
    fake = playground.server
    settings = TeamsSettings(
        app_id=fake.app_id,
        app_password=SecretStr(fake.app_password),
        openid_metadata_url=fake.openid_metadata_url,
        token_url=fake.token_url,
        default_channel=None,
    )
    body, headers, _ = devtools.simulated_request(
        settings,
        "ack INC-4",
        user=Actor(user_id="0b9f-aad", user_name="dana"),
        channel_id=None,
        channel_name="ops",
    )
    request = WebhookRequest(body=body, headers=headers)
    verifier = TeamsVerifier(settings)
    assert verifier.verify(request) == "bot"
    inbound = parse("teams", settings, request, "bot")
    assert inbound.command is not None and inbound.command.text == "ack INC-4"
    assert inbound.command.user == Actor(user_id="0b9f-aad", user_name="dana")
    # The same token with another bot's audience is refused: the key is not a master key.
    other = settings.model_copy(update={"app_id": "another-app"})
    with pytest.raises(Exception, match="not authentic"):
        TeamsVerifier(other).verify(request)


def test_the_playground_prints_and_passes_on_what_its_channels_show(
    playground: devtools.TeamsPlayground,
) -> None:
    settings = _settings_of(playground)
    envelope = json.loads((FIXTURES / "adaptive_card_envelope.json").read_text())
    with ResponseListener() as listener:
        session = _post(
            playground.url + SESSION_PATH, {"channel_name": "incidents", "forward_url": listener.url}
        )
        assert session["channel_name"] == "incidents"
        assert session["channel_id"] == playground.server.conversation_id("incidents")
        webhook_url = settings.channels["incidents"].webhook_url
        assert webhook_url is not None
        answer = httpx.post(webhook_url.get_secret_value(), json=envelope, timeout=5)
        assert answer.status_code == 202
        forwarded = listener.wait(5)
    assert forwarded is not None
    lines = devtools.answer_lines(forwarded, "incidents", {})
    assert lines[0] == "bot (in #incidents, everyone sees this):"
    card = envelope["attachments"][0]["content"]
    assert lines[1:] == devtools.card_lines(card)
    printed: list[str] = playground.printed  # type: ignore[attr-defined]
    assert any(line.startswith("[teams #incidents] (posted)") for line in printed), printed
    # The webhook URL is a secret: never printed.
    assert not [line for line in printed if "workflows" in line or "sig=" in line]


def test_the_answer_in_the_response_and_the_pending_notice() -> None:
    reply = json.loads((FIXTURES / "outgoing_webhook_reply.json").read_text())
    answer = devtools.response_answer(json.dumps(reply).encode(), "application/json; charset=utf-8")
    assert answer is not None and not answer.get("pending")
    assert devtools.answer_lines(answer, "incidents", {})[1:] == devtools.message_lines(reply)
    notice = (
        b'{"type": "message", "text": "Working on it: the result will be posted to the incidents channel."}'
    )
    pending = devtools.response_answer(notice, "application/json")
    assert pending is not None and pending["pending"] is True
    assert devtools.response_answer(b"", "text/plain; charset=utf-8") is None
    assert devtools.response_answer(b'{"error": "unauthorized"}', "application/json") is None


def test_card_lines_read_adaptive_cards_and_message_cards() -> None:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "body": [
            {"type": "TextBlock", "text": "**INC-3** declared: DB down"},
            {
                "type": "FactSet",
                "facts": [{"title": "Severity", "value": "SEV-2"}, {"title": "Status", "value": "Open"}],
            },
            {"type": "Container", "items": [{"type": "TextBlock", "text": "Commander: &lt;none&gt;"}]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Runbook", "url": "https://example.invalid/rb"}],
    }
    assert devtools.card_lines(card) == [
        "INC-3 declared: DB down",
        "Severity: SEV-2 · Status: Open",
        "Commander: <none>",
        "[Runbook]",
    ]
    message_card = json.loads((FIXTURES / "message_card.json").read_text())
    lines = devtools.card_lines(message_card)
    assert lines[:3] == [
        "Larry Bryant created a new task",
        "On Project Tango",
        "Assigned to: Unassigned · Due date: Mon May 01 2017 17:07:18 GMT-0700 (Pacific Daylight Time)"
        " · Status: Not started",
    ]
    assert lines[-1].startswith("[Add a comment]")


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return dict(json.loads(resp.read()))
