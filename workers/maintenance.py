"""Periodic maintenance tasks, run on the ``maintenance`` queue and scheduled by ``chatops beat``.

``chatops.sla_check`` announces every open incident that was not acknowledged within the
SLA of its severity (``[sla]`` in the settings), once per unacknowledged period: a claim in
the store makes the announcement happen once, however many checks run, and a reopened
incident that breaches again is announced again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery import Celery

from chatops_core.models import utcnow
from chatops_core.notifications import IncidentSnapshot, Notification
from chatops_core.settings import Settings
from chatops_core.tasks import MAINTENANCE_QUEUE, NOTIFICATIONS_QUEUE, NOTIFY_TASK, SLA_CHECK_TASK
from workers.runtime import Runtime

log = logging.getLogger("chatops.maintenance")

SLA_CHECK_SCHEDULE_NAME = "chatops-sla-check"


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
        }
    }


def register_maintenance(app: Celery, runtime: Runtime) -> None:
    """Register the maintenance tasks on ``app``."""

    @app.task(name=SLA_CHECK_TASK, shared=False)
    def sla_check() -> int:
        return check_sla(runtime, app.send_task, utcnow())
