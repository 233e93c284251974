"""Celery tasks: carry out commands and deliver announcements.

Every task is safe to run twice: a command is keyed by its request, and each side effect
(channel created, answer sent, announcement posted) is recorded as a step once done, so a
redelivered task only does what is still missing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from pydantic import ValidationError

from chatops_core.audit import AuditOutcome, command_word
from chatops_core.commands.grammar import (
    PLATFORM_MENTION_RE,
    TITLE_MAX_LENGTH,
    CommandName,
    ParsedCommand,
    parse_command,
    parse_incident_ref,
)
from chatops_core.commands.service import CommandService, Outcome
from chatops_core.errors import (
    ChannelNotFound,
    CommandError,
    IncidentNotFound,
    Permanent,
    RateLimited,
    Retryable,
)
from chatops_core.models import ChannelRef, EntryKind, InboundCommand, Incident, Person, Reply, utcnow
from chatops_core.notifications import IncidentSnapshot, Notification, cut
from chatops_core.providers import Capability, Provider
from chatops_core.publisher import TaskPublisher
from chatops_core.redaction import active as active_redactor
from chatops_core.redaction import for_storage
from chatops_core.routing import Target, route
from chatops_core.state import already_changed
from chatops_core.tasks import (
    COMMAND_TASK,
    DELIVER_TASK,
    INTERACTIVE_QUEUE,
    NOTIFICATIONS_QUEUE,
    NOTIFY_TASK,
    REFUSED_TASK,
)
from workers.audit import form_refusal, outcome_of, record
from workers.delivery import SlotLater, deliver, fan_out, hold_off, key_of, log_event
from workers.interactive import (
    MENTION_HELP,
    answer,
    command_text,
    open_form,
    timeline_mark,
    wants_form,
)
from workers.locks import Busy
from workers.retry import CAP_SECONDS, countdown, describe, unavailable_is_retryable
from workers.runtime import Runtime

log = logging.getLogger("chatops.worker")

MAX_RETRIES = 8
# How often a delivery or command whose lock another copy holds looks again.
BUSY_POLL_SECONDS = 2.0


def register_tasks(app: Celery, runtime: Runtime) -> None:
    """Register the service's tasks on ``app``."""

    def retry_later(task: Task, exc: Retryable, *, on_give_up: Callable[[str], None]) -> None:
        if task.request.retries >= MAX_RETRIES:
            on_give_up(f"gave up after {task.request.retries + 1} attempts: {exc.code}: {exc.message}")
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

    def dead_letter(task: Task, reason: str, **extra: Any) -> None:
        keep_letter(
            task.name,
            list(task.request.args or []),
            dict(task.request.kwargs or {}),
            reason=reason,
            attempts=task.request.retries + 1,
            **extra,
        )

    def keep_letter(
        task_name: str, args: list[Any], kwargs: dict[str, Any], *, reason: str, attempts: int, **extra: Any
    ) -> None:
        letter = runtime.store.add_dead_letter(
            task_name=task_name, args=args, kwargs=kwargs, reason=reason, attempts=attempts, **extra
        )
        log.error("dead letter %s: task=%s %s", letter, task_name, reason)

    @app.task(name=COMMAND_TASK, bind=True, shared=False)
    def command(self: Task, payload: dict[str, Any]) -> None:
        try:
            inbound = InboundCommand.model_validate(payload)
        except ValidationError as exc:
            dead_letter(self, f"invalid command payload: {_errors(exc)}")
            return
        try:
            provider = runtime.provider(inbound.instance)
            with unavailable_is_retryable():
                run_command(runtime, provider, inbound, enqueue=app.send_task)
        except Busy as busy:
            # Another copy of this command is carrying it out (or died doing so: its lock then
            # lapses within seconds). Look again soon; waiting is not a failure and uses up no
            # retry. The next look most likely finds the command done.
            app.send_task(
                COMMAND_TASK,
                args=[payload],
                countdown=min(max(busy.retry_in, 0.2), BUSY_POLL_SECONDS),
                queue=INTERACTIVE_QUEUE,
                retries=self.request.retries,
                argsrepr="",
                kwargsrepr="",
            )
        except Retryable as exc:
            retry_later(self, exc, on_give_up=lambda why: dead_letter(self, why))
        except Permanent as exc:
            dead_letter(self, f"{exc.code}: {exc.message}")
        except Exception as exc:
            # A fault of ours must not make the command vanish: keep it to replay once fixed.
            log.exception("command task %s failed", self.request.id)
            dead_letter(self, f"unexpected error: {describe(exc)}")

    @app.task(name=REFUSED_TASK, bind=True, shared=False)
    def refused(self: Task, payload: dict[str, Any], text: str) -> None:
        """Tell a person, only them where the platform can, that the ingress refused their
        command (over their rate); nothing of the command runs. Given up when it cannot be
        said: the refusal itself stands either way."""
        try:
            inbound = InboundCommand.model_validate(payload)
            provider = runtime.provider(inbound.instance)
            answer(provider, inbound.model_copy(update={"answer_key": None}), Reply(text=text), None)
        except ValidationError as exc:
            log.warning("refusal notice not sent: invalid command payload: %s", _errors(exc))
        except Retryable as exc:
            retry_later(self, exc, on_give_up=lambda why: log.warning("refusal notice not sent: %s", why))
        except Permanent as exc:
            log.warning("refusal notice not sent: %s: %s", exc.code, exc.message)

    @app.task(name=NOTIFY_TASK, bind=True, shared=False)
    def notify(self: Task, payload: Any, notification_id: str | None = None) -> None:
        nid = notification_id or str(self.request.id)
        try:
            notification = Notification.model_validate(payload)
        except ValidationError as exc:
            dead_letter(self, f"invalid notification: {_errors(exc)}", notification_id=nid)
            return

        def deliver_first(target: Target) -> None:
            # The fan-out task delivers one target itself (the only one, most often), so a
            # notification to one channel takes one task, not two. What it cannot finish now
            # (paced, another copy busy, a retryable failure) goes on as a delivery task,
            # exactly as one enqueued by the fan-out would; one it gives up on is kept as
            # that delivery task, so replaying it delivers this target only.
            args = [payload, nid, target.instance, target.channel]

            def retry(delay: float, _exc: Retryable) -> None:
                app.send_task(
                    DELIVER_TASK,
                    args=[*args, False],
                    countdown=delay,
                    queue=NOTIFICATIONS_QUEUE,
                    retries=1,
                    argsrepr="",
                    kwargsrepr="",
                )

            run_delivery(
                notification,
                payload,
                nid,
                target.instance,
                target.channel,
                slot_taken=False,
                retries=0,
                letter=lambda reason: keep_letter(
                    DELIVER_TASK,
                    args,
                    {},
                    reason=reason,
                    attempts=1,
                    notification_id=nid,
                    target=f"{target.instance}/{target.channel}",
                ),
                retry=retry,
            )

        publisher = runtime.publisher
        enqueue = _enqueue_with(publisher) if publisher is not None else app.send_task
        try:
            with unavailable_is_retryable():
                fan_out(runtime, notification, nid, enqueue, deliver_first=deliver_first)
        except Retryable as exc:
            retry_later(self, exc, on_give_up=lambda why: dead_letter(self, why, notification_id=nid))
        except Exception as exc:
            log.exception("notify task %s failed", self.request.id)
            dead_letter(self, f"unexpected error: {describe(exc)}", notification_id=nid)

    @app.task(name=DELIVER_TASK, bind=True, shared=False)
    def deliver_task(
        self: Task,
        payload: Any,
        notification_id: str,
        instance: str,
        channel: str,
        slot_taken: bool = False,
    ) -> None:
        target = f"{instance}/{channel}"
        try:
            notification = Notification.model_validate(payload)
        except ValidationError as exc:
            dead_letter(
                self, f"invalid notification: {_errors(exc)}", notification_id=notification_id, target=target
            )
            return

        def retry(delay: float, exc: Retryable) -> None:
            raise self.retry(
                args=[payload, notification_id, instance, channel, False],
                countdown=delay,
                max_retries=MAX_RETRIES,
            ) from exc

        run_delivery(
            notification,
            payload,
            notification_id,
            instance,
            channel,
            slot_taken=slot_taken,
            retries=self.request.retries,
            letter=lambda reason: dead_letter(self, reason, notification_id=notification_id, target=target),
            retry=retry,
        )

    def run_delivery(
        notification: Notification,
        payload: Any,
        notification_id: str,
        instance: str,
        channel: str,
        *,
        slot_taken: bool,
        retries: int,
        letter: Callable[[str], None],
        retry: Callable[[float, Retryable], None],
    ) -> None:
        """Deliver ``notification`` to one target and settle how it went: counted and logged,
        or paced, retried, or given up (``letter`` keeps the dead letter).

        Run by the delivery task, and by the fan-out task for the target it delivers itself.
        ``retries``: the attempts before this one; ``retry(countdown, error)`` has the
        delivery tried again after ``countdown`` seconds, as attempt ``retries + 2``.
        """
        target = f"{instance}/{channel}"
        attempt = retries + 1

        def give_up(reason: str) -> None:
            # A delivery that failed before it began has no record to mark.
            with contextlib.suppress(KeyError):
                runtime.store.fail_delivery(
                    key_of(notification, notification_id, instance, channel), error=reason, dead=True
                )
            letter(reason)
            runtime.count(instance, "dead_lettered")
            log_event(
                "dead_lettered",
                notification_id=notification_id,
                target=target,
                attempt=attempt,
                reason=reason,
            )

        def later(countdown_s: float, *, slot: bool) -> None:
            # Waiting for our own send slot, or for another copy, is not a failure: it uses
            # up no retry.
            log.debug("paced %s %s in %.2fs", notification_id, target, countdown_s)
            app.send_task(
                DELIVER_TASK,
                args=[payload, notification_id, instance, channel, slot],
                # Held no longer than the visibility timeout allows; a task back before its
                # slot meets the pacer's check of the time since the last post and waits again.
                countdown=min(countdown_s, CAP_SECONDS),
                queue=NOTIFICATIONS_QUEUE,
                retries=retries,
                argsrepr="",
                kwargsrepr="",
            )

        try:
            with unavailable_is_retryable():
                result = deliver(
                    runtime, notification, notification_id, instance, channel, slot_taken=slot_taken
                )
        except SlotLater as slot:
            later(slot.countdown, slot=True)
            return
        except Busy as busy:
            # Another copy is posting (or died posting: its lock then lapses within seconds);
            # the next look most likely finds it posted.
            later(min(max(busy.retry_in, 0.2), BUSY_POLL_SECONDS), slot=False)
            return
        except Retryable as exc:
            limited = isinstance(exc, RateLimited)
            if isinstance(exc, RateLimited):
                hold_off(runtime, instance, channel, exc)
            if retries >= MAX_RETRIES:
                detail = "" if limited else f": {exc.message}"
                give_up(f"gave up after {attempt} attempts: {exc.code}{detail}")
                return
            outcome = "rate_limited" if limited else "retried"
            delay = countdown(exc, retries)  # a rate limit's own Retry-After
            runtime.count(instance, outcome)
            log_event(
                outcome, notification_id=notification_id, target=target, attempt=attempt, countdown=delay
            )
            retry(delay, exc)
            return
        except Permanent as exc:
            give_up(f"{exc.code}: {exc.message}")
            return
        except Exception as exc:
            # A fault of ours must not lose the notification: keep it to replay once fixed.
            log.exception("delivery %s to %s failed", notification_id, target)
            give_up(f"unexpected error: {describe(exc)}")
            return
        if not result.counted:
            runtime.count(instance, result.outcome)
        log_event(result.outcome, notification_id=notification_id, target=target, attempt=attempt)


