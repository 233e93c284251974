"""The Flask ingress: verify, de-duplicate, enqueue, answer.

It never calls a chat platform's API and never queries the incident database on the
webhook path, so its answer time does not depend on anything slow.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from chatops_core.delivery_metrics import DeliveryCollector, DeliveryCounter
from chatops_core.errors import InvalidWebhook
from chatops_core.models import dump
from chatops_core.providers import Inbound, InboundKind, Provider, WebhookRequest, build_providers
from chatops_core.publisher import BrokerUnavailable, TaskPublisher, is_redis_url
from chatops_core.settings import Settings, load_settings
from chatops_core.tasks import COMMAND_TASK, INTERACTIVE_QUEUE
from ingress.api import build_api
from ingress.metrics import IngressMetrics

if TYPE_CHECKING:
    from chatops_core.store import IncidentStore

log = logging.getLogger("chatops.ingress")


def _json(http_status: int, /, **body: Any) -> Response:
    return Response(json.dumps(body), status=http_status, content_type="application/json")


def create_app(
    settings: Settings | None = None,
    *,
    publisher: TaskPublisher | None = None,
    providers: dict[str, Provider] | None = None,
    store: IncidentStore | None = None,
) -> Flask:
    """Build the ingress application from one settings object.

    ``publisher``, ``providers`` and ``store`` replace the ones built from ``settings``
    (tests). Without ``store``, the incident store is built on first use (``/readyz`` and
    the ``/api/v1/incidents`` reads) and shared by them; the webhook path never opens it.
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

    app.register_blueprint(build_api(settings, publisher, incident_store))

    @app.post("/webhooks/<instance>")
    def webhook(instance: str) -> Response:
        started = time.perf_counter()
        provider = providers.get(instance)
        if provider is None:
            metrics.observe("unknown", "not_found", time.perf_counter() - started)
            return _json(404, error="unknown_instance", message=f"no provider instance named {instance!r}")
        status, response, outcome = _handle(provider)
        metrics.observe(instance, outcome, time.perf_counter() - started)
        return response if response is not None else _json(status, error=outcome)

    def _handle(provider: Provider) -> tuple[int, Response | None, str]:
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
            return exc.http_status, _json(exc.http_status, error=outcome, message=exc.message), outcome
        except (ValueError, TypeError, LookupError, AttributeError, RecursionError) as exc:
            return _unreadable(provider, exc)
        try:
            outcome = _dispatch(inbound)
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

    def _dispatch(inbound: Inbound) -> str:
        if inbound.kind is InboundKind.COMMAND and inbound.command is not None:
            task_id = publisher.send(
                COMMAND_TASK,
                [dump(inbound.command)],
                queue=INTERACTIVE_QUEUE,
                dedupe_key=inbound.dedupe_key,
            )
            return "enqueued" if task_id else "duplicate"
        return inbound.kind.value

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
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 400
        return _json(
            code, error=(exc.name or "error").lower().replace(" ", "_"), message=exc.description or ""
        )

    return app
