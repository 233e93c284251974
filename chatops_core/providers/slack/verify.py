"""Slack request signatures.

Follows https://docs.slack.dev/authentication/verifying-requests-from-slack/ : the
signature is ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{raw body}`` keyed with the
signing secret, and a request whose timestamp is more than five minutes away from now is
refused so a captured request cannot be replayed. The raw bytes are verified before
anything parses them.
"""

from __future__ import annotations

import hashlib
import hmac
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
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        # The SDK verifies text only. Slack signs the raw bytes, so check them here: a body
        # Slack signed that is not UTF-8 is unreadable (400), not forged (401).
        if not _signed_bytes(request.body, timestamp, signature, signing_secret):
            raise _reject("signature mismatch") from None
        raise InvalidWebhook(
            "unreadable Slack request: body is not UTF-8", http_status=400, reason="body is not UTF-8"
        ) from None
    verifier = SignatureVerifier(signing_secret, clock=FixedClock(request.received_at))
    try:
        valid = verifier.is_valid(body=text, timestamp=timestamp, signature=signature)
    except TypeError:
        # compare_digest refuses non-ASCII text: such a header was not written by Slack.
        valid = False
    if not valid:
        raise _reject("signature mismatch")


def _signed_bytes(body: bytes, timestamp: str, signature: str, signing_secret: str) -> bool:
    """Whether ``signature`` is Slack's ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