def _enqueue_with(publisher: TaskPublisher) -> Callable[..., None]:
    """``send_task`` as the fan-out calls it, through the lean publisher (a failure to enqueue
    is :class:`~chatops_core.publisher.BrokerUnavailable`, retryable: the fan-out runs again,
    and each delivery, being keyed, still acts once)."""

    def enqueue(name: str, *, args: list[Any], queue: str, **_options: Any) -> None:
        publisher.send(name, args, queue=queue)

    return enqueue


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}" for err in exc.errors()[:5]
    )


def run_command(runtime: Runtime, provider: Provider, inbound: InboundCommand, *, enqueue: Any) -> None:
    """Carry out one command; each step once, however often this runs.

    Copies of one command that run at the same time (a platform's retry arriving with the
    original, a redelivery while the first copy still runs) take turns: while one carries it
    out it holds the command's lock, and another copy gets :class:`~workers.locks.Busy`.
    Each step (the change, the channel, the announcement, the answer...) is recorded once
    done, so a later copy only does what is still missing.
    """
    runtime.remember_person(inbound)
    with _command_lock(runtime, inbound.key):
        _run_command(runtime, provider, inbound, enqueue=enqueue)


def _command_lock(runtime: Runtime, key: str) -> contextlib.AbstractContextManager[object]:
    locks = runtime.locks
    # Without Redis (another broker) there is no lock: the recorded steps still keep
    # sequential copies from repeating anything.
    return locks.hold(f"command:{key}") if locks is not None else contextlib.nullcontext()


