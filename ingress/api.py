"""The HTTP API under ``/api/v1``: notifications in, incidents out.

``POST /api/v1/notifications`` validates a :class:`~chatops_core.notifications.Notification`
and enqueues Celery task ``chatops.notify`` on the ``notifications`` queue; it never touches
the incident database. ``GET /api/v1/incidents`` and ``/api/v1/incidents/<id>`` read the
incident store and never write to it; so does ``GET /api/v1/audit`` (the audit trail, newest
first, ``?since=&actor=&outcome=&limit=``). Notifications taken in or refused, and calls
refused for their token, are left for the audit trail on a Redis stream (see
:mod:`chatops_core.audit`).

Every call carries ``Authorization: Bearer <token>``: a named token of ``[api.tokens.<name>]``
holding the scope the endpoint needs (:data:`ENDPOINT_SCOPES`), or the older ``api_token``,
which holds every scope (see :mod:`chatops_core.api_tokens`). With no token configured the API
is disabled: every call is 401. A missing or unknown token is 401, a known token without the
scope 403 naming the scope. Tokens are compared as hashes in constant time and never logged or
echoed; each call is logged (debug) with the token's name.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, g, request
from pydantic import ValidationError

from chatops_core.api_tokens import Caller, Scope, TokenTable, bearer_token
from chatops_core.audit import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ActorFilter,
    AuditEntry,
    AuditOutcome,
    AuditStream,
    forged_entry,
    parse_outcome,
    parse_since,
    record_json,
)
from chatops_core.commands.grammar import ID_FORMS, SEVERITY_FORMS, parse_incident_ref, parse_severity
from chatops_core.errors import ConfigError, ConnectionFailed, IncidentNotFound
from chatops_core.models import Incident, Severity, TimelineEntry
from chatops_core.notifications import (
    ACTOR_MAX_LENGTH,
    INSTANCE_RULE,
    NOTIFICATION_TYPES,
    SNAPSHOT_TITLE_MAX_LENGTH,
    SUMMARY_MAX_LENGTH,
    Notification,
    cut,
    enqueue_notification,
    valid_instance,
    valid_platform_id,
)
from chatops_core.publisher import BrokerUnavailable, TaskPublisher
from chatops_core.redaction import Redactor, redactor_for
from chatops_core.settings import Settings

if TYPE_CHECKING:
    # Imported where used: the database layer loads only when a read needs it.
    from chatops_core.store import IncidentStore

log = logging.getLogger("chatops.ingress.api")

API_PREFIX = "/api/v1"
LIST_DEFAULT_LIMIT = 50
LIST_MAX_LIMIT = 200
LIST_TIMELINE_ENTRIES = 20
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Printable ASCII (RFC 9110 field-value characters without obs-text), 1 to 255 of them.
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x20-\x7e]{1,255}")
_ECHO_MAX_LENGTH = 64  # how much of a bad value an error message quotes back


def _json(http_status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=http_status, headers=headers, content_type="application/json")


def _error(http_status: int, error: str, message: str, **extra: Any) -> Response:
    return _json(http_status, {"error": error, "message": message, **extra})


def _clip(value: object) -> str:
    text = str(value)
    return text if len(text) <= _ECHO_MAX_LENGTH else text[: _ECHO_MAX_LENGTH - 1] + "…"


# --- JSON of incidents ---------------------------------------------------------------------


def iso_utc(at: datetime | None) -> str | None:
    """``at`` as ISO 8601 in UTC with a ``Z`` suffix (None stays None)."""
    if at is None:
        return None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat().replace("+00:00", "Z")


def timeline_json(entry: TimelineEntry) -> dict[str, Any]:
    """One timeline entry as the API shows it."""
    return {
        "at": iso_utc(entry.at),
        "kind": entry.kind.value,
        "actor": entry.actor,
        "platform": entry.platform,
        "channel": entry.channel,
        "text": entry.text,
    }


def incident_json(
    incident: Incident, timeline: list[TimelineEntry], url: str | None = None
) -> dict[str, Any]:
    """An incident and the given timeline entries (oldest first) as the API shows them."""
    channel = None
    if incident.channel_id:
        channel = {"instance": incident.instance, "id": incident.channel_id, "name": incident.channel_name}
    return {
        "id": incident.id,
        "number": incident.number,
        "title": incident.title,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "commander": incident.commander,
        "description": incident.description,
        "resolution": incident.resolution,
        "declared_by": incident.declared_by,
        "platform": incident.platform,
        "channel": channel,
        "url": url,
        "created_at": iso_utc(incident.created_at),
        "updated_at": iso_utc(incident.updated_at),
        "acknowledged_at": iso_utc(incident.acknowledged_at),
        "mitigated_at": iso_utc(incident.mitigated_at),
        "resolved_at": iso_utc(incident.resolved_at),
        "closed_at": iso_utc(incident.closed_at),
        "version": incident.version,
        "timeline": [timeline_json(entry) for entry in timeline],
    }


# --- request checks ------------------------------------------------------------------------


def _unauthorized(message: str) -> Response:
    return _json(401, {"error": "unauthorized", "message": message}, headers={"WWW-Authenticate": "Bearer"})


ENDPOINT_SCOPES: dict[str, Scope] = {
    "notify": Scope.NOTIFY,
    "list_incidents": Scope.READ,
    "get_incident": Scope.READ,
}
"""The scope each view of the blueprint needs, by view name. Any other view needs ``admin``:
the audit trail (``GET /api/v1/audit``), which names people and what they were refused, and
any endpoint added later, which stays closed to narrower tokens until it is named here."""


def required_scope(endpoint: str | None) -> Scope:
    """The scope the view ``endpoint`` (``"api_v1.<view>"``) needs."""
    view = (endpoint or "").rpartition(".")[2]
    return ENDPOINT_SCOPES.get(view, Scope.ADMIN)


def _caller(tokens: TokenTable) -> Caller | Response:
    """The known token the request carries, else the 401 to answer."""
    if not tokens:
        return _unauthorized(
            "the API is disabled: configure a token in [api.tokens.<name>] (`chatops tokens new`), "
            "or set `api_token` in the [chatops] table or CHATOPS_API_TOKEN, to enable it"
        )
    presented = bearer_token(request.headers.get("Authorization"))
    if presented is None:
        return _unauthorized("send the API token as `Authorization: Bearer <token>`")
    caller = tokens.identify(presented)
    if caller is None:
        return _unauthorized("the bearer token is not valid")
    return caller


def _forbidden(needed: Scope) -> Response:
    return _error(
        403,
        "forbidden",
        f"this token lacks the `{needed.value}` scope that {request.method} {_clip(request.path)} needs",
        scope=needed.value,
    )


def _idempotency_key() -> tuple[str | None, Response | None]:
    """The request's ``Idempotency-Key`` (None without one), or the 400 to answer."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None, None
    if not _IDEMPOTENCY_KEY_RE.fullmatch(key):
        return None, _error(
            400,
            "invalid_idempotency_key",
            f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable ASCII characters",
        )
    return key, None


