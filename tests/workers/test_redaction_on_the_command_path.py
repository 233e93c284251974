"""Secrets typed into a command never reach chat, and reach the incident's record only where
``[redaction] keep_original_in_timeline`` says so.

The real worker path (``run_command``, fan-out and delivery) on the real store (SQLite), with
the recording provider as the platform.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops_core.models import EntryKind
from chatops_core.settings import RedactionSettings
from tests.fakes.recording_provider import RecordingProvider
from tests.fakes.recording_runtime import World, recording_runtime

AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
PASSWORD = "hunter2-Prod"
NOTE = f"note INC-1 db creds rotated: password={PASSWORD} and {AWS_KEY} leaked"


def _world(tmp_path: Path, redaction: RedactionSettings) -> World:
    provider = RecordingProvider("rec")
    runtime = recording_runtime(tmp_path, provider)
    runtime.settings.redaction = redaction
    return World(runtime, provider)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = _world(tmp_path, RedactionSettings())
    yield made
    made.close()


@pytest.fixture
def keeping(tmp_path: Path) -> Iterator[World]:
    made = _world(tmp_path, RedactionSettings(keep_original_in_timeline=True))
    yield made
    made.close()


def _said_in_chat(world: World) -> str:
    """Everything the platform was given to show: answers, posts, cards and their edits,
    channel names and topics."""
    provider = world.provider
    texts = [reply.text for reply, _ in provider.answers()]
    texts += [reply.incident.title for reply, _ in provider.answers() if reply.incident]
    texts += [entry.text for reply, _ in provider.answers() for entry in reply.timeline]
    for message in provider.messages():
        texts += [message.text, *message.edits]
    for name in provider.channel_names():
        channel = provider.channel(name)
        assert channel is not None
        texts += [channel["name"], channel["topic"] or ""]
    return "\n".join(texts)


def test_a_note_with_a_password_and_an_aws_key_is_stored_and_shown_redacted(world: World) -> None:
    world.run(f"declare sev2 Payments down, db url postgres://app:{PASSWORD}@db/prod")
    world.run(NOTE)
    world.run("status INC-1")

    incident = world.incident()
    assert incident.title == "Payments down, db url postgres://app:[redacted url-password]@db/prod"
    notes = [e.text for e in world.runtime.store.timeline(1) if e.kind is EntryKind.NOTE]
    assert notes == ["db creds rotated: password=[redacted password] and [redacted aws-access-key] leaked"]
    stored = "\n".join(e.text for e in world.runtime.store.timeline(1))
    chat = _said_in_chat(world)
    for secret in (PASSWORD, AWS_KEY):
        assert secret not in stored and secret not in chat, chat
    # The status answer shows the note, redacted; the card shows the redacted title.
    (status, _) = world.provider.answers()[-1]
    assert any("[redacted aws-access-key]" in entry.text for entry in status.timeline)
    (card,) = world.provider.messages("#incidents")
    assert "[redacted url-password]" in card.text


def test_with_keep_original_in_timeline_the_record_keeps_what_people_wrote_and_chat_does_not(
    keeping: World,
) -> None:
    keeping.run(f"declare sev2 Payments down, password={PASSWORD}")
    keeping.run(NOTE)
    keeping.run(f"resolve INC-1 rotated {AWS_KEY}")
    keeping.run("status INC-1")

    incident = keeping.incident()
    assert incident.title == f"Payments down, password={PASSWORD}"
    assert incident.resolution == f"rotated {AWS_KEY}"
    stored = [e.text for e in keeping.runtime.store.timeline(1)]
    assert f"db creds rotated: password={PASSWORD} and {AWS_KEY} leaked" in stored

    chat = _said_in_chat(keeping)
    for secret in (PASSWORD, AWS_KEY):
        assert secret not in chat, chat
    assert "password=[redacted password]" in chat and "[redacted aws-access-key]" in chat
    # The resolution's card (an edit of the announcement) says it redacted.
    (card,) = keeping.provider.messages("#incidents")
    assert "rotated [redacted aws-access-key]" in card.text, card.text


def test_a_message_marked_for_the_timeline_is_kept_redacted(world: World) -> None:
    world.run("declare sev3 Cache misses")
    incident = world.incident()
    assert incident.channel_id is not None
    message_id = world.provider.add_message(incident.channel_id, f"retry with password={PASSWORD}")
    world.run("", source="reaction", channel_id=incident.channel_id, message_id=message_id)
    notes = [e.text for e in world.runtime.store.timeline(1) if e.kind is EntryKind.NOTE]
    assert notes == ["retry with password=[redacted password]"]
