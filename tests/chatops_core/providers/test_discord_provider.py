"""The Discord provider against the local Discord: cards, answers on the interaction webhook,
incident channels, rate limits and failures, and ``chatops discord register``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatops_core.errors import (
    AuthenticationFailed,
    ChannelNotFound,
    ConnectionFailed,
    Permanent,
    RateLimited,
    ServerError,
)
from chatops_core.models import Actor, InboundCommand, Incident, MessageRef, Reply, Severity, Status, utcnow
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.base import Capability, WebhookRequest
from chatops_core.providers.discord import DiscordProvider, commands, render
from chatops_core.providers.discord.client import DiscordClient, RateLimits, route_of
from chatops_core.providers.discord.config import DiscordSettings
from chatops_core.providers.discord.errors import InteractionExpired
from tests.fakes.discord_server import FakeDiscord


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        yield server


def _settings(fake: FakeDiscord, **extra: Any) -> DiscordSettings:
    return DiscordSettings(
        application_id=fake.application_id,
        public_key=extra.pop("public_key", fake.public_key_hex),
        bot_token=extra.pop("bot_token", fake.token),
        api_url=fake.api_url,
        guild_id=fake.guild_id,
        timeout=2.0,
        **extra,
    )


@pytest.fixture
def provider(fake: FakeDiscord) -> Iterator[DiscordProvider]:
    made = DiscordProvider("dc", _settings(fake, archive_category_id=fake.category_id))
    yield made
    made.close()


def announcement(
    status: Status = Status.OPEN,
    version: int = 1,
    *,
    title: str = "Database timeouts",
    summary: str = "Declared by alice",
) -> Announcement:
    return Announcement(
        type="incident.created" if status is Status.OPEN else "incident.acknowledged",
        incident=IncidentSnapshot(
            id="INC-7",
            title=title,
            severity=Severity.SEV2,
            status=status,
            created_at=utcnow() - timedelta(minutes=3),
            version=version,
            origin="chat",
        ),
        actor="alice",
        summary=summary,
        incident_url="https://incidents.example.com/incidents/INC-7",
    )


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for row in message.get("components") or [] for b in row["components"] if b["type"] == 2]


def test_the_capabilities_say_what_discord_does_here(provider: DiscordProvider) -> None:
    assert not provider.supports(Capability.MENTIONS)
    assert not provider.supports(Capability.ANSWER_IN_RESPONSE)
    for capability in (
        Capability.PRIVATE_REPLY,
        Capability.UPDATE_MESSAGE,
        Capability.BUTTONS,
        Capability.CHANNELS,
    ):
        assert provider.supports(capability)


def test_a_card_is_an_embed_with_buttons_holding_action_incident_and_version(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    ref = provider.announce("incidents", announcement(version=3), key="ntf_1:dc:incidents")
    (message,) = fake.messages("incidents")
    assert message["id"] == ref.message_id and ref.channel_id == fake.channel_id("incidents")
    (embed,) = message["embeds"]
    assert (
        embed["title"] == "INC-7: Database timeouts"
        and embed["color"] == render.SEVERITY_COLOURS[Severity.SEV2]
    )
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Status"] == "Open" and fields["Commander"] == "_unassigned_"
    assert fields["Declared"].startswith("<t:") and embed["url"].startswith("https://incidents.example.com/")
    labels = [b["label"] for b in _buttons(message)]
    assert labels == ["Acknowledge", "Mitigate", "Resolve", "Escalate", "Open INC-7"]
    ids = [b["custom_id"] for b in _buttons(message) if "custom_id" in b]
    assert ids[0] == "im|ack|INC-7|3" and all(len(i) <= 100 for i in ids)
    menus = [c for row in message["components"][1:] for c in row["components"]]
    assert [(m["type"], m["custom_id"]) for m in menus] == [
        (3, "im|severity|INC-7|3"),
        (5, "im|commander|INC-7|3"),
    ]
    assert [o["value"] for o in menus[0]["options"] if o["default"]] == ["sev2"]
    assert fake.bad_user_agents() == []
    assert all(c.user_agent.startswith("DiscordBot (") for c in fake.calls())


def test_the_card_is_edited_in_place_and_found_again_by_its_key(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    since = utcnow().timestamp() - 60
    ref = provider.announce("incidents", announcement(), key="ntf_1:dc:incidents")
    provider.update_announcement(ref, announcement(Status.ACKNOWLEDGED, version=2))
    (message,) = fake.messages("incidents")
    assert {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}["Status"] == "Acknowledged"
    assert "Acknowledge" not in [b["label"] for b in _buttons(message)]
    assert provider.find_announcement("incidents", "ntf_1:dc:incidents", since) == ref
    assert provider.find_announcement("incidents", "ntf_2:dc:incidents", since) is None
    assert len(fake.calls("edit_message")) == 1


def test_commander_is_a_mention_on_its_own_instance_and_a_name_elsewhere() -> None:
    incident = Incident(
        number=7,
        title="T",
        severity=Severity.SEV1,
        status=Status.ACKNOWLEDGED,
        commander="bob",
        commander_instance="dc",
        commander_user_id="123456789012345678",
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    assert render.commander(incident, "dc") == "<@123456789012345678>"
    assert render.commander(incident, "other") == "bob"


def test_render_keeps_within_discords_limits(fake: FakeDiscord, provider: DiscordProvider) -> None:
    long = announcement(title="T" * 480 + " @everyone", summary="*" * 9000)
    provider.announce("incidents", long, key="k")
    (message,) = fake.messages("incidents")
    embed = message["embeds"][0]
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]) + len(embed["author"]["name"])
    assert total <= 6000 and len(message["content"]) <= 2000
    reply = Reply(text="x" * 5000, incidents=[])
    assert len(render.reply_content(reply, "dc")) <= 2000
    assert render.plain("@everyone *bold* <@1>") == "@\u200beveryone \\*bold\\* \\<@1\\>"


def test_a_429_is_rate_limited_with_the_bodys_float_and_global_noted(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    fake.fail("create_message", status=429, retry_after=0.75)
    with pytest.raises(RateLimited) as info:
        provider.announce("incidents", announcement())
    assert info.value.retry_after == pytest.approx(0.75) and info.value.details["is_global"] is False
    fake.fail("create_message", status=429, retry_after=2.5, is_global=True)
    with pytest.raises(RateLimited) as info:
        provider.announce("general", announcement())
    assert info.value.retry_after == pytest.approx(2.5) and info.value.details["is_global"] is True


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationFailed), (403, Permanent)])
def test_401_and_403_are_permanent_and_tried_once(
    fake: FakeDiscord, provider: DiscordProvider, status: int, error: type[Exception]
) -> None:
    fake.fail("create_message", times=5, status=status)
    with pytest.raises(error) as info:
        provider.announce("incidents", announcement())
    assert not getattr(info.value, "retryable", True)
    assert len(fake.calls("create_message")) == 1


def test_5xx_is_retryable_and_a_timeout_is_an_unknown_outcome(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    fake.fail("create_message", status=502)
    with pytest.raises(ServerError):
        provider.announce("incidents", announcement())

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = DiscordClient(fake.api_url, fake.token, transport=httpx.MockTransport(timeout))
    with pytest.raises(ConnectionFailed) as info:
        client.create_message(fake.channel_id("incidents"), {"content": "x"})
    assert info.value.details["outcome_unknown"] is True and fake.token not in str(info.value)


def test_an_unknown_channel_name_is_permanent(fake: FakeDiscord, provider: DiscordProvider) -> None:
    with pytest.raises(ChannelNotFound):
        provider.announce("no-such-channel", announcement())


def test_a_used_up_bucket_is_waited_for_without_a_request() -> None:
    clock = [100.0]
    limits = RateLimits(clock=lambda: clock[0])
    route = route_of("POST", "/channels/123456789012345678/messages")
    assert route == "POST /channels/123456789012345678/messages"
    assert route_of("PATCH", "/channels/1234567890123456789/messages/1234567890123456780").endswith(
        "/messages/:id"
    )
    limits.learn(
        route, {"X-RateLimit-Bucket": "b1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "3.5"}
    )
    assert limits.wait_for(route) == pytest.approx(3.5)
    clock[0] += 3.6
    assert limits.wait_for(route) == 0.0

    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        headers = {"X-RateLimit-Bucket": "b1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "5"}
        return httpx.Response(200, json={"id": "1", "channel_id": "123456789012345678"}, headers=headers)

    client = DiscordClient("https://discord.test/api/v10", "t", transport=httpx.MockTransport(answer))
    client.create_message("123456789012345678", {"content": "a"})
    with pytest.raises(RateLimited) as info:
        client.create_message("123456789012345678", {"content": "b"})
    assert len(calls) == 1 and info.value.retry_after > 4 and info.value.details["proactive"] is True
    assert calls[0].headers["User-Agent"].startswith("DiscordBot (")


# -- answers on the interaction webhook -------------------------------------------------------


def _deferred(
    fake: FakeDiscord, provider: DiscordProvider, word: str, options: dict[str, Any]
) -> InboundCommand:
    provider.client.bulk_overwrite_commands(fake.application_id, [commands.definition()], fake.guild_id)
    delivered = fake.command(word, options)
    request = WebhookRequest(
        body=delivered.body, headers=dict(delivered.headers), content_type="application/json"
    )
    inbound = provider.parse(request)
    import urllib.request

    url = f"{fake.api_url}/interactions/{delivered.id}/{delivered.token}/callback"
    urllib.request.urlopen(  # noqa: S310 - the local fake
        urllib.request.Request(
            url, data=inbound.body, headers={"Content-Type": "application/json"}, method="POST"
        ),
        timeout=5,
    ).close()
    assert inbound.command is not None
    return inbound.command


def test_a_private_command_is_answered_by_editing_its_private_original(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    command = _deferred(fake, provider, "list", {"filter": "all"})
    provider.reply(command, Reply(text="No incidents", ephemeral=True))
    original = fake.original(command.reply_to["token"])
    assert original is not None and original["content"] == "No incidents" and original["flags"] & 64
    assert fake.messages("incidents") == []


def test_a_private_answer_to_a_public_deferral_replaces_it_privately(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    command = _deferred(fake, provider, "ack", {"incident": "INC-99"})
    provider.reply(command, Reply(text="There is no INC-99", ephemeral=True))
    assert fake.messages("incidents") == []  # the public loading message is gone
    (followup,) = fake.followups(command.reply_to["token"])
    assert followup["content"] == "There is no INC-99" and followup["flags"] & 64


def test_a_public_answer_edits_the_original(fake: FakeDiscord, provider: DiscordProvider) -> None:
    command = _deferred(fake, provider, "declare", {"title": "DB down", "severity": "sev2"})
    provider.reply(command, Reply(text="INC-1 declared by alice", ephemeral=False))
    (message,) = fake.messages("incidents")
    assert message["content"] == "INC-1 declared by alice" and not (message.get("flags") or 0) & 64


def test_an_answer_after_the_tokens_15_minutes_is_given_up_without_a_call(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    command = _deferred(fake, provider, "status", {"incident": "INC-1"})
    old = command.model_copy(update={"received_at": command.received_at - timedelta(minutes=15)})
    before = len(fake.calls())
    with pytest.raises(InteractionExpired) as info:
        provider.reply(old, Reply(text="late"))
    assert isinstance(info.value, Permanent) and len(fake.calls()) == before


def test_a_click_is_answered_with_a_private_followup_leaving_the_card(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    ref = provider.announce("incidents", announcement(version=2), key="k")
    click = fake.component_click(ref.message_id, "im|ack|INC-7|2", user="bob")
    inbound = provider.parse(
        WebhookRequest(body=click.body, headers=dict(click.headers), content_type="application/json")
    )
    fake.deliver  # noqa: B018 - the fake applies type 6 when sent through deliver; here by callback
    import urllib.request

    url = f"{fake.api_url}/interactions/{click.id}/{click.token}/callback"
    urllib.request.urlopen(  # noqa: S310 - the local fake
        urllib.request.Request(
            url, data=inbound.body, headers={"Content-Type": "application/json"}, method="POST"
        ),
        timeout=5,
    ).close()
    assert inbound.command is not None
    provider.reply(inbound.command, Reply(text="INC-7 is already acknowledged", ephemeral=True))
    (followup,) = fake.followups(click.token)
    assert followup["flags"] & 64 and "already" in followup["content"]
    assert fake.message(ref.message_id)["embeds"][0]["title"] == "INC-7: Database timeouts"  # type: ignore[index]


# -- incident channels --------------------------------------------------------------------------


def test_an_incident_channel_is_private_to_its_people_pinned_and_locked_on_close(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    name = provider.channel_name_for("INC-12", "Database timeouts! Über alles " + "x" * 200)
    assert name.startswith("inc-12-database-timeouts-uber-alles") and len(name) <= 100
    ref = provider.create_channel(name, topic="INC-12 [SEV-2] Database timeouts @everyone")
    channel = fake.channel(ref.channel_id)
    assert channel is not None and channel["type"] == 0 and "@\u200beveryone" in channel["topic"]
    alice, bob = fake.user_id("alice"), fake.user_id("bob")
    provider.invite(ref.channel_id, [alice, bob, alice])
    provider.kick(ref.channel_id, bob)
    provider.kick(ref.channel_id, bob)  # again: fine
    overwrites = {o["id"]: o for o in fake.channel(ref.channel_id)["permission_overwrites"]}  # type: ignore[index]
    assert int(overwrites[fake.guild_id]["deny"]) & (1 << 10)  # @everyone cannot see it
    assert int(overwrites[alice]["allow"]) & (1 << 10) and bob not in overwrites
    assert int(overwrites[fake.bot_user_id]["allow"]) & (1 << 10)
    assert provider.resolve_channel(name) == ref.channel_id

    card = provider.announce(ref.channel_id, announcement(), key="k2")
    provider.pin(card.channel_id, card.message_id)
    assert fake.pinned(ref.channel_id) == [card.message_id]

    provider.archive(ref.channel_id)
    closed = fake.channel(ref.channel_id)
    assert closed is not None and closed["parent_id"] == fake.category_id
    locked = {o["id"]: o for o in closed["permission_overwrites"]}
    assert int(locked[alice]["deny"]) & (1 << 11) and int(locked[alice]["allow"]) & (1 << 10)
    assert int(locked[fake.guild_id]["deny"]) & (1 << 11)
    assert int(locked[fake.bot_user_id]["allow"]) & (1 << 11)


def test_alerts_reply_to_the_card_so_they_show_in_the_channel(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    card = provider.announce("incidents", announcement(), key="k1")
    alert = provider.alert("incidents", announcement(), thread=card, key="k1:alert")
    sent = fake.calls("create_message")[-1].json
    assert sent["message_reference"]["message_id"] == card.message_id
    assert fake.message(alert.message_id) is not None
    since = utcnow().timestamp() - 60
    assert provider.find_announcement("incidents", "k1:alert", since, thread=card) == alert


# -- chatops discord register --------------------------------------------------------------------


def test_register_puts_the_command_by_bulk_overwrite(fake: FakeDiscord, tmp_path: Path, capsys: Any) -> None:
    from chatops_core.cli import main

    config = tmp_path / "chatops.toml"
    config.write_text(
        f"""
