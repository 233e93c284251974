"""Map Microsoft Teams failures onto :mod:`chatops_core.errors`, in one place.

Three services answer the worker, each its own way:

- **Incoming webhooks.** A Workflows URL ("When a Teams webhook request is received") accepts
  with 202 and answers a throttled post with 429 and ``Retry-After``; a deleted flow answers
  404 and a URL whose ``sig`` is wrong 401. A legacy connector URL answers 200 with body
  ``1``, and a throttled post with **200** whose body contains "Microsoft Teams endpoint
  returned HTTP error 429" ("connectors do not throw 429s"); its limits are per URL: 4 posts a
  second, 60 in 30 s, 100 an hour
  (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#rate-limiting-for-connectors).
- **The Bot Connector API** answers an ``ErrorResponse`` ``{"error": {"code", "message"}}``
  and a 429 when a bot sends too fast; 412, 502 and 504 are to be retried too
  (https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit).
- **The token endpoint** (Azure AD, client credentials) answers OAuth2 errors
  ``{"error", "error_description": "AADSTS7000215: ..."}``; a refused ``app_password`` is
  ``invalid_client``.

A webhook URL is a credential (whoever holds it can post), so no message, detail or log field
made here contains one: webhooks are named by their channel alias. Messages name the
operation and the service's code, never a token or a request body.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from chatops_core.errors import (
    AuthenticationFailed,
    ChannelNotFound,
    ChatOpsError,
    MessageNotFound,
    NotFound,
    ProviderError,
    RateLimited,
    ServerError,
)
from chatops_core.providers import http_errors

# What a call asked for: decides which error a 401/403/404 becomes.
Asked = Literal["workflow", "connector", "conversation", "thread", "activity", "token", "other"]

# The Bot Connector's code for a conversation that does not exist (or the bot is not in).
CONVERSATION_NOT_FOUND = "ConversationNotFound"

# The text a connector's throttled answer carries in a 200 body (the documentation's check).
CONNECTOR_THROTTLED = "HTTP error 429"
DEFAULT_RETRY_AFTER = 1.0
# A connector's 200-with-429 says no wait; its tightest window is one second, its next 30 s.
CONNECTOR_RETRY_AFTER = 2.0
# Errors the Bot Connector documentation says to retry besides 429 and 5xx.
RETRY_STATUSES = frozenset({412})
_AADSTS = re.compile(r"AADSTS\d+")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class WebhookRefused(AuthenticationFailed):
    """An incoming webhook refused the post (401/403): its URL is no longer valid."""

    code = "webhook_refused"


class WebhookRemoved(ChannelNotFound):
    """An incoming webhook is gone (404): the flow or connector was deleted."""

    code = "webhook_removed"


class MissingPermission(ProviderError):
    """403 from the Bot Connector: the bot is not in the conversation (not installed there)."""

    code = "missing_permission"


def _code_of(body: bytes | str | None) -> str | None:
    """The service's own error code in ``body``: ``error.code`` (Bot Connector, Logic Apps) or
    ``error`` (OAuth2), when it looks like a code."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    code = error.get("code") if isinstance(error, dict) else error
    return code if isinstance(code, str) and _CODE.match(code) else None


def _aadsts(body: bytes | str | None) -> str | None:
    """The ``AADSTS`` number of a token endpoint's refusal (what Microsoft's docs index)."""
    if not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    found = _AADSTS.search(text)
    return found.group(0) if found else None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    if isinstance(headers, httpx.Headers):
        return headers.get(name)
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if str(k).lower() == wanted), None)


def retry_after_seconds(
    headers: Mapping[str, str] | None,
    *,
    default: float = DEFAULT_RETRY_AFTER,
    now: Callable[[], float] = time.time,
) -> float:
    """``Retry-After`` in seconds (a number or an HTTP date), else ``default``."""
    value = _header(headers, "Retry-After")
    if value is None:
        return default
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now()
        except (TypeError, ValueError, IndexError):
            return default
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return default
    return seconds


def connector_throttled(body: bytes | str | None) -> bool:
    """Whether a connector's 2xx answer reports a 429 in its body."""
    if not body:
        return False
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return CONNECTOR_THROTTLED in text


