"""Each provider instance's health as the delivery path sees it, kept in Redis.

Every worker process records the outcome of its calls to a platform here, so that
``chatops status``, ``chatops check`` and the ingress's ``/metrics`` show one picture: when
the instance last succeeded, when it last failed and why, and how many calls in a row have
failed since the last success (the "provider instance" state). A run of failures that does
not end is what an operator acts on; a single failure among successes is weather.

Recording costs one Redis round trip (one pipelined ``MULTI``/``EXEC``), or none where the
commands go with others (:func:`outcome_record`: the delivery sends them with the release of
its lock, in the release's script), and never fails a delivery: a Redis error is logged and forgotten.

What is kept of an error is what an operator can act on and nothing secret: its code, its
kind (:class:`ErrorKind`), the scope the platform said is missing, why a connection failed
(DNS, refused, timeout, TLS), the operation and a message with every URL and anything that
looks like a token blanked out. The host of an unreachable URL is taken from the instance's
configuration when the error is explained (:func:`explain`), never from the error.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import redis
from pydantic import BaseModel

from chatops_core.delivery_metrics import RedisWrites
from chatops_core.errors import (
    AuthenticationFailed,
    ChatOpsError,
    ConfigError,
    ConnectionFailed,
    RateLimited,
    ServerError,
)

log = logging.getLogger("chatops.provider_health")

KEY_PREFIX = "chatops:provider:"
# Every instance that has recorded an outcome, so a reader finds instances no longer configured.
INSTANCES_KEY = "chatops:provider:instances"
MAX_MESSAGE = 300

# Error codes that say "the token may not do this": Slack's ``missing_scope`` (with the scope
# it needs in ``needed``), and the ``missing_permission`` of Mattermost and Discord.
SCOPE_CODES = frozenset({"missing_scope", "missing_permission", "not_allowed_token_type", "no_permission"})


class ErrorKind(StrEnum):
    BAD_TOKEN = "bad_token"
    MISSING_SCOPE = "missing_scope"
    UNREACHABLE = "unreachable"
    RATE_LIMITED = "rate_limited"
    PLATFORM_DOWN = "platform_down"
    BAD_URL = "bad_url"
    REFUSED = "refused"


class RecordedError(BaseModel):
    """What is kept of a provider's last error (nothing secret)."""

    code: str
    kind: ErrorKind
    message: str
    operation: str | None = None
    scope: str | None = None  # the scope or permission the platform said is missing
    reason: str | None = None  # why a connection failed: dns | refused | timeout | tls | connection
    retry_after: float | None = None


class ProviderHealth(BaseModel):
    """The "provider instance" state: its last success, last error and the failures since."""

    instance: str
    last_success: datetime | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: RecordedError | None = None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0


# --- recording -----------------------------------------------------------------------


def record_outcome(client: redis.Redis | None, instance: str, error: BaseException | None) -> None:
    """Record the outcome of one call to ``instance``'s platform: ``error`` None for a success.

    What the delivery path records after each provider call, in a round trip of its own where
    it holds no lock to send it with (:func:`outcome_record`). One round trip; a
    Redis error (or anything else going wrong here) is logged at debug level and swallowed,
    so recording never fails a delivery. ``client`` None (a broker other than Redis): nothing.
    """
    if client is None:
        return
    try:
        record = outcome_record(instance, error)
        pipe = client.pipeline(transaction=True)
        record(pipe)
        pipe.execute()
    except Exception as exc:  # never fail a delivery for its bookkeeping
        log.debug("could not record the health of provider %s: %s", instance, type(exc).__name__)


def outcome_record(instance: str, error: BaseException | None) -> Callable[[RedisWrites], None]:
    """The commands that record one call's outcome, for a pipeline that sends them with others
    (the delivery sends them with the release of its lock, in one script: no round trip of
    their own). What is kept of ``error`` is worked out now, the time taken now."""
    key = KEY_PREFIX + instance
    now = repr(time.time())
    if error is None:
        fields: dict[str, Any] = {"last_success": now, "failures": 0}
    else:
        fields = {"last_error_at": now, "error": describe_error(error).model_dump_json()}

    def queue(pipe: RedisWrites) -> None:
        pipe.sadd(INSTANCES_KEY, instance)
        pipe.hset(key, mapping=fields)
        if error is not None:
            pipe.hincrby(key, "failures", 1)

    return queue