def _validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"loc": ".".join(str(part) for part in err["loc"]) or "body", "msg": err["msg"]}
        for err in exc.errors(include_url=False)
    ]


def _invalid(message: str, details: list[dict[str, str]]) -> Response:
    return _error(422, "invalid_notification", message, details=details)


def _caller_limits(data: dict[str, Any]) -> list[dict[str, str]]:
    """What the incident system may not send, beyond the model: names over the cap (the
    model cuts names it builds itself), commander references that are not ids, and the
    ``origin`` only the service sets (it marks incidents declared in chat)."""
    details: list[dict[str, str]] = []
    too_long = f"at most {ACTOR_MAX_LENGTH} characters"
    actor = data.get("actor")
    if isinstance(actor, str) and len(actor) > ACTOR_MAX_LENGTH:
        details.append({"loc": "actor", "msg": too_long})
    incident = data.get("incident")
    if not isinstance(incident, dict):
        return details
    if "origin" in incident:
        details.append(
            {
                "loc": "incident.origin",
                "msg": "set by the service only (incidents declared in chat); leave it out",
            }
        )
    commander = incident.get("commander")
    if isinstance(commander, str) and len(commander) > ACTOR_MAX_LENGTH:
        details.append({"loc": "incident.commander", "msg": too_long})
    user_id = incident.get("commander_user_id")
    if isinstance(user_id, str) and not valid_platform_id(user_id):
        details.append({"loc": "incident.commander_user_id", "msg": "must be a platform user id"})
    instance = incident.get("commander_instance")
    if isinstance(instance, str) and not valid_instance(instance):
        details.append({"loc": "incident.commander_instance", "msg": f"must be {INSTANCE_RULE}"})
    return details


