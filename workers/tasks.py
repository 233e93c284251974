"""Celery tasks: carry out commands and deliver announcements.

Every task is safe to run twice: a command is keyed by its request, and each side effect
(channel created, answer sent, announcement posted) is recorded as a step once done, so a
redelivered task only does what is still missing.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from pydantic import ValidationError

from chatops_core.commands.grammar import parse_command
from chatops_core.commands.service import CommandService, Outcome
from chatops_core.errors import ChatOpsError, CommandError, Permanent, Retryable
from chatops_core.models import Announcement, EntryKind, InboundCommand, Reply, dump, utcnow
from chatops_core.providers import Operation, Provider
from chatops_core.routing import route
from chatops_core.tasks import COMMAND_TASK, DELIVER_TASK, NOTIFICATIONS_QUEUE
from workers.retry import countdown
from workers.runtime import Runtime

log = logging.getLogger("chatops.worker")

MAX_RETRIES = 8


def register_tasks(app: Celery, runtime: Runtime) -> None:
    """Register the service's tasks on ``app``."""

    def retry_later(task: Task, exc: Retryable) -> None:
        if task.request.retries >= MAX_RETRIES:
            log.error(
                "giving up task=%s id=%s after %d attempts: %s",
                task.name,
                task.request.id,
                task.request.retries + 1,
                exc.code,
            )
            return
        delay = countdown(exc, task.request.retries)
        log.warning(
            "retrying task=%s id=%s in %.1fs (attempt %d): %s",
            task.name,
            task.request.id,
            delay,
            task.request.retries + 1,
            exc.code,
        )
        raise task.retry(exc=exc, countdown=delay, max_retries=MAX_RETRIES)

    @app.task(name=COMMAND_TASK, bind=True)
    def command(self: Task, payload: dict[str, Any]) -> None:
        try:
            inbound = InboundCommand.model_validate(payload)
        except ValidationError as exc:
            log.error("dropping malformed command payload: %d validation error(s)", exc.error_count())
            return
        try:
            provider = runtime.provider(inbound.instance)
            run_command(runtime, provider, inbound, enqueue=app.send_task)
        except Retryable as exc:
            retry_later(self, exc)
        except Permanent as exc:
            log.error("command %s failed permanently: %s %s", inbound.key, exc.code, exc.message)

    @app.task(name=DELIVER_TASK, bind=True)
    def deliver(self: Task, instance: str, channel: str, announcement: dict[str, Any], key: str) -> None:
        try:
            ann = Announcement.model_validate(announcement)
            deliver_announcement(runtime, instance, channel, ann, key)
        except ValidationError as exc:
            log.error("dropping malformed announcement: %d validation error(s)", exc.error_count())
        except Retryable as exc:
            retry_later(self, exc)
        except Permanent as exc:
            log.error("delivery %s to %s/%s failed permanently: %s", key, instance, channel, exc.code)


def run_command(runtime: Runtime, provider: Provider, inbound: InboundCommand, *, enqueue: Any) -> None:
    """Carry out one command; each step once, however often this runs."""
    store = runtime.store
    key = inbound.key
    done = store.steps_done(key)
    if "done" in done:
        return
    try:
        parsed = parse_command(inbound.text)
        conf = runtime.settings.providers.get(inbound.instance)
        create_channels = bool(getattr(conf, "create_incident_channels", False)) and provider.supports(
            Operation.CHANNEL_MANAGEMENT
        )
        outcome = CommandService(store).execute(inbound, parsed, create_channels=create_channels)
    except CommandError as exc:
        if "reply" not in done:
            provider.reply(inbound, Reply(text=exc.message))
            store.mark_step(key, "reply")
        store.mark_step(key, "done")
        return

    if outcome.create_channel and outcome.incident and "channel" not in done:
        outcome.incident = _create_incident_channel(runtime, provider, inbound, outcome)
        store.mark_step(key, "channel")
    elif outcome.create_channel and outcome.incident:
        outcome.incident = store.get(outcome.incident.number)

    if (outcome.invite or outcome.kick) and outcome.incident and "membership" not in done:
        _membership(runtime, provider, inbound, outcome)
        store.mark_step(key, "membership")

    if "reply" not in done:
        provider.reply(inbound, outcome.reply)
        store.mark_step(key, "reply")

    if outcome.notification and outcome.incident and "announce" not in done:
        _enqueue_announcements(runtime, inbound, outcome, enqueue)
        store.mark_step(key, "announce")
    store.mark_step(key, "done")


