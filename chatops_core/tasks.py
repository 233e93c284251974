"""Names of the Celery tasks and queues: the contract between ingress, CLI and workers.

The ingress enqueues by name, so it never imports worker code.
"""

from __future__ import annotations

COMMAND_TASK = "chatops.command"
NOTIFY_TASK = "chatops.notify"
DELIVER_TASK = "chatops.deliver"
SLA_CHECK_TASK = "chatops.sla_check"

INTERACTIVE_QUEUE = "interactive"
NOTIFICATIONS_QUEUE = "notifications"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (INTERACTIVE_QUEUE, NOTIFICATIONS_QUEUE, MAINTENANCE_QUEUE)

# The queue each task runs on (Celery's task routes, and where `chatops dlq replay` sends it).
TASK_QUEUES = {
    COMMAND_TASK: INTERACTIVE_QUEUE,
    NOTIFY_TASK: NOTIFICATIONS_QUEUE,
    DELIVER_TASK: NOTIFICATIONS_QUEUE,
    SLA_CHECK_TASK: MAINTENANCE_QUEUE,
}
