"""A command's effects, each on its own: an answer that cannot be delivered holds up nothing,
two copies of one command act once, a click on an old card does not act again, and a
commander is a person of the platform they came from.

The command task runs through Celery's own execution (``Task.apply``) with the real store
(SQLite), a real Redis (locks), the real Slack provider and slack_sdk against the local
server that plays Slack; the enqueued notifications are captured.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from celery import Celery

from chatops_core.models import InboundCommand, Severity
from chatops_core.notifications import Announcement, Notification
from chatops_core.providers.base import WebhookRequest
from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.tasks import COMMAND_TASK, NOTIFY_TASK
from tests.chatops_core.providers.slack_support import announcement_blocks
from tests.fakes.slack_server import FakeSlack
from tests.workers.slack_runtime import slack_runtime
from workers.celery_app import make_celery
from workers.runtime import Runtime

FORM = "application/x-www-form-urlencoded"


class Sent(list[tuple[str, list[Any], dict[str, Any]]]):
    """What the tasks enqueued (instead of the broker)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def __call__(self, name: str, args: list[Any] | None = None, **options: Any) -> None:
        with self._lock:
            self.append((name, list(args or []), options))

    def named(self, name: str) -> list[list[Any]]:
        return [args for n, args, _ in self if n == name]


@pytest.fixture
def worker(
    tmp_path: Path, slack: FakeSlack, redis_url: str, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Celery, Runtime, Sent]]:
    runtime = slack_runtime(tmp_path, slack, broker_url=redis_url, create_incident_channels=True, timeout=2)
    app = make_celery(runtime.settings, runtime)
    sent = Sent()
    monkeypatch.setattr(app, "send_task", sent)
    yield app, runtime, sent
    runtime.store.close()


_seq = iter(range(1, 10_000))


def slash(slack: FakeSlack, text: str, *, user: str = "U100ALICE", name: str = "alice") -> InboundCommand:
    """``/im <text>`` as Slack sends it, parsed by the Slack provider."""
    n = next(_seq)
    body = urlencode(
        {
            "team_id": "T0001",
            "channel_id": "C0004",
            "channel_name": "general",
            "user_id": user,
            "user_name": name,
            "command": "/im",
            "text": text,
            "response_url": slack.response_url(f"r{n}"),
            "trigger_id": f"{n}.1.abc",
        }
    ).encode()
    provider = SlackProvider("slack", SlackSettings(bot_token="x", signing_secret="s", api_url=slack.api_url))
    inbound = provider.parse(WebhookRequest(body=body, headers={}, content_type=FORM))
    assert inbound.command is not None
    # Old enough that a title-less declare would not try a form.
    return inbound.command


def run(app: Celery, cmd: InboundCommand) -> None:
    app.tasks[COMMAND_TASK].apply(args=[cmd.model_dump(mode="json")])


def answers(slack: FakeSlack, cmd: InboundCommand) -> list[Any]:
    url = cmd.reply_to.get("response_url")
    assert url is not None
    return slack.responses(url.rsplit("/", 1)[1])


def notifications(sent: Sent) -> list[Notification]:
    return [Notification.model_validate(args[0]) for args in sent.named(NOTIFY_TASK)]


@pytest.mark.parametrize("error", ["expired_url", "used_url"])
def test_an_answer_that_cannot_be_delivered_does_not_hold_up_the_announcement(
    worker: tuple[Celery, Runtime, Sent], slack: FakeSlack, error: str
) -> None:
    app, runtime, sent = worker
    run(app, slash(slack, "declare sev2 Payments down"))
    ack = slash(slack, "ack INC-1")
    slack.fail("response", times=20, status=404, error=error)
    run(app, ack)
    assert runtime.store.get(1).status.value == "acknowledged"
    assert [n.type for n in notifications(sent)] == ["incident.created", "incident.acknowledged"]
    assert runtime.store.dead_letters() == []
    # Given up at once: one try, not a retry loop.
    assert len([c for c in slack.calls("response") if c.status == 404]) == 1


def test_an_answer_lost_to_the_network_is_retried_after_the_announcement_went_out(
    worker: tuple[Celery, Runtime, Sent], slack: FakeSlack
) -> None:
    app, runtime, sent = worker
    run(app, slash(slack, "declare sev2 Payments down"))
    ack = slash(slack, "ack INC-1")
    slack.fail("response", times=3, status=503)  # the client's own two retries, then the task's
    run(app, ack)
    assert [n.type for n in notifications(sent)] == ["incident.created", "incident.acknowledged"]
    (answer,) = answers(slack, ack)
    assert "Acknowledged by alice" in answer["text"]
    assert runtime.store.dead_letters() == []


def test_two_copies_of_one_command_at_once_act_once(
    worker: tuple[Celery, Runtime, Sent], slack: FakeSlack
) -> None:
    app, runtime, sent = worker
    cmd = slash(slack, "declare sev2 Payments down")
    # The first copy stops inside conversations.create; the second arrives meanwhile.
    slack.hold("conversations.create", after=False)
    first = threading.Thread(target=run, args=(app, cmd))
    first.start()
    slack.wait_held()
    second = threading.Thread(target=run, args=(app, cmd))
    second.start()
    second.join(timeout=20)
    slack.release()
    first.join(timeout=20)
    assert not first.is_alive() and not second.is_alive()
    assert len(slack.calls("conversations.create")) == 1
    assert len(answers(slack, cmd)) == 1
    # The copy that found the command busy comes back later without using up a retry.
    (later,) = sent.named(COMMAND_TASK)
    app.tasks[COMMAND_TASK].apply(args=later)
    assert len(slack.calls("conversations.create")) == 1
    assert len(answers(slack, cmd)) == 1
    assert len(notifications(sent)) == 1
    assert [i.id for i in runtime.store.list(active_only=False)] == ["INC-1"]
    assert runtime.store.dead_letters() == []


