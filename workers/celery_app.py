"""The Celery application factory."""

from __future__ import annotations

from urllib.parse import urlsplit

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown
from kombu import Exchange, Queue

from chatops_core.settings import Settings
from chatops_core.tasks import (
    INTERACTIVE_QUEUE,
    MAINTENANCE_QUEUE,
    NOTIFICATIONS_QUEUE,
    TASK_QUEUES,
)
from workers.maintenance import beat_schedule, register_maintenance
from workers.redis_transport import REDIS_SCHEMES, use_for_redis_urls
from workers.runtime import Runtime

# Seconds a blocking broker call (an ack, a publish) may take before it counts as a lost
# connection, so a frozen broker does not freeze the worker; and to connect.
BROKER_SOCKET_TIMEOUT_SECONDS = 10
BROKER_CONNECT_TIMEOUT_SECONDS = 5


def make_celery(settings: Settings, runtime: Runtime | None = None) -> Celery:
    """A Celery app configured from ``settings``, with the service's tasks registered."""
    broker_url = settings.effective_broker_url()
    app = Celery("chatops", broker=broker_url)
    transport_options: dict[str, object] = {
        "visibility_timeout": settings.visibility_timeout_seconds,
        # Look for tasks left by a dead worker every quarter of the timeout (kombu's default
        # sweep is about every 100 s, whatever the timeout).
        "unacked_restore_interval": max(1, min(60, settings.visibility_timeout_seconds // 4)),
        "unacked_restore_throttle": 1,
    }
    if urlsplit(broker_url).scheme in REDIS_SCHEMES:
        # Survives losing Redis while tasks are held (see workers.redis_transport).
        use_for_redis_urls()
        transport_options.update(
            socket_timeout=BROKER_SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=BROKER_CONNECT_TIMEOUT_SECONDS,
        )
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
        broker_transport_options=transport_options,
        # A broker outage is waited out, however long: the worker reconnects (every few
        # seconds, up to 30 s apart) instead of giving up after 100 attempts and exiting.
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        # A task still running when the connection is lost finishes (its answer reaches the
        # person now); as its acknowledgement is lost with the connection, it comes back after
        # the visibility timeout and, being keyed, acts once.
        worker_cancel_long_running_tasks_on_connection_loss=False,
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
    # A pool process (or a solo worker) that ends sends the lock releases it left to send.
    # Weakly held: the handlers go with the runtime (tests build many apps).
    worker_process_shutdown.connect(runtime.on_shutdown)
    worker_shutdown.connect(runtime.on_shutdown)
    return app
