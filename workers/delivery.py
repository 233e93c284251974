"""Fan-out and delivery of notifications: each target once, paced, never lost.

A notification becomes one delivery task per (instance, channel), so a slow or broken
target holds up no other. A delivery:

- is keyed ``<notification id>:<instance>:<channel>`` (``ext:`` before it for the incident
  system's notifications, whose incidents are kept apart from those declared in chat); a key
  already posted is not posted again, and a lock in Redis keeps two copies of one task from
  posting at once;
- takes a send slot from the shared :class:`~chatops_core.pacing.Pacer` at the pace its
  provider's :class:`~chatops_core.pacing.PacingPolicy` sets (``provider.pacing``: keys and
  intervals for posts into a channel and for card updates); a slot in the future becomes a
  task retry with that countdown, never a sleeping worker;
- carries its key in the posted message's metadata. Each attempt records whether its
  outcome is unknown (it was cut off, timed out or lost its connection mid-request); only
  after such an attempt does the next one look in the channel for the earlier post. An
  answer that says "not posted" (a 429, a refusal) needs no look. A look the platform
  refuses (no permission to read the channel) falls back to posting, counted and logged as
  ``unverified``: at least once beats never;
- updates an incident's card in place when the channel already shows it, and never lets an
  older version overwrite a newer one;
- posts an alert (an SLA breach, an escalation) as a message of its own where the incident's
  card is shown (in the card's thread and to the channel, where the platform has threads),
  once, besides updating the card when its version is newer.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from chatops_core.errors import ChatOpsError, ConnectionFailed, Permanent, RateLimited, ServerError
from chatops_core.models import MessageRef
from chatops_core.notifications import EXTERNAL_PREFIX, Announcement, Notification
from chatops_core.provider_health import outcome_record, record_outcome
from chatops_core.providers import Capability, Provider
from chatops_core.routing import Target, route_notification
from chatops_core.store.delivery import Card, Delivery, DeliveryStatus
from chatops_core.tasks import DELIVER_TASK, NOTIFICATIONS_QUEUE
from workers.locks import Busy, Carried, Held, Take, retry_in
from workers.runtime import Runtime

log = logging.getLogger("chatops.delivery")

# How fast each platform may be sent to is its provider's pacing policy (``provider.pacing``).
# A slot this close is taken now rather than through a retry.
SLOT_TOLERANCE_SECONDS = 0.05
# How far back an attempt looks for a message an earlier attempt may have posted.
HISTORY_MARGIN_SECONDS = 30.0

Enqueue = Callable[..., Any]


class SlotLater(Exception):
    """The delivery's send slot is ``countdown`` seconds away: retry then."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"send slot in {countdown:.2f}s")
        self.countdown = countdown


@dataclass(frozen=True)
class Result:
    outcome: str  # delivered | duplicate | stale
    # Already counted (with the release of the delivery's lock): the caller does not count it.
    counted: bool = False


def delivery_key(notification_id: str, instance: str, channel: str, *, external: bool = False) -> str:
    """The idempotency key of one delivery; ``external``: a notification of the incident
    system's, kept apart from ours (``ext:`` before the key)."""
    key = f"{notification_id}:{instance}:{channel}"
    return EXTERNAL_PREFIX + key if external else key


def key_of(notification: Notification, notification_id: str, instance: str, channel: str) -> str:
    """The idempotency key of delivering ``notification`` to ``channel`` on ``instance``."""
    return delivery_key(notification_id, instance, channel, external=notification.incident.origin != "chat")


def fan_out(
    runtime: Runtime,
    notification: Notification,
    notification_id: str,
    enqueue: Enqueue,
    *,
    deliver_first: Callable[[Target], None] | None = None,
) -> int:
    """Enqueue one delivery per target; return how many targets there are.

    With ``deliver_first`` the first target is not enqueued but handed to it, to be delivered
    by the calling task itself, after the others are enqueued (so they go on beside it): a
    notification to one channel then takes one task instead of two.
    """
    targets = route_notification(notification, runtime.settings.providers)
    first = targets[0] if deliver_first is not None and targets else None
    payload = notification.model_dump(mode="json") if len(targets) > (first is not None) else None
    for target in targets:
        if target is first:
            continue
        enqueue(
            DELIVER_TASK,
            args=[payload, notification_id, target.instance, target.channel],
            queue=NOTIFICATIONS_QUEUE,
            argsrepr="",
            kwargsrepr="",
        )
    log_event("fanned_out", notification_id=notification_id, targets=len(targets))
    if deliver_first is not None and first is not None:
        deliver_first(first)
    return len(targets)