def _parse_notification(data: Any, settings: Settings) -> Notification | Response:
    """The notification in ``data``, or the 422 that says what is wrong with it."""
    if not isinstance(data, dict):
        return _invalid(
            "the body must be a JSON object", [{"loc": "body", "msg": "Input should be a JSON object"}]
        )
    limits = _caller_limits(data)
    try:
        notification = Notification.model_validate(data)
        if limits:
            return _invalid(
                "invalid notification: " + "; ".join(f"{d['loc']}: {d['msg']}" for d in limits), limits
            )
    except ValidationError as exc:
        details = _validation_details(exc) + limits
        kind = data.get("type")
        if "type" in data and (not isinstance(kind, str) or kind not in NOTIFICATION_TYPES):
            message = (
                f"unknown notification type {_clip(kind)!r}; allowed types: {', '.join(NOTIFICATION_TYPES)}"
            )
        else:
            message = "invalid notification: " + "; ".join(f"{d['loc']}: {d['msg']}" for d in details)
        return _invalid(message, details)
    unknown = sorted(set(notification.channels or {}) - set(settings.providers))
    if unknown:
        configured = ", ".join(sorted(settings.providers)) or "none"
        names = ", ".join(repr(_clip(name)) for name in unknown)
        return _invalid(
            f"channels names instance(s) not configured: {names}; configured instances: {configured}",
            [{"loc": f"channels.{name}", "msg": "no provider instance of this name"} for name in unknown],
        )
    return notification


def _redacted(notification: Notification, redactor: Redactor) -> Notification:
    """``notification`` with the incident system's text (title, summary) redacted before it is
    enqueued: it is shown in chat, and kept on the broker and in dead letters. Cut to the
    limits the worker checks again, as a marker may be longer than the secret it replaces."""
    incident = notification.incident
    title = cut(redactor.redact(incident.title), SNAPSHOT_TITLE_MAX_LENGTH)
    summary = notification.summary
    if summary:
        summary = cut(redactor.redact(summary), SUMMARY_MAX_LENGTH)
    return notification.model_copy(
        update={"incident": incident.model_copy(update={"title": title}), "summary": summary}
    )


def _list_params() -> tuple[bool, Severity | None, int] | Response:
    """``(active_only, severity, limit)`` from the query string, or the 400 to answer."""
    status = request.args.get("status", "open").strip().lower()
    if status not in ("open", "all"):
        return _error(400, "bad_request", f"status must be `open` or `all`, not {_clip(status)!r}")
    severity = None
    raw_severity = request.args.get("severity")
    if raw_severity is not None:
        severity = parse_severity(raw_severity)
        if severity is None:
            return _error(
                400, "bad_request", f"{_clip(raw_severity)!r} is not a severity; write {SEVERITY_FORMS}"
            )
    raw_limit = request.args.get("limit", str(LIST_DEFAULT_LIMIT)).strip()
    # Length first: int() of thousands of digits is slow, and refused past 4300 of them.
    well_formed = len(raw_limit) <= 6 and raw_limit.isascii() and raw_limit.isdigit()
    if not well_formed or not 1 <= int(raw_limit) <= LIST_MAX_LIMIT:
        return _error(
            400,
            "bad_request",
            f"limit must be a whole number from 1 to {LIST_MAX_LIMIT}, not {_clip(raw_limit)!r}",
        )
    return status == "open", severity, int(raw_limit)


