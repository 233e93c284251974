"""Mattermost end to end: real gunicorn, a real Celery worker and Redis, the real REST client
against the local server that plays Mattermost. Commands are sent as Mattermost sends them,
and every click is made on a button a posted card really shows, the way Mattermost sends it
(to the button's own ``integration.url``, with its context).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from chatops_core.models import Status
from tests.e2e.stack import Stack, assert_paged_once_each_and_spaced, page_sev1, start_stack
from tests.e2e.stack import settled as _settled
from tests.e2e.stack import wait_on as _wait
from tests.fakes.mattermost_server import FakeMattermost, send

pytestmark = pytest.mark.e2e

# kombu's Redis transport keeps each message a worker has taken here until the worker
# acknowledges it, which it does once the task has run (``task_acks_late``).
ACTIONS_SECRET = "e2e-mattermost-actions-0123456789abcdef"
API_TOKEN = "e2e-api-token-0123456789"
INSTANCE = "mm"


def _config(mm: FakeMattermost) -> Callable[[str], str]:
    """The provider tables of one Mattermost instance, for a stack served at a base URL."""

    def providers(base_url: str) -> str:
        return f"""
[providers.{INSTANCE}]
type = "mattermost"
url = "{mm.url}"
bot_token = "${{E2E_MM_BOT_TOKEN}}"
command_token = "${{E2E_MM_COMMAND_TOKEN}}"
actions_secret = "${{E2E_MM_ACTIONS_SECRET}}"
outgoing_webhook_token = "${{E2E_MM_OUTGOING_TOKEN}}"
team_id = "{mm.team_id}"
webhook_url = "{base_url}/webhooks/{INSTANCE}"
default_channel = "incidents"
create_incident_channels = true
timeout = 5
[providers.{INSTANCE}.notification_channels]
"SEV-1" = "critical-incidents"
"SEV-2" = "major-incidents"
"""

    return providers


@pytest.fixture(scope="module")
def mm() -> Iterator[FakeMattermost]:
    with FakeMattermost() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, mm: FakeMattermost) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    running = start_stack(
        Path(tmp_path_factory.mktemp("mmstack")),
        redis_url=redis_url,
        config=_config(mm),
        instance=INSTANCE,
        concurrency=4,
        extra_env={
            "CHATOPS_API_TOKEN": API_TOKEN,
            "E2E_MM_BOT_TOKEN": mm.token,
            "E2E_MM_COMMAND_TOKEN": mm.command_token,
            "E2E_MM_ACTIONS_SECRET": ACTIONS_SECRET,
            "E2E_MM_OUTGOING_TOKEN": mm.outgoing_webhook_token,
        },
    )
    yield running
    running.stop()


def _cards(mm: FakeMattermost, channel: str, incident: str) -> list[dict[str, Any]]:
    """The bot's cards of ``incident`` in ``channel``."""
    found = []
    for post in mm.posts(channel):
        for attachment in (post.get("props") or {}).get("attachments") or []:
            if str(attachment.get("title", "")).startswith(f"{incident}:"):
                found.append(post)
    return found


def _fields(post: dict[str, Any]) -> dict[str, str]:
    attachment = post["props"]["attachments"][0]
    return {f["title"]: f["value"] for f in attachment.get("fields") or []}


def _buttons(post: dict[str, Any]) -> list[str]:
    return [a["id"] for a in post["props"]["attachments"][0].get("actions") or [] if a["type"] == "button"]


def _menus(post: dict[str, Any]) -> list[str]:
    return [a["id"] for a in post["props"]["attachments"][0].get("actions") or [] if a["type"] == "select"]


def _declared(mm: FakeMattermost, stack: Stack, title: str) -> str:
    """The id of the incident the bot said was declared with ``title``."""
    said = _wait(
        mm, stack, lambda: [r["text"] for r in mm.responses() if f": {title} (" in r.get("text", "")], title
    )
    return str(said[0].split()[0])


def _status_is(mm: FakeMattermost, post_id: str, status: str) -> dict[str, Any] | None:
    post = mm.post(post_id)
    return post if post is not None and _fields(post).get("Status") == status else None