def deliver(
    runtime: Runtime,
    notification: Notification,
    notification_id: str,
    instance: str,
    channel: str,
    *,
    slot_taken: bool,
) -> Result:
    """Deliver one notification to one channel, at most once as people see it.

    A channel that already shows the incident gets its card updated (never by an older
    version); an alert (:attr:`Notification.is_alert`) is also posted there as a message of
    its own, in the card's thread and to the channel, whatever the card's version.

    Raises :class:`SlotLater` when the send slot is in the future, :class:`~workers.locks.Busy` when a
    copy of this delivery holds the lock, and the provider's errors otherwise.
    """
    store = runtime.store
    key = key_of(notification, notification_id, instance, channel)
    incident_ref = notification.incident.key
    existing, card = store.delivery_and_card(key, instance, channel, incident_ref)
    if existing is not None and existing.status == DeliveryStatus.POSTED:
        return Result("duplicate")
    provider = runtime.provider(instance)
    pacing = provider.pacing
    version = notification.incident.version
    # A channel that already shows the incident gets its card updated, whatever the type: an
    # ``incident.created`` that arrives after a later change is then simply older.
    alert = card is not None and notification.is_alert
    # A platform that cannot edit a post shows each change as a new message.
    updatable = provider.supports(Capability.UPDATE_MESSAGE)
    # What this attempt sends first: a post (a new card, a change where cards cannot be
    # edited, or an alert not yet posted) or a card update; each has its own pace.
    posts = (
        card is None
        or (not updatable and (alert or _newer(card, version)))
        or (alert and (existing is None or existing.message_id is None))
    )

    # The slot is taken under the lock, so a copy that finds the lock taken wastes no slot of
    # the channel's pace: with locks and a pacer on one Redis, lock, slot and gap are taken in
    # one atomic round trip (:meth:`~chatops_core.pacing.Pacer.lock_and_pace`), else in turn.
    slot: tuple[str, float] | None = None
    if not slot_taken:
        if posts:
            slot = (pacing.post_key(instance, channel), pacing.post_interval)
        else:
            slot = (pacing.update_key(instance, channel), pacing.update_interval)
    gap = (pacing.post_key(instance, channel), pacing.post_gap) if posts else None
    gated = runtime.locks is not None and runtime.pacer is not None

    def under_lock(held: Held | None) -> Result:
        if not gated:
            if slot is not None:
                _take_slot(runtime, *slot)
            if gap is not None:
                _keep_gap(runtime, *gap)
        record = store.begin_delivery(
            key,
            notification_id=notification_id,
            instance=instance,
            channel=channel,
            incident_ref=incident_ref,
            version=version,
        )
        if record.status == DeliveryStatus.POSTED:
            return Result("duplicate")
        announcement = Announcement.of(notification)
        attempt = _Attempt(runtime, provider, record, notification_id, held)
        if card is None:
            ref, found = attempt.post_once(lambda: provider.announce(channel, announcement, key=key))
            _posted(runtime, key, instance, channel, incident_ref, ref, version)
            if channel == notification.incident.channel_id and provider.supports(Capability.PIN):
                _pin(provider, ref)
            return Result("duplicate" if found else "delivered")
        if not updatable:
            pin = channel == notification.incident.channel_id and provider.supports(Capability.PIN)
            return _post_change(runtime, provider, attempt, card, announcement, version, alert=alert, pin=pin)
        if not alert:
            return _update_card(runtime, provider, key, card, announcement, version)
        if record.message_id is not None and record.channel_id is not None:
            sent = MessageRef(channel_id=record.channel_id, message_id=record.message_id)
        else:
            shown = MessageRef(channel_id=card.channel_id, message_id=card.message_id)
            thread = _alert_thread(provider, shown)
            sent, _ = attempt.post_once(
                lambda: provider.alert(channel, announcement, thread=thread, key=key, card=shown),
                thread=thread,
            )
            store.record_message(key, channel_id=sent.channel_id, message_id=sent.message_id)
            if _newer(card, version):
                # The alert used the channel's post slot; the card's update takes its own (a
                # slot in the future: the next run finds the alert posted and only updates).
                _take_slot(runtime, pacing.update_key(instance, channel), pacing.update_interval)
        result = _update_card(runtime, provider, key, card, announcement, version, sent=sent)
        return Result("delivered") if result.outcome == "stale" else result

    take = _lock_and_pace(runtime, slot, gap) if gated else None
    # Once the block ends the delivery is recorded (posted, or how the attempt failed), so the
    # lock guards nothing more: its release goes out with the process's next lock taking (or
    # from the lock thread), and this task ends without waiting for Redis.
    with _lock(runtime, key, take=take, release_later=True) as held:
        result = under_lock(held)
        if held is not None and runtime.counter is not None:
            # Counted in the round trip that releases the lock rather than in one of its own.
            outcome = result.outcome
            held.also(lambda pipe: runtime.count_into(pipe, instance, outcome))
            result = Result(outcome, counted=True)
    return result


