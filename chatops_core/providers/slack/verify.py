"""Slack request signatures.

Follows https://docs.slack.dev/authentication/verifying-requests-from-slack/ : the
signature is ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{raw body}`` keyed with the
signing secret, and a request whose timestamp is more than five minutes away from now is
refused so a captured request cannot be replayed. The raw bytes are verified before
anything parses them.
"""

from __future__ import annotations

import re

from slack_sdk.signature import Clock, SignatureVerifier

from chatops_core.errors import InvalidWebhook
from chatops_core.providers.base import WebhookRequest

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
# Slack's replay window, in seconds.
MAX_SKEW_SECONDS = 300

_TIMESTAMP_RE = re.compile(r"^[0-9]{1,15}$")


class FixedClock(Clock):
    """A clock that always answers the same instant (the time a request arrived)."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def _reject(reason: str) -> InvalidWebhook:
    return InvalidWebhook(f"Slack signature check failed: {reason}", http_status=401, reason=reason)


def verify_request(request: WebhookRequest, signing_secret: str) -> None:
    """Raise :class:`InvalidWebhook` (401) unless ``request`` carries a valid, fresh signature.

    "Now" is ``request.received_at``, so the window is measured from when the request
    arrived, not from when a queue got round to it.
    """
    # WebhookRequest.headers looks names up case-insensitively.
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise _reject("missing signature headers")
    timestamp = timestamp.strip()
    if not _TIMESTAMP_RE.match(timestamp):
        raise _reject("timestamp is not a number")
    if abs(request.received_at - int(timestamp)) > MAX_SKEW_SECONDS:
        raise _reject("timestamp outside the 5 minute window")
    verifier = SignatureVerifier(signing_secret, clock=FixedClock(request.received_at))
    try:
        valid = verifier.is_valid(body=request.body, timestamp=timestamp, signature=signature)
    except (UnicodeDecodeError, TypeError):
        # The SDK decodes the body as UTF-8 and compare_digest refuses non-ASCII text:
        # either way the request was not signed by Slack.
        valid = False
    if not valid:
        raise _reject("signature mismatch")
