"""Fan-out and delivery of notifications: each target once, paced, never lost.

A notification becomes one delivery task per (instance, channel), so a slow or broken
target holds up no other. A delivery:

- is keyed ``<notification id>:<instance>:<channel>``; a key already posted is not posted
  again, and a lock in Redis keeps two copies of one task from posting at once;
- takes a send slot from the shared :class:`~chatops_core.pacing.Pacer` (about one message
  a second per channel for posts, per method and workspace for updates); a slot in the
  future becomes a task retry with that countdown, never a sleeping worker;
- carries its key in the posted message's metadata, so an attempt after a crash first
  looks in the channel for the message an earlier attempt may have posted;
- updates an incident's card in place when the channel already shows it, and never lets an
  older version overwrite a newer one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from chatops_core.errors import ChatOpsError, RateLimited
from chatops_core.models import MessageRef
from chatops_core.notifications import Announcement, Notification
from chatops_core.providers import Operation, Provider
from chatops_core.routing import route_notification
from chatops_core.store.delivery import Card, DeliveryStatus
from chatops_core.tasks import DELIVER_TASK, NOTIFICATIONS_QUEUE
from workers.runtime import Runtime

log = logging.getLogger("chatops.delivery")

# Slack: chat.postMessage about 1 message/s per channel; chat.update is Tier 3 (50+/min per
# workspace). https://docs.slack.dev/apis/web-api/rate-limits
# Slots sit a little over a second apart, so a post that runs a few milliseconds late does
# not land within a second of the next one.
POST_INTERVAL_SECONDS = 1.05
UPDATE_INTERVAL_SECONDS = 1.2
# A slot this close is taken now rather than through a retry.
SLOT_TOLERANCE_SECONDS = 0.05
# The least time between two posts into one channel, checked as each post goes out (a task
# may run later than its slot, or a dead worker's paced tasks may come back all at once).
POST_GAP_SECONDS = 1.02
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


def delivery_key(notification_id: str, instance: str, channel: str) -> str:
    return f"{notification_id}:{instance}:{channel}"


def fan_out(runtime: Runtime, notification: Notification, notification_id: str, enqueue: Enqueue) -> int:
    """Enqueue one delivery per target; return how many."""
    targets = route_notification(notification, runtime.settings.providers)
    payload = notification.model_dump(mode="json")
    for target in targets:
        enqueue(
            DELIVER_TASK,
            args=[payload, notification_id, target.instance, target.channel],
            queue=NOTIFICATIONS_QUEUE,
            argsrepr="",
            kwargsrepr="",
        )
    log_event("fanned_out", notification_id=notification_id, targets=len(targets))
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

    Raises :class:`SlotLater` when the send slot is in the future, :class:`~workers.locks.Busy` when a
    copy of this delivery holds the lock, and the provider's errors otherwise.
    """
    store = runtime.store
    key = delivery_key(notification_id, instance, channel)
    existing = store.delivery(key)
    if existing is not None and existing.status == DeliveryStatus.POSTED:
        return Result("duplicate")
    provider = runtime.provider(instance)
    incident_ref = notification.incident.id
    version = notification.incident.version
    card = store.card(instance, channel, incident_ref)
    # A channel that already shows the incident gets its card updated, whatever the type: an
    # ``incident.created`` that arrives after a later change is then simply older.
    with _lock(runtime, key):
        # The slot is taken under the lock, so a copy that finds the lock taken wastes no
        # slot of the channel's pace.
        if not slot_taken:
            pace_key = f"{instance}:update" if card is not None else f"{instance}:post:{channel}"
            interval = UPDATE_INTERVAL_SECONDS if card is not None else POST_INTERVAL_SECONDS
            _take_slot(runtime, pace_key, interval)
        if card is None:
            _keep_gap(runtime, f"{instance}:post:{channel}")
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
        if card is not None:
            return _update_card(runtime, provider, key, card, announcement, version)
        if record.attempts > 1:
            since = record.created_at.timestamp() - HISTORY_MARGIN_SECONDS
            found = provider.find_announcement(channel, key, since)
            if found is not None:
                _posted(runtime, key, instance, channel, incident_ref, found, version)
                return Result("duplicate")
        ref = provider.announce(channel, announcement, key=key)
        _posted(runtime, key, instance, channel, incident_ref, ref, version)
        if channel == notification.incident.channel_id and provider.supports(Operation.INTERACTIVE):
            _pin(provider, ref)
        return Result("delivered")


def _update_card(
    runtime: Runtime,
    provider: Provider,
    key: str,
    card: Card,
    announcement: Announcement,
    version: int | None,
) -> Result:
    store = runtime.store
    ref = MessageRef(channel_id=card.channel_id, message_id=card.message_id)
    card_lock = f"card:{card.instance}:{card.channel}:{card.incident_ref}"
    with _lock(runtime, card_lock):
        current = store.card(card.instance, card.channel, card.incident_ref)
        if current is not None and version is not None and current.version is not None:
            if current.version >= version:
                store.finish_delivery(key, channel_id=current.channel_id, message_id=current.message_id)
                return Result("stale")
        provider.update_announcement(ref, announcement)
        # The card's new version and the delivery's end in one transaction.
        _posted(runtime, key, card.instance, card.channel, card.incident_ref, ref, version)
    return Result("delivered")


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


def _keep_gap(runtime: Runtime, pace_key: str) -> None:
    if runtime.pacer is None:
        return
    wait = runtime.pacer.spaced(pace_key, POST_GAP_SECONDS)
    if wait > 0:
        raise SlotLater(wait)


def hold_off(runtime: Runtime, instance: str, channel: str, error: RateLimited) -> None:
    """After a 429, no post to this channel before the platform's Retry-After."""
    if runtime.pacer is not None:
        runtime.pacer.hold_off(f"{instance}:post:{channel}", error.retry_after)


def _lock(runtime: Runtime, name: str) -> AbstractContextManager[None]:
    """The delivery lock ``name`` (:class:`~workers.locks.Busy` when another copy holds it)."""
    return runtime.locks.hold(name) if runtime.locks is not None else nullcontext()


def log_event(event: str, **fields: Any) -> None:
    """One structured line per delivery event (never a token: only ids and targets)."""
    log.info(json.dumps({"event": event, **fields}, separators=(",", ":"), default=str))
