"""The Flask ingress: verify, de-duplicate, enqueue, answer.

It never calls a chat platform's API and never queries the incident database on the
webhook path, so its answer time does not depend on anything slow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from chatops_core.answers import AnswerExchange
from chatops_core.api_tokens import bearer_token, matches_hash
from chatops_core.audit import AuditEntry, AuditOutcome, AuditStream, command_word, forged_entry
from chatops_core.delivery_metrics import DeliveryCollector, DeliveryCounter
from chatops_core.errors import InvalidWebhook
from chatops_core.models import InboundCommand, dump
from chatops_core.operations import OperationsCollector
from chatops_core.providers import Capability, Inbound, InboundKind, Provider, WebhookRequest, build_providers
from chatops_core.publisher import Admission, BrokerUnavailable, Rate, TaskPublisher, is_redis_url
from chatops_core.settings import Settings, load_settings
from chatops_core.stack import INGRESS_THREADS
from chatops_core.tasks import COMMAND_TASK, INTERACTIVE_QUEUE, REFUSED_TASK
from ingress.api import build_api
from ingress.metrics import IngressMetrics

if TYPE_CHECKING:
    from chatops_core.store import IncidentStore

log = logging.getLogger("chatops.ingress")

# How long a request's body is remembered to refuse its replay: past every platform's window
# for a signed request (Slack's and Discord's 5 minutes, with clock skew).
REPLAY_WINDOW_SECONDS = 600


def _json(http_status: int, /, **body: Any) -> Response:
    return Response(json.dumps(body), status=http_status, content_type="application/json")


def create_app(
    settings: Settings | None = None,
    *,
    publisher: TaskPublisher | None = None,
    providers: dict[str, Provider] | None = None,
    store: IncidentStore | None = None,
    answers: AnswerExchange | None = None,
    answer_waiters: int = INGRESS_THREADS // 2,
) -> Flask:
    """Build the ingress application from one settings object.

    ``publisher``, ``providers`` and ``store`` replace the ones built from ``settings``
    (tests). Without ``store``, the incident store is built on first use (``/readyz`` and
    the ``/api/v1/incidents`` reads) and shared by them; the webhook path never opens it.

    ``answers``: where workers hand over answers that travel in the webhook's own response
    (by default on the broker's Redis; none on another broker, and such commands are then
    answered at once that their result will follow). At most ``answer_waiters`` requests
    wait for one at a time in this process (half its threads), so a flood of them never
    holds up other platforms' webhooks; one more is answered at once the same way.
    """
    settings = settings or load_settings()
    app = Flask("chatops.ingress")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    providers = (
        providers
        if providers is not None
        else build_providers(settings.providers, webhook_url=settings.public_webhook_url)
    )
    publisher = publisher or TaskPublisher(
        settings.effective_broker_url(), dedupe_ttl=settings.dedupe_ttl_seconds
    )
    metrics = IngressMetrics()
    broker_url = settings.broker_url or ""
    if is_redis_url(broker_url):
        # Delivery outcomes are counted in Redis by every worker; the ingress shows the sum.
        # Bounded and not retried, so a scrape answers promptly while Redis is away.
        counts = redis.Redis.from_url(
            broker_url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        metrics.registry.register(DeliveryCollector(DeliveryCounter(counts)))
        # Queues, workers, dead letters and each provider instance's health, on each scrape.
        metrics.registry.register(OperationsCollector(settings, counts, store=lambda: incident_store()))
    if answers is None and is_redis_url(broker_url):
        answers = AnswerExchange(broker_url)
    # What the ingress refuses (and what the API takes in) joins the audit trail through a
    # capped stream on the broker's Redis, drained into the store by a maintenance task: the
    # request path never touches the database. Without a Redis broker it is only logged.
    audit = AuditStream.from_url(broker_url) if is_redis_url(broker_url) else None
    waiting = threading.BoundedSemaphore(max(answer_waiters, 1))
    limits = settings.access.rate_limit
    person_rate = Rate(limits.commands_per_minute, limits.burst)
    instance_rate = Rate(limits.instance_commands_per_minute, limits.instance_burst)
    database: dict[str, IncidentStore] = {} if store is None else {"store": store}
    database_lock = threading.Lock()

    def incident_store() -> IncidentStore:
        held = database.get("store")
        if held is None:
            with database_lock:
                held = database.get("store")
                if held is None:
                    from chatops_core.store import IncidentStore

                    held = database["store"] = IncidentStore.from_settings(settings)
        return held

    app.register_blueprint(build_api(settings, publisher, incident_store, audit_stream=audit))

    @app.post("/webhooks/<instance>")
    def webhook(instance: str) -> Response:
        started = time.perf_counter()
        provider = providers.get(instance)
        if provider is None:
            metrics.observe("unknown", "not_found", time.perf_counter() - started)
            return _json(404, error="unknown_instance", message=f"no provider instance named {instance!r}")
        status, response, outcome = _handle(provider, started)
        metrics.observe(instance, outcome, time.perf_counter() - started)
        return response if response is not None else _json(status, error=outcome)

    def _handle(provider: Provider, started: float) -> tuple[int, Response | None, str]:
        length = request.content_length
        if length is not None and length > settings.max_body_bytes:
            return 413, None, "too_large"
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return 413, None, "too_large"
        # Werkzeug's headers are case-insensitive already: no copy on the request path.
        webhook_request = WebhookRequest(
            body=body, headers=request.headers, content_type=request.mimetype or ""
        )
        try:
            provider.verify(webhook_request)
            inbound = provider.parse(webhook_request)
        except InvalidWebhook as exc:
            outcome = "unauthorized" if exc.http_status == 401 else "invalid"
            if exc.http_status == 401:
                _record_forged(provider, webhook_request, exc)
            return exc.http_status, _json(exc.http_status, error=outcome, message=exc.message), outcome
        except (ValueError, TypeError, LookupError, AttributeError, RecursionError) as exc:
            return _unreadable(provider, exc)
        try:
            outcome, refusal = _dispatch(provider, inbound, body)
            if refusal is not None:
                return (
                    refusal.status,
                    Response(refusal.body, refusal.status, content_type=refusal.content_type),
                    outcome,
                )
            if outcome == "enqueued":
                answered = _answer_in_response(provider, inbound, started)
                if answered is not None:
                    return 200, Response(answered[0], 200, content_type=answered[1]), "answered"
        except BrokerUnavailable:
            log.exception("broker unavailable; webhook for %s not enqueued", provider.name)
            return 503, _json(503, error="broker_unavailable", message="try again shortly"), "broker_down"
        except (ValueError, RecursionError) as exc:  # a command too deeply nested to serialise
            return _unreadable(provider, exc)
        return (
            inbound.status,
            Response(inbound.body, inbound.status, content_type=inbound.content_type),
            outcome,
        )

    def _answer_in_response(provider: Provider, inbound: Inbound, started: float) -> tuple[bytes, str] | None:
        """The worker's answer to a command whose answer travels in this response, or None:
        not such a command, or the answer did not come in time (``inbound.body`` then says
        that the result will follow, and the worker posts it the platform's other way)."""
        command = inbound.command
        if (
            command is None
            or command.answer_key is None
            or answers is None
            or not provider.supports(Capability.ANSWER_IN_RESPONSE)
        ):
            return None
        if not waiting.acquire(blocking=False):
            log.warning("%s: every answer-waiting thread is busy; the result will follow", provider.name)
            return answers.give_up(command.answer_key)
        try:
            remaining = inbound.answer_wait - (time.perf_counter() - started)
            return answers.await_answer(command.answer_key, remaining)
        finally:
            waiting.release()

    def _record_forged(provider: Provider, webhook_request: WebhookRequest, exc: InvalidWebhook) -> None:
        """Leave a ``forged`` record: the instance, and the user, channel and command word the
        request claims when its provider can read them (read as any untrusted input, acted on
        never); not the body, its headers or its credentials."""
        if audit is None:
            log.warning("%s: forged request refused: %s", provider.name, exc.message)
            return
        claimed: InboundCommand | None = None
        try:
            claimed = provider.parse(webhook_request).command
        except Exception:  # noqa: BLE001 - a body that cannot be read claims nobody
            claimed = None
        audit.add(
            forged_entry(
                source="webhook",
                reason=f"HTTP {exc.http_status}: {exc.message}",
                instance=provider.name,
                platform=provider.type,
                command=command_word(claimed.text) if claimed else None,
                claimed_user=claimed.user.user_id if claimed else None,
                claimed_channel=(claimed.channel_name or claimed.channel_id) if claimed else None,
            )
        )

    def _unreadable(provider: Provider, exc: Exception) -> tuple[int, Response, str]:
        # The safety net under the providers' own checks: a body a provider cannot read is
        # answered 400, never a 500. Nesting past any parser's depth is the sender's doing: one
        # line per refusal (junk must not flood the log). Any other exception means a provider
        # met a request it does not know, or a fault of ours: logged as an error with its
        # traceback, so it is seen and fixed rather than passed off as bad input.
        if isinstance(exc, RecursionError):
            log.warning("unreadable webhook for %s refused with 400: nested too deep", provider.name)
        else:
            log.error(
                "webhook for %s refused with 400: its provider could not read it", provider.name, exc_info=exc
            )
        message = f"the {provider.type} request body cannot be read"
        return 400, _json(400, error="invalid", message=message), "invalid"

    def _dispatch(provider: Provider, inbound: Inbound, body: bytes) -> tuple[str, Inbound | None]:
        """Admit a command (once, within its sender's rate) and enqueue it: the outcome, and
        the answer to give instead of the provider's own when the sender is over their rate."""
        command = inbound.command
        if inbound.kind is not InboundKind.COMMAND or command is None:
            return inbound.kind.value, None
        admission = publisher.admit(
            COMMAND_TASK,
            [dump(command)],
            queue=INTERACTIVE_QUEUE,
            sender=(command.instance, command.user.user_id),
            dedupe_key=inbound.dedupe_key,
            # The same signed request again (a replay, or a platform's retry) acts once: every
            # platform's requests carry a unique id or timestamp, so equal bodies are one request.
            replay_key=f"{provider.name}:{hashlib.sha256(body).hexdigest()}",
            replay_ttl=REPLAY_WINDOW_SECONDS,
            person_rate=person_rate,
            instance_rate=instance_rate,
        )
        if admission.outcome != "limited":
            return admission.outcome, None
        return "rate_limited", _slow_down(provider, inbound, command, admission)

    def _slow_down(
        provider: Provider, inbound: Inbound, command: InboundCommand, admission: Admission
    ) -> Inbound:
        """Tell the person to slow down: in this response where the platform shows it to them
        alone, else (once per wait) through a worker; nothing of the command runs."""
        wait = max(1, math.ceil(admission.retry_after))
        if admission.limited_by == "person":
            text = (
                f"Slow down: you can run {limits.commands_per_minute} commands a minute "
                f"(bursts of {limits.burst}). Try again in {wait} s."
            )
        else:
            text = f"Too many commands here right now. Try again in {wait} s."
        log.info(
            "%s: command from %s refused: over the %s rate",
            provider.name,
            command.user.user_id,
            admission.limited_by,
        )
        if audit is not None:
            audit.add(
                AuditEntry(
                    outcome=AuditOutcome.RATE_LIMITED,
                    source=command.source,
                    command=command_word(command.text),
                    actor=command.user.display,
                    instance=command.instance,
                    user_id=command.user.user_id,
                    platform=command.platform,
                    channel=command.channel_name or command.channel_id,
                    reason=f"over the {admission.limited_by} rate",
                )
            )
        answer = provider.refusal_response(command, text)
        if answer is not None:
            return answer
        if admission.tell:
            publisher.send(REFUSED_TASK, [dump(command), text], queue=INTERACTIVE_QUEUE)
        return inbound

    @app.get("/healthz")
    def healthz() -> Response:
        return _json(200, status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        checks: dict[str, str] = {}
        try:
            publisher.ping()
            checks["broker"] = "ok"
        except BrokerUnavailable:
            checks["broker"] = "unavailable"
        try:
            incident_store().check_writable()
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            log.warning("database not ready: %s", type(exc).__name__)
            checks["database"] = "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return _json(200 if ready else 503, status="ready" if ready else "not_ready", checks=checks)

    @app.get("/metrics")
    def prometheus() -> Response:
        # Behind its own token when [api] metrics_token_hash is set; open otherwise, as before.
        token_hash = settings.api.metrics_token_hash
        if token_hash and not matches_hash(bearer_token(request.headers.get("Authorization")), token_hash):
            refused = _json(
                401, error="unauthorized", message="send the metrics token as `Authorization: Bearer <token>`"
            )
            refused.headers["WWW-Authenticate"] = "Bearer"
            return refused
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 400
        return _json(
            code, error=(exc.name or "error").lower().replace(" ", "_"), message=exc.description or ""
        )

    return app