def _run_command(runtime: Runtime, provider: Provider, inbound: InboundCommand, *, enqueue: Any) -> None:
    store = runtime.store
    key = inbound.key
    done = store.steps_done(key)
    if "done" in done:
        return
    if inbound.source == "reaction":
        timeline_mark(runtime, provider, inbound)
        store.mark_step(key, "done")
        return
    form = wants_form(inbound, provider)
    if form is not None:
        words = inbound.text.split()
        incident_id = words[1] if form == "resolve" and len(words) > 1 else None
        # The policy first: someone who may not run the command is told so, not given a form.
        refusal = form_refusal(runtime, inbound, form, incident_id)
        if refusal is not None:
            if "reply" not in done:
                answer(provider, inbound, Reply(text=refusal), runtime.answers)
                store.mark_step(key, "reply")
            store.mark_step(key, "done")
            return
        if form == "resolve" and incident_id and inbound.card_version is not None:
            # A click on Resolve on an old card: say what the incident is now instead.
            stale = _stale_card(runtime, inbound, incident_id)
            if stale is not None:
                if "reply" not in done:
                    answer(provider, inbound, Reply(text=stale), runtime.answers)
                record(
                    runtime, inbound, AuditOutcome.INVALID, command=form, incident=incident_id, reason=stale
                )
                store.mark_step(key, "done")
                return
        open_form(provider, inbound, form, incident_id)
        record(runtime, inbound, AuditOutcome.OK, command=form, incident=incident_id, reason="form opened")
        store.mark_step(key, "done")
        return
    text = command_text(inbound)
    if text is None:
        if "reply" not in done:
            answer(provider, inbound, Reply(text=MENTION_HELP), runtime.answers)
        record(runtime, inbound, AuditOutcome.INVALID, command=None, reason="not understood")
        store.mark_step(key, "done")
        return
    parsed: ParsedCommand | None = None
    try:
        parsed, description = _as_stored(runtime, parse_command(text), inbound.description)
        conf = runtime.settings.providers.get(inbound.instance)
        create_channels = (
            conf is not None and conf.create_incident_channels and provider.supports(Capability.CHANNELS)
        )
        if parsed.name in (CommandName.ASSIGN, CommandName.ROLE):
            inbound = _with_names(provider, inbound, parsed.user)
        outcome = CommandService(store).execute(
            inbound,
            parsed,
            create_channels=create_channels,
            archive_on_close=conf is not None and conf.archive_on_close,
            description=description,
        )
    except CommandError as exc:
        if "reply" not in done:
            answer(provider, inbound, Reply(text=exc.message), runtime.answers)
            store.mark_step(key, "reply")
        word = parsed.name.value if parsed is not None else command_word(text)
        number = parsed.incident if parsed is not None else None
        record(runtime, inbound, outcome_of(exc), command=word, incident=number, reason=exc.message)
        store.mark_step(key, "done")
        return
    # Recorded once the change is made (a later step that fails is retried, not undone).
    record(
        runtime,
        inbound,
        AuditOutcome.OK,
        command=parsed.name.value,
        incident=outcome.incident.number if outcome.incident else parsed.incident,
        reason=outcome.audit_reason,
    )

    if outcome.create_channel and outcome.incident and "channel" not in done:
        outcome.incident = _create_incident_channel(
            runtime, provider, inbound, outcome, earlier_attempt="channel-begun" in done
        )
        store.mark_step(key, "channel")
    elif outcome.create_channel and outcome.incident:
        outcome.incident = store.get(outcome.incident.number)

    # Incident channels exist only where the platform has them (Capability.CHANNELS).
    channels = provider.supports(Capability.CHANNELS)
    if (
        outcome.commander_to_invite
        and outcome.incident
        and outcome.incident.channel_id
        and channels
        and "commander" not in done
    ):
        provider.invite(outcome.incident.channel_id, [outcome.commander_to_invite])
        store.mark_step(key, "commander")

    if (outcome.invite or outcome.kick) and outcome.incident and channels and "membership" not in done:
        _membership(runtime, provider, inbound, outcome)
        store.mark_step(key, "membership")

    # The announcement goes out before the answer: the answer's way back to the person may
    # fail or have expired, and that must not hold up what everyone else is told.
    if outcome.notification and outcome.incident and "announce" not in done:
        _enqueue_notification(runtime, inbound, outcome, enqueue)
        store.mark_step(key, "announce")

    if "reply" not in done:
        reply = outcome.reply
        if (
            outcome.notification
            and outcome.incident
            and _typed_where_announced(runtime, inbound, outcome.incident)
        ):
            # The incident's card in this channel shows the change: confirm to the caller only.
            reply = reply.model_copy(update={"ephemeral": True})
        if inbound.source != "action":  # a click's feedback is its card, updated in place
            answer(provider, inbound, reply, runtime.answers)
        store.mark_step(key, "reply")

    if (
        outcome.archive
        and outcome.incident
        and outcome.incident.channel_id
        and channels
        and "archive" not in done
    ):
        provider.archive(outcome.incident.channel_id)
        store.mark_step(key, "archive")
    store.mark_step(key, "done")