def _newer(card: Card, version: int | None) -> bool:
    """Whether ``version`` may change ``card`` (an unversioned change always may)."""
    return version is None or card.version is None or version > card.version


class _Attempt:
    """One attempt of a delivery that posts: it looks for an earlier attempt's post only when
    that attempt's outcome is unknown, and records a failure that says "not posted"."""

    def __init__(
        self,
        runtime: Runtime,
        provider: Provider,
        record: Delivery,
        notification_id: str,
        held: Held | None = None,
    ) -> None:
        self.runtime = runtime
        self.provider = provider
        self.record = record
        self.notification_id = notification_id
        # The delivery's lock: the provider's health goes out with its release.
        self.held = held

    def post_once(
        self, post: Callable[[], MessageRef], *, thread: MessageRef | None = None
    ) -> tuple[MessageRef, bool]:
        """The message ``post`` sends, or the one an earlier attempt sent: ``(ref, found)``."""
        record = self.record
        # Only a platform that can find a post by its key is asked; any other posts again
        # (at least once beats never).
        if record.outcome_unknown and self.provider.supports(Capability.FIND_POSTED):
            found = self._look_up(thread)
            if found is not None:
                return found, True
        try:
            return post(), False
        except ChatOpsError as exc:
            # Why the attempt failed, and whether that says "not posted" (then the next attempt
            # posts without looking; else its outcome stays unknown and the next one looks).
            self.runtime.store.fail_delivery(
                record.key,
                error=f"{exc.code}: {exc.message}",
                dead=False,
                outcome_unknown=may_have_posted(exc),
            )
            raise
        finally:
            # The instance's health (`chatops status`, /metrics): this call's outcome, the
            # error in flight if any; never fails the delivery. Sent with the release of the
            # delivery's lock (in its script, which is sent whatever the block raised), else
            # in a round trip of its own.
            self._record_health(sys.exc_info()[1])

    def _record_health(self, error: BaseException | None) -> None:
        instance = self.record.instance
        if self.held is None or self.runtime.redis is None:
            record_outcome(self.runtime.redis, instance, error)
            return
        try:
            self.held.also(outcome_record(instance, error))
        except Exception as exc:  # never fail a delivery for its bookkeeping
            log.debug("could not record the health of provider %s: %s", instance, type(exc).__name__)

    def _look_up(self, thread: MessageRef | None) -> MessageRef | None:
        record = self.record
        since = record.created_at.timestamp() - HISTORY_MARGIN_SECONDS
        try:
            return self.provider.find_announcement(record.channel, record.key, since, thread=thread)
        except Permanent as exc:
            # The lookup cannot be made (say, the bot may not read the channel's history):
            # posting, perhaps a second time, beats never.
            self.runtime.count(record.instance, "unverified")
            log_event(
                "unverified",
                notification_id=self.notification_id,
                target=f"{record.instance}/{record.channel}",
                attempt=record.attempts,
                reason=f"{exc.code}: {exc.message}",
            )
            return None


