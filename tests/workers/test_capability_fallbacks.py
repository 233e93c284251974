"""Each capability a platform may lack, and what the workers do instead.

Every test runs the real command and delivery code on the recording fake with one capability
(or a related pair) taken away, and checks the documented fallback: what people see, and
that nothing the platform cannot do is asked of it (the fake refuses such a call with
``OperationNotSupported`` and records it as failed). A matching test on a platform that has
the capability shows the difference. No Redis: these deliveries are not paced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatops_core.access import AccessSettings, Role
from chatops_core.errors import ConnectionFailed, TriggerExpired
from chatops_core.models import Status
from chatops_core.providers.base import Capability
from tests.fakes.recording_provider import ALL_CAPABILITIES, RecordingProvider
from tests.fakes.recording_runtime import BOB, World, recording_runtime

MakeWorld = Callable[..., World]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[MakeWorld]:
    made: list[World] = []

    def make(*without: Capability, through_tasks: bool = False, **settings: Any) -> World:
        provider = RecordingProvider("rec", capabilities=ALL_CAPABILITIES - set(without))
        directory = tmp_path / f"w{len(made)}"
        directory.mkdir()
        world = World(
            recording_runtime(directory, provider, **settings), provider, through_tasks=through_tasks
        )
        made.append(world)
        return world

    yield make
    for world in made:
        world.close()


def refused(world: World) -> list[str]:
    """The calls the platform refused or failed, one line each."""
    return [str(r) for r in world.provider.calls(ok=False)]


# -- UPDATE_MESSAGE: a new message per change, never a dead letter --------------------------


def test_without_update_a_second_notification_is_a_new_message(make_world: MakeWorld) -> None:
    world = make_world(Capability.UPDATE_MESSAGE)
    world.run("declare sev2 Payments down")
    world.run("ack INC-1")
    assert world.failed == [], [str(f.error) for f in world.failed]
    assert refused(world) == []
    assert world.provider.calls("update_announcement") == []
    cards = world.provider.messages("#incidents")
    assert [c.status for c in cards] == ["open", "acknowledged"], world.provider.log()
    assert all(d.outcome == "delivered" for d in world.deliveries)


def test_without_update_the_delivery_task_leaves_no_dead_letter(make_world: MakeWorld) -> None:
    world = make_world(Capability.UPDATE_MESSAGE, through_tasks=True, broker_url="memory://")
    world.run("declare sev2 Payments down")
    world.run("ack INC-1")
    world.run("escalate INC-1")
    assert world.runtime.store.dead_letters() == [], world.provider.log()
    assert {d.outcome for d in world.deliveries} == {"posted"}
    kinds = [(m.kind, m.status) for m in world.provider.messages("#incidents")]
    assert kinds == [("announcement", "open"), ("announcement", "acknowledged"), ("alert", "acknowledged")]


def test_without_update_every_change_of_a_life_is_told(make_world: MakeWorld) -> None:
    world = make_world(Capability.UPDATE_MESSAGE)
    world.run("declare Payments down")
    for text in ("ack INC-1", "resolve INC-1 fixed", "close INC-1"):
        world.run(text)
    assert world.failed == [] and refused(world) == []
    statuses = [c.status for c in world.provider.messages("#incidents")]
    assert statuses == ["open", "acknowledged", "resolved", "closed"]


def test_with_update_a_second_notification_edits_the_card(make_world: MakeWorld) -> None:
    world = make_world()
    world.run("declare sev2 Payments down")
    world.run("ack INC-1")
    (card,) = world.provider.messages("#incidents")
    assert card.status == "acknowledged" and len(card.edits) == 1


# -- PIN: not pinned ---------------------------------------------------------------------------


def test_without_pin_the_card_in_the_incident_channel_is_posted_unpinned(make_world: MakeWorld) -> None:
    world = make_world(Capability.PIN)
    world.run("declare Disk full")
    channel_id = world.incident().channel_id
    assert channel_id is not None
    (card,) = world.provider.messages(channel_id)
    assert not card.pinned
    assert world.provider.calls("pin") == [] and refused(world) == []
    assert {d.outcome for d in world.deliveries} == {"delivered"}


def test_with_pin_the_card_in_the_incident_channel_is_pinned(make_world: MakeWorld) -> None:
    world = make_world()
    world.run("declare Disk full")
    (card,) = world.provider.messages(world.incident().channel_id or "")
    assert card.pinned


# -- FORMS: answer with the typed form of the command -----------------------------------------


@pytest.mark.parametrize("text", ["declare", "declare sev2"])
def test_without_forms_declare_with_no_title_answers_with_the_typed_form(
    make_world: MakeWorld, text: str
) -> None:
    world = make_world(Capability.FORMS)
    world.run(text)
    (answer,) = world.provider.answer_texts("U100ALICE")
    # The command to type, severity and title included (a title or a placeholder for one).
    assert re.search(r"declare sev[1-4] \S", answer), answer
    assert world.runtime.store.list(active_only=False) == []
    assert world.provider.forms() == [] and refused(world) == []


def test_with_forms_declare_with_no_title_opens_the_form(make_world: MakeWorld) -> None:
    world = make_world()
    world.run("declare")
    assert [(f["how"], f["form"]) for f in world.provider.forms()] == [("opened", "declare")]
    assert world.runtime.store.list(active_only=False) == []


def test_with_forms_a_stale_trigger_offers_the_form_instead(make_world: MakeWorld) -> None:
    world = make_world()
    world.provider.fail("open_form", TriggerExpired("trigger used"))
    world.run("declare")
    assert [f["how"] for f in world.provider.forms()] == ["offered"]


# -- THREADS: a mention answered at top level, an alert as a new message -----------------------


# A platform without threads has no alert in a thread either; THREADS alone is what the spec
# names for both, so each test also runs with ALERT_IN_THREAD left in place.
WITHOUT_THREADS = pytest.mark.parametrize(
    "without",
    [(Capability.THREADS,), (Capability.THREADS, Capability.ALERT_IN_THREAD)],
    ids=["no-threads", "no-threads-no-alert-in-thread"],
)


@WITHOUT_THREADS
def test_without_threads_a_mention_is_answered_at_top_level(
    make_world: MakeWorld, without: tuple[Capability, ...]
) -> None:
    world = make_world(*without)
    world.run("declare Search slow")
    world.run("status INC-1", source="mention", user=BOB, thread_id="M09999", channel_id="C0001")
    assert refused(world) == []
    in_thread = [m for m in world.provider.messages() if m.thread_id is not None]
    assert in_thread == []
    answered = [r for r in world.provider.calls("reply_in_thread")] + [
        r for r in world.provider.calls("reply") if r.args["user"] == "U200BOB"
    ]
    assert len(answered) == 1, world.provider.log()
    assert "INC-1" in str(answered[0].args["text"])


def test_with_threads_a_mention_is_answered_in_its_thread(make_world: MakeWorld) -> None:
    world = make_world()
    world.run("declare Search slow")
    world.run("status INC-1", source="mention", user=BOB, thread_id="M09999", channel_id="C0001")
    (answer,) = world.provider.calls("reply_in_thread")
    assert answer.args["thread_id"] == "M09999"


@WITHOUT_THREADS
def test_without_threads_an_alert_is_a_new_message(
    make_world: MakeWorld, without: tuple[Capability, ...]
) -> None:
    world = make_world(*without)
    world.run("declare sev3 Search slow")
    world.run("escalate INC-1")
    assert world.failed == [] and refused(world) == []
    alerts = [m for m in world.provider.messages("#incidents") if m.kind == "alert"]
    assert len(alerts) == 1 and alerts[0].thread_id is None, world.provider.log()
    (card,) = [m for m in world.provider.messages("#incidents") if m.kind == "announcement"]
    assert card.version == world.incident().version  # the card itself still follows


def test_with_threads_an_alert_goes_in_the_cards_thread(make_world: MakeWorld) -> None:
    world = make_world()
    world.run("declare sev3 Search slow")
    world.run("escalate INC-1")
    (card,) = [m for m in world.provider.messages("#incidents") if m.kind == "announcement"]
    (alert,) = [m for m in world.provider.messages("#incidents") if m.kind == "alert"]
    assert alert.thread_id == card.id and alert.to_channel_too


# -- CHANNELS: no incident channel, commands still work ----------------------------------------


def test_without_channels_there_is_no_incident_channel_and_commands_work(make_world: MakeWorld) -> None:
    world = make_world(Capability.CHANNELS, create_incident_channels=True, archive_on_close=True)
    # Bob closes an incident Erin commands: that takes a manager.
    world.runtime.store.access = AccessSettings(roles={"rec:U200BOB": Role.MANAGER})
    world.run("declare sev2 Payments down")
    incident = world.incident()
    assert incident.channel_id is None
    assert world.provider.calls("create_channel") == [] and world.provider.calls("invite") == []
    assert any("INC-1" in t for t in world.provider.answer_texts("U100ALICE"))
    for text in ("join INC-1", "assign INC-1 <@U500ERIN>", "ack INC-1", "resolve INC-1 ok", "close INC-1"):
        world.run(text, user=BOB)
    assert world.incident().status == Status.CLOSED
    assert refused(world) == [], world.provider.log()
    assert world.failed == []
    # Only the routed channel shows the incident.
    assert {m.channel_id for m in world.provider.messages() if m.kind == "announcement"} == {"C0001"}
    # Bob was answered for each command, join included.
    assert len(world.provider.answers("U200BOB")) == 5


def test_with_channels_declare_creates_one(make_world: MakeWorld) -> None:
    world = make_world(create_incident_channels=True)
    world.run("declare sev2 Payments down")
    assert world.incident().channel_id is not None
    assert len(world.provider.calls("create_channel")) == 1


# -- FIND_POSTED: a retry after an unknown outcome posts (at least once) ------------------------


def test_without_find_posted_a_retry_after_an_unknown_outcome_posts(make_world: MakeWorld) -> None:
    world = make_world(Capability.FIND_POSTED, create_incident_channels=False)
    world.provider.fail("announce", ConnectionFailed("timed out", outcome_unknown=True), after=True)
    world.run("declare Login slow")
    (failure,) = world.failed
    (again,) = world.retry_failed()
    assert again.outcome == "delivered" and world.failed == []
    # The lost post went out, and the retry posted again: at least once beats never.
    assert len(world.provider.messages("#incidents")) == 2
    assert world.provider.calls("find_announcement") == [], world.provider.log()


def test_with_find_posted_a_retry_after_an_unknown_outcome_finds_the_post(make_world: MakeWorld) -> None:
    world = make_world(create_incident_channels=False)
    world.provider.fail("announce", ConnectionFailed("timed out", outcome_unknown=True), after=True)
    world.run("declare Login slow")
    (again,) = world.retry_failed()
    assert again.outcome == "duplicate"
    assert len(world.provider.messages("#incidents")) == 1


def test_without_find_posted_a_post_known_not_to_have_gone_out_is_simply_posted(
    make_world: MakeWorld,
) -> None:
    world = make_world(Capability.FIND_POSTED, create_incident_channels=False)
    world.provider.fail("announce", ConnectionFailed("refused", outcome_unknown=False))
    world.run("declare Login slow")
    (again,) = world.retry_failed()
    assert again.outcome == "delivered"
    assert len(world.provider.messages("#incidents")) == 1


# -- PRIVATE_REPLY: the answer is posted where the command came from ---------------------------


def test_without_private_replies_the_answer_is_given_in_the_channel(make_world: MakeWorld) -> None:
    world = make_world(Capability.PRIVATE_REPLY)
    world.run("declare Search slow")
    world.run("status INC-1", user=BOB)
    answers = world.provider.answers("U200BOB")
    assert len(answers) == 1 and answers[0][1] == "channel"
    assert "INC-1" in answers[0][0].text
    assert refused(world) == []


# -- MENTIONS: a reaction marks a message for the timeline only where the text can be read ----


def test_with_mentions_a_marked_message_joins_the_timeline(make_world: MakeWorld) -> None:
    world = make_world()
    world.run("declare Cache cold")
    channel_id = world.incident().channel_id
    assert channel_id is not None
    marked = world.provider.add_message(channel_id, "Restarted the cache nodes", author="U300CAROL")
    world.run("", source="reaction", channel_id=channel_id, channel_name="inc-1", message_id=marked, user=BOB)
    notes = [e for e in world.runtime.store.timeline(1) if e.text == "Restarted the cache nodes"]
    assert len(notes) == 1 and notes[0].actor == "U300CAROL", world.provider.log()


def test_without_mentions_a_reaction_asks_nothing_of_the_platform(make_world: MakeWorld) -> None:
    world = make_world(Capability.MENTIONS)
    world.run("declare Cache cold")
    channel_id = world.incident().channel_id
    assert channel_id is not None
    marked = world.provider.add_message(channel_id, "Restarted the cache nodes")
    world.run("", source="reaction", channel_id=channel_id, channel_name="inc-1", message_id=marked, user=BOB)
    assert world.provider.calls("message_text") == [] and refused(world) == []