def _as_stored(
    runtime: Runtime, parsed: ParsedCommand, description: str | None
) -> tuple[ParsedCommand, str | None]:
    """The command's text (title, note, resolution) and form description as the incident keeps
    them: redacted, unless ``[redaction] keep_original_in_timeline`` keeps what people wrote
    (chat gets the redacted text either way: see ``answer`` and the card)."""
    conf = runtime.settings.redaction
    text = for_storage(conf, parsed.text)
    if text and parsed.name is CommandName.DECLARE:
        text = cut(text, TITLE_MAX_LENGTH)  # a marker may be longer than the secret it hides
    return parsed.model_copy(update={"text": text}), for_storage(conf, description)


def _with_names(provider: Provider, inbound: InboundCommand, user: str | None) -> InboundCommand:
    """``inbound`` with a name for the person ``user`` names when the platform gave only an
    id (a mention without a name, a pick from a people menu), as their platform shows it, so
    the commander reads as a name on the other platforms and in the timeline."""
    mention = PLATFORM_MENTION_RE.fullmatch(user or "")
    if mention is None:
        return inbound
    user_id = mention.group(1)
    known = next((p for p in inbound.mentioned if p.user_id == user_id), None)
    if known is not None and known.display != user_id:
        return inbound
    name = provider.display_name(user_id)
    if not name:
        return inbound
    person = Person(instance=inbound.instance, user_id=user_id, display=name)
    others = [p for p in inbound.mentioned if p.user_id != user_id]
    return inbound.model_copy(update={"mentioned": [*others, person]})


