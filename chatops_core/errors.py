"""One error tree for the whole service.

Every error carries a stable ``code``. Whether a task retries is decided by the class:
``Retryable`` errors (and their ``RateLimited`` subclass, which says how long to wait) are
retried with backoff; ``Permanent`` errors never are. Provider packages map raw platform
responses onto this tree in one function each.
"""

from __future__ import annotations


class ChatOpsError(Exception):
    """Base of every error the service raises on purpose."""

    code = "chatops_error"
    retryable = False

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details

    def __str__(self) -> str:
        return self.message


class Retryable(ChatOpsError):
    """A failure that may pass: retry with backoff."""

    code = "retryable"
    retryable = True


class Permanent(ChatOpsError):
    """A failure that will not pass by retrying."""

    code = "permanent"


# --- provider / transport -------------------------------------------------------------


class ConnectionFailed(Retryable):
    code = "connection_failed"


class ServerError(Retryable):
    """The platform answered 5xx."""

    code = "server_error"


class Unavailable(Retryable):
    """The service's own database or broker could not be reached for the moment."""

    code = "unavailable"


class RateLimited(Retryable):
    """The platform asked us to slow down; ``retry_after`` is in seconds."""

    code = "rate_limited"

    def __init__(self, message: str = "", retry_after: float = 1.0, **details: object) -> None:
        super().__init__(message or f"rate limited, retry after {retry_after:g}s", **details)
        self.retry_after = float(retry_after)


class ProviderNotFound(Permanent):
    code = "provider_not_found"


class AuthenticationFailed(Permanent):
    code = "authentication_failed"


class OperationNotSupported(Permanent):
    code = "operation_not_supported"


class NotFound(Permanent):
    code = "not_found"


class ChannelNotFound(NotFound):
    code = "channel_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class MessageNotFound(NotFound):
    code = "message_not_found"


class TriggerExpired(Permanent):
    """A form could not open: its one-use trigger was stale, already used or not valid."""

    code = "trigger_expired"


class ProviderError(Permanent):
    """Any other refusal by the platform (the platform's own code is in ``details``)."""

    code = "provider_error"


class InvalidWebhook(Permanent):
    """An inbound request we refuse; ``http_status`` is what the ingress answers."""

    code = "invalid_webhook"

    def __init__(self, message: str = "", http_status: int = 400, **details: object) -> None:
        super().__init__(message, **details)
        self.http_status = http_status


class ConfigError(Permanent):
    """The configuration is invalid; the message names what to fix."""

    code = "config_error"


# --- incidents and commands: the message is shown to the user -------------------------


class CommandError(Permanent):
    """Wrong input from a user. ``message`` is the answer shown to them."""

    code = "command_error"


class UnknownCommand(CommandError):
    code = "unknown_command"


class InvalidArguments(CommandError):
    code = "invalid_arguments"


class IncidentNotFound(CommandError):
    code = "incident_not_found"


class MissingIncidentId(CommandError):
    code = "missing_incident_id"


class InvalidTransition(CommandError):
    code = "invalid_transition"
