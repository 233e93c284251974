"""Discord end to end: real gunicorn, a real Celery worker and Redis, the real client against
the local server that plays Discord. Interactions are signed and sent as Discord sends them,
Discord's side applies what the ingress answers (a deferral, a modal), and every click is on
a button a posted card really shows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from chatops_core.models import Status
from tests.e2e.stack import Stack, assert_paged_once_each_and_spaced, page_sev1, start_stack
from tests.e2e.stack import settled as _settled
from tests.e2e.stack import wait_on as _wait
from tests.fakes.discord_server import FakeDiscord, send

pytestmark = pytest.mark.e2e

# kombu's Redis transport keeps each message a worker has taken here until the worker
# acknowledges it, which it does once the task has run (``task_acks_late``).
API_TOKEN = "e2e-api-token-0123456789"
INSTANCE = "discord"


def _config(fake: FakeDiscord) -> str:
    """The provider tables of one Discord instance."""
    return f"""
[providers.{INSTANCE}]
type = "discord"
application_id = "{fake.application_id}"
public_key = "{fake.public_key_hex}"
bot_token = "${{E2E_DISCORD_BOT_TOKEN}}"
api_url = "{fake.api_url}"
guild_id = "{fake.guild_id}"
default_channel = "incidents"
archive_category_id = "{fake.category_id}"
create_incident_channels = true
archive_on_close = true
timeout = 5
[providers.{INSTANCE}.notification_channels]
"SEV-1" = "critical-incidents"
"SEV-2" = "major-incidents"
"""


@pytest.fixture(scope="module")
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, discord: FakeDiscord) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    running = start_stack(
        Path(tmp_path_factory.mktemp("dcstack")),
        redis_url=redis_url,
        config=_config(discord),
        instance=INSTANCE,
        concurrency=4,
        extra_env={"CHATOPS_API_TOKEN": API_TOKEN, "E2E_DISCORD_BOT_TOKEN": discord.token},
        commands=[["discord", "register", "--guild", discord.guild_id]],
    )
    yield running
    running.stop()


def _cards(discord: FakeDiscord, channel: str, incident: str) -> list[dict[str, Any]]:
    return [
        m
        for m in discord.messages(channel)
        if any(str(e.get("title", "")).startswith(f"{incident}:") for e in m.get("embeds") or [])
    ]


def _fields(message: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


def _buttons(message: dict[str, Any]) -> list[str]:
    return [
        b["custom_id"].split("|")[1]
        for row in message.get("components") or []
        for b in row["components"]
        if b["type"] == 2 and "custom_id" in b
    ]


def _status_is(discord: FakeDiscord, message_id: str, status: str) -> dict[str, Any] | None:
    message = discord.message(message_id)
    return message if message is not None and _fields(message).get("Status") == status else None


def _answered(discord: FakeDiscord, stack: Stack, token: str, what: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        original = discord.original(token)
        if original is not None and original.get("content"):
            return original
        followups = discord.followups(token)
        return followups[-1] if followups else None

    return dict(_wait(discord, stack, done, what))


def test_ping_is_pong_and_a_forged_signature_is_401(discord: FakeDiscord, stack: Stack) -> None:
    answered = discord.run_ping(stack.webhook_url)
    assert answered.status == 200 and answered.json == {"type": 1}
    ping = discord.ping()
    headers = dict(ping.headers, **{"X-Signature-Ed25519": "00" * 64})
    assert stack.post("/webhooks/discord", ping.body, headers)[0] == 401


def test_declare_with_options_then_acknowledge_by_clicking(discord: FakeDiscord, stack: Stack) -> None:
    outgoing = discord.command("declare", {"title": "Database timeouts", "severity": "sev2"}, user="alice")
    delivered = discord.deliver(outgoing, stack.webhook_url)
    assert delivered.status == 200 and delivered.json == {"type": 5}
    answer = _answered(discord, stack, outgoing.token, "the declare answer")
    inc = answer["content"].split()[0]
    assert inc.startswith("INC-") and "declared by" in answer["content"]

    routed = _wait(discord, stack, lambda: _cards(discord, "major-incidents", inc), "the routed card")[0]
    assert _buttons(routed) == ["ack", "mitigate", "resolve", "escalate"]
    slug = f"{inc.lower()}-database-timeouts"
    channel = _wait(discord, stack, lambda: discord.channel(slug), "the incident channel")
    own = _wait(discord, stack, lambda: _cards(discord, slug, inc), "the channel's card")[0]
    _wait(discord, stack, lambda: discord.pinned(slug) == [own["id"]], "the pinned card")
    overwrites = {o["id"] for o in channel["permission_overwrites"]}
    assert discord.user_id("alice") in overwrites

    clicked = discord.click(
        stack.webhook_url,
        routed["id"],
        f"im|ack|{inc}|{routed['components'][0]['components'][0]['custom_id'].split('|')[3]}",
        user="bob",
    )
    assert clicked.status == 200 and clicked.json == {"type": 6}
    acked = _wait(
        discord, stack, lambda: _status_is(discord, routed["id"], "Acknowledged"), "the acknowledged card"
    )
    assert _fields(acked)["Commander"] == f"<@{discord.user_id('bob')}>"
    assert _buttons(acked) == ["mitigate", "resolve", "escalate"]
    _wait(discord, stack, lambda: _status_is(discord, own["id"], "Acknowledged"), "the channel's card edited")
    assert len(_cards(discord, "major-incidents", inc)) == 1  # edited in place

    # Carol is made commander from the card's commander menu (a user select).
    carol = discord.user_id("carol")
    menu = next(c["custom_id"] for row in acked["components"] for c in row["components"] if c["type"] == 5)
    assert discord.click(stack.webhook_url, acked["id"], menu, user="alice", values=[carol]).json == {
        "type": 6
    }

    def commander_is_carol() -> dict[str, Any] | None:
        message = discord.message(routed["id"])
        return message if message and _fields(message)["Commander"] == f"<@{carol}>" else None

    acked = _wait(discord, stack, commander_is_carol, "the card naming the new commander")
    assert carol in {o["id"] for o in discord.channel(slug)["permission_overwrites"]}  # type: ignore[index]

    # Resolve opens the modal straight from the ingress; its submission carries the note.
    resolve_id = next(
        b["custom_id"]
        for row in acked["components"]
        for b in row["components"]
        if b.get("custom_id", "").startswith("im|resolve|")
    )
    opened = discord.click(stack.webhook_url, acked["id"], resolve_id, user="bob")
    assert opened.json["type"] == 9
    submitted = discord.submit_modal(stack.webhook_url, {"note": "Failed over"})
    assert submitted.json == {"type": 5}
    _wait(discord, stack, lambda: _status_is(discord, routed["id"], "Resolved"), "the resolved card")

    closing = discord.command("close", {"incident": inc}, user="alice")
    discord.deliver(closing, stack.webhook_url)
    _wait(discord, stack, lambda: _status_is(discord, routed["id"], "Closed"), "the closed card")
    locked = _wait(
        discord,
        stack,
        lambda: (c := discord.channel(slug)) and c.get("parent_id") == discord.category_id and c,
        "locked",
    )
    alice = next(o for o in locked["permission_overwrites"] if o["id"] == discord.user_id("alice"))
    assert int(alice["deny"]) & (1 << 11)
    incident = stack.store().get(int(inc.removeprefix("INC-")))
    assert incident.status is Status.CLOSED and incident.resolution == "Failed over"
    assert incident.commander_user_id == carol and incident.commander_instance == INSTANCE
    assert incident.commander == "Carol"  # the name Discord shows, asked for a pick from the menu


def test_declare_without_a_title_opens_the_modal_and_its_submission_declares(
    discord: FakeDiscord, stack: Stack
) -> None:
    delivered = discord.run_command(stack.webhook_url, "declare", {"severity": "sev3"}, user="carol")
    assert delivered.json["type"] == 9 and discord.modals()[-1]["data"]["custom_id"] == "im|modal|declare"
    too_long = discord.submit_modal(stack.webhook_url, {"title": "x" * 201, "severity": "sev3"})
    assert too_long.json["type"] == 4 and too_long.json["data"]["flags"] == 64
    submit = discord.modal_submit(
        {"title": "Cache misses", "severity": "sev3", "description": "Hit rate 10%"}, shape="label"
    )
    answered = discord.deliver(submit, stack.webhook_url)
    assert answered.json == {"type": 5}
    answer = _answered(discord, stack, submit.token, "the modal's declare answer")
    inc = answer["content"].split()[0]
    incident = stack.store().get(int(inc.removeprefix("INC-")))
    assert incident.title == "Cache misses" and incident.description == "Hit rate 10%"


def test_the_same_interaction_twice_acts_once(discord: FakeDiscord, stack: Stack) -> None:
    outgoing = discord.command("declare", {"title": "Twice sent", "severity": "sev4"}, user="alice")
    first = discord.deliver(outgoing, stack.webhook_url)
    second = send(outgoing, stack.webhook_url)  # the same interaction id again
    assert first.status == second.status == 200 and second.json == {"type": 5}

    def cards() -> list[dict[str, Any]]:
        return [m for m in discord.messages("incidents") if "Twice sent" in json.dumps(m.get("embeds"))]

    _wait(discord, stack, cards, "the card")
    _answered(discord, stack, outgoing.token, "the answer")
    # A later interaction is queued behind the repeat: once it is answered and the worker is
    # idle, the repeat has had its turn (if it was enqueued at all).
    later = discord.command("list", {"filter": "open"}, user="bob")
    assert discord.deliver(later, stack.webhook_url).status == 200
    _answered(discord, stack, later.token, "the answer to the later interaction")
    _settled(discord, stack, "the worker idle")
    assert len(cards()) == 1
    declared = [c for c in discord.calls("create_guild_channel") if "twice-sent" in json.dumps(c.json)]
    assert len(declared) == 1


def test_list_is_answered_privately(discord: FakeDiscord, stack: Stack) -> None:
    outgoing = discord.command("list", {"filter": "all"}, user="alice")
    delivered = discord.deliver(outgoing, stack.webhook_url)
    assert delivered.json == {"type": 5, "data": {"flags": 64}}
    answer = _answered(discord, stack, outgoing.token, "the list")
    assert answer["flags"] & 64 and "INC-" in answer["content"]


def test_eight_sev1_notifications_under_a_one_message_a_second_limit_arrive_once_each(
    discord: FakeDiscord, stack: Stack
) -> None:
    discord.limit_channel("critical-incidents", 1)
    discord.fail("create_message", times=2, status=429, retry_after=1.0)
    started = page_sev1(stack, API_TOKEN)

    def arrived() -> list[dict[str, Any]] | None:
        posts = [m for m in discord.messages("critical-incidents") if "PAGE-" in json.dumps(m.get("embeds"))]
        return posts if len(posts) >= 8 else None

    _wait(discord, stack, arrived, "eight cards", timeout=45)
    elapsed = time.monotonic() - started
    _settled(discord, stack, "every delivery done")
    posts = [m for m in discord.messages("critical-incidents") if "PAGE-" in json.dumps(m.get("embeds"))]
    assert_paged_once_each_and_spaced(
        [m["embeds"][0]["title"] for m in posts],
        [datetime.fromisoformat(m["timestamp"]).timestamp() for m in posts],
    )
    assert 6.5 <= elapsed <= 25, elapsed
    refused = [c for c in discord.calls("create_message") if c.status == 429]
    assert len(refused) >= 2
    assert all(not m.get("components") for m in posts)  # the incident system's cards: no buttons
    assert discord.bad_user_agents() == []