def _stale_card(runtime: Runtime, inbound: InboundCommand, incident_id: str) -> str | None:
    """What to tell someone who clicked on a card older than the incident, or None."""
    number = parse_incident_ref(incident_id)
    if number is None or inbound.card_version is None:
        return None
    try:
        incident = runtime.store.get(number)
    except IncidentNotFound:
        return None
    if (incident.announced_version or incident.version) <= inbound.card_version:
        return None
    return already_changed(incident).message


def _create_incident_channel(
    runtime: Runtime,
    provider: Provider,
    inbound: InboundCommand,
    outcome: Outcome,
    *,
    earlier_attempt: bool,
) -> Incident:
    store = runtime.store
    incident = outcome.incident
    assert incident is not None
    current = store.get(incident.number)
    if current.channel_id:  # created and recorded by an earlier attempt
        return current
    title = active_redactor().redact(incident.title)  # a channel's name and topic are chat
    name = provider.channel_name_for(incident.id, title)
    topic = f"{incident.id} [{incident.severity.value}] {title}"
    ref = _existing_channel(provider, name) if earlier_attempt else None
    if ref is None:
        store.mark_step(inbound.key, "channel-begun")
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


def _existing_channel(provider: Provider, name: str) -> ChannelRef | None:
    """The channel an earlier attempt created but did not get to record, if it is there.

    The name carries the incident's id, so a channel by that name is this incident's.
    """
    try:
        return ChannelRef(channel_id=provider.resolve_channel(name), name=name)
    except ChannelNotFound:
        return None


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


def _typed_where_announced(runtime: Runtime, inbound: InboundCommand, incident: Any) -> bool:
    provider = runtime.provider(inbound.instance)
    return any(
        t.instance == inbound.instance
        and provider.names_channel(t.channel, inbound.channel_id, inbound.channel_name)
        for t in route(incident, runtime.settings.providers)
    )


def _enqueue_notification(runtime: Runtime, inbound: InboundCommand, outcome: Outcome, enqueue: Any) -> None:
    incident = outcome.incident
    assert incident is not None and outcome.notification is not None
    notification = Notification(
        type=outcome.notification,
        incident=IncidentSnapshot.of(incident, url=runtime.settings.incident_link(incident.id)),
        actor=inbound.user.display,
        summary=outcome.summary or outcome.reply.text,
    )
    # The command's key names the notification, so a redelivered command fans out once.
    enqueue(
        NOTIFY_TASK,
        args=[notification.model_dump(mode="json"), f"cmd:{inbound.key}"],
        queue=NOTIFICATIONS_QUEUE,
        argsrepr="",
        kwargsrepr="",
    )


__all__ = ["register_tasks", "run_command"]
