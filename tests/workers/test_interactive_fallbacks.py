"""How the workers answer, open forms and mark messages on a platform that lacks a capability.

A minimal provider records what it is asked; each test takes a capability away (or gives it)
and checks the documented fallback: what the person is shown, and that nothing the platform
cannot do is asked of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from chatops_core.errors import OperationNotSupported, TriggerExpired
from chatops_core.models import (
    Actor,
    InboundCommand,
    MessageRef,
    Person,
    PostedText,
    Reply,
    Severity,
)
from chatops_core.notifications import Announcement
from chatops_core.providers.base import Capability, FormName, Inbound, InboundKind, Provider, WebhookRequest
from chatops_core.settings import Settings
from chatops_core.store import IncidentStore
from workers.interactive import answer, open_form, timeline_mark, wants_form

EVERYTHING = frozenset(Capability)
POSTED_AT = datetime(2026, 5, 1, 10, 40, tzinfo=UTC)


class Minimal(Provider):
    """Posts and answers; anything else only with the capability, and records every call."""

    type: ClassVar[str] = "minimal"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(
        self, capabilities: frozenset[Capability] = frozenset(), *, form_expired: bool = False
    ) -> None:
        super().__init__("mini", None)
        self.capabilities = capabilities  # type: ignore[misc]
        self.form_expired = form_expired
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def verify(self, request: WebhookRequest) -> None:
        return None

    def parse(self, request: WebhookRequest) -> Inbound:
        return Inbound(kind=InboundKind.IGNORE)

    def health(self) -> str:
        return "ok"

    def reply(self, command: InboundCommand, reply: Reply) -> None:
        self.calls.append(
            ("reply", {"text": reply.text, "private": reply.ephemeral, "reply_to": command.reply_to})
        )

    def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
        return MessageRef(channel_id=channel, message_id="1")

    def reply_in_thread(self, channel: str, thread_id: str | None, reply: Reply) -> MessageRef:
        self.require(Capability.MENTIONS)
        self.calls.append(
            ("reply_in_thread", {"channel": channel, "thread_id": thread_id, "text": reply.text})
        )
        return MessageRef(channel_id=channel, message_id="2")

    def open_form(
        self, command: InboundCommand, form: FormName, *, incident_id: str | None, context: dict[str, str]
    ) -> None:
        self.require(Capability.FORMS)
        if self.form_expired:
            raise TriggerExpired("too old")
        self.calls.append(("open_form", {"form": form, "incident_id": incident_id, "context": context}))

    def offer_form(self, command: InboundCommand, form: FormName, incident_id: str | None) -> None:
        self.require(Capability.FORMS)
        self.calls.append(("offer_form", {"form": form, "incident_id": incident_id}))

    def message_text(self, channel_id: str, message_id: str) -> PostedText:
        self.require(Capability.MENTIONS)
        self.calls.append(("message_text", {"channel": channel_id, "message_id": message_id}))
        author = Person(instance="mini", user_id="u-dan", display="dan")
        return PostedText(author=author, text="Deleted old snapshots", at=POSTED_AT)


def inbound(text: str = "status INC-1", **fields: Any) -> InboundCommand:
    values: dict[str, Any] = {
        "key": "mini:1",
        "instance": "mini",
        "platform": "minimal",
        "text": text,
        "user": Actor(user_id="u-alice", user_name="alice"),
        "channel_id": "ch-1",
        "channel_name": "incidents",
        "reply_to": {"hook": "opaque-1"},
    }
    values.update(fields)
    return InboundCommand(**values)


# -- PRIVATE_REPLY -------------------------------------------------------------------------


def test_a_private_answer_stays_private_where_the_platform_can() -> None:
    provider = Minimal(EVERYTHING)
    assert answer(provider, inbound(), Reply(text="INC-1 is open"))
    assert provider.calls == [
        ("reply", {"text": "INC-1 is open", "private": True, "reply_to": {"hook": "opaque-1"}})
    ]


def test_without_private_replies_the_answer_is_posted_where_the_command_came_from() -> None:
    provider = Minimal(EVERYTHING - {Capability.PRIVATE_REPLY})
    assert answer(provider, inbound(), Reply(text="INC-1 is open"))
    # The provider gets the command's own way back, untouched, and an answer for everyone.
    assert provider.calls == [
        ("reply", {"text": "INC-1 is open", "private": False, "reply_to": {"hook": "opaque-1"}})
    ]


# -- THREADS ---------------------------------------------------------------------------------


def test_a_mention_is_answered_in_its_thread() -> None:
    provider = Minimal(EVERYTHING)
    answer(provider, inbound(source="mention", thread_id="th-9"), Reply(text="INC-1 is open"))
    assert provider.calls == [
        ("reply_in_thread", {"channel": "ch-1", "thread_id": "th-9", "text": "INC-1 is open"})
    ]


def test_without_threads_a_mention_is_answered_at_the_top_level() -> None:
    provider = Minimal(EVERYTHING - {Capability.THREADS})
    answer(provider, inbound(source="mention", thread_id="th-9"), Reply(text="INC-1 is open"))
    assert provider.calls == [
        ("reply_in_thread", {"channel": "ch-1", "thread_id": None, "text": "INC-1 is open"})
    ]


# -- FORMS -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields", "form"),
    [
        ("declare", {}, "declare"),
        ("declare sev2", {}, "declare"),
        ("declare sev2 Payments down", {}, None),
        ("resolve INC-1", {"source": "action", "form": "resolve"}, "resolve"),
        ("declare", {"source": "mention"}, None),
    ],
)
def test_which_commands_open_a_form(text: str, fields: dict[str, Any], form: str | None) -> None:
    assert wants_form(inbound(text, **fields), Minimal(EVERYTHING)) == form


@pytest.mark.parametrize(
    ("text", "fields"),
    [("declare", {}), ("declare sev2", {}), ("resolve INC-1", {"source": "action", "form": "resolve"})],
)
def test_without_forms_no_form_is_wanted_and_the_command_runs_as_typed(
    text: str, fields: dict[str, Any]
) -> None:
    # ``declare`` alone then answers with the typed form of the command (the grammar's
    # answer); a click on Resolve resolves.
    assert wants_form(inbound(text, **fields), Minimal(EVERYTHING - {Capability.FORMS})) is None


def test_a_form_opens_with_the_channel_and_never_a_platform_handle_in_its_context() -> None:
    provider = Minimal(EVERYTHING)
    open_form(provider, inbound("declare"), "declare", None)
    assert provider.calls == [
        (
            "open_form",
            {
                "form": "declare",
                "incident_id": None,
                "context": {"channel_id": "ch-1", "channel_name": "incidents"},
            },
        )
    ]


def test_a_form_that_can_no_longer_open_is_offered_instead() -> None:
    provider = Minimal(EVERYTHING, form_expired=True)
    open_form(provider, inbound("resolve INC-1", source="action", form="resolve"), "resolve", "INC-1")
    assert provider.calls == [("offer_form", {"form": "resolve", "incident_id": "INC-1"})]


# -- MENTIONS (the timeline reaction) ---------------------------------------------------------


class Store:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def find_by_channel(self, instance: str, channel_id: str) -> Any:
        return SimpleNamespace(number=1) if (instance, channel_id) == ("mini", "ch-1") else None

    def add_timeline(self, number: int, **entry: Any) -> None:
        self.entries.append({"number": number, **entry})


def test_a_marked_message_is_noted_with_its_authors_name_and_time(tmp_path: Path) -> None:
    # The real store: marking a message passes the access policy, which knows people.
    provider, store = Minimal(EVERYTHING), IncidentStore(f"sqlite:///{tmp_path / 'chatops.db'}")
    store.upgrade()
    at = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    store.declare(
        title="Disk full",
        severity=Severity.SEV3,
        actor="dan",
        platform="minimal",
        instance="mini",
        channel="incidents",
        at=at,
    )
    store.set_channel(1, channel_id="ch-1", channel_name="inc-1-disk-full")
    runtime = SimpleNamespace(store=store, settings=Settings())
    timeline_mark(runtime, provider, inbound("", source="reaction", message_id="m-7"))  # type: ignore[arg-type]
    entry = store.timeline(1)[-1]
    assert (entry.actor, entry.text, entry.at) == ("dan", "Deleted old snapshots", POSTED_AT)
    assert entry.channel == "incidents"
    store.close()


def test_without_mentions_a_mark_reads_nothing() -> None:
    provider, store = Minimal(EVERYTHING - {Capability.MENTIONS}), Store()
    timeline_mark(SimpleNamespace(store=store), provider, inbound("", source="reaction", message_id="m-7"))  # type: ignore[arg-type]
    assert store.entries == [] and provider.calls == []


def test_a_provider_without_a_capability_refuses_it_for_good() -> None:
    provider = Minimal(frozenset())
    with pytest.raises(OperationNotSupported):
        provider.pin("ch-1", "m-1")
    with pytest.raises(OperationNotSupported):
        provider.update_announcement(MessageRef(channel_id="ch-1", message_id="m-1"), None)  # type: ignore[arg-type]