def test_declare_click_acknowledge_resolve_with_a_note_and_close(mm: FakeMattermost, stack: Stack) -> None:
    answer = mm.run_slash_command(stack.webhook_url, "declare sev2 Database timeouts", user="alice")
    assert answer.status == 200

    inc = _declared(mm, stack, "Database timeouts")
    assert [r["text"] for r in mm.responses() if inc in r.get("text", "")][0].startswith(
        f"{inc} declared by alice"
    )
    slug = f"{inc.lower()}-database-timeouts"
    channel = _wait(mm, stack, lambda: mm.channel(slug), "the incident channel")
    assert mm.user_id("alice") in channel["members"]
    routed = _wait(mm, stack, lambda: _cards(mm, "major-incidents", inc), "the routed card")[0]
    own = _wait(mm, stack, lambda: _cards(mm, slug, inc), "the channel card")[0]
    assert _buttons(routed) == ["ack", "mitigate", "resolve", "escalate"]
    assert _menus(routed) == ["severity", "commander"]
    assert _wait(mm, stack, lambda: mm.post(own["id"])["is_pinned"], "the pinned card")  # type: ignore[index]

    # Bob clicks Acknowledge on the routed card: Mattermost gets {} and the card is edited.
    clicked = mm.click(routed["id"], "ack", user="bob")
    assert clicked.status == 200 and clicked.json == {}
    acked = _wait(mm, stack, lambda: _status_is(mm, routed["id"], "Acknowledged"), "the acknowledged card")
    assert _fields(acked)["Commander"] == "@bob"
    assert _buttons(acked) == ["mitigate", "resolve", "escalate"]
    _wait(mm, stack, lambda: _status_is(mm, own["id"], "Acknowledged"), "the channel card edited")
    assert mm.calls("update_post") == []
    assert len(_cards(mm, "major-incidents", inc)) == 1  # edited in place, never reposted

    # Resolve opens the dialog; its submission carries the note.
    opened = len(mm.dialogs())
    assert mm.click(acked["id"], "resolve", user="bob").status == 200
    _wait(mm, stack, lambda: len(mm.dialogs()) > opened, "the resolve dialog", timeout=10)
    dialog = mm.dialogs()[-1]
    assert dialog["url"] == stack.webhook_url and dialog["dialog"]["callback_id"] == "resolve"
    submitted = send(mm.dialog_submission({"note": "Failed over to the replica"}, channel="major-incidents"))
    assert submitted.status == 200 and submitted.json == {}
    resolved = _wait(mm, stack, lambda: _status_is(mm, routed["id"], "Resolved"), "the resolved card")
    assert _buttons(resolved) == [] and _menus(resolved) == []

    # Close, typed in the incident's own channel without the id.
    assert mm.run_slash_command(stack.webhook_url, "close", user="alice", channel=channel["id"]).status == 200
    _wait(mm, stack, lambda: _status_is(mm, routed["id"], "Closed"), "the closed card")

    store = stack.store()
    number = int(inc.removeprefix("INC-"))
    incident = store.get(number)
    assert incident.status is Status.CLOSED
    assert incident.resolution == "Failed over to the replica"
    assert incident.commander == "bob" and incident.commander_instance == INSTANCE
    kinds = [entry.kind.value for entry in store.timeline(number)]
    assert kinds[:1] == ["declared"] and "acknowledged" in kinds and "resolved" in kinds and "closed" in kinds


