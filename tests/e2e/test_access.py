"""Who may do what, end to end on Slack and Mattermost: roles, grants from chat, rate limits,
redaction, replays and the audit trail, with the real gunicorn ingress, a real Celery worker
(every queue), real ``chatops beat`` (the audit stream's drain) and a real Redis, against the
local servers that play Slack and Mattermost.

One stack serves both platforms, with an ``[access]`` table naming an admin and a viewer on
each (everyone else a responder) and the documented rate limit (20 a minute, bursts of 10).
Every test runs on both platforms, each with people of its own (a person's rate and grants
are theirs alone), and checks what a person would: the answer they got, the incident's state
in the API, the cards in the channels, and the records ``GET /api/v1/audit`` shows.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from chatops_core.providers.slack.devtools import slash_command_body
from tests.e2e.stack import SIGNING_SECRET, Stack, settled, start_stack, wait_on
from tests.fakes.mattermost_server import FakeMattermost
from tests.fakes.slack_server import FakeSlack, signed_headers

pytestmark = pytest.mark.e2e

API_TOKEN = "e2e-access-api-token-5b8e2d91c4"
MM_ACTIONS_SECRET = "e2e-access-mm-actions-7c1f9a3e5b"
MM = "mm"
PER_MINUTE = 20
BURST = 10
# Everyone a test types as, on both platforms (Mattermost's fake knows alice, bob and carol).
PEOPLE = ("ada", "vera", "otto", "rita", "carl", "nora", "bob", "flo", "gus", "nell", "rex")
SLOW_DOWN = f"Slow down: you can run {PER_MINUTE} commands a minute (bursts of {BURST}). Try again in "
# A password and an AWS access key id, as someone might paste them into a note.
PASSWORD = "Hunter2-vault-9f3k"
AWS_KEY = "AKIAZ3MHQ7RXC4TB2W6N"
NOTE = f"db login: password={PASSWORD} and key {AWS_KEY} used"
NOTE_SHOWN = "db login: password=[redacted password] and key [redacted aws-access-key] used"


def slack_id(name: str) -> str:
    """The Slack user id of ``name`` (``UADA1``): upper-case letters and digits, as Slack's."""
    return f"U{name.upper()}1"


def _providers(slack: FakeSlack, mm: FakeMattermost) -> Callable[[str], str]:
    def tables(base_url: str) -> str:
        return f"""
[providers.slack]
type = "slack"
bot_token = "${{E2E_SLACK_TOKEN}}"
signing_secret = "${{E2E_SLACK_SECRET}}"
api_url = "{slack.api_url}"
default_channel = "#incidents"
create_incident_channels = false
timeout = 5

[providers.{MM}]
type = "mattermost"
url = "{mm.url}"
bot_token = "${{E2E_MM_BOT_TOKEN}}"
command_token = "${{E2E_MM_COMMAND_TOKEN}}"
actions_secret = "${{E2E_MM_ACTIONS_SECRET}}"
team_id = "{mm.team_id}"
webhook_url = "{base_url}/webhooks/{MM}"
default_channel = "incidents"
create_incident_channels = false
timeout = 5
"""

    return tables


def _access(mm: FakeMattermost) -> str:
    return f"""
[access]
default_role = "responder"
[access.roles]
"slack:{slack_id("ada")}" = "admin"
"slack:{slack_id("vera")}" = "viewer"
"{MM}:{mm.user_id("ada")}" = "admin"
"{MM}:{mm.user_id("vera")}" = "viewer"
[access.rate_limit]
commands_per_minute = {PER_MINUTE}
burst = {BURST}
"""


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        for name in PEOPLE:
            fake.add_user(slack_id(name), name)
        yield fake


