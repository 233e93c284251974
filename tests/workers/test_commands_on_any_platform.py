"""Commands and notifications on a platform the workers know only through the provider
interface: the recording fake, with every capability or with only some.

The real store (SQLite), the real delivery machinery and, where a test asks for it, the real
pacer and locks on Redis; the platform is :class:`~tests.fakes.recording_provider.RecordingProvider`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatops_core.errors import ChannelNotFound, ConnectionFailed, RateLimited, ServerError
from chatops_core.models import EntryKind, Status
from chatops_core.providers import InboundKind, WebhookRequest
from chatops_core.providers.base import Capability
from tests.fakes.recording_provider import (
    ALL_CAPABILITIES,
    DEFAULT_SECRET,
    RecordingProvider,
    recording_request,
)
from tests.fakes.recording_runtime import BOB, World, recording_runtime

LIFE = ["ack INC-1", "mitigate INC-1 rolled back", "resolve INC-1 pool resized", "close INC-1"]


MakeWorld = Callable[..., World]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[MakeWorld]:
    """Worlds on recording providers with the given capabilities (default: every one);
    ``broker_url`` adds the real pacer and locks."""
    made: list[World] = []

    def make(
        capabilities: Iterable[Capability] = ALL_CAPABILITIES, *, through_tasks: bool = False, **settings: Any
    ) -> World:
        provider = RecordingProvider("rec", capabilities=capabilities)
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


@pytest.fixture
def world(make_world: MakeWorld, redis_url: str, redis_client: object) -> World:
    """Every capability, with the real pacer and locks (Redis)."""
    return make_world(broker_url=redis_url)


def test_the_whole_life_of_an_incident_on_a_platform_with_every_capability(world: World) -> None:
    provider = world.provider
    world.run("declare sev2 Database timeouts")
    incident = world.incident()
    assert (incident.id, incident.status, incident.severity.value) == ("INC-1", Status.OPEN, "SEV-2")

    # Its own channel, with the person who declared it in it; the card there is pinned.
    assert incident.channel_id is not None, provider.log()
    channel = provider.channel(incident.channel_id)
    assert channel is not None and channel["name"].startswith("inc-1"), channel
    assert "U100ALICE" in channel["members"]
    (own_card,) = provider.messages(incident.channel_id)
    assert own_card.pinned and own_card.kind == "announcement"
    (card,) = provider.messages("#incidents")
    assert card.incident_id == "INC-1" and card.status == "open"
    assert any("INC-1" in text for text in provider.answer_texts("U100ALICE")), provider.log()

    for text in LIFE:
        world.run(text)
    incident = world.incident()
    assert incident.status == Status.CLOSED
    assert incident.resolution == "pool resized"
    # Each change edited the cards in place: still one card per channel, showing "closed".
    for where in ("#incidents", incident.channel_id):
        (shown,) = provider.messages(where)
        assert shown.status == "closed" and len(shown.edits) == 4, provider.log()
    kinds = [e.kind for e in world.runtime.store.timeline(1)]
    for kind in (EntryKind.DECLARED, EntryKind.ACKNOWLEDGED, EntryKind.MITIGATED, EntryKind.RESOLVED):
        assert kind in kinds
    assert kinds[-1] == EntryKind.CLOSED
    # Every delivery went out (no pacing waits on this platform) and nothing failed.
    assert {d.outcome for d in world.deliveries} == {"delivered"}
    assert len(world.deliveries) == 2 * (1 + len(LIFE))
    assert provider.calls(ok=False) == [], provider.log()
    assert len(provider.calls("create_channel")) == 1


def test_the_recording_provider_paces_nothing(world: World) -> None:
    # Ten changes delivered back to back into the same channels never wait for a slot.
    world.run("declare Disk filling up")
    for i in range(5):
        world.run(f"note INC-1 step {i}")
        world.run("escalate INC-1" if i % 2 == 0 else "ack INC-1")
    assert world.deliveries and all(d.outcome in ("delivered", "stale") for d in world.deliveries)


def test_answers_to_queries_reach_only_the_person(world: World) -> None:
    world.run("declare Queue stuck")
    world.run("status INC-1", user=BOB)
    world.run("list all", user=BOB)
    answers = world.provider.answers("U200BOB")
    assert [visibility for _, visibility in answers] == ["private", "private"]
    assert "INC-1" in answers[0][0].text and "Queue stuck" in answers[1][0].text


@pytest.mark.parametrize(
    "capabilities",
    [
        frozenset(),
        frozenset({Capability.PRIVATE_REPLY}),
        ALL_CAPABILITIES - {Capability.UPDATE_MESSAGE, Capability.CHANNELS},
        ALL_CAPABILITIES - {Capability.THREADS, Capability.ALERT_IN_THREAD, Capability.PIN},
        ALL_CAPABILITIES - {Capability.FIND_POSTED, Capability.FORMS, Capability.BUTTONS},
    ],
    ids=["none", "private-reply-only", "no-update-no-channels", "no-threads-no-pin", "no-find-no-forms"],
)
def test_the_whole_life_works_on_any_platform(
    make_world: MakeWorld, capabilities: frozenset[Capability]
) -> None:
    """Whatever a platform lacks, the incident goes through its life and nothing the
    platform cannot do is asked of it (a refused call is recorded as failed)."""
    world = make_world(capabilities)
    world.run("declare sev2 Database timeouts")
    world.run("escalate INC-1")
    for text in LIFE:
        world.run(text)
    assert world.incident().status == Status.CLOSED
    refused = world.provider.calls(ok=False)
    assert refused == [], world.provider.log()
    assert world.deliveries and {d.outcome for d in world.deliveries} <= {"delivered", "stale"}
    # Everyone in the routed channel heard of the incident's end.
    cards = [m for m in world.provider.messages("#incidents") if m.kind == "announcement"]
    assert cards[-1].status == "closed", world.provider.log()


def test_a_command_through_the_ingress_runs_on_the_worker(make_world: MakeWorld) -> None:
    from chatops_core.publisher import Admission
    from ingress.app import create_app

    class Publisher:
        def __init__(self) -> None:
            self.sent: list[tuple[str, list[object], str | None]] = []

        def admit(
            self, name: str, args: list[object], *, queue: str, dedupe_key: str | None = None, **_: object
        ) -> Admission:
            self.sent.append((name, args, dedupe_key))
            return Admission("enqueued")

        def ping(self) -> None:
            return None

    world = make_world()
    publisher = Publisher()
    app = create_app(
        world.runtime.settings,
        publisher=publisher,  # type: ignore[arg-type]
        providers={"rec": world.provider},
        store=world.runtime.store,
    )
    client = app.test_client()
    body, headers = recording_request("declare sev1 Checkout down", secret=DEFAULT_SECRET, request_id="r-7")
    answer = client.post("/webhooks/rec", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    forged = client.post(
        "/webhooks/rec", data=body, headers={**headers, "X-Recording-Signature": "sha256=00"}
    )
    assert forged.status_code == 401
    ((name, args, dedupe_key),) = publisher.sent
    assert name == "chatops.command" and dedupe_key
    from chatops_core.models import InboundCommand

    inbound = InboundCommand.model_validate(args[0])
    assert (inbound.text, inbound.user.user_id, inbound.channel_id) == (
        "declare sev1 Checkout down",
        "U100ALICE",
        "C0004",
    )
    world.run_inbound(inbound)
    assert world.incident().title == "Checkout down"
    assert world.provider.messages("#incidents")[0].incident_id == "INC-1"


def test_parse_reads_the_recording_format() -> None:
    provider = RecordingProvider("rec")
    body, headers = recording_request("ack INC-3", request_id="r-9", source="mention", thread_id="M00007")
    request = WebhookRequest(body=body, headers=headers, content_type="application/json")
    provider.verify(request)
    inbound = provider.parse(request)
    assert inbound.kind is InboundKind.COMMAND and inbound.command is not None
    command = inbound.command
    assert (command.text, command.source, command.thread_id, command.instance) == (
        "ack INC-3",
        "mention",
        "M00007",
        "rec",
    )
    assert inbound.dedupe_key == command.key


def test_a_rate_limited_post_waits_the_platforms_time_and_then_posts_once(make_world: MakeWorld) -> None:
    world = make_world()
    provider = world.provider
    provider.fail("announce", RateLimited(retry_after=7))
    world.run("declare Cache misses")
    ((failure),) = world.failed
    assert isinstance(failure.error, RateLimited) and failure.error.retry_after == 7
    (again,) = world.retry_failed()
    assert again.outcome == "delivered" and world.failed == []
    # One card per channel; the incident was declared once.
    assert len(provider.messages("#incidents")) == 1
    assert len(provider.messages(world.incident().channel_id or "")) == 1
    assert len(world.runtime.store.list(active_only=False)) == 1


def test_a_failed_answer_is_retried_without_doing_anything_twice(make_world: MakeWorld) -> None:
    world = make_world()
    provider = world.provider
    provider.fail("reply", ServerError("boom", status=503))
    inbound = world.command("declare Checkout errors")
    with pytest.raises(ServerError):
        world.run_inbound(inbound)
    world.run_inbound(inbound)
    assert len(world.runtime.store.list(active_only=False)) == 1
    assert len(provider.calls("create_channel")) == 1
    assert len(provider.calls("reply", ok=True)) == 1
    assert len(provider.messages("#incidents")) == 1


def test_an_unknown_outcome_is_looked_up_before_posting_again(make_world: MakeWorld) -> None:
    world = make_world()
    provider = world.provider
    provider.fail("announce", ConnectionFailed("cut off", outcome_unknown=True), after=True)
    world.run("declare Login slow")
    (failure,) = world.failed
    (again,) = world.retry_failed()
    assert again.outcome == "duplicate", provider.log()
    assert len(provider.messages(failure.channel)) == 1, provider.log()
    assert provider.calls("find_announcement", ok=True)


def test_a_permanent_refusal_is_a_dead_letter_at_once(make_world: MakeWorld) -> None:
    world = make_world(through_tasks=True, broker_url="memory://", create_incident_channels=False)
    world.provider.fail("announce", ChannelNotFound("no such channel"), times=5)
    world.run("declare Search down")
    (letter,) = world.runtime.store.dead_letters()
    assert "channel_not_found" in letter.reason and letter.attempts == 1
    assert len(world.provider.calls("announce")) == 1, world.provider.log()


def test_a_rate_limit_is_waited_out_by_the_task_and_posts_once(make_world: MakeWorld) -> None:
    world = make_world(through_tasks=True, broker_url="memory://", create_incident_channels=False)
    world.provider.fail("announce", RateLimited(retry_after=7))
    world.run("declare Search down")
    assert world.runtime.store.dead_letters() == []
    assert [r.ok for r in world.provider.calls("announce")] == [False, True]
    assert len(world.provider.messages("#incidents")) == 1


def test_a_5xx_is_retried_by_the_task_and_posts_once(make_world: MakeWorld) -> None:
    world = make_world(through_tasks=True, broker_url="memory://", create_incident_channels=False)
    world.provider.fail("announce", lambda: ServerError("bad gateway", status=503), times=2)
    world.run("declare Search down")
    assert world.runtime.store.dead_letters() == []
    assert [r.ok for r in world.provider.calls("announce")] == [False, False, True]
    assert len(world.provider.messages("#incidents")) == 1


@pytest.mark.parametrize("alias", ["#major-incidents", "major-incidents", "~major-incidents", "C0MAJOR"])
def test_a_declare_typed_where_its_card_goes_is_confirmed_privately(
    make_world: MakeWorld, alias: str
) -> None:
    # The card in this channel shows everyone the new incident; the answer is the caller's.
    world = make_world(notification_channels={"SEV-2": alias}, create_incident_channels=False)
    world.run("declare sev2 Checkout errors", channel_id="C0MAJOR", channel_name="major-incidents")
    ((answer, visibility),) = world.provider.answers("U100ALICE")
    assert "INC-1 declared" in answer.text and visibility == "private"


def test_join_names_the_platform_that_holds_the_channel(make_world: MakeWorld) -> None:
    world = make_world()
    world.run("declare sev2 Checkout errors")
    incident = world.incident()
    assert incident.channel_id is not None
    # The same incident seen from another platform instance: nothing to invite there.
    elsewhere = world.command("join INC-1", user=BOB).model_copy(update={"instance": "other"})
    world.run_inbound(elsewhere)
    ((answer, visibility),) = world.provider.answers("U200BOB")
    assert visibility == "private"
    assert answer.text == f"INC-1's channel #{incident.channel_name} is on rec: join it there."
    assert not [r for r in world.provider.log() if "invite" in r and "U200BOB" in r]
