"""Who may do what, as the worker enforces it: typed commands, clicks and forms alike.

The real store (SQLite) and the worker's command path on the recording platform; roles come
from ``[access]`` (set on the store as ``IncidentStore.from_settings`` does) and from grants.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops_core.access import AccessSettings, Role
from chatops_core.models import Actor, Person, Status
from tests.fakes.recording_provider import RecordingProvider
from tests.fakes.recording_runtime import ALICE, BOB, World, recording_runtime

CAROL = Actor(user_id="U300CAROL", user_name="carol")
DAVE = Actor(user_id="U400DAVE", user_name="dave")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Alice and Bob are responders (the default), Carol is an admin, Dave a viewer."""
    provider = RecordingProvider("rec")
    made = World(recording_runtime(tmp_path, provider), provider)
    made.runtime.store.access = AccessSettings(
        roles={"rec:U300CAROL": Role.ADMIN, "rec:U400DAVE": Role.VIEWER}
    )
    yield made
    made.close()


def snapshot(world: World) -> tuple[object, ...]:
    """What a person could see change: the incident, its timeline, the cards, what was announced."""
    incident = world.incident()
    cards = [
        (m.id, m.text, m.version, tuple(m.edits))
        for m in world.provider.messages()
        if m.kind == "announcement"
    ]
    return (incident, world.runtime.store.timeline(incident.number), cards, len(world.deliveries))


def last_answer(world: World, user: Actor) -> tuple[str, str]:
    reply, visibility = world.provider.answers(user.user_id)[-1]
    return reply.text, visibility


def test_a_viewers_ack_is_refused_privately_and_changes_nothing(world: World) -> None:
    world.run("declare sev2 Checkout errors")
    before = snapshot(world)
    world.run("ack INC-1", user=DAVE)
    assert snapshot(world) == before
    assert world.incident().status is Status.OPEN and world.incident().commander is None
    text, visibility = last_answer(world, DAVE)
    assert visibility == "private"
    assert text == (
        "`ack` needs the responder role (you are a viewer). "
        "An admin can grant it with `/im role @you responder`."
    )
    # A viewer may still look.
    world.run("status INC-1", user=DAVE)
    assert "Checkout errors" in last_answer(world, DAVE)[0]


def test_a_refusal_names_the_admins_it_knows(world: World) -> None:
    world.run("list", user=CAROL)  # Carol has used the bot: her name is known
    world.run("declare Disk full")
    world.run("ack INC-1", user=DAVE)
    assert "An admin can grant it: carol with `/im role @you responder`." in last_answer(world, DAVE)[0]


def test_a_responder_cannot_close_unless_they_command_the_incident(world: World) -> None:
    world.run("declare sev3 Queue stuck")
    world.run("ack INC-1")  # Alice acknowledges: she becomes the commander
    world.run("resolve INC-1 drained", user=BOB)  # resolving takes a responder
    assert world.incident().status is Status.RESOLVED
    before = snapshot(world)
    world.run("close INC-1", user=BOB)
    assert snapshot(world) == before
    text, visibility = last_answer(world, BOB)
    assert visibility == "private"
    assert text.startswith("`close` needs the manager role (you are a responder).")
    world.run("close INC-1", user=ALICE)  # the commander counts as a manager on it
    assert world.incident().status is Status.CLOSED
    world.run("reopen INC-1", user=BOB)
    assert world.incident().status is Status.CLOSED


def test_an_admins_role_command_takes_effect(world: World) -> None:
    world.run("declare Search slow")
    world.run("resolve INC-1 reindexed")
    bob = Person(instance="rec", user_id="U200BOB", display="bob")
    # Bob cannot give himself a role, nor can Alice: that takes an admin.
    world.run("role <@U200BOB> manager", user=BOB, mentioned=[bob])
    assert last_answer(world, BOB)[0].startswith("`role` needs the admin role (you are a responder).")
    world.run("close INC-1", user=BOB)
    assert world.incident().status is Status.RESOLVED

    world.run("role <@U200BOB> manager", user=CAROL, mentioned=[bob])
    assert last_answer(world, CAROL) == ("bob is now a manager.", "private")
    world.run("close INC-1", user=BOB)
    assert world.incident().status is Status.CLOSED
    person = world.runtime.store.find_person("rec", "U200BOB")
    assert person is not None and person.grant is not None
    assert (person.grant.role, person.grant.granted_by) == (Role.MANAGER, "carol (rec:U300CAROL)")

    # The grant overrides the configuration: Dave, a viewer by [access.roles], is raised.
    world.run("list", user=DAVE)
    world.run("role @dave responder", user=CAROL)
    assert last_answer(world, CAROL) == ("dave is now a responder.", "private")
    world.run("note INC-1 postmortem booked", user=DAVE)
    assert world.runtime.store.timeline(1)[-1].text.endswith("postmortem booked")


def test_role_for_someone_never_seen_by_name_says_how(world: World) -> None:
    world.run("role @zed manager", user=CAROL)
    text, visibility = last_answer(world, CAROL)
    assert visibility == "private" and text.startswith("I do not know @zed on this platform yet")
    assert world.runtime.store.person_named("rec", "zed") is None


def test_an_admin_cannot_change_their_own_role_in_chat(world: World) -> None:
    carol = Person(instance="rec", user_id="U300CAROL", display="carol")
    world.run("role <@U300CAROL> viewer", user=CAROL, mentioned=[carol])
    assert "your own role" in last_answer(world, CAROL)[0]
    person = world.runtime.store.find_person("rec", "U300CAROL")
    assert person is not None and world.runtime.store.role_of(person) is Role.ADMIN


def test_a_click_obeys_the_policy(world: World) -> None:
    world.run("declare sev2 Payments down")
    before = snapshot(world)
    # Dave clicks Acknowledge on the card: the same refusal, only to him; the card stays.
    world.run("ack INC-1", user=DAVE, source="action", card_version=world.incident().version)
    assert snapshot(world) == before
    text, visibility = last_answer(world, DAVE)
    assert visibility == "private" and text.startswith("`ack` needs the responder role")
    # Bob may click it.
    world.run("ack INC-1", user=BOB, source="action", card_version=world.incident().version)
    assert world.incident().status is Status.ACKNOWLEDGED and world.incident().commander == "bob"


def test_a_submitted_form_obeys_the_policy(world: World) -> None:
    world.run("declare sev2 Payments down")
    before = snapshot(world)
    world.run("resolve INC-1 rolled back", user=DAVE, source="form")
    assert snapshot(world) == before
    assert last_answer(world, DAVE)[0].startswith("`resolve` needs the responder role")
    world.run("declare sev1 Everything down", user=DAVE, source="form")
    assert [i.id for i in world.runtime.store.list()] == ["INC-1"]


def test_the_configured_least_role_of_a_word_applies(world: World) -> None:
    store = world.runtime.store
    store.access = store.access.model_copy(update={"commands": {"declare": Role.MANAGER}})
    world.run("declare Backups failing", user=BOB)
    assert store.list() == []
    assert last_answer(world, BOB)[0].startswith("`declare` needs the manager role (you are a responder).")
