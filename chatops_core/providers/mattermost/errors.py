"""Map Mattermost failures onto :mod:`chatops_core.errors`, in one place.

Mattermost reports a refusal as an HTTP status with a JSON body
``{id, message, detailed_error, request_id, status_code}``; ``id`` is a stable error id
(``store.sql_channel.save_channel.exists.app_error``) and is what is classified here, with
the status and with what the call asked for (a user, a channel, a post...), since a bare 404
does not say which of them is missing. A rate limit is a 429 with the text ``limit exceeded``
and ``X-Ratelimit-Limit/-Remaining/-Reset`` headers, ``Reset`` being the seconds until the
limit resets (the server also sends ``Retry-After``).

- Errors and rate limiting: https://api.mattermost.com/#tag/errors,
  https://api.mattermost.com/#tag/rate-limiting
- Slash-command ``response_url`` (five posts within 30 minutes):
  https://developers.mattermost.com/integrate/slash-commands/custom/
- Interactive dialogs (``trigger_id``): https://developers.mattermost.com/integrate/plugins/interactive-dialogs/

Transport failures (httpx exceptions) are classified here too, with
``details["outcome_unknown"]`` saying whether the request may have reached the server: False
when it certainly never left (no connection was made), True when it may have been carried
out (a read timeout, a connection lost after sending).

Messages name the operation and Mattermost's error id, never a token, a request body or a
``response_url`` (which is a credential of its own).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    TriggerExpired,
    UserNotFound,
)
from chatops_core.providers import http_errors

# What a call asked for: decides which NotFound a 404 without a known error id becomes.
Asked = Literal["user", "channel", "post", "member", "dialog", "response_url", "other"]


class MissingPermission(ProviderError):
    """403: the bot lacks a permission for this call (``api.context.permissions.app_error``).

    Mattermost checks permissions before it loads what was named, so an edit or a pin of a
    post that does not exist (or was deleted), and a post into an unknown channel, answer
    403 too, not 404.
    """

    code = "missing_permission"


class ChannelNameTaken(ProviderError):
    """The team already has a channel of that name (archived channels keep theirs)."""

    code = "channel_name_taken"


class ChannelArchived(ChannelNotFound):
    """The channel exists but is archived: nothing can be posted or added there."""

    code = "channel_archived"


class ResponseUrlExpired(ProviderError):
    """A slash command's ``response_url`` is past its 30 minutes or used five times."""

    code = "response_url_expired"


# The server's store.ChannelExistsError, and what servers before v5 answered for a name
# held by an archived channel.
CHANNEL_NAME_TAKEN_IDS = frozenset(
    {
        "store.sql_channel.save_channel.exists.app_error",
        "store.sql_channel.save_channel.previously.app_error",
    }
)
ARCHIVED_IDS = frozenset(
    {
        "api.post.create_post.can_not_post_to_deleted.error",
        "api.post.update_post.can_not_update_post_in_deleted.error",
        "api.channel.add_user_to_channel.deleted.app_error",
        "api.channel.delete_channel.deleted.app_error",
    }
)
# Archiving a channel that is archived already.
ALREADY_ARCHIVED_IDS = frozenset({"api.channel.delete_channel.deleted.app_error"})
USER_MISSING_IDS = frozenset({"app.user.missing_account.const", "app.user.get_by_username.app_error"})
CHANNEL_MISSING_IDS = frozenset(
    {"app.channel.get.existing.app_error", "app.channel.get_by_name.missing.app_error"}
)
POST_MISSING_IDS = frozenset({"app.post.get.app_error"})
MEMBER_MISSING_IDS = frozenset({"app.channel.get_member.missing.app_error"})
# CommandWebhookStore.Get finds no hook younger than 30 min / TryUse refuses a sixth post.
RESPONSE_URL_GONE_IDS = frozenset({"app.command_webhook.get.missing", "app.command_webhook.try_use.invalid"})
# The answer of a path the server does not serve (an older server, or a wrong base URL).
NO_ROUTE_IDS = frozenset({"api.context.404.app_error"})

DEFAULT_RETRY_AFTER = 1.0
# Mattermost's limiter counts requests per second; a wait shorter than that only meets it again.
MIN_RETRY_AFTER = 1.0
# An X-Ratelimit-Reset above this is a Unix time (a proxy's), not seconds to wait.
_EPOCH_THRESHOLD = 1_000_000_000.0
_MAX_SERVER_MESSAGE = 200


@dataclass(frozen=True)
class AppError:
    """Mattermost's error body (``model.AppError`` as the server writes it)."""

    id: str
    message: str = ""
    request_id: str = ""
    status_code: int = 0