def read_health(client: redis.Redis, instances: Iterable[str] = ()) -> dict[str, ProviderHealth]:
    """The recorded health of ``instances`` and of every instance that recorded any, by name.

    Two round trips (the instances, then their records). Raises :class:`redis.RedisError`.
    """
    names = sorted(set(instances) | {_text(n) for n in client.smembers(INSTANCES_KEY)})
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(KEY_PREFIX + name)
    out: dict[str, ProviderHealth] = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        out[name] = _health(name, {_text(k): _text(v) for k, v in raw.items()})
    return out


def _health(instance: str, fields: Mapping[str, str]) -> ProviderHealth:
    error = None
    if fields.get("error"):
        try:
            error = RecordedError.model_validate_json(fields["error"])
        except ValueError:
            error = None
    return ProviderHealth(
        instance=instance,
        last_success=_when(fields.get("last_success")),
        last_error_at=_when(fields.get("last_error_at")),
        consecutive_failures=int(fields.get("failures") or 0),
        last_error=error,
    )


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError):
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# --- what an error means ---------------------------------------------------------------

_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
# Slack tokens, an Authorization value, and any long unbroken run of token-like characters
# (bot tokens, webhook keys, signatures), whichever platform echoed it back.
_TOKEN_RES = (
    re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"),
    re.compile(r"(?i)\b(bearer|token|bot|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"[A-Za-z0-9_\-+/=.]{32,}"),
)


def redact(text: str) -> str:
    """``text`` with every URL and anything that looks like a token blanked out, shortened."""
    text = _URL_RE.sub("[url]", text)
    for pattern in _TOKEN_RES:
        text = pattern.sub("[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def describe_error(error: BaseException) -> RecordedError:
    """What is kept of ``error``: its kind, code and a redacted message."""
    if not isinstance(error, ChatOpsError):
        return RecordedError(code="unexpected", kind=ErrorKind.REFUSED, message=type(error).__name__)
    details = error.details
    platform_code = _platform_code(details)
    operation = details.get("method") or details.get("operation")
    base = RecordedError(
        code=error.code,
        kind=ErrorKind.REFUSED,
        message=redact(error.message),
        operation=str(operation) if operation else None,
    )
    if isinstance(error, RateLimited):
        return base.model_copy(update={"kind": ErrorKind.RATE_LIMITED, "retry_after": error.retry_after})
    if isinstance(error, AuthenticationFailed):
        return base.model_copy(update={"kind": ErrorKind.BAD_TOKEN})
    if error.code in SCOPE_CODES or platform_code in SCOPE_CODES:
        return base.model_copy(update={"kind": ErrorKind.MISSING_SCOPE, "scope": _needed_scope(error)})
    if isinstance(error, ConnectionFailed):
        return base.model_copy(update={"kind": ErrorKind.UNREACHABLE, "reason": connection_reason(error)})
    if isinstance(error, ServerError):
        return base.model_copy(update={"kind": ErrorKind.PLATFORM_DOWN})
    if isinstance(error, ConfigError):
        return base.model_copy(update={"kind": ErrorKind.BAD_URL})
    return base


def _platform_code(details: Mapping[str, object]) -> str | None:
    for key in ("slack_error", "mattermost_error", "discord_error", "error"):
        value = details.get(key)
        if isinstance(value, str):
            return value
    return None


_SCOPE_RE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}(,[a-z][a-z0-9_.:-]{0,63})*$")


def _needed_scope(error: ChatOpsError) -> str | None:
    """The scope the platform said is missing, where it says: ``details["needed"]``, else the
    ``needed`` field of the platform's answer that caused the error (Slack's ``missing_scope``
    answer carries it)."""
    candidates: list[object] = [error.details.get("needed")]
    for cause in _chain(error):
        data = getattr(getattr(cause, "response", None), "data", None)
        if isinstance(data, Mapping):
            candidates.append(data.get("needed"))
    for value in candidates:
        if isinstance(value, str) and _SCOPE_RE.match(value):
            return value
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """``error``'s causes, nearest first (a URLError's ``reason`` counts as one)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and reason not in seen:
            seen.append(reason)
        current = current.__cause__ or current.__context__
    return seen


def connection_reason(error: BaseException) -> str:
    """Why a connection failed, as far as the exceptions under ``error`` tell:
    ``dns`` (the name does not resolve), ``refused``, ``timeout``, ``tls`` or ``connection``."""
    texts: list[str] = []
    for cause in _chain(error):
        if isinstance(cause, socket.gaierror):
            return "dns"
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        if isinstance(cause, ssl.SSLError):
            return "tls"
        if isinstance(cause, TimeoutError | socket.timeout) or "Timeout" in type(cause).__name__:
            return "timeout"
        texts.append(str(cause).lower())
    joined = " ".join(texts)
    if "name or service not known" in joined or "nodename nor servname" in joined or "getaddrinfo" in joined:
        return "dns"
    if "temporary failure in name resolution" in joined or "no address associated" in joined:
        return "dns"
    if "connection refused" in joined:
        return "refused"
    if "timed out" in joined or "timeout" in joined:
        return "timeout"
    if "certificate" in joined or "ssl" in joined:
        return "tls"
    return "connection"


# --- in an operator's words -------------------------------------------------------------

_REASONS = {
    "dns": "its name does not resolve (DNS)",
    "refused": "the connection was refused",
    "timeout": "the connection timed out",
    "tls": "the TLS handshake failed (certificate or proxy)",
    "connection": "the connection failed",
}


def endpoint_host(provider_settings: object) -> str | None:
    """The host (and port) of the platform URL an instance's settings name (``api_url`` or
    ``url``), never more of the URL: a path or query may be a secret (a Teams webhook URL)."""
    for name in ("api_url", "url", "base_url", "service_url"):
        value = getattr(provider_settings, name, None)
        if isinstance(value, str) and value:
            parts = urlsplit(value)
            if parts.hostname:
                return parts.hostname + (f":{parts.port}" if parts.port else "")
    return None


def explain(error: RecordedError, *, platform: str, host: str | None = None) -> str:
    """``error`` in words an operator can act on: what is wrong and what to do."""
    said = _said(error)
    if error.kind is ErrorKind.BAD_TOKEN:
        return (
            f"bad token: {platform} refused the bot token{said}; put a valid bot token in this "
            "instance's configuration (it may have been revoked, or the app reinstalled)"
        )
    if error.kind is ErrorKind.MISSING_SCOPE:
        if error.scope:
            return (
                f"missing scope {error.scope}: the bot token may not do this{said}; add the scope "
                f"{error.scope} to the app, reinstall it, and put the new token in the configuration"
            )
        return (
            f"missing permission: {platform} refused the call for lack of a permission{said}; "
            "grant the bot the permission (or add it to the channel) and try again"
        )
    if error.kind is ErrorKind.UNREACHABLE:
        where = host or f"{platform}'s API"
        why = _REASONS.get(error.reason or "connection", _REASONS["connection"])
        return (
            f"unreachable URL: cannot reach {where}: {why}; check the instance's URL, DNS, "
            "firewall and proxy from this host"
        )
    if error.kind is ErrorKind.RATE_LIMITED:
        wait = f" (retry after {error.retry_after:g}s)" if error.retry_after is not None else ""
        return (
            f"rate limited: {platform} asked to slow down{wait}; deliveries wait and retry by "
            "themselves; if it lasts, fewer channels per severity or fewer notifications help"
        )
    if error.kind is ErrorKind.PLATFORM_DOWN:
        return f"{platform} failed on its side{said}; this usually passes: check {platform}'s status page"
    if error.kind is ErrorKind.BAD_URL:
        return f"bad URL: the instance's URL cannot be used{said}; check it in the configuration"
    return f"refused: {error.message}"


def _said(error: RecordedError) -> str:
    """`` (chat.postMessage: invalid_auth)``: where and what the platform said, if known."""
    match = re.search(r"\(([a-z0-9_.:]+|HTTP \d{3})\)\s*$", error.message)
    code = match.group(1) if match else error.code
    return f" ({error.operation}: {code})" if error.operation else f" ({code})"


def platform_name(provider_type: str) -> str:
    return {"slack": "Slack", "mattermost": "Mattermost", "discord": "Discord", "teams": "Teams"}.get(
        provider_type, provider_type
    )


__all__ = [
    "ErrorKind",
    "ProviderHealth",
    "RecordedError",
    "describe_error",
    "endpoint_host",
    "explain",
    "outcome_record",
    "read_health",
    "record_outcome",
    "redact",
]
