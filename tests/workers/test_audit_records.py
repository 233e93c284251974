"""The worker's audit records: one per command carried out or refused, with the right fields.

The real store (SQLite) and the worker's command path on the recording platform.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops_core.access import AccessSettings, Role
from chatops_core.audit import AuditOutcome, AuditRecord
from chatops_core.models import Actor, Person, Status
from tests.fakes.recording_provider import RecordingProvider
from tests.fakes.recording_runtime import ALICE, World, recording_runtime
from workers.audit import record

CAROL = Actor(user_id="U300CAROL", user_name="carol")
DAVE = Actor(user_id="U400DAVE", user_name="dave")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Alice is a responder (the default), Carol an admin, Dave a viewer."""
    provider = RecordingProvider("rec")
    made = World(recording_runtime(tmp_path, provider), provider)
    made.runtime.store.access = AccessSettings(
        roles={"rec:U300CAROL": Role.ADMIN, "rec:U400DAVE": Role.VIEWER}
    )
    yield made
    made.close()


def records(world: World) -> list[AuditRecord]:
    return world.runtime.store.audit_records()[::-1]  # oldest first


def fields(record: AuditRecord) -> tuple[object, ...]:
    return (record.outcome, record.source, record.command, record.incident, record.actor, record.channel)


def test_a_done_declare_and_a_refused_viewer_ack(world: World) -> None:
    world.run("declare sev2 Checkout errors")
    world.run("ack INC-1", user=DAVE)
    declared, refused = records(world)
    assert fields(declared) == (AuditOutcome.OK, "command", "declare", "INC-1", "alice", "general")
    assert (declared.instance, declared.user_id, declared.platform) == ("rec", "U100ALICE", "recording")
    alice = world.runtime.store.find_person("rec", "U100ALICE")
    assert alice is not None and declared.person_id == alice.id
    assert declared.reason is None  # the title people typed is not recorded
    assert fields(refused) == (AuditOutcome.DENIED, "command", "ack", "INC-1", "dave", "general")
    assert refused.reason == (
        "`ack` needs the responder role (you are a viewer). "
        "An admin can grant it with `/im role @you responder`."
    )


def test_a_command_recorded_again_is_recorded_once(world: World) -> None:
    inbound = world.run("declare Disk full")
    # What a task that stopped after recording, before marking the command done, does again.
    record(world.runtime, inbound, AuditOutcome.OK, command="declare", incident=1)
    assert [r.command for r in records(world)] == ["declare"]


def test_wrong_input_is_recorded_as_invalid_with_the_answer(world: World) -> None:
    world.run("ack INC-9")
    (record,) = records(world)
    assert fields(record) == (AuditOutcome.INVALID, "command", "ack", "INC-9", "alice", "general")
    assert record.reason is not None and "INC-9" in record.reason


def test_a_click_and_a_submitted_form(world: World) -> None:
    world.run("declare sev2 Payments down")
    world.run("ack INC-1", source="action", card_version=world.incident().version)
    world.run("resolve INC-1 rolled back", source="form")
    assert world.incident().status is Status.RESOLVED
    _, click, form = records(world)
    assert fields(click) == (AuditOutcome.OK, "action", "ack", "INC-1", "alice", "general")
    assert fields(form) == (AuditOutcome.OK, "form", "resolve", "INC-1", "alice", "general")


def test_a_form_opened_is_recorded_and_a_viewer_gets_the_refusal_not_the_form(world: World) -> None:
    world.run("declare")  # a bare declare opens the form
    assert len(world.provider.forms()) == 1
    world.run("declare", user=DAVE)
    assert len(world.provider.forms()) == 1  # none opened for Dave
    text, visibility = world.provider.answers(DAVE.user_id)[-1]
    assert visibility == "private" and text.text.startswith("`declare` needs the responder role")
    opened, refused = records(world)
    assert fields(opened) == (AuditOutcome.OK, "command", "declare", None, "alice", "general")
    assert opened.reason == "form opened"
    assert fields(refused) == (AuditOutcome.DENIED, "command", "declare", None, "dave", "general")


def test_a_click_on_resolve_by_a_viewer_opens_no_form(world: World) -> None:
    world.run("declare sev2 Payments down")
    world.run("resolve INC-1", user=DAVE, source="action", form="resolve")
    assert world.provider.forms() == []
    assert world.provider.answers(DAVE.user_id)[-1][0].text.startswith("`resolve` needs the responder role")
    refused = records(world)[-1]
    assert fields(refused) == (AuditOutcome.DENIED, "action", "resolve", "INC-1", "dave", "general")


def test_a_grant_in_chat_is_recorded_with_whom_and_which_role(world: World) -> None:
    world.run("list", user=DAVE)  # Dave is known
    dave = Person(instance="rec", user_id="U400DAVE", display="dave")
    world.run("role <@U400DAVE> responder", user=CAROL, mentioned=[dave])
    known = world.runtime.store.find_person("rec", "U400DAVE")
    assert known is not None
    grant = records(world)[-1]
    assert fields(grant) == (AuditOutcome.OK, "command", "role", None, "carol", "general")
    assert grant.reason == f"granted dave (person {known.id}) the responder role (was viewer)"


def test_a_reaction_obeys_the_policy_as_a_note_does(world: World) -> None:
    world.run("declare sev2 Payments down")
    channel = world.incident().channel_id
    assert channel is not None
    message = world.provider.add_message(channel, "Restarted the primary", author="U100ALICE")
    before = world.runtime.store.timeline(1)
    world.run("", user=DAVE, source="reaction", channel_id=channel, channel_name=None, message_id=message)
    assert world.runtime.store.timeline(1) == before  # skipped
    assert world.provider.answers(DAVE.user_id) == []  # without a word
    world.run("", user=ALICE, source="reaction", channel_id=channel, channel_name=None, message_id=message)
    assert world.runtime.store.timeline(1)[-1].text == "Restarted the primary"
    refused, marked = records(world)[-2:]
    assert (refused.outcome, refused.source, refused.command, refused.actor) == (
        AuditOutcome.DENIED,
        "reaction",
        "note",
        "dave",
    )
    assert (marked.outcome, marked.command, marked.incident) == (AuditOutcome.OK, "note", "INC-1")
