"""The Celery application factory."""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from chatops_core.settings import Settings
from chatops_core.tasks import (
    INTERACTIVE_QUEUE,
    MAINTENANCE_QUEUE,
    NOTIFICATIONS_QUEUE,
    TASK_QUEUES,
)
from workers.maintenance import beat_schedule, register_maintenance
from workers.runtime import Runtime


def make_celery(settings: Settings, runtime: Runtime | None = None) -> Celery:
    """A Celery app configured from ``settings``, with the service's tasks registered."""
    app = Celery("chatops", broker=settings.effective_broker_url())
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        # A task is acknowledged after it ran, and given back if its worker dies, so nothing is
        # lost; tasks are idempotent (keyed), so running one twice is harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_seconds,
            # Look for tasks left by a dead worker every quarter of the timeout (kombu's default
            # sweep is about every 100 s, whatever the timeout).
            "unacked_restore_interval": max(1, min(60, settings.visibility_timeout_seconds // 4)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=INTERACTIVE_QUEUE,
        task_queues=[
            Queue(INTERACTIVE_QUEUE, Exchange(INTERACTIVE_QUEUE), routing_key=INTERACTIVE_QUEUE),
            Queue(NOTIFICATIONS_QUEUE, Exchange(NOTIFICATIONS_QUEUE), routing_key=NOTIFICATIONS_QUEUE),
            Queue(MAINTENANCE_QUEUE, Exchange(MAINTENANCE_QUEUE), routing_key=MAINTENANCE_QUEUE),
        ],
        task_routes={task: {"queue": queue} for task, queue in TASK_QUEUES.items()},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    from workers.tasks import register_tasks

    app.conf.beat_schedule = beat_schedule(settings)
    runtime = runtime or Runtime(settings)
    register_tasks(app, runtime)
    register_maintenance(app, runtime)
    return app