def throttled_connector(alias: str, *, operation: str) -> RateLimited:
    """The connector's 200-with-429 as :class:`RateLimited` (it names no wait)."""
    return RateLimited(
        f"Teams {operation}: the incoming webhook of channel {alias!r} is throttled "
        f"(4 a second, 60 in 30 s), retry after {CONNECTOR_RETRY_AFTER:g}s",
        retry_after=CONNECTOR_RETRY_AFTER,
        operation=operation,
        status=200,
        channel=alias,
    )


def map_teams_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | str | None,
    *,
    operation: str,
    asked: Asked = "other",
    channel: str | None = None,
) -> ChatOpsError:
    """Classify a failed Teams answer (status not 2xx) of ``operation``.

    - 429 → :class:`RateLimited` with ``Retry-After``; 5xx and 412 → :class:`ServerError`
      (``details["status"]`` tells a gateway's 502/504);
    - a webhook's 401/403 → :class:`WebhookRefused`, its 404 → :class:`WebhookRemoved`;
    - the token endpoint's refusal → :class:`AuthenticationFailed` with the ``AADSTS`` code;
    - the Bot Connector's 401 → :class:`AuthenticationFailed`, 403 → :class:`MissingPermission`,
      404 → :class:`ChannelNotFound` (a conversation) or :class:`MessageNotFound` (an activity,
      or the first post of a channel thread);
    - anything else → :class:`ProviderError` with the service's code in ``details``.

    ``channel`` is the alias the call went to (never its URL).
    """
    code = _code_of(body)
    details: dict[str, object] = {"operation": operation, "status": status}
    if code:
        details["teams_error"] = code
    if channel:
        details["channel"] = channel
    where = f"Teams {operation}"
    said = code or f"HTTP {status}"
    hook = f"the incoming webhook of channel {channel!r}" if channel else "the incoming webhook"

    if status == 429:
        wait = retry_after_seconds(headers)
        return RateLimited(f"{where}: rate limited, retry after {wait:g}s", retry_after=wait, **details)
    if status >= 500 or status in RETRY_STATUSES:
        return ServerError(f"{where} failed on Microsoft's side ({said})", **details)
    if asked in ("workflow", "connector"):
        if status in (401, 403):
            return WebhookRefused(
                f"{where}: {hook} refused the post ({said}); create a new webhook for the channel "
                "and put its URL in webhook_url",
                **details,
            )
        if status == 404:
            return WebhookRemoved(
                f"{where}: {hook} no longer exists ({said}); it was deleted: create a new one "
                "and put its URL in webhook_url",
                **details,
            )
    if asked == "token":
        aad = _aadsts(body)
        if aad:
            details["aad_error"] = aad
        if status in (400, 401) and code in ("invalid_client", "unauthorized_client", None):
            return AuthenticationFailed(
                f"{where}: app_id and app_password were refused ({aad or said}); check the bot's "
                "Microsoft App ID and client secret",
                **details,
            )
        return ProviderError(f"{where}: the token request was refused ({aad or said})", **details)
    if status == 401:
        return AuthenticationFailed(f"{where}: the bot's token was refused ({said})", **details)
    if status == 403:
        return MissingPermission(
            f"{where}: the bot may not post here ({said}); install the app in the team or chat",
            **details,
        )
    if status == 404:
        if asked == "conversation" or code == CONVERSATION_NOT_FOUND:
            return ChannelNotFound(f"{where}: conversation not found ({said})", **details)
        if asked in ("activity", "thread"):
            return MessageNotFound(f"{where}: message not found ({said})", **details)
        return NotFound(f"{where}: not found ({said})", **details)
    return ProviderError(f"{where} refused: {said}", **details)


def map_transport_error(exc: Exception, *, operation: str) -> ChatOpsError:
    """What httpx raised for ``operation`` as a ``ChatOpsError`` (see
    :func:`chatops_core.providers.http_errors.map_transport_error`)."""
    return http_errors.map_transport_error(exc, platform="Teams", operation=operation)


redact = http_errors.redact

__all__ = [
    "MissingPermission",
    "WebhookRefused",
    "WebhookRemoved",
    "connector_throttled",
    "map_teams_response",
    "map_transport_error",
    "redact",
    "retry_after_seconds",
    "throttled_connector",
]