@pytest.fixture(scope="module")
def mm() -> Iterator[FakeMattermost]:
    with FakeMattermost() as fake:
        for name in PEOPLE:
            if name not in ("alice", "bob", "carol"):
                fake.add_user(name)
        yield fake


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, slack: FakeSlack, mm: FakeMattermost
) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    running = start_stack(
        Path(tmp_path_factory.mktemp("access")),
        redis_url=redis_url,
        config=_providers(slack, mm),
        concurrency=4,
        access=_access(mm),
        extra_env={
            "CHATOPS_API_TOKEN": API_TOKEN,
            "E2E_SLACK_TOKEN": slack.token,
            "E2E_SLACK_SECRET": SIGNING_SECRET,
            "E2E_MM_BOT_TOKEN": mm.token,
            "E2E_MM_COMMAND_TOKEN": mm.command_token,
            "E2E_MM_ACTIONS_SECRET": MM_ACTIONS_SECRET,
        },
    )
    # Beat schedules the drain of the audit stream (what the ingress refuses reaches the
    # store through it); the stack's worker takes every queue, ``maintenance`` included.
    running.start("beat", [sys.executable, "-m", "chatops_core.cli", "beat"])
    yield running
    running.stop()


# -- talking to the bot, the same way on both platforms ----------------------------------------


@dataclass(frozen=True)
class Sent:
    """A command sent: the HTTP answer the platform got at once, and where the bot's later
    answer (posted by the worker) is looked for."""

    status: int
    body: bytes
    reply_to: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body.decode() or "null")
        except ValueError:
            return None


class Chat:
    """One platform instance of the stack, as the people on it use it."""

    instance: str
    fake: FakeSlack | FakeMattermost

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def user_id(self, name: str) -> str:
        raise NotImplementedError

    def mention(self, name: str) -> str:
        """How ``name`` is written in a command's text when typed on this platform."""
        raise NotImplementedError

    def request(self, text: str, user: str) -> tuple[bytes, dict[str, str], str]:
        """The body and headers the platform sends for ``/im text`` typed by ``user``, and
        its response URL."""
        raise NotImplementedError

    def answers(self, reply_to: str) -> list[dict[str, Any]]:
        """The bot's answers posted on a command's response URL."""
        raise NotImplementedError

    def card_status(self, incident: str) -> str | None:
        """The status the incident's card in #incidents shows (lower case), None: no card."""
        raise NotImplementedError

    def everything_sent(self) -> str:
        """Every request the bot made to the platform (posts, edits, answers), as text."""
        raise NotImplementedError

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        status, answer, _ = self.stack.post(f"/webhooks/{self.instance}", body, headers)
        return status, answer

    def send(self, text: str, user: str) -> Sent:
        body, headers, reply_to = self.request(text, user)
        status, answer = self.post(body, headers)
        return Sent(status, answer, reply_to)

    def run(self, text: str, user: str) -> dict[str, Any]:
        """Type ``/im text`` as ``user``: the bot's answer (``text``, ``response_type``)."""
        sent = self.send(text, user)
        assert sent.status == 200, sent
        assert SLOW_DOWN not in sent.body.decode(), sent
        return self.answer(sent.reply_to, f"the answer to {text!r} by {user}")

    def answer(self, reply_to: str, what: str) -> dict[str, Any]:
        answers = wait_on(self.fake, self.stack, lambda: self.answers(reply_to), what)
        return answers[0]

    def declare(self, title: str, user: str) -> str:
        answer = self.run(f"declare sev3 {title}", user)
        incident = answer["text"].split()[0].rstrip(":")
        assert re.fullmatch(r"INC-\d+", incident), answer
        wait_on(self.fake, self.stack, lambda: self.card_status(incident) == "open", f"{incident}'s card")
        return incident


_reply_urls = itertools.count(1)


class SlackChat(Chat):
    instance = "slack"

    def __init__(self, stack: Stack, slack: FakeSlack) -> None:
        super().__init__(stack)
        self.fake = self.slack = slack

    def user_id(self, name: str) -> str:
        return slack_id(name)

    def mention(self, name: str) -> str:
        # What Slack sends for a typed @mention when the command escapes users.
        return f"<@{slack_id(name)}|{name}>"

    def request(self, text: str, user: str) -> tuple[bytes, dict[str, str], str]:
        reply_to = f"access-{next(_reply_urls)}"  # one of its own for every command sent
        body = slash_command_body(
            command="/im",
            text=text,
            user_id=slack_id(user),
            user_name=user,
            channel_id=self.slack.channel_id("general"),
            channel_name="general",
            response_url=self.slack.response_url(reply_to),
        )
        return body, signed_headers(body, SIGNING_SECRET), reply_to

    def answers(self, reply_to: str) -> list[dict[str, Any]]:
        return self.slack.responses(reply_to)

    def card_status(self, incident: str) -> str | None:
        # The card's text: "<headline>: [SEV-3] INC-7 <title> (<status>) — <summary>".
        cards = [m["text"] for m in self.slack.messages("incidents") if f"] {incident} " in m["text"]]
        assert len(cards) <= 1, cards
        if not cards:
            return None
        found = re.search(r"\((open|acknowledged|mitigated|resolved|closed)\) — ", cards[0])
        return found.group(1) if found else None

    def everything_sent(self) -> str:
        calls = [{"params": c.params, "json": c.json} for c in self.slack.calls()]
        return json.dumps([calls, self.slack.responses()])