def _click(slack: FakeSlack, cmd: InboundCommand, text: str, version: int | None, key: str) -> InboundCommand:
    return cmd.model_copy(
        update={
            "text": text,
            "source": "action",
            "card_version": version,
            "key": key,
            "reply_to": {**cmd.reply_to, "response_url": slack.response_url(key.replace(":", "-"))},
        }
    )


def test_two_clicks_on_one_card_escalate_once(worker: tuple[Celery, Runtime, Sent], slack: FakeSlack) -> None:
    app, runtime, sent = worker
    declare = slash(slack, "declare sev4 Slow search")
    run(app, declare)
    (created,) = notifications(sent)
    card = created.incident.version
    assert card == runtime.store.get(1).version
    first = _click(slack, declare, "escalate INC-1", card, "slack:slack:action:1")
    second = _click(slack, declare, "escalate INC-1", card, "slack:slack:action:2")
    run(app, first)
    run(app, second)
    assert runtime.store.get(1).severity is Severity.SEV3
    assert [n.type for n in notifications(sent)] == ["incident.created", "incident.escalated"]
    (refusal,) = answers(slack, second)
    assert refusal["response_type"] == "ephemeral"
    assert "already" in refusal["text"] and "SEV-3" in refusal["text"]
    # A note since (not shown on the card) does not make the new card old.
    run(app, _click(slack, declare, "note INC-1 looking at the index", None, "k-note"))
    escalated = notifications(sent)[-1].incident.version
    run(app, _click(slack, declare, "escalate INC-1", escalated, "slack:slack:action:3"))
    assert runtime.store.get(1).severity is Severity.SEV2


def test_assign_names_a_person_shown_as_a_mention_only_on_their_own_workspace(
    worker: tuple[Celery, Runtime, Sent], slack: FakeSlack
) -> None:
    app, runtime, sent = worker
    slack.add_user("U500ERIN", "erin")
    run(app, slash(slack, "declare sev2 Queue stuck"))
    assign = slash(slack, "assign INC-1 <@U500ERIN|erin>")
    run(app, assign)
    incident = runtime.store.get(1)
    assert (incident.commander, incident.commander_user_id, incident.commander_instance) == (
        "erin",
        "U500ERIN",
        "slack",
    )
    assert incident.channel_id is not None
    assert "U500ERIN" in slack.channel(incident.channel_id)["members"]
    (answer,) = answers(slack, assign)
    assert "erin assigned as incident commander by alice" in answer["text"]
    assert "&lt;" not in json.dumps(answer)
    updated = notifications(sent)[-1]
    assert (updated.incident.commander_user_id, updated.incident.commander_instance) == ("U500ERIN", "slack")
    here = json.dumps(announcement_blocks(Announcement.of(updated), instance="slack"))
    elsewhere = json.dumps(announcement_blocks(Announcement.of(updated), instance="other"))
    assert "<@U500ERIN>" in here and '"initial_user": "U500ERIN"' in here
    assert "<@U500ERIN>" not in elsewhere and "erin" in elsewhere and "initial_user" not in elsewhere


def test_the_channel_topic_cannot_ping_anyone(worker: tuple[Celery, Runtime, Sent], slack: FakeSlack) -> None:
    app, runtime, _ = worker
    run(app, slash(slack, "declare sev2 <!channel> & <@U1> look"))
    channel_id = runtime.store.get(1).channel_id
    assert channel_id is not None
    topic = slack.channel(channel_id)["topic"]["value"]
    assert "<" not in topic and "&lt;!channel&gt; &amp; &lt;@U1&gt; look" in topic


def test_a_command_that_waits_for_another_copy_comes_back_soon(
    worker: tuple[Celery, Runtime, Sent], slack: FakeSlack, redis_client: Any
) -> None:
    app, _, sent = worker
    cmd = slash(slack, "list")
    redis_client.set(f"chatops:lock:command:{cmd.key}", "someone", px=5000)
    started = time.monotonic()
    run(app, cmd)
    assert time.monotonic() - started < 2
    ((name, args, options),) = sent
    assert name == COMMAND_TASK and args == [cmd.model_dump(mode="json")]
    assert 0 < options["countdown"] <= 5 and options["queue"] == "interactive"
    assert answers(slack, cmd) == []


def test_resolve_clicked_on_an_old_card_says_what_changed_instead_of_opening_the_form(
    worker: tuple[Celery, Runtime, Sent], slack: FakeSlack
) -> None:
    app, runtime, sent = worker
    declare = slash(slack, "declare sev3 Stale cache")
    run(app, declare)
    card = notifications(sent)[0].incident.version
    run(app, slash(slack, "resolve INC-1 flushed"))
    clicked = _click(slack, declare, "resolve INC-1", card, "slack:slack:action:r1")
    click = clicked.model_copy(
        update={"form": "resolve", "reply_to": {**clicked.reply_to, "trigger_id": "9.9.9"}}
    )
    run(app, click)
    assert slack.views() == []
    (answer,) = answers(slack, click)
    assert "already changed" in answer["text"] and "resolved" in answer["text"]