def may_have_posted(error: ChatOpsError) -> bool:
    """Whether a post that failed with ``error`` may still have gone out.

    A provider says so in ``details["outcome_unknown"]`` where it can tell (a request that
    never left did not post); otherwise a lost connection or a timeout (``ConnectionFailed``)
    and a gateway's 502 or 504 may have, while a rate limit or any other answer says "not
    posted".
    """
    said = error.details.get("outcome_unknown")
    if isinstance(said, bool):
        return said
    if isinstance(error, ConnectionFailed):
        return True
    return isinstance(error, ServerError) and error.details.get("status") in (502, 504)


def _update_card(
    runtime: Runtime,
    provider: Provider,
    key: str,
    card: Card,
    announcement: Announcement,
    version: int | None,
    *,
    sent: MessageRef | None = None,
) -> Result:
    """Update ``card`` unless it shows a version as new; ``sent``: the delivery's own message
    (an alert) already posted beside it."""
    store = runtime.store
    ref = MessageRef(channel_id=card.channel_id, message_id=card.message_id)
    card_lock = f"card:{card.instance}:{card.channel}:{card.incident_ref}"
    with _lock(runtime, card_lock):
        current = store.card(card.instance, card.channel, card.incident_ref)
        if current is not None and version is not None and current.version is not None:
            if current.version >= version:
                done = sent or MessageRef(channel_id=current.channel_id, message_id=current.message_id)
                store.finish_delivery(key, channel_id=done.channel_id, message_id=done.message_id)
                return Result("stale")
        provider.update_announcement(ref, announcement)
        # The card's new version and the delivery's end in one transaction.
        runtime.store.record_post(
            key,
            instance=card.instance,
            channel=card.channel,
            incident_ref=card.incident_ref,
            channel_id=ref.channel_id,
            message_id=ref.message_id,
            version=version,
            sent=(sent.channel_id, sent.message_id) if sent is not None else None,
        )
    return Result("delivered")


def _alert_thread(provider: Provider, card: MessageRef) -> MessageRef | None:
    """The thread an alert goes in: the card's, where the platform has threads and can send a
    thread reply to the channel too; else None (a new message in the channel)."""
    if provider.supports(Capability.THREADS) and provider.supports(Capability.ALERT_IN_THREAD):
        return card
    return None


def _post_change(
    runtime: Runtime,
    provider: Provider,
    attempt: _Attempt,
    card: Card,
    announcement: Announcement,
    version: int | None,
    *,
    alert: bool,
    pin: bool,
) -> Result:
    """Show a change on a platform that cannot edit a post: as a new message, never by an older
    version than the channel was last shown.

    A change becomes a new card, which is from then on the channel's card (pinned where the
    old one was, with ``pin``); an alert is posted as an alert (in the card's thread, where
    the platform has that) and stands for the change, the card's version moving on with it.
    """
    store = runtime.store
    key = attempt.record.key
    channel = card.channel
    card_lock = f"card:{card.instance}:{card.channel}:{card.incident_ref}"
    with _lock(runtime, card_lock):
        current = store.card(card.instance, card.channel, card.incident_ref) or card
        newer = _newer(current, version)
        if not alert and not newer:
            store.finish_delivery(key, channel_id=current.channel_id, message_id=current.message_id)
            return Result("stale")
        shown = MessageRef(channel_id=current.channel_id, message_id=current.message_id)
        if alert:
            thread = _alert_thread(provider, shown)
            ref, found = attempt.post_once(
                lambda: provider.alert(channel, announcement, thread=thread, key=key, card=shown),
                thread=thread,
            )
        else:
            ref, found = attempt.post_once(lambda: provider.announce(channel, announcement, key=key))
        if not newer:
            store.finish_delivery(key, channel_id=ref.channel_id, message_id=ref.message_id)
        else:
            card_ref = shown if alert else ref
            store.record_post(
                key,
                instance=card.instance,
                channel=card.channel,
                incident_ref=card.incident_ref,
                channel_id=card_ref.channel_id,
                message_id=card_ref.message_id,
                version=version,
                sent=(ref.channel_id, ref.message_id),
            )
            if pin and not alert:
                _pin(provider, ref)
    return Result("duplicate" if found else "delivered")


