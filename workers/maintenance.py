"""Periodic maintenance tasks, run on the ``maintenance`` queue and scheduled by ``chatops beat``.

``chatops.sla_check`` announces every open incident that was not acknowledged within the
SLA of its severity (``[sla]`` in the settings), once per unacknowledged period: a claim in
the store makes the announcement happen once, however many checks run, and a reopened
incident that breaches again is announced again.

``chatops.audit_drain`` moves the audit records the ingress left on its Redis stream
(refused webhooks, API intake: see :mod:`chatops_core.audit`) into the store, every
``DRAIN_INTERVAL_SECONDS``. Each entry is appended once, however many drains run.

``chatops.sent_sweep`` pushes back the task messages a worker took off the broker and died
with before noting them as unacknowledged (see :mod:`workers.redis_transport`), every
``sent_sweep_seconds``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import redis
from celery import Celery

from chatops_core.audit import DRAIN_INTERVAL_SECONDS, AuditStream
from chatops_core.models import utcnow
from chatops_core.notifications import IncidentSnapshot, Notification
from chatops_core.settings import Settings
from chatops_core.tasks import (
    AUDIT_DRAIN_TASK,
    MAINTENANCE_QUEUE,
    NOTIFICATIONS_QUEUE,
    NOTIFY_TASK,
    SENT_SWEEP_TASK,
    SLA_CHECK_TASK,
)
from workers.redis_transport import Sweep, sweep_sent
from workers.runtime import Runtime

log = logging.getLogger("chatops.maintenance")

SLA_CHECK_SCHEDULE_NAME = "chatops-sla-check"
AUDIT_DRAIN_SCHEDULE_NAME = "chatops-audit-drain"
SENT_SWEEP_SCHEDULE_NAME = "chatops-sent-sweep"


def check_sla(runtime: Runtime, send_task: Callable[..., Any], now: datetime) -> int:
    """Enqueue an ``incident.sla_breach`` notification for each new breach at ``now``; return how many.

    ``send_task`` is Celery's ``app.send_task`` (or anything with its signature). A breach
    whose notification cannot be enqueued is released again, so the next check retries it.
    """
    settings = runtime.settings
    ack_minutes = settings.sla.ack_minutes
    if not ack_minutes:
        return 0
    store = runtime.store
    cutoffs = {severity: now - timedelta(minutes=minutes) for severity, minutes in ack_minutes.items()}
    sent = 0
    for incident, since in store.unacknowledged(cutoffs):
        if not store.claim_sla_breach(incident.number, since):
            continue
        minutes = ack_minutes[incident.severity]
        notification = Notification(
            type="incident.sla_breach",
            incident=IncidentSnapshot.of(incident, url=settings.incident_link(incident.id)),
            summary=f"Not acknowledged within {minutes:g} min (SLA for {incident.severity})",
        )
        try:
            send_task(
                NOTIFY_TASK,
                args=[
                    notification.model_dump(mode="json"),
                    f"sla-{incident.number}-{int(since.timestamp())}",
                ],
                queue=NOTIFICATIONS_QUEUE,
                argsrepr="",
                kwargsrepr="",
            )
        except BaseException:
            store.release_sla_breach(incident.number, since)
            raise
        sent += 1
        log.warning(
            "SLA breach incident=%s severity=%s open_since=%s sla_minutes=%g",
            incident.id,
            incident.severity,
            since.isoformat(),
            minutes,
        )
    return sent


def drain_audit(runtime: Runtime) -> int:
    """Move the audit records waiting on the broker's Redis stream into the store; return
    how many. Nothing to do on another broker (the ingress then leaves none)."""
    client = runtime.redis
    if client is None:
        return 0
    moved = AuditStream(client).drain(runtime.store.append_audit)
    if moved:
        log.info("audit: %d record(s) moved from the stream into the store", moved)
    return moved


def sweep_lost_tasks(runtime: Runtime) -> Sweep | None:
    """Push back the task messages lost between a worker's taking and noting them (``None``
    on a broker other than Redis, where the transport has no such gap to cover).

    A message is looked at once it was queued longer ago than the visibility timeout and one
    sweep interval (until then a worker that holds it is kombu's to give back), and pushed
    back when a later sweep, half an interval on or more, still finds it nowhere.
    """
    client = runtime.redis
    if client is None:
        return None
    every = runtime.settings.sent_sweep_seconds
    swept = sweep_sent(
        client,
        older_than=runtime.settings.visibility_timeout_seconds + every,
        confirm_after=every / 2,
        lock_for=every / 2,
    )
    if swept.restored:
        log.warning(
            "lost tasks: %d task message(s) a worker died with before noting them put back: %s",
            len(swept.restored),
            ", ".join(swept.restored),
        )
    if swept.dropped:
        log.warning("lost tasks: %d ledger entr(ies) older than a day dropped", swept.dropped)
    return swept


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The Celery beat schedule of the maintenance tasks (``app.conf.beat_schedule``)."""
    interval = settings.sla.check_interval_seconds
    return {
        SLA_CHECK_SCHEDULE_NAME: {
            "task": SLA_CHECK_TASK,
            "schedule": interval,
            # A check not started within one interval is superseded by the next one, so
            # checks do not pile up while no worker serves the queue.
            "options": {"queue": MAINTENANCE_QUEUE, "expires": interval},
        },
        AUDIT_DRAIN_SCHEDULE_NAME: {
            "task": AUDIT_DRAIN_TASK,
            "schedule": DRAIN_INTERVAL_SECONDS,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": DRAIN_INTERVAL_SECONDS},
        },
        SENT_SWEEP_SCHEDULE_NAME: {
            "task": SENT_SWEEP_TASK,
            "schedule": settings.sent_sweep_seconds,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": settings.sent_sweep_seconds},
        },
    }


def register_maintenance(app: Celery, runtime: Runtime) -> None:
    """Register the maintenance tasks on ``app``."""

    @app.task(name=SLA_CHECK_TASK, shared=False)
    def sla_check() -> int:
        return check_sla(runtime, app.send_task, utcnow())

    @app.task(name=AUDIT_DRAIN_TASK, shared=False)
    def audit_drain() -> int:
        try:
            return drain_audit(runtime)
        except redis.RedisError as exc:
            # The entries wait on the stream for the next drain (every few seconds).
            log.warning("audit: the stream cannot be read now: %s", type(exc).__name__)
            return 0

    @app.task(name=SENT_SWEEP_TASK, shared=False)
    def sent_sweep() -> int:
        try:
            swept = sweep_lost_tasks(runtime)
        except redis.RedisError as exc:
            # Whatever is lost stays in the ledger for the next sweep.
            log.warning("lost tasks: the ledger cannot be swept now: %s", type(exc).__name__)
            return 0
        return len(swept.restored) if swept is not None else 0