class MattermostChat(Chat):
    instance = MM

    def __init__(self, stack: Stack, mm: FakeMattermost) -> None:
        super().__init__(stack)
        self.fake = self.mm = mm

    def user_id(self, name: str) -> str:
        return self.mm.user_id(name)

    def mention(self, name: str) -> str:
        return f"@{name}"  # Mattermost sends the text as typed

    def request(self, text: str, user: str) -> tuple[bytes, dict[str, str], str]:
        outgoing = self.mm.slash_command(text, user=user, channel="town-square")
        return outgoing.body, outgoing.headers, outgoing.response_url

    def answers(self, reply_to: str) -> list[dict[str, Any]]:
        return self.mm.responses(reply_to)

    def card_status(self, incident: str) -> str | None:
        statuses = []
        for post in self.mm.posts("incidents"):
            for attachment in (post.get("props") or {}).get("attachments") or []:
                if str(attachment.get("title", "")).startswith(f"{incident}:"):
                    fields = {f["title"]: f["value"] for f in attachment.get("fields") or []}
                    statuses.append(str(fields.get("Status", "")).lower())
        assert len(statuses) <= 1, statuses
        return statuses[0] if statuses else None

    def everything_sent(self) -> str:
        return json.dumps([[c.text for c in self.mm.calls()], self.mm.responses()])


@pytest.fixture(params=["slack", "mattermost"])
def chat(request: pytest.FixtureRequest, stack: Stack, slack: FakeSlack, mm: FakeMattermost) -> Chat:
    if request.param == "slack":
        return SlackChat(stack, slack)
    return MattermostChat(stack, mm)


# -- the API ---------------------------------------------------------------------------------------


def api(stack: Stack, path: str, **query: str) -> Any:
    url = f"{stack.base_url}/api/v1{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {API_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local stack
        assert response.status == 200
        return json.loads(response.read())


def audit(chat: Chat, user: str, **query: str) -> list[dict[str, Any]]:
    """``user``'s records in ``GET /api/v1/audit``, newest first."""
    found = api(chat.stack, "/audit", actor=f"{chat.instance}:{chat.user_id(user)}", **query)
    return list(found["records"])


def audited(chat: Chat, user: str, predicate: Callable[[list[dict[str, Any]]], bool], what: str) -> Any:
    """Wait until ``user``'s records satisfy ``predicate``; return them."""
    return wait_on(
        chat.fake,
        chat.stack,
        lambda: (lambda records: records if predicate(records) else None)(audit(chat, user)),
        what,
        timeout=30,
    )


def shown_as_text(answer: Any) -> str:
    """Every text of an answer (its fallback ``text`` and each block's), as a reader sees the
    markup: escaped brackets (``\\[``) as brackets."""
    if isinstance(answer, dict):
        texts = [shown_as_text(value) for value in answer.values()]
    elif isinstance(answer, list):
        texts = [shown_as_text(value) for value in answer]
    else:
        texts = [answer] if isinstance(answer, str) else []
    return re.sub(r"\\([\[\]])", r"\1", "\n".join(texts))


def status_of(chat: Chat, incident: str) -> str:
    return str(api(chat.stack, f"/incidents/{incident}")["status"])


# -- the tests ---------------------------------------------------------------------------------