def _posted(
    runtime: Runtime,
    key: str,
    instance: str,
    channel: str,
    incident_ref: str,
    ref: MessageRef,
    version: int | None,
) -> None:
    runtime.store.record_post(
        key,
        instance=instance,
        channel=channel,
        incident_ref=incident_ref,
        channel_id=ref.channel_id,
        message_id=ref.message_id,
        version=version,
    )


def _pin(provider: Provider, ref: MessageRef) -> None:
    # The card in the incident's own channel is pinned; a failed pin does not undo the post.
    try:
        provider.pin(ref.channel_id, ref.message_id)
    except ChatOpsError as exc:
        log.warning("could not pin the incident card in %s: %s", ref.channel_id, exc.code)


def _take_slot(runtime: Runtime, pace_key: str, interval: float) -> None:
    if runtime.pacer is None:
        return
    wait = runtime.pacer.reserve(pace_key, interval)
    if wait > SLOT_TOLERANCE_SECONDS:
        raise SlotLater(wait)


def _keep_gap(runtime: Runtime, pace_key: str, gap: float) -> None:
    if runtime.pacer is None:
        return
    wait = runtime.pacer.spaced(pace_key, gap)
    if wait > 0:
        raise SlotLater(wait)


def hold_off(runtime: Runtime, instance: str, channel: str, error: RateLimited) -> None:
    """After a 429, no post to this channel before the platform's Retry-After."""
    if runtime.pacer is not None:
        pace_key = runtime.provider(instance).pacing.post_key(instance, channel)
        runtime.pacer.hold_off(pace_key, error.retry_after)


def _lock(
    runtime: Runtime, name: str, *, take: Take | None = None, release_later: bool = False
) -> AbstractContextManager[Held | None]:
    """The delivery lock ``name`` (:class:`~workers.locks.Busy` when another copy holds it);
    ``take``: how to take it, ``release_later``: whether the release may be left to the
    process, to be sent later (see :meth:`~workers.locks.LockKeeper.hold`)."""
    if runtime.locks is None:
        return nullcontext()
    return runtime.locks.hold(name, take=take, release_later=release_later)


def _lock_and_pace(runtime: Runtime, slot: tuple[str, float] | None, gap: tuple[str, float] | None) -> Take:
    """Takes a delivery's lock with its send slot (``slot``: pace key and interval, a wait up
    to :data:`SLOT_TOLERANCE_SECONDS` counting as now) and its gap check (``gap``: pace key
    and least gap) in one round trip, which also carries the process's pending lock releases:
    :class:`~workers.locks.Busy` when another copy holds the lock (no slot taken),
    :class:`SlotLater` when the slot or the gap is further away (the slot stays reserved for
    the retry then; the lock is not taken)."""
    pacer = runtime.pacer
    assert pacer is not None

    def take(key: str, token: str, ttl_ms: int, carried: Carried | None) -> None:
        gate = pacer.lock_and_pace(
            key, token, ttl_ms, slot=slot, tolerance=SLOT_TOLERANCE_SECONDS, gap=gap, carried=carried
        )
        if gate.busy_ms is not None:
            raise Busy(key, retry_in(gate.busy_ms))
        if not gate.taken:
            raise SlotLater(gate.wait)

    return take


def log_event(event: str, **fields: Any) -> None:
    """One structured line per delivery event (never a token: only ids and targets)."""
    if log.isEnabledFor(logging.INFO):  # the line is built only to be written
        log.info(json.dumps({"event": event, **fields}, separators=(",", ":"), default=str))