[providers.dc]
type = "discord"
application_id = "{fake.application_id}"
public_key = "{fake.public_key_hex}"
bot_token = "{fake.token}"
api_url = "{fake.api_url}"
guild_id = "{fake.guild_id}"
"""
    )
    assert main(["discord", "register", "--config", str(config), "--guild", fake.guild_id]) == 0
    assert main(["discord", "register", "--config", str(config), "--guild", fake.guild_id]) == 0
    (registered,) = fake.guild_commands()
    assert registered["name"] == "im" and len(registered["options"]) == len(commands.SUBCOMMANDS)
    assert main(["discord", "register", "--config", str(config)]) == 0
    assert [c["name"] for c in fake.global_commands()] == ["im"]
    out = capsys.readouterr().out
    assert "scope=bot+applications.commands&permissions=" in out and fake.token not in out
    assert json.dumps(fake.calls("bulk_overwrite_guild_commands")[0].json)  # the definition went as JSON


def test_settings_refuse_a_bad_public_key_without_echoing_it(fake: FakeDiscord) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        _settings(fake, public_key="secret-looking-value")  # type: ignore[arg-type]
    assert "secret-looking-value" not in str(info.value)


def test_a_users_display_name_is_asked_of_discord(fake: FakeDiscord, provider: DiscordProvider) -> None:
    assert provider.display_name(fake.user_id("carol")) == "Carol"
    assert provider.display_name("999999999999999999") is None
    assert provider.display_name("not-an-id") is None


def test_the_message_ref_of_a_post_is_its_channel_and_id(
    fake: FakeDiscord, provider: DiscordProvider
) -> None:
    ref = provider.announce(fake.channel_id("general"), announcement())
    assert ref == MessageRef(
        channel_id=fake.channel_id("general"), message_id=fake.messages("general")[0]["id"]
    )
    assert Actor(user_id="1").display == "1"
