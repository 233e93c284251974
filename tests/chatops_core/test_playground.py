"""The local Slack playground, driven through the bot's own Slack client: what it prints for
each thing the bot does, and what it keeps across a restart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from chatops_core.providers.slack.client import SlackApi
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.forms import declare_view
from chatops_core.providers.slack.playground import Playground

CARD_CONTROLS = [
    {
        "type": "actions",
        "block_id": "im:INC-7",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge"}, "action_id": "im:ack"},
            {"type": "button", "text": {"type": "plain_text", "text": "Resolve"}, "action_id": "im:resolve"},
            {
                "type": "users_select",
                "action_id": "im:assign",
                "placeholder": {"type": "plain_text", "text": "Commander"},
                "initial_user": "U0ALICE",
            },
        ],
    }
]


class Console:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def take(self) -> list[str]:
        taken, self.lines = self.lines, []
        return taken


@pytest.fixture
def console() -> Console:
    return Console()


def _start(data_dir: Path, console: Console) -> Playground:
    playground = Playground(data_dir, out=console)
    playground.start()
    return playground


def _api(playground: Playground) -> SlackApi:
    settings = SlackSettings(
        bot_token="xoxb-playground", signing_secret="unused", api_url=playground.api_url, timeout=5
    )
    return SlackApi(settings, retry_interval=FixedValueRetryIntervalCalculator(0.01))


@pytest.fixture
def playground(tmp_path: Path, console: Console) -> Iterator[Playground]:
    running = _start(tmp_path, console)
    # Alice types in #incidents (what `chatops simulate` tells the playground).
    running.open_session({"user_id": "U0ALICE", "user_name": "alice", "channel_name": "incidents"})
    yield running
    running.stop()


def test_every_action_of_the_bot_is_printed_with_names(playground: Playground, console: Console) -> None:
    api = _api(playground)
    channel = api.create_channel("inc-7-db-timeouts", topic="INC-7 [SEV-2] DB timeouts")
    api.invite(channel.channel_id, ["U0ALICE"])
    card = api.post_message(channel.channel_id, "Incident declared: INC-7 DB timeouts", CARD_CONTROLS)
    api.pin(channel.channel_id, card.message_id)
    api.post_message(channel.channel_id, "Noted, <@U0ALICE>", [], thread_ts=card.message_id)
    api.update_message(channel.channel_id, card.message_id, "Incident acknowledged: INC-7 DB timeouts", [])
    api.post_ephemeral("#incidents", "U0ALICE", "Only you see this &amp; that", [])
    # A channel that exists in the workspace, the bot not in it.
    playground.open_session({"user_id": "U0ALICE", "channel_id": "C0WARROOM", "channel_name": "war-room"})
    api.join("C0WARROOM")
    api.kick(channel.channel_id, "U0ALICE")
    api.archive(channel.channel_id)

    assert console.take() == [
        "[slack #inc-7-db-timeouts] (channel created)",
        "[slack #inc-7-db-timeouts] (topic) INC-7 [SEV-2] DB timeouts",
        "[slack #inc-7-db-timeouts] (invited) @alice",
        "[slack #inc-7-db-timeouts] (posted) Incident declared: INC-7 DB timeouts",
        "    [Acknowledge] [Resolve] [Commander: @alice ▾]",
        "[slack #inc-7-db-timeouts] (pinned) Incident declared: INC-7 DB timeouts",
        "[slack #inc-7-db-timeouts] (replied in a thread) Noted, @alice",
        "[slack #inc-7-db-timeouts] (updated) Incident acknowledged: INC-7 DB timeouts",
        "[slack #incidents] (only @alice sees) Only you see this & that",
        "[slack #war-room] (joined) @incident-bot",
        "[slack #inc-7-db-timeouts] (removed) @alice",
        "[slack #inc-7-db-timeouts] (archived)",
    ]


def test_a_form_opened_for_someone_is_printed(tmp_path: Path, console: Console) -> None:
    playground = _start(tmp_path, console)
    try:
        playground.open_session(
            {"user_id": "U0BOB", "user_name": "bob", "channel_name": "incidents", "trigger": "1.2.abc"}
        )
        _api(playground).open_view("1.2.abc", declare_view({}))
    finally:
        playground.stop()
    assert console.take() == [
        "[slack] (form opened for @bob) Declare an incident",
        "    Title *: ____",
        "    Severity *: ____",
        "    Description: ____",
        "    [Declare]",
    ]


def test_answers_on_a_response_url_are_printed_and_passed_on(tmp_path: Path, console: Console) -> None:
    from chatops_core.simulate import ResponseListener

    playground = _start(tmp_path, console)
    try:
        with ResponseListener() as listener:
            session = playground.open_session(
                {
                    "user_id": "U0ALICE",
                    "user_name": "alice",
                    "channel_name": "incidents",
                    "forward_url": listener.url,
                }
            )
            answer = {"response_type": "ephemeral", "text": "INC-7 [SEV-2] open: DB\nCommander: <@U0ALICE>"}
            _api(playground).respond(session["reply_url"], answer)
            assert listener.wait(5) == answer
            _api(playground).respond(session["reply_url"], {"response_type": "in_channel", "text": "Done"})
            assert listener.wait(5) == {"response_type": "in_channel", "text": "Done"}
    finally:
        playground.stop()
    assert console.take() == [
        "[slack #incidents] (answer only @alice sees) INC-7 [SEV-2] open: DB",
        "    Commander: @alice",
        "[slack #incidents] (answer in the channel) Done",
    ]


def test_channel_names_survive_a_restart(tmp_path: Path, console: Console) -> None:
    first = _start(tmp_path, console)
    try:
        api = _api(first)
        channel = api.create_channel("inc-7-db-timeouts")
        metadata = {"event_type": "chatops_delivery", "event_payload": {"key": "k1"}}
        card = api.post_message(channel.channel_id, "Incident declared: INC-7", [], metadata)
    finally:
        first.stop()
    console.take()

    second = _start(tmp_path, console)
    try:
        api = _api(second)
        api.update_message(channel.channel_id, card.message_id, "Incident resolved: INC-7", [])
        again = api.create_channel("inc-7-db-timeouts")  # the name is still taken
        # The bot still finds its earlier post (it looks before posting again).
        history = api.history(channel.channel_id, oldest=0)
    finally:
        second.stop()
    assert console.take() == [
        "[slack #inc-7-db-timeouts] (updated) Incident resolved: INC-7",
        "[slack #inc-7-db-timeouts-2] (channel created)",
    ]
    assert again.name == "inc-7-db-timeouts-2" and again.channel_id != channel.channel_id
    assert [m.get("metadata") for m in history] == [metadata]


def test_no_printed_line_shows_an_id(playground: Playground, console: Console) -> None:
    api = _api(playground)
    channel = api.create_channel("inc-8-cache")
    api.post_message(channel.channel_id, "See <#" + channel.channel_id + "> and <@U0ALICE>", [])
    printed = "\n".join(console.take())
    assert "See #inc-8-cache and @alice" in printed
    assert not re.search(r"\b[CU][0-9A-Z]{7,}\b", printed), printed


def test_a_long_answer_is_printed_in_a_few_lines(playground: Playground, console: Console) -> None:
    text = "\n".join(f"• INC-{n} [SEV-3] open: Incident {n}" for n in range(20, 0, -1))
    _api(playground).post_ephemeral("#incidents", "U0ALICE", "20 open incidents:\n" + text, [])
    assert console.take() == [
        "[slack #incidents] (only @alice sees) 20 open incidents:",
        *[f"    • INC-{n} [SEV-3] open: Incident {n}" for n in range(20, 13, -1)],
        "    … 13 more lines",
    ]