def parse_app_error(body: bytes | str | None) -> AppError | None:
    """The error in an answer's body, or None when it is not Mattermost's error JSON."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        return None
    status = data.get("status_code")
    return AppError(
        id=data["id"],
        message=str(data.get("message") or ""),
        request_id=str(data.get("request_id") or ""),
        status_code=status if isinstance(status, int) else 0,
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    if isinstance(headers, httpx.Headers):
        return headers.get(name)
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if str(k).lower() == wanted), None)


def _seconds(value: str | None, now: float, *, http_date: bool = False) -> float | None:
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        if not http_date:
            return None
        try:
            return parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds - now if seconds > _EPOCH_THRESHOLD else seconds


def retry_after_seconds(
    headers: Mapping[str, str] | None,
    *,
    default: float = DEFAULT_RETRY_AFTER,
    now: Callable[[], float] = time.time,
) -> float:
    """How long a rate-limited call should wait, in seconds.

    ``X-Ratelimit-Reset`` (seconds until the limit resets) and ``Retry-After`` (seconds, or
    an HTTP date) are both read and the longer wait wins; a Unix time in either is turned
    into seconds from ``now``. Without either, ``default``; never below
    :data:`MIN_RETRY_AFTER`.
    """
    current = now()
    found = [
        s
        for s in (
            _seconds(_header(headers, "X-Ratelimit-Reset"), current),
            _seconds(_header(headers, "Retry-After"), current, http_date=True),
        )
        if s is not None
    ]
    return max(max(found) if found else default, MIN_RETRY_AFTER)


def _int_header(headers: Mapping[str, str] | None, name: str) -> int | None:
    value = _header(headers, name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _names_trigger(error: AppError | None) -> bool:
    """Whether a refusal is about the ``trigger_id`` (stale, used, malformed or missing)."""
    if error is None:
        return False
    return "trigger_id" in error.id or "trigger" in error.message.lower()


def map_mattermost_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | str | None,
    *,
    operation: str,
    asked: Asked = "other",
) -> ChatOpsError:
    """Classify a failed Mattermost answer (status not 2xx) of ``operation``.

    - 429 → :class:`RateLimited` (``retry_after`` from ``X-Ratelimit-Reset``/``Retry-After``)
    - 5xx → :class:`ServerError` (``details["status"]`` tells a gateway's 502/504)
    - 401 → :class:`AuthenticationFailed`
    - a taken channel name → :class:`ChannelNameTaken`
    - a refused ``trigger_id`` (``asked="dialog"``) → :class:`TriggerExpired`
    - a ``response_url`` past its time or uses → :class:`ResponseUrlExpired`
    - an archived channel → :class:`ChannelArchived` (a :class:`ChannelNotFound`)
    - 403 → :class:`MissingPermission`
    - 404 → :class:`UserNotFound`, :class:`ChannelNotFound` or :class:`MessageNotFound` by
      the error id, else by ``asked``
    - anything else → :class:`ProviderError` with Mattermost's id in ``details``.
    """
    error = parse_app_error(body)
    code = error.id if error else None
    details: dict[str, object] = {"operation": operation, "status": status}
    if code:
        details["mattermost_error"] = code
    if error and error.request_id:
        details["request_id"] = error.request_id
    where = f"Mattermost {operation}"
    said = code or f"HTTP {status}"

    if status == 429:
        retry_after = retry_after_seconds(headers)
        for name, key in (("X-Ratelimit-Limit", "limit"), ("X-Ratelimit-Remaining", "remaining")):
            value = _int_header(headers, name)
            if value is not None:
                details[key] = value
        return RateLimited(
            f"{where}: rate limited, retry after {retry_after:g}s", retry_after=retry_after, **details
        )
    if status >= 500:
        return ServerError(f"{where} failed on the server's side ({said})", **details)
    if status == 401:
        return AuthenticationFailed(f"{where}: the token was refused ({said})", **details)
    if code in CHANNEL_NAME_TAKEN_IDS:
        return ChannelNameTaken(f"{where}: the team already has a channel of that name ({code})", **details)
    if asked == "dialog" and status == 400 and _names_trigger(error):
        return TriggerExpired(f"{where}: the form's trigger cannot be used ({code})", **details)
    if asked == "response_url" and (status == 404 or code in RESPONSE_URL_GONE_IDS):
        return ResponseUrlExpired(f"{where}: the response URL is expired or used up ({said})", **details)
    if code in ARCHIVED_IDS:
        return ChannelArchived(f"{where}: the channel is archived ({code})", **details)
    if status == 403:
        return MissingPermission(f"{where}: the bot lacks the permission ({said})", **details)
    if code in NO_ROUTE_IDS:
        return ProviderError(f"{where}: the server does not serve this call ({code})", **details)
    if code in USER_MISSING_IDS:
        return UserNotFound(f"{where}: user not found ({said})", **details)
    if code in CHANNEL_MISSING_IDS:
        return ChannelNotFound(f"{where}: channel not found ({said})", **details)
    if code in POST_MISSING_IDS:
        return MessageNotFound(f"{where}: post not found ({said})", **details)
    if code in MEMBER_MISSING_IDS:
        return NotFound(f"{where}: the user is not a member of the channel ({code})", **details)
    if status == 404:
        if asked == "user":
            return UserNotFound(f"{where}: user not found ({said})", **details)
        if asked == "channel":
            return ChannelNotFound(f"{where}: channel not found ({said})", **details)
        if asked == "post":
            return MessageNotFound(f"{where}: post not found ({said})", **details)
        return NotFound(f"{where}: not found ({said})", **details)
    if 300 <= status < 400:
        return ProviderError(f"{where}: unexpected redirect (HTTP {status}); check the server URL", **details)
    text = f"{where} refused: {said}"
    if error and error.message:
        text += f" ({error.message[:_MAX_SERVER_MESSAGE]})"
    return ProviderError(text, **details)


def map_transport_error(exc: Exception, *, operation: str) -> ChatOpsError:
    """What httpx raised for ``operation`` as a ``ChatOpsError`` (see
    :func:`chatops_core.providers.http_errors.map_transport_error`)."""
    return http_errors.map_transport_error(exc, platform="Mattermost", operation=operation)


redact = http_errors.redact