def _create_incident_channel(
    runtime: Runtime, provider: Provider, inbound: InboundCommand, outcome: Outcome
) -> Any:
    store = runtime.store
    incident = outcome.incident
    assert incident is not None
    current = store.get(incident.number)
    if current.channel_id:  # created by an earlier attempt
        return current
    name = provider.channel_name_for(incident.id, incident.title)
    topic = f"{incident.id} [{incident.severity.value}] {incident.title}"
    ref = provider.create_channel(name, topic=topic)
    updated = store.set_channel(incident.number, channel_id=ref.channel_id, channel_name=ref.name)
    store.add_timeline(
        incident.number,
        kind=EntryKind.CHANNEL_CREATED,
        actor=runtime.settings.providers[inbound.instance].bot_name,
        platform=inbound.platform,
        channel=ref.name,
        text=f"Channel #{ref.name} created",
        at=utcnow(),
    )
    provider.invite(ref.channel_id, [inbound.user.user_id])
    return updated


def _membership(runtime: Runtime, provider: Provider, inbound: InboundCommand, outcome: Outcome) -> None:
    incident = outcome.incident
    assert incident is not None and incident.channel_id
    if outcome.invite:
        provider.invite(incident.channel_id, [outcome.invite])
        kind, text = EntryKind.JOINED, f"{inbound.user.display} joined the channel"
    else:
        assert outcome.kick
        provider.kick(incident.channel_id, outcome.kick)
        kind, text = EntryKind.LEFT, f"{inbound.user.display} left the channel"
    runtime.store.add_timeline(
        incident.number,
        kind=kind,
        actor=inbound.user.display,
        platform=inbound.platform,
        channel=inbound.channel_name or inbound.channel_id,
        text=text,
        at=utcnow(),
    )


def _enqueue_announcements(runtime: Runtime, inbound: InboundCommand, outcome: Outcome, enqueue: Any) -> None:
    incident = outcome.incident
    assert incident is not None and outcome.notification is not None
    announcement = Announcement(
        type=outcome.notification,
        incident=incident,
        actor=inbound.user.display,
        summary=outcome.summary or outcome.reply.text,
        incident_url=runtime.settings.incident_link(incident.id),
    )
    # The answer to the command already shows the change in the channel it was typed in.
    origin = {inbound.channel_id, f"#{inbound.channel_name}" if inbound.channel_name else None}
    for target in route(incident, runtime.settings.providers):
        if target.instance == inbound.instance and target.channel in origin and not outcome.reply.ephemeral:
            continue
        enqueue(
            DELIVER_TASK,
            args=[
                target.instance,
                target.channel,
                dump(announcement),
                f"{inbound.key}:{target.instance}:{target.channel}",
            ],
            queue=NOTIFICATIONS_QUEUE,
            argsrepr="",
            kwargsrepr="",
        )


def deliver_announcement(runtime: Runtime, instance: str, channel: str, ann: Announcement, key: str) -> None:
    """Post one announcement to one channel, once."""
    store = runtime.store
    if "posted" in store.steps_done(key):
        return
    provider = runtime.provider(instance)
    ref = provider.announce(channel, ann)
    store.save_message(
        ann.incident.number,
        instance=instance,
        channel_id=ref.channel_id,
        message_id=ref.message_id,
        version=ann.incident.version,
    )
    store.mark_step(key, "posted")
    log.info(
        "delivered type=%s incident=%s instance=%s channel=%s", ann.type, ann.incident.id, instance, channel
    )


__all__ = ["register_tasks", "run_command", "deliver_announcement", "ChatOpsError"]