# --- the blueprint -------------------------------------------------------------------------


def build_api(
    settings: Settings,
    publisher: TaskPublisher,
    store: Callable[[], IncidentStore],
    *,
    audit_stream: AuditStream | None = None,
) -> Blueprint:
    """The ``/api/v1`` blueprint.

    ``store`` returns the incident store when a read needs it (built lazily by the caller,
    so the notification path never opens the database). ``audit_stream``: where notifications
    taken in or refused, and calls refused for their token, are left for the audit trail
    (none: not recorded).
    """
    api = Blueprint("api_v1", __name__, url_prefix=API_PREFIX)

    tokens = TokenTable.from_settings(settings.api, settings.api_token)

    @api.before_request
    def authenticate() -> Response | None:
        caller = _caller(tokens)
        if isinstance(caller, Response):
            log.warning("api: refused %s %s: unauthorized", request.method, request.path)
            return caller
        needed = required_scope(request.endpoint)
        if not caller.may(needed):
            log.warning(
                "api: refused %s %s to token %s: it lacks scope %s",
                request.method,
                request.path,
                caller.name,
                needed.value,
            )
            return _forbidden(needed)
        log.debug("api: %s %s by token %s", request.method, request.path, caller.name)
        g.api_caller = caller
        return None

    @api.after_request
    def audited(response: Response) -> Response:
        """Leave the audit record of a notification taken in or refused, and of any call
        refused for its token (401: ``forged``, 403: ``denied``), on the stream."""
        if audit_stream is not None:
            entry = _audit_entry(response, tokens)
            if entry is not None:
                audit_stream.add(entry)
        return response

    @api.post("/notifications")
    def notify() -> Response:
        key, refusal = _idempotency_key()
        if refusal is not None:
            return refusal
        if request.mimetype != "application/json":
            return _error(
                415, "unsupported_media_type", "send the notification as Content-Type: application/json"
            )
        try:
            data = json.loads(request.get_data(cache=False), parse_constant=_no_constants)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return _error(400, "bad_json", "the body is not valid JSON")
        parsed = _parse_notification(data, settings)
        if isinstance(parsed, Response):
            return parsed
        parsed = _redacted(parsed, redactor_for(settings.redaction))
        g.api_notification = parsed
        try:
            first_id, enqueued = enqueue_notification(
                publisher, parsed, idempotency_key=key, ttl=settings.dedupe_ttl_seconds
            )
        except BrokerUnavailable:
            log.exception("broker unavailable; notification %s not enqueued", parsed.type)
            return _error(503, "broker_unavailable", "the broker does not answer; try again shortly")
        return _json(202, {"id": first_id} if enqueued else {"id": first_id, "duplicate": True})

    @api.get("/incidents")
    def list_incidents() -> Response:
        params = _list_params()
        if isinstance(params, Response):
            return params
        active_only, severity, limit = params

        def read(incidents: IncidentStore) -> dict[str, Any]:
            found = incidents.list(active_only=active_only, severity=severity, limit=limit)
            return {
                "incidents": [
                    incident_json(
                        incident,
                        incidents.timeline(incident.number, limit=LIST_TIMELINE_ENTRIES),
                        settings.incident_link(incident.id),
                    )
                    for incident in found
                ]
            }

        return _read(read)

    @api.get("/incidents/<ref>")
    def get_incident(ref: str) -> Response:
        number = parse_incident_ref(ref)
        if number is None:
            return _error(400, "bad_request", f"{_clip(ref)!r} is not an incident id; write {ID_FORMS}")

        def read(incidents: IncidentStore) -> dict[str, Any]:
            incident = incidents.get(number)
            return incident_json(incident, incidents.timeline(number), settings.incident_link(incident.id))

        return _read(read)

    @api.get("/audit")
    def audit() -> Response:
        params = _audit_params()
        if isinstance(params, Response):
            return params
        since, actor, outcome, limit = params

        def read(records: IncidentStore) -> dict[str, Any]:
            found = records.audit_records(since=since, actor=actor, outcome=outcome, limit=limit)
            return {"records": [record_json(record) for record in found]}

        return _read(read)

    def _read(reader: Callable[[IncidentStore], dict[str, Any]]) -> Response:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return _json(200, reader(store()))
        except IncidentNotFound as exc:
            return _error(404, "not_found", exc.message)
        except (SQLAlchemyError, ConnectionFailed, ConfigError) as exc:
            log.error("api: incident database unavailable: %s", type(exc).__name__)
            return _error(
                503, "database_unavailable", "the incident database does not answer; try again shortly"
            )

    return api