def test_a_viewer_may_look_but_not_acknowledge(chat: Chat) -> None:
    incident = chat.declare("Viewer tries to ack", "otto")

    refused = chat.run(f"ack {incident}", "vera")
    assert refused["response_type"] == "ephemeral", refused
    assert "`ack` needs the responder role (you are a viewer)" in refused["text"], refused
    assert "An admin can grant it" in refused["text"] and "role @you responder" in refused["text"]
    looked = chat.run(f"status {incident}", "vera")  # a viewer may look
    assert incident in looked["text"] and looked["response_type"] == "ephemeral"

    settled(chat.fake, chat.stack, "the refusal's steps done")
    assert status_of(chat, incident) == "open"
    assert chat.card_status(incident) == "open"

    records = audited(chat, "vera", lambda r: len(r) >= 2, "vera's records")
    denied = [r for r in records if r["outcome"] == "denied"]
    assert [(r["command"], r["incident"]) for r in denied] == [("ack", incident)], records
    assert "needs the responder role" in denied[0]["reason"]
    assert [(r["command"], r["outcome"]) for r in records if r not in denied] == [("status", "ok")]


def test_a_responder_closes_only_an_incident_they_command(chat: Chat) -> None:
    incident = chat.declare("Only the commander closes", "rita")
    assert "Acknowledged by rita" in chat.run(f"ack {incident}", "rita")["text"]  # rita commands it
    assert "Resolved by rita" in chat.run(f"resolve {incident} restarted the pool", "rita")["text"]

    refused = chat.run(f"close {incident}", "carl")
    assert refused["response_type"] == "ephemeral", refused
    assert "`close` needs the manager role (you are a responder)" in refused["text"], refused
    settled(chat.fake, chat.stack, "the refusal's steps done")
    assert status_of(chat, incident) == "resolved"
    assert chat.card_status(incident) == "resolved"

    closed = chat.run(f"close {incident}", "rita")
    assert "Closed by rita" in closed["text"], closed
    assert status_of(chat, incident) == "closed"
    wait_on(chat.fake, chat.stack, lambda: chat.card_status(incident) == "closed", "the closed card")

    carl = audited(chat, "carl", lambda r: len(r) >= 1, "carl's record")
    assert [(r["outcome"], r["command"], r["incident"]) for r in carl] == [("denied", "close", incident)]
    rita = audited(chat, "rita", lambda r: any(x["command"] == "close" for x in r), "rita's close")
    assert [(r["outcome"], r["command"]) for r in rita if r["command"] == "close"] == [("ok", "close")]


def test_an_admin_grants_a_role_from_chat_and_it_takes_effect(chat: Chat) -> None:
    incident = chat.declare("Granted from chat", "nora")
    chat.run(f"ack {incident}", "nora")
    chat.run(f"resolve {incident} fixed", "nora")

    before = chat.run(f"close {incident}", "bob")
    assert "`close` needs the manager role (you are a responder)" in before["text"], before
    settled(chat.fake, chat.stack, "the refusal's steps done")
    assert status_of(chat, incident) == "resolved"

    # Only an admin grants roles: bob, a responder, cannot make anyone a manager.
    self_grant = chat.run(f"role {chat.mention('nora')} manager", "bob")
    assert "`role` needs the admin role (you are a responder)" in self_grant["text"], self_grant

    granted = chat.run(f"role {chat.mention('bob')} manager", "ada")
    assert granted["text"] == "bob is now a manager.", granted

    after = chat.run(f"close {incident}", "bob")
    assert "Closed by bob" in after["text"], after
    assert status_of(chat, incident) == "closed"
    wait_on(chat.fake, chat.stack, lambda: chat.card_status(incident) == "closed", "the closed card")

    ada = audited(chat, "ada", lambda r: len(r) >= 1, "ada's grant")
    assert [(r["outcome"], r["command"]) for r in ada] == [("ok", "role")]
    assert "granted bob" in ada[0]["reason"] and "the manager role (was responder)" in ada[0]["reason"]
    bob = audited(chat, "bob", lambda r: len(r) >= 3, "bob's records")
    assert [(r["outcome"], r["command"]) for r in reversed(bob)] == [
        ("denied", "close"),
        ("denied", "role"),
        ("ok", "close"),
    ]


