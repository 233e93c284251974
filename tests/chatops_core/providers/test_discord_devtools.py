"""Trying Discord with no Discord: simulate signs as Discord does with the playground's key,
and the playground prints what the bot does and passes answers on to simulate."""

from __future__ import annotations

import json
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatops_core.errors import ConfigError
from chatops_core.models import Actor, Reply
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.base import WebhookRequest
from chatops_core.providers.devtools import devtools_for
from chatops_core.providers.discord import DiscordProvider
from chatops_core.providers.discord.config import DiscordSettings
from chatops_core.providers.discord.devtools import DEFAULT_USER_ID, DiscordPlayground, simulated_request
from chatops_core.simulate import ResponseListener


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def playground(tmp_path: Path, lines: list[str]) -> Iterator[DiscordPlayground]:
    made = DiscordPlayground(tmp_path, out=lines.append)
    made.start()
    yield made
    made.stop()


def _settings(playground: DiscordPlayground) -> DiscordSettings:
    table = tomllib.loads(playground.config_toml("discord"))["providers"]["discord"]
    return DiscordSettings(**table)


def test_discord_has_dev_tools_with_a_playground() -> None:
    tools = devtools_for("discord")
    assert tools is not None and tools.instance == "discord" and tools.has_playground


def test_simulate_signs_as_discord_and_the_playground_prints_and_passes_answers_on(
    playground: DiscordPlayground, lines: list[str]
) -> None:
    settings = _settings(playground)
    provider = DiscordProvider("discord", settings)
    with ResponseListener() as listener:
        session = urllib.request.Request(
            f"{playground.url}/playground/session",
            data=json.dumps(
                {
                    "user_id": DEFAULT_USER_ID,
                    "user_name": "alice",
                    "channel_name": "incidents",
                    "trigger": "tok-" + "a" * 60,
                    "forward_url": listener.url,
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(session, timeout=5) as answer:
            where = json.loads(answer.read())
        body, headers, _ = simulated_request(
            settings,
            "declare sev2 Database timeouts",
            user=Actor(user_id=DEFAULT_USER_ID, user_name="alice"),
            channel_id=where["channel_id"],
            channel_name=where["channel_name"],
            reply_url=where["reply_url"],
            trigger="tok-" + "a" * 60,
        )
        request = WebhookRequest(body=body, headers=headers, content_type="application/json")
        provider.verify(request)  # signed as Discord signs, with the playground's key
        command = provider.parse(request).command
        assert command is not None and command.text == "declare sev2 Database timeouts"
        provider.reply(command, Reply(text="INC-1 declared by alice", ephemeral=False))
        forwarded = listener.wait(5)
    assert forwarded is not None and forwarded["content"] == "INC-1 declared by alice"
    provider.announce("major-incidents", _announcement(), key="k")
    assert any("(answer) INC-1 declared by alice" in line for line in lines), lines
    assert any(
        line.startswith("[discord #major-incidents] (posted)") and "[Acknowledge]" in line for line in lines
    )
    provider.close()


def test_simulate_refuses_to_sign_for_a_real_application(playground: DiscordPlayground) -> None:
    table: dict[str, Any] = tomllib.loads(playground.config_toml("discord"))["providers"]["discord"]
    table["public_key"] = "ab" * 32
    with pytest.raises(ConfigError):
        simulated_request(
            DiscordSettings(**table),
            "list",
            user=Actor(user_id=DEFAULT_USER_ID),
            channel_id=None,
            channel_name="incidents",
            reply_url="http://127.0.0.1:1/",
        )


def _announcement() -> Announcement:
    from chatops_core.models import Severity, Status, utcnow

    return Announcement(
        type="incident.created",
        incident=IncidentSnapshot(
            id="INC-1",
            title="Database timeouts",
            severity=Severity.SEV2,
            status=Status.OPEN,
            created_at=utcnow(),
            version=1,
            origin="chat",
        ),
        actor="alice",
        summary="Declared by alice",
    )
