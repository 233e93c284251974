"""The SLA check against a real SQLite store, with the Celery publish captured."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatops_core.models import Severity
from chatops_core.notifications import Notification
from chatops_core.settings import Settings, SlaSettings
from chatops_core.state import Action
from chatops_core.tasks import MAINTENANCE_QUEUE, NOTIFICATIONS_QUEUE, NOTIFY_TASK, SLA_CHECK_TASK
from workers.celery_app import make_celery
from workers.maintenance import beat_schedule, check_sla
from workers.runtime import Runtime

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Sent(list[tuple[str, list[Any], dict[str, Any]]]):
    """Captures ``app.send_task`` calls."""

    def __call__(self, name: str, args: list[Any], **options: Any) -> None:
        self.append((name, args, options))

    def notifications(self) -> list[Notification]:
        return [Notification.model_validate(args[0]) for _, args, _ in self]


def make_runtime(tmp_path: Path, **sla: Any) -> Runtime:
    settings = Settings(
        data_dir=tmp_path,
        incident_url="https://incidents.example.com/incidents/{id}",
        sla=SlaSettings(**sla),
    )
    rt = Runtime(settings)
    rt.store.upgrade()
    return rt


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path)
    yield rt
    rt.store.close()


def declare(rt: Runtime, severity: Severity, minutes: float = 0) -> int:
    applied = rt.store.declare(
        title="DB down",
        severity=severity,
        actor="alice",
        platform="slack",
        instance="slack",
        channel="C1",
        at=at(minutes),
    )
    return applied.incident.number


def act(rt: Runtime, number: int, action: Action, minutes: float) -> None:
    rt.store.apply(number, action, actor="bob", platform="slack", channel="C1", at=at(minutes))


def test_a_breach_is_sent_once_across_checks(runtime: Runtime) -> None:
    number = declare(runtime, Severity.SEV1)
    sent = Sent()
    assert check_sla(runtime, sent, at(4.9)) == 0
    assert check_sla(runtime, sent, at(5.1)) == 1
    assert check_sla(runtime, sent, at(6)) == 0
    assert check_sla(runtime, sent, at(600)) == 0

    ((name, args, options),) = sent
    assert name == NOTIFY_TASK
    assert options == {"queue": NOTIFICATIONS_QUEUE, "argsrepr": "", "kwargsrepr": ""}
    assert args[1] == f"sla-{number}-{int(T0.timestamp())}"
    (notification,) = sent.notifications()
    assert notification.type == "incident.sla_breach"
    assert notification.summary == "Not acknowledged within 5 min (SLA for SEV-1)"
    assert notification.incident.id == f"INC-{number}"
    assert notification.incident.url == f"https://incidents.example.com/incidents/INC-{number}"
    assert notification.channels is None


def test_no_breach_for_acknowledged_or_resolved_incidents(runtime: Runtime) -> None:
    acked = declare(runtime, Severity.SEV2)
    act(runtime, acked, Action.ACK, 10)
    resolved = declare(runtime, Severity.SEV2)
    act(runtime, resolved, Action.RESOLVE, 10)
    mitigated = declare(runtime, Severity.SEV2)
    act(runtime, mitigated, Action.MITIGATE, 10)
    closed = declare(runtime, Severity.SEV2)
    act(runtime, closed, Action.RESOLVE, 10)
    act(runtime, closed, Action.CLOSE, 11)
    sent = Sent()
    assert check_sla(runtime, sent, at(60)) == 0
    assert sent == []

    # An incident acknowledged late has breached before: announced only while unacknowledged.
    late = declare(runtime, Severity.SEV2, minutes=100)
    assert check_sla(runtime, sent, at(116)) == 1
    act(runtime, late, Action.ACK, 117)
    assert check_sla(runtime, sent, at(200)) == 0
    assert [n.incident.id for n in sent.notifications()] == [f"INC-{late}"]


def test_a_reopened_incident_breaches_again(runtime: Runtime) -> None:
    number = declare(runtime, Severity.SEV1)
    sent = Sent()
    assert check_sla(runtime, sent, at(6)) == 1
    act(runtime, number, Action.RESOLVE, 10)
    act(runtime, number, Action.REOPEN, 30)
    # Open again since minute 30: the old breach does not count, the new period has its SLA.
    assert check_sla(runtime, sent, at(34)) == 0
    assert check_sla(runtime, sent, at(36)) == 1
    assert check_sla(runtime, sent, at(40)) == 0
    assert [args[1] for _, args, _ in sent] == [
        f"sla-{number}-{int(T0.timestamp())}",
        f"sla-{number}-{int(at(30).timestamp())}",
    ]


def test_severities_without_an_sla_never_breach(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, ack_minutes={Severity.SEV1: 5})
    try:
        declare(runtime, Severity.SEV3)
        declare(runtime, Severity.SEV4)
        sev1 = declare(runtime, Severity.SEV1)
        sent = Sent()
        assert check_sla(runtime, sent, at(10_000)) == 1
        assert [n.incident.id for n in sent.notifications()] == [f"INC-{sev1}"]
    finally:
        runtime.store.close()

    nothing = make_runtime(tmp_path / "none", ack_minutes={})
    try:
        declare(nothing, Severity.SEV1)
        assert check_sla(nothing, Sent(), at(10_000)) == 0
    finally:
        nothing.store.close()


def test_a_breach_that_could_not_be_enqueued_is_tried_again(runtime: Runtime) -> None:
    declare(runtime, Severity.SEV1)

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        check_sla(runtime, broker_down, at(6))
    sent = Sent()
    assert check_sla(runtime, sent, at(7)) == 1


def test_the_celery_app_schedules_and_routes_the_check(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0", sla=SlaSettings(check_interval_seconds=12.5)
    )
    assert beat_schedule(settings) == {
        "chatops-sla-check": {
            "task": SLA_CHECK_TASK,
            "schedule": 12.5,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": 12.5},
        },
        "chatops-audit-drain": {
            "task": "chatops.audit_drain",
            "schedule": 5.0,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": 5.0},
        },
        "chatops-sent-sweep": {
            "task": "chatops.sent_sweep",
            "schedule": 60,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": 60},
        },
    }
    runtime = Runtime(settings)
    runtime.store.upgrade()
    try:
        app = make_celery(settings, runtime)
        assert app.conf.beat_schedule == beat_schedule(settings)
        assert app.conf.task_routes[SLA_CHECK_TASK] == {"queue": MAINTENANCE_QUEUE}
        task = app.tasks[SLA_CHECK_TASK]

        # The registered task checks now, publishing through the app.
        runtime.store.declare(
            title="Old",
            severity=Severity.SEV1,
            actor="alice",
            platform=None,
            instance=None,
            channel=None,
            at=datetime.now(UTC) - timedelta(hours=1),
        )
        sent = Sent()
        app.send_task = sent  # type: ignore[method-assign]
        assert task.run() == 1
        assert task.run() == 0
        assert [name for name, _, _ in sent] == [NOTIFY_TASK]
    finally:
        runtime.store.close()