def test_a_forged_command_token_or_click_context_is_401_and_changes_nothing(
    mm: FakeMattermost, stack: Stack
) -> None:
    assert mm.run_slash_command(stack.webhook_url, "declare sev2 Cache misses", user="alice").status == 200
    inc = _declared(mm, stack, "Cache misses")
    card = _wait(mm, stack, lambda: _cards(mm, "major-incidents", inc), "the card")[0]
    _settled(mm, stack, "the declare's steps done")
    before = (len(mm.calls("create_post")), len(mm.calls("patch_post")), len(mm.responses()))

    forged_command = mm.slash_command(f"ack {inc}", token="not-the-command-token-00000")
    assert send(forged_command, stack.webhook_url).status == 401
    status, _, _ = stack.post(
        "/webhooks/mm", forged_command.body, {"Content-Type": forged_command.headers["Content-Type"]}
    )
    assert status == 401  # no token at all (neither field nor header) is refused too

    click = mm.button_click(card["id"], "ack", user="bob")
    data = dict(click.data)
    data["context"] = {**data["context"], "incident": "INC-999"}  # another incident, same signature
    forged = stack.post("/webhooks/mm", json.dumps(data).encode(), {"Content-Type": "application/json"})
    assert forged[0] == 401
    data["context"] = {"action": "ack", "incident": inc}  # unsigned
    assert (
        stack.post("/webhooks/mm", json.dumps(data).encode(), {"Content-Type": "application/json"})[0] == 401
    )

    # Refused before anything is enqueued: the worker has nothing to run, now or later.
    _settled(mm, stack, "the worker idle")
    assert (len(mm.calls("create_post")), len(mm.calls("patch_post")), len(mm.responses())) == before
    assert stack.store().get(int(inc.removeprefix("INC-"))).status is Status.OPEN
    assert _fields(mm.post(card["id"]))["Status"] == "Open"  # type: ignore[arg-type]


def test_the_severity_and_commander_menus(mm: FakeMattermost, stack: Stack) -> None:
    assert (
        mm.run_slash_command(stack.webhook_url, "declare sev2 Webhooks delayed", user="alice").status == 200
    )
    inc = _declared(mm, stack, "Webhooks delayed")
    number = int(inc.removeprefix("INC-"))
    slug = f"{inc.lower()}-webhooks-delayed"
    # The card in the incident's own channel: every change of the incident edits it (a SEV-1
    # is announced in critical-incidents, not on the SEV-2 card routed to major-incidents).
    card = _wait(mm, stack, lambda: _cards(mm, slug, inc), "the channel card")[0]
    _settled(mm, stack, "the declare's steps done")

    # SEV-1 chosen in the severity menu: Mattermost gets {}, the incident is SEV-1, the card edited.
    chosen = mm.choose(card["id"], "severity", "sev1", user="bob")
    assert chosen.status == 200 and chosen.json == {}
    _wait(mm, stack, lambda: stack.store().get(number).severity.value == "SEV-1", "the incident at SEV-1")

    def shows(field: str, value: str) -> dict[str, Any] | None:
        post = mm.post(card["id"])
        return post if post is not None and value in _fields(post).get(field, "") else None

    edited = _wait(mm, stack, lambda: shows("Severity", "SEV-1"), "the card edited to SEV-1")
    assert _menus(edited) == ["severity", "commander"]
    assert len(_cards(mm, slug, inc)) == 1  # edited in place

    # A severity not above the incident's is refused, and only the chooser is told.
    before = len(mm.ephemeral_posts())
    assert mm.choose(card["id"], "severity", "sev3", user="carol").status == 200
    told = _wait(mm, stack, lambda: mm.ephemeral_posts()[before:], "the private refusal")
    assert told[0]["user_id"] == mm.user_id("carol") and "SEV-1" in told[0]["post"]["message"]
    assert stack.store().get(number).severity.value == "SEV-1"

    # Bob chosen in the commander menu (on the edited card): the card mentions him by name.
    assert mm.choose(card["id"], "commander", "bob", user="alice").status == 200
    _wait(mm, stack, lambda: shows("Commander", "@bob"), "the card showing @bob")
    incident = stack.store().get(number)
    assert incident.commander_user_id == mm.user_id("bob") and incident.commander_instance == INSTANCE
    channel = mm.channel(slug)
    assert channel is not None and mm.user_id("bob") in channel["members"]


def _thread(mm: FakeMattermost, root_id: str) -> list[dict[str, Any]]:
    """The replies under ``root_id``, oldest first."""
    post = mm.post(root_id)
    return [p for p in mm.posts(post["channel_id"]) if p["root_id"] == root_id] if post else []