def _audit_params() -> tuple[datetime | None, ActorFilter | None, AuditOutcome | None, int] | Response:
    """``(since, actor, outcome, limit)`` of ``GET /api/v1/audit``, or the 400 to answer."""
    try:
        raw_since = request.args.get("since")
        since = parse_since(raw_since) if raw_since is not None else None
        raw_actor = request.args.get("actor")
        actor = ActorFilter.parse(raw_actor) if raw_actor is not None else None
        raw_outcome = request.args.get("outcome")
        outcome = parse_outcome(raw_outcome) if raw_outcome is not None else None
    except ValueError as exc:
        return _error(400, "bad_request", str(exc))
    raw_limit = request.args.get("limit", str(DEFAULT_LIMIT)).strip()  # the audit trail's own
    well_formed = len(raw_limit) <= 6 and raw_limit.isascii() and raw_limit.isdigit()
    if not well_formed or not 1 <= int(raw_limit) <= MAX_LIMIT:
        return _error(
            400,
            "bad_request",
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {_clip(raw_limit)!r}",
        )
    return since, actor, outcome, int(raw_limit)


def _audit_entry(response: Response, tokens: TokenTable) -> AuditEntry | None:
    """The audit record of this call, if it is one to keep: a notification taken in (ok) or
    refused as wrong (invalid), a call refused for its token (forged: none or unknown; denied:
    without the scope). Reads are not recorded; neither is a call while the API is disabled."""
    what = f"{request.method} {request.path}"
    status = response.status_code
    if status == 401:
        if not tokens:
            return None
        return forged_entry(source="api", reason=_message(response), platform="api", command=what)
    caller: Caller | None = g.get("api_caller")
    actor = f"api token {caller.name}" if caller is not None else None
    if status == 403:
        return AuditEntry(
            outcome=AuditOutcome.DENIED,
            source="api",
            actor=actor,
            platform="api",
            command=what,
            reason=_message(response),
        )
    if request.endpoint != "api_v1.notify" or status == 503:
        return None
    notification: Notification | None = g.get("api_notification")
    if status == 202 and notification is not None:
        return AuditEntry(
            outcome=AuditOutcome.OK,
            source="api",
            actor=actor,
            platform="api",
            command=f"notify {notification.type}",
            incident=notification.incident.id,
        )
    if 400 <= status < 500:
        return AuditEntry(
            outcome=AuditOutcome.INVALID,
            source="api",
            actor=actor,
            platform="api",
            command="notify",
            reason=_message(response),
        )
    return None


def _message(response: Response) -> str | None:
    """The ``message`` of one of this API's JSON error answers."""
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message is not None else None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
