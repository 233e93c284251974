"""Map Slack failures onto :mod:`chatops_core.errors`, in one place.

Slack reports failures two ways: the HTTP status (429 with ``Retry-After``, 5xx) and the
``error`` field of an ``{"ok": false}`` body, which may come with HTTP 200 (for example
``message_limit_exceeded``). Both are classified here.

- Rate limits: https://docs.slack.dev/apis/web-api/rate-limits
- Web API errors: https://docs.slack.dev/apis/web-api/#responses
- ``response_url`` / incoming webhook errors:
  https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks/
- ``views.open`` trigger errors: https://docs.slack.dev/reference/methods/views.open

Messages name the method and Slack's error code, never a token or a request body.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.error import HTTPError, URLError

from slack_sdk.errors import SlackApiError

from chatops_core.errors import (
    AuthenticationFailed,
    ChannelNotFound,
    ChatOpsError,
    ConnectionFailed,
    MessageNotFound,
    ProviderError,
    RateLimited,
    ServerError,
    TriggerExpired,
    UserNotFound,
)

RATE_LIMIT_CODES = frozenset({"ratelimited", "rate_limited", "message_limit_exceeded"})
CHANNEL_CODES = frozenset({"channel_not_found", "is_archived"})
USER_CODES = frozenset({"user_not_found", "users_not_found"})
MESSAGE_CODES = frozenset({"message_not_found"})
# A trigger_id lives 3 s and opens one view: a stale, used or malformed one cannot open a form.
# Slack documents "exchanged_trigger_id"; "trigger_exchanged" is accepted as well.
TRIGGER_CODES = frozenset(
    {"expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id", "trigger_exchanged"}
)
AUTH_CODES = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})
# Slack documents these as transient failures on its side ("likely due to a transient
# issue"), so they are retried like a 5xx even when they arrive with HTTP 200.
SERVER_CODES = frozenset({"internal_error", "service_unavailable", "request_timeout"})

DEFAULT_RETRY_AFTER = 1.0
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def retry_after_seconds(headers: Mapping[str, Any] | None, default: float = DEFAULT_RETRY_AFTER) -> float:
    """The ``Retry-After`` header in seconds (case-insensitive), or ``default``."""
    if not headers:
        return default
    for key, value in headers.items():
        if str(key).lower() != "retry-after":
            continue
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        try:
            seconds = float(str(value).strip())
        except (TypeError, ValueError):
            return default
        return seconds if seconds >= 0 else default
    return default


def error_code(exc: BaseException) -> str | None:
    """Slack's ``error`` code carried by a :class:`SlackApiError`, if any."""
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        if isinstance(data, Mapping):
            code = data.get("error")
            return code if isinstance(code, str) else None
    return None


def code_from_body(body: str | bytes | None) -> str | None:
    """The error code in a ``response_url`` answer: a bare word (``expired_url``) or JSON."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text or text == "ok":
        return None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        code = data.get("error") if isinstance(data, dict) else None
        return code if isinstance(code, str) else None
    return text if _CODE_RE.match(text) else None


def map_slack_response(
    status: int,
    headers: Mapping[str, Any] | None = None,
    code: str | None = None,
    *,
    method: str = "api",
) -> ChatOpsError:
    """Classify a failed Slack answer by HTTP ``status`` and its ``error`` ``code``."""
    details: dict[str, object] = {"method": method, "status": status}
    if code:
        details["slack_error"] = code
    where = f"Slack {method}"
    if status == 429 or code in RATE_LIMIT_CODES:
        retry_after = retry_after_seconds(headers)
        return RateLimited(
            f"{where} rate limited ({code or 'HTTP 429'}), retry after {retry_after:g}s",
            retry_after=retry_after,
            **details,
        )
    if status >= 500 or code in SERVER_CODES:
        return ServerError(f"{where} failed on Slack's side ({code or f'HTTP {status}'})", **details)
    if code in CHANNEL_CODES:
        return ChannelNotFound(f"{where}: channel not found ({code})", **details)
    if code in USER_CODES:
        return UserNotFound(f"{where}: user not found ({code})", **details)
    if code in MESSAGE_CODES:
        return MessageNotFound(f"{where}: message not found ({code})", **details)
    if code in TRIGGER_CODES:
        return TriggerExpired(f"{where}: the form's trigger cannot be used ({code})", **details)
    if code in AUTH_CODES or (status == 401 and not code):
        return AuthenticationFailed(f"{where}: authentication failed ({code or 'HTTP 401'})", **details)
    return ProviderError(f"{where} failed: {code or f'HTTP {status}'}", **details)


def map_slack_error(exc: BaseException, *, method: str = "api") -> ChatOpsError:
    """Turn anything the Slack SDK (or the network under it) raised into a ``ChatOpsError``.

    ``method`` names the Web API method (or ``response_url``) for the message.
    """
    if isinstance(exc, ChatOpsError):
        return exc
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = int(getattr(response, "status_code", 0) or 0)
        headers = getattr(response, "headers", None)
        return map_slack_response(status, headers, error_code(exc), method=method)
    if isinstance(exc, HTTPError):
        # The SDK turns HTTP errors into responses; this only covers a stray one.
        return map_slack_response(exc.code, dict(exc.headers.items()) if exc.headers else None, method=method)
    if isinstance(exc, URLError | TimeoutError | ConnectionError | http.client.HTTPException):
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return ConnectionFailed(f"Slack {method}: cannot reach Slack ({reason})", method=method)
    if isinstance(exc, OSError):
        return ConnectionFailed(f"Slack {method}: network error ({type(exc).__name__})", method=method)
    return ProviderError(f"Slack {method} failed: {type(exc).__name__}", method=method)
