"""Names of the Celery tasks and queues: the contract between ingress, CLI and workers.

The ingress enqueues by name, so it never imports worker code.
"""

from __future__ import annotations

COMMAND_TASK = "chatops.command"
# Tell a person their command was refused at the door (over their rate), where the platform's
# webhook response cannot: args (the command, the text).
REFUSED_TASK = "chatops.refused"
NOTIFY_TASK = "chatops.notify"
DELIVER_TASK = "chatops.deliver"
SLA_CHECK_TASK = "chatops.sla_check"
AUDIT_DRAIN_TASK = "chatops.audit_drain"
SENT_SWEEP_TASK = "chatops.sent_sweep"

INTERACTIVE_QUEUE = "interactive"
NOTIFICATIONS_QUEUE = "notifications"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (INTERACTIVE_QUEUE, NOTIFICATIONS_QUEUE, MAINTENANCE_QUEUE)

# The queue each task runs on (Celery's task routes, and where `chatops dlq replay` sends it).
TASK_QUEUES = {
    COMMAND_TASK: INTERACTIVE_QUEUE,
    REFUSED_TASK: INTERACTIVE_QUEUE,
    NOTIFY_TASK: NOTIFICATIONS_QUEUE,
    DELIVER_TASK: NOTIFICATIONS_QUEUE,
    SLA_CHECK_TASK: MAINTENANCE_QUEUE,
    AUDIT_DRAIN_TASK: MAINTENANCE_QUEUE,
    SENT_SWEEP_TASK: MAINTENANCE_QUEUE,
}
