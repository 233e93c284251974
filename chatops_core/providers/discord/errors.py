"""Map Discord failures onto :mod:`chatops_core.errors`, in one place.

Discord answers a refusal with an HTTP status and JSON ``{"code": <int>, "message": ...}``
(https://discord.com/developers/docs/topics/opcodes-and-status-codes#json). A 429 carries
``{"message", "retry_after": <float seconds>, "global": <bool>}`` and the headers
``Retry-After``, ``X-RateLimit-Bucket``, ``-Remaining``, ``-Reset-After`` and
``X-RateLimit-Scope`` (https://discord.com/developers/docs/topics/rate-limits).

Too many 401, 403 and 429 answers (10,000 in 10 minutes) get a bot's IP banned for a while,
so a 401 or 403 is :class:`~chatops_core.errors.Permanent` and never tried again, and a 429
waits what it says. Messages name the operation and Discord's code, never a token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from chatops_core.errors import (
    AuthenticationFailed,
    ChannelNotFound,
    ChatOpsError,
    MessageNotFound,
    NotFound,
    ProviderError,
    RateLimited,
    ServerError,
    UserNotFound,
)
from chatops_core.providers import http_errors

Asked = Literal["channel", "message", "user", "member", "interaction", "other"]

# JSON error codes.
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_OVERWRITE = 10009
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027
ALREADY_ACKNOWLEDGED = 40060
MAX_PINS = 30003
DEFAULT_RETRY_AFTER = 1.0


class MissingPermission(ProviderError):
    """403: the bot lacks a permission or access here (``50001``, ``50013``)."""

    code = "missing_permission"


class InteractionExpired(ProviderError):
    """The interaction's token is past its 15 minutes or unknown: the answer is given up."""

    code = "interaction_expired"


@dataclass(frozen=True)
class ApiError:
    code: int
    message: str = ""


def parse_error(body: bytes | str | None) -> ApiError | None:
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("code"), int):
        return None
    return ApiError(code=data["code"], message=str(data.get("message") or "")[:200])


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if number == number and number >= 0 else None


def rate_limit(headers: Mapping[str, str], body: bytes | str | None) -> tuple[float, bool]:
    """``(retry_after seconds, global)`` of a 429: the body's float first, then the headers."""
    data: object = None
    if body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
    retry_after: float | None = None
    is_global = False
    if isinstance(data, dict):
        retry_after = _float(data.get("retry_after"))
        is_global = data.get("global") is True
    if retry_after is None:
        retry_after = _float(headers.get("X-RateLimit-Reset-After")) or _float(headers.get("Retry-After"))
    if not is_global:
        is_global = (headers.get("X-RateLimit-Global") or "").lower() == "true" or (
            headers.get("X-RateLimit-Scope") or ""
        ).lower() == "global"
    return (retry_after if retry_after is not None else DEFAULT_RETRY_AFTER), is_global


def map_discord_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | None,
    *,
    operation: str,
    asked: Asked = "other",
) -> ChatOpsError:
    """Classify a failed answer (status not 2xx) of ``operation``.

    429 → :class:`RateLimited`; 5xx → :class:`ServerError`; 401 → :class:`AuthenticationFailed`;
    an unknown webhook or interaction → :class:`InteractionExpired`; 403 →
    :class:`MissingPermission`; 404 or an unknown channel/message/user →
    the matching :class:`NotFound`; anything else :class:`ProviderError`.
    """
    error = parse_error(body)
    code = error.code if error else None
    details: dict[str, object] = {"operation": operation, "status": status}
    if code is not None:
        details["discord_code"] = code
    where = f"Discord {operation}"
    said = f"code {code}" if code is not None else f"HTTP {status}"
    if status == 429:
        wait, is_global = rate_limit(headers, body)
        bucket = headers.get("X-RateLimit-Bucket")
        if bucket:
            details["bucket"] = bucket
        return RateLimited(
            f"{where}: rate limited{' (global)' if is_global else ''}, retry after {wait:g}s",
            retry_after=wait,
            is_global=is_global,
            **details,
        )
    if status >= 500:
        return ServerError(f"{where} failed on Discord's side ({said})", **details)
    if status == 401:
        return AuthenticationFailed(f"{where}: the bot token was refused ({said})", **details)
    if code in (UNKNOWN_WEBHOOK, UNKNOWN_INTERACTION, INVALID_WEBHOOK_TOKEN) or (
        asked == "interaction" and status == 404 and code != UNKNOWN_MESSAGE
    ):
        return InteractionExpired(f"{where}: the interaction's token has expired ({said})", **details)
    if status == 403 or code in (MISSING_ACCESS, MISSING_PERMISSIONS):
        return MissingPermission(f"{where}: the bot lacks access or a permission ({said})", **details)
    if code == UNKNOWN_CHANNEL or (status == 404 and asked == "channel"):
        return ChannelNotFound(f"{where}: channel not found ({said})", **details)
    if code == UNKNOWN_MESSAGE or (status == 404 and asked == "message"):
        return MessageNotFound(f"{where}: message not found ({said})", **details)
    if code in (UNKNOWN_USER, UNKNOWN_MEMBER) or (status == 404 and asked in ("user", "member")):
        return UserNotFound(f"{where}: user not found ({said})", **details)
    if status == 404:
        return NotFound(f"{where}: not found ({said})", **details)
    text = f"{where} refused: {said}"
    if error and error.message:
        text += f" ({error.message})"
    return ProviderError(text, **details)


def map_transport_error(exc: Exception, *, operation: str) -> ChatOpsError:
    """What httpx raised for ``operation`` as a ``ChatOpsError`` (see
    :func:`chatops_core.providers.http_errors.map_transport_error`)."""
    return http_errors.map_transport_error(exc, platform="Discord", operation=operation)


redact = http_errors.redact

__all__ = [
    "InteractionExpired",
    "MissingPermission",
    "NotFound",
    "UserNotFound",
    "map_discord_response",
    "map_transport_error",
    "rate_limit",
    "redact",
]