def test_forty_commands_in_ten_seconds_are_slowed_down_for_that_person_only(chat: Chat) -> None:
    count = 40
    started = time.monotonic()
    flood = [chat.send("list", "flo") for _ in range(count)]
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed
    other = chat.send("list", "gus")  # right after, from someone else

    assert all(sent.status == 200 for sent in flood), [s.status for s in flood]
    refused = [sent for sent in flood if sent.json and SLOW_DOWN in str(sent.json.get("text"))]
    admitted = [sent for sent in flood if sent not in refused]
    # A full bucket of BURST, and one more every 60/PER_MINUTE s while they were sent.
    assert BURST <= len(admitted) <= BURST + math.ceil(elapsed / (60 / PER_MINUTE)), (len(admitted), elapsed)
    # Told at once, only them: the platform shows the HTTP answer to the sender alone.
    for sent in refused:
        assert sent.json["response_type"] == "ephemeral", sent
        wait = re.search(r"Try again in (\d+) s\.$", sent.json["text"])
        assert wait is not None and 1 <= int(wait.group(1)) <= 60 / PER_MINUTE, sent.json
    assert flood[0] in admitted and flood[-1] in refused

    assert other.status == 200 and SLOW_DOWN not in other.body.decode(), other
    answer = chat.answer(other.reply_to, "the other person's answer")
    assert "open incident" in answer["text"].lower() or "no open incidents" in answer["text"].lower()

    # Only the admitted ones ran: each answered once, the refused never.
    settled(chat.fake, chat.stack, "the admitted commands run")
    assert all(len(chat.answers(sent.reply_to)) == 1 for sent in admitted)
    assert not any(chat.answers(sent.reply_to) for sent in refused)

    # The refusals reach the audit trail through the stream beat's drain empties.
    records = audited(
        chat,
        "flo",
        lambda r: sum(x["outcome"] == "rate_limited" for x in r) >= len(refused),
        "flo's rate_limited records",
    )
    limited = [r for r in records if r["outcome"] == "rate_limited"]
    assert len(limited) == len(refused)
    assert all(r["command"] == "list" and r["reason"] == "over the person rate" for r in limited)
    assert sum(r["outcome"] == "ok" for r in records) == len(admitted)
    assert [r["outcome"] for r in audit(chat, "gus")] == ["ok"]


def test_a_note_with_a_password_and_an_aws_key_is_shown_redacted(chat: Chat) -> None:
    incident = chat.declare("Secrets pasted in a note", "nell")
    noted = chat.run(f"note {incident} {NOTE}", "nell")
    assert NOTE_SHOWN in shown_as_text(noted), noted
    shown = chat.run(f"status {incident}", "nell")  # the timeline as chat shows it
    assert NOTE_SHOWN in shown_as_text(shown), shown
    settled(chat.fake, chat.stack, "the note's steps done")

    timeline = api(chat.stack, f"/incidents/{incident}")["timeline"]
    assert [entry["text"] for entry in timeline if entry["kind"] == "note"] == [NOTE_SHOWN]
    # Nothing the bot sent the platform (answers, cards, edits), nor any process's log, holds it.
    for text in (chat.everything_sent(), chat.stack.logs(tail=None), json.dumps(timeline)):
        assert PASSWORD not in text and AWS_KEY not in text

    records = audited(chat, "nell", lambda r: any(x["command"] == "note" for x in r), "nell's note")
    assert [(r["outcome"], r["incident"]) for r in records if r["command"] == "note"] == [("ok", incident)]
    assert PASSWORD not in json.dumps(records) and AWS_KEY not in json.dumps(records)


def test_a_replayed_signed_declare_creates_nothing_more(chat: Chat) -> None:
    title = f"Replayed declare on {chat.instance}"
    body, headers, reply_to = chat.request(f"declare sev3 {title}", "rex")
    first = chat.post(body, headers)
    second = chat.post(body, headers)  # the exact same signed request again
    assert first[0] == 200 and second[0] == 200, (first, second)
    answer = chat.answer(reply_to, "the declare's answer")
    incident = answer["text"].split()[0].rstrip(":")
    wait_on(chat.fake, chat.stack, lambda: chat.card_status(incident) == "open", "the card")
    settled(chat.fake, chat.stack, "the declare's steps done")

    assert len(chat.answers(reply_to)) == 1
    incidents = api(chat.stack, "/incidents", limit="200")["incidents"]
    assert [i["id"] for i in incidents if i["title"] == title] == [incident]
    records = audited(chat, "rex", lambda r: len(r) >= 1, "rex's declare")
    assert [(r["outcome"], r["command"], r["incident"]) for r in records] == [("ok", "declare", incident)]
