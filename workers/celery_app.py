"""The Celery application factory."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.signals import worker_init, worker_process_shutdown, worker_shutdown
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
# The app's own setting (Settings.notifications_prefetch) that pipeline_pool reads.
NOTIFICATIONS_PREFETCH_CONF = "chatops_notifications_prefetch"


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
        # One task at a time per pool process, handed over once the process is free; a
        # worker serving the notifications queue alone holds more (pipeline_pool).
        worker_prefetch_multiplier=1,
        **{NOTIFICATIONS_PREFETCH_CONF: settings.notifications_prefetch},
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


@worker_init.connect(dispatch_uid="chatops.pipeline_pool")
def pipeline_pool(sender: Any, **_: object) -> None:
    """A worker that serves the notifications queue alone hands each pool process its next
    task while the process still runs the current one.

    By default Celery passes a task to a pool process only once the process is free, so each
    task waits for the worker's main process to acknowledge the last one, fetch the next from
    Redis and hand it over (about as long as a trivial task takes), and a delivery's work and
    the main process's take turns. Here each pool process holds
    ``Settings.notifications_prefetch`` tasks: the main process prefetches that many per pool
    process (``worker_prefetch_multiplier``), hands each over as it arrives (no pool put
    locks) and writes it to a process that is still busy (first come, first served rather
    than Celery's "fair" choice of an idle process), so a process starts its next delivery as
    soon as it finishes one.

    Left as it is for any other worker: an ``interactive`` command should go to a process
    that is free, not wait behind another command in a busy one. Nothing is lost by holding
    more: every task held is unacknowledged in Redis (acknowledged late) until it ran, and
    comes back to the queue if the worker dies with it. A warm shutdown lets go of the tasks
    a process has not started (Celery expects the broker to give them out again) while the
    process, holding one in its pipe, still runs it: the task's message goes back to the
    queue and its rerun finds the delivery done, and the process waits about 30 s for its
    result to be collected before it exits.
    """
    ahead = int(sender.app.conf.get(NOTIFICATIONS_PREFETCH_CONF) or 1)
    queues = set(sender.app.amqp.queues.consume_from)
    if ahead <= 1 or queues != {NOTIFICATIONS_QUEUE}:
        return
    sender.prefetch_multiplier = ahead
    sender.pool_putlocks = False
    sender.optimization = "fcfs"
