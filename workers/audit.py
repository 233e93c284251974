"""The worker's part of the audit trail: one record per command it carries out or refuses.

Each record is keyed by the command (see :func:`chatops_core.audit.command_entry`), and is
appended before the command's ``done`` step is marked: a task that stops in between runs
again and appends nothing twice.
"""

from __future__ import annotations

from chatops_core.access import NotAllowed
from chatops_core.audit import AuditOutcome, command_entry
from chatops_core.commands.grammar import parse_incident_ref
from chatops_core.commands.service import authorize
from chatops_core.errors import CommandError, IncidentNotFound
from chatops_core.models import InboundCommand, Incident
from workers.runtime import Runtime


def record(
    runtime: Runtime,
    inbound: InboundCommand,
    outcome: AuditOutcome,
    *,
    command: str | None,
    incident: int | str | None = None,
    reason: str | None = None,
) -> None:
    """Append the record of ``inbound`` (once, however often this runs)."""
    if isinstance(incident, str):
        incident = parse_incident_ref(incident) or incident
    runtime.store.append_audit(
        command_entry(inbound, outcome, command=command, incident=incident, reason=reason)
    )


def outcome_of(exc: CommandError) -> AuditOutcome:
    """How a refused command ended: by the policy, by the rate limit, or wrong input."""
    if isinstance(exc, NotAllowed):
        return AuditOutcome.DENIED
    if exc.code == AuditOutcome.RATE_LIMITED.value:
        return AuditOutcome.RATE_LIMITED
    return AuditOutcome.INVALID


def form_refusal(runtime: Runtime, inbound: InboundCommand, form: str, incident_id: str | None) -> str | None:
    """The policy's refusal of ``form`` (``declare``, ``resolve``) for this person, recorded,
    or None when they may run the command the form stands for (the form then opens). Checked
    before the form opens, so nobody fills in a form only to be refused on submitting it."""
    number = parse_incident_ref(incident_id) if incident_id else None
    incident: Incident | None = None
    if number is not None:
        try:
            incident = runtime.store.get(number)
        except IncidentNotFound:
            incident = None  # the form says so on submitting; the policy needs no incident here
    try:
        authorize(runtime.store, inbound, form, incident)
    except NotAllowed as exc:
        record(runtime, inbound, AuditOutcome.DENIED, command=form, incident=number, reason=exc.message)
        return exc.message
    return None
