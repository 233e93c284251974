"""A worker runtime on a :class:`~tests.fakes.recording_provider.RecordingProvider`.

:class:`World` holds a :class:`~workers.runtime.Runtime` with the real store (SQLite under a
temporary directory) and the recording provider as its only instance, and runs what Celery
would run, in process and in order: a command (``run_command``), then every notification it
enqueued (``fan_out``), then every delivery of each (``deliver``). With ``broker_url`` (a
Redis URL) the runtime also has the real pacer and locks. With ``through_tasks``, each
delivery runs as the real Celery task (``Task.apply``: its retries run at once, and what it
gives up on becomes a dead letter in the store), which needs a ``broker_url``
(``memory://`` will do).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery

from chatops_core.errors import ChatOpsError
from chatops_core.models import Actor, InboundCommand, Incident
from chatops_core.notifications import Notification
from chatops_core.settings import Settings
from chatops_core.tasks import DELIVER_TASK, NOTIFY_TASK
from tests.fakes.recording_provider import RecordingProvider, RecordingSettings
from workers.celery_app import make_celery
from workers.delivery import deliver, fan_out, key_of
from workers.runtime import Runtime
from workers.tasks import run_command

ALICE = Actor(user_id="U100ALICE", user_name="alice")
BOB = Actor(user_id="U200BOB", user_name="bob")


class Enqueued(list[tuple[str, list[Any]]]):
    """Stands in for Celery's ``send_task``: keeps ``(task name, args)`` in order."""

    def __call__(self, name: str, args: list[Any], **options: Any) -> None:
        self.append((name, args))


def recording_runtime(
    tmp_path: Path,
    provider: RecordingProvider,
    *,
    broker_url: str | None = None,
    **settings: Any,
) -> Runtime:
    """A runtime whose one provider instance is ``provider``; ``settings`` set its keys
    (``create_incident_channels``, ``archive_on_close``, ``default_channel``...)."""
    values: dict[str, Any] = {"default_channel": "#incidents", "create_incident_channels": True}
    values.update(settings)
    process = Settings(data_dir=tmp_path, broker_url=broker_url)
    # Put in place after validation: a test-only provider type is not among the configured ones.
    conf = RecordingSettings(**values)
    process.providers[provider.name] = conf
    provider.settings = conf
    runtime = Runtime(process)
    runtime.store.upgrade()
    runtime.providers = {provider.name: provider}
    return runtime


@dataclass
class Delivered:
    notification: Notification
    notification_id: str
    channel: str
    outcome: str


@dataclass
class Failed:
    """A delivery that raised, as its task would retry it."""

    notification: Notification
    notification_id: str
    channel: str
    error: ChatOpsError


@dataclass
class World:
    """A runtime on a recording provider, and a loop that runs every task at once.

    A command that raises raises from :meth:`run` (its task would retry it: run it again).
    A delivery that raises is kept in :attr:`failed`, as each delivery is a task of its own,
    and the others go on; :meth:`retry_failed` runs those again.
    """

    runtime: Runtime
    provider: RecordingProvider
    through_tasks: bool = False
    deliveries: list[Delivered] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    _keys: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _celery: Celery | None = None

    def command(
        self,
        text: str,
        *,
        user: Actor = ALICE,
        channel_id: str | None = "C0004",
        channel_name: str | None = "general",
        source: str = "command",
        key: str | None = None,
        **extra: Any,
    ) -> InboundCommand:
        """A command as the recording provider's ``parse`` makes it."""
        key = key or f"recording:{self.provider.name}:k{next(self._keys)}"
        return InboundCommand.model_validate(
            {
                "key": key,
                "instance": self.provider.name,
                "platform": self.provider.type,
                "text": text,
                "user": user,
                "channel_id": channel_id,
                "channel_name": channel_name,
                "source": source,
                "reply_to": {"request": key},
                **extra,
            }
        )

    def run(self, text: str, **kwargs: Any) -> InboundCommand:
        """Run a command, then deliver everything it announced."""
        inbound = self.command(text, **kwargs)
        self.run_inbound(inbound)
        return inbound

    def run_inbound(self, inbound: InboundCommand) -> None:
        enqueued = Enqueued()
        try:
            run_command(self.runtime, self.provider, inbound, enqueue=enqueued)
        finally:
            # What a failed run enqueued before it failed is on the queue all the same.
            for name, args in enqueued:
                assert name == NOTIFY_TASK, name
                self.notify(Notification.model_validate(args[0]), args[1])

    def notify(self, notification: Notification, notification_id: str) -> list[Delivered]:
        """Fan ``notification`` out and deliver it to each target, in order."""
        targets = Enqueued()
        fan_out(self.runtime, notification, notification_id, targets)
        done = []
        for name, args in targets:
            assert name == DELIVER_TASK, name
            payload = Notification.model_validate(args[0])
            try:
                done.append(self.deliver(payload, args[1], args[3]))
            except ChatOpsError as exc:
                self.failed.append(Failed(payload, args[1], args[3], exc))
        return done

    def retry_failed(self) -> list[Delivered]:
        """Run the failed deliveries again (those failing again stay in :attr:`failed`)."""
        again, self.failed = self.failed, []
        done = []
        for failure in again:
            try:
                done.append(self.deliver(failure.notification, failure.notification_id, failure.channel))
            except ChatOpsError as exc:
                self.failed.append(
                    Failed(failure.notification, failure.notification_id, failure.channel, exc)
                )
        return done

    def celery(self) -> Celery:
        """The Celery application with the service's tasks, on this world's runtime."""
        if self._celery is None:
            self._celery = make_celery(self.runtime.settings, self.runtime)
        return self._celery

    def deliver(self, notification: Notification, notification_id: str, channel: str) -> Delivered:
        if self.through_tasks:
            args = [notification.model_dump(mode="json"), notification_id, self.provider.name, channel]
            self.celery().tasks[DELIVER_TASK].apply(args=args)
            record = self.runtime.store.delivery(
                key_of(notification, notification_id, self.provider.name, channel)
            )
            outcome = record.status if record is not None else "none"
            delivered = Delivered(notification, notification_id, channel, str(outcome))
            self.deliveries.append(delivered)
            return delivered
        result = deliver(
            self.runtime, notification, notification_id, self.provider.name, channel, slot_taken=False
        )
        delivered = Delivered(notification, notification_id, channel, result.outcome)
        self.deliveries.append(delivered)
        return delivered

    def incident(self, number: int = 1) -> Incident:
        return self.runtime.store.get(number)

    def close(self) -> None:
        self.runtime.store.close()