def test_a_mention_is_answered_in_its_thread_and_runs_its_command(mm: FakeMattermost, stack: Stack) -> None:
    assert mm.run_slash_command(stack.webhook_url, "declare sev2 Payments slow", user="alice").status == 200
    inc = _declared(mm, stack, "Payments slow")
    card = _wait(mm, stack, lambda: _cards(mm, "major-incidents", inc), "the card")[0]
    _settled(mm, stack, "the declare's steps done")

    # A forged outgoing webhook token: 401, nothing posted, nothing changed.
    before = (len(mm.calls("create_post")), len(mm.calls("patch_post")))
    forged = mm.mention(
        stack.webhook_url, f"@incident-bot ack {inc}", user="bob", token="not-the-outgoing-token-000"
    )
    assert forged.delivered is not None and forged.delivered.status == 401
    _settled(mm, stack, "the worker idle")
    assert (len(mm.calls("create_post")), len(mm.calls("patch_post"))) == before
    assert _thread(mm, forged.post_id) == []
    assert stack.store().get(int(inc.removeprefix("INC-"))).status is Status.OPEN

    # "What's open?" in plain words: Mattermost gets {} at once, the answer comes in the thread.
    asked = mm.mention(stack.webhook_url, "@incident-bot what's open?", user="alice", channel="incidents")
    assert asked.delivered is not None and asked.delivered.status == 200 and asked.delivered.json == {}
    answer = _wait(mm, stack, lambda: _thread(mm, asked.post_id), "the answer in the thread")[0]
    assert answer["user_id"] == mm.bot_user_id
    assert inc in answer["message"] and "Payments slow" in answer["message"]
    # The same post delivered again runs once.
    assert asked.outgoing is not None and send(asked.outgoing, stack.webhook_url).status == 200
    # A later post is queued behind the repeat: once it is answered and the worker is idle,
    # the repeat has had its turn (if it was enqueued at all).
    later = mm.mention(stack.webhook_url, "@incident-bot what's open?", user="carol", channel="incidents")
    assert later.delivered is not None and later.delivered.status == 200
    _wait(mm, stack, lambda: _thread(mm, later.post_id), "the answer to the later post")
    _settled(mm, stack, "the worker idle")
    assert len(_thread(mm, asked.post_id)) == 1

    # The command language after the mention: Bob acknowledges it.
    acked = mm.mention(stack.webhook_url, f"@incident-bot ack {inc}", user="bob", channel="incidents")
    assert acked.delivered is not None and acked.delivered.status == 200
    _wait(mm, stack, lambda: _thread(mm, acked.post_id), "the ack answered in its thread")
    _wait(mm, stack, lambda: _status_is(mm, card["id"], "Acknowledged"), "the acknowledged card")
    incident = stack.store().get(int(inc.removeprefix("INC-")))
    assert incident.status is Status.ACKNOWLEDGED
    assert incident.commander == "bob" and incident.commander_instance == INSTANCE


def test_eight_sev1_notifications_under_a_one_post_a_second_limit_arrive_once_each(
    mm: FakeMattermost, stack: Stack
) -> None:
    mm.limit_channel("critical-incidents", 1)
    mm.fail("create_post", times=2, status=429, reset=1)  # and two 429s on top
    started = page_sev1(stack, API_TOKEN)

    def arrived() -> list[dict[str, Any]] | None:
        posts = [p for p in mm.posts("critical-incidents") if "PAGE-" in json.dumps(p["props"])]
        return posts if len(posts) >= 8 else None

    posts = _wait(mm, stack, arrived, "eight cards", timeout=45)
    elapsed = time.monotonic() - started
    _settled(mm, stack, "every delivery done")
    posts = [p for p in mm.posts("critical-incidents") if "PAGE-" in json.dumps(p["props"])]
    assert_paged_once_each_and_spaced(
        [p["props"]["attachments"][0]["title"] for p in posts], [p["create_at"] / 1000 for p in posts]
    )
    # Eight posts at one a second take seven seconds; allow for the 429s' waits and start-up.
    assert 6.5 <= elapsed <= 25, elapsed
    refused = [c for c in mm.calls("create_post") if c.status == 429]
    assert len(refused) >= 2
    # External incidents' cards have no buttons: a click must not change a chat incident.
    assert all(_buttons(p) == [] for p in posts)
