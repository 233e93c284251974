"""What an HTTP client's failure means for a provider whose client is httpx, once for all of them.

A provider maps its platform's answers onto :mod:`chatops_core.errors` itself (each platform
says "rate limited" or "not found" its own way); a failure *before* an answer is the same on
every platform, and so is keeping secrets out of the error that is logged.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from chatops_core.errors import ChatOpsError, ConfigError, ConnectionFailed, ProviderError

# Failures where no connection was made, so the request never reached the server.
_NEVER_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)


def map_transport_error(exc: Exception, *, platform: str, operation: str) -> ChatOpsError:
    """Turn what httpx raised for ``operation`` on ``platform`` into a ``ChatOpsError``.

    - no connection made (refused, unknown host, TLS handshake, connect or pool timeout) →
      :class:`ConnectionFailed` with ``outcome_unknown=False``;
    - the connection failed after the request went out (read or write timeout, connection
      reset, the server closed without answering) → :class:`ConnectionFailed` with
      ``outcome_unknown=True``;
    - an unusable URL → :class:`ConfigError`; anything else → :class:`ProviderError`.

    Only the exception's type is used: httpx's own message may hold the URL, which for some
    platforms (a Teams webhook) is a secret. A ``ChatOpsError`` is returned as it is.
    """
    if isinstance(exc, ChatOpsError):
        return exc
    where = f"{platform} {operation}"
    kind = type(exc).__name__
    if isinstance(exc, _NEVER_SENT):
        return ConnectionFailed(
            f"{where}: cannot reach {platform} ({kind})",
            operation=operation,
            outcome_unknown=False,
            transport_error=kind,
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigError(f"{where}: the URL cannot be used ({kind})", operation=operation)
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailed(
            f"{where}: no answer in time ({kind}); the request may have been carried out",
            operation=operation,
            outcome_unknown=True,
            transport_error=kind,
        )
    if isinstance(exc, httpx.LocalProtocolError):
        return ProviderError(f"{where}: the request could not be sent ({kind})", operation=operation)
    if isinstance(exc, httpx.TransportError):
        return ConnectionFailed(
            f"{where}: the connection failed ({kind}); the request may have been carried out",
            operation=operation,
            outcome_unknown=True,
            transport_error=kind,
        )
    if isinstance(exc, httpx.DecodingError):
        return ProviderError(
            f"{where}: the answer could not be decoded ({kind})", operation=operation, outcome_unknown=True
        )
    return ProviderError(f"{where} failed: {kind}", operation=operation)


def redact(error: ChatOpsError, secrets: Iterable[str]) -> ChatOpsError:
    """Blank every ``secrets`` value (tokens, passwords, webhook URLs) out of ``error``'s
    message, args and string details: whatever a server echoes back never reaches a log."""
    values = [s for s in secrets if s]
    if not values:
        return error

    def clean(text: str) -> str:
        for value in values:
            text = text.replace(value, "[redacted]")
        return text

    error.message = clean(error.message)
    error.args = tuple(clean(a) if isinstance(a, str) else a for a in error.args)
    error.details = {k: clean(v) if isinstance(v, str) else v for k, v in error.details.items()}
    return error
