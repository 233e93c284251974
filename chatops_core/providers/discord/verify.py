"""Interaction signatures: Ed25519 over ``X-Signature-Timestamp`` + the raw body.

Discord signs every request to the Interactions Endpoint URL with the application's key and
sends the signature (hex) in ``X-Signature-Ed25519`` and the Unix time it signed at in
``X-Signature-Timestamp``; the endpoint verifies it with the public key from the developer
portal and answers 401 otherwise. Discord checks an endpoint with deliberately bad
signatures and removes it if one is accepted
(https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers).

The timestamp is signed too, so a recorded request cannot be given a new one; a timestamp
more than :data:`MAX_SKEW_SECONDS` away from now is refused, so an old recorded request
cannot be replayed later either.
"""

from __future__ import annotations

import binascii

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import VerifyKey

from chatops_core.errors import InvalidWebhook
from chatops_core.providers.base import WebhookRequest

SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
MAX_SKEW_SECONDS = 300
_SIGNATURE_HEX_LENGTH = 128


def _refuse(reason: str) -> InvalidWebhook:
    return InvalidWebhook(f"Discord interaction refused: {reason}", http_status=401, reason=reason)


def verify_key(public_key_hex: str) -> VerifyKey:
    """The verify key of a hex public key (checked by the settings)."""
    return VerifyKey(bytes.fromhex(public_key_hex))


def signature_valid(key: VerifyKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``key``'s Ed25519 signature of ``message``."""
    try:
        key.verify(message, signature)
    except (BadSignatureError, NaclValueError, binascii.Error, TypeError):
        return False
    return True


def verify_interaction(key: VerifyKey, request: WebhookRequest, *, now: float | None = None) -> None:
    """Raise :class:`InvalidWebhook` (401) unless ``request`` carries a valid, fresh signature."""
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise _refuse("missing signature headers")
    signature = signature.strip()
    timestamp = timestamp.strip()
    if len(signature) != _SIGNATURE_HEX_LENGTH:
        raise _refuse("malformed signature")
    try:
        raw_signature = bytes.fromhex(signature)
    except ValueError:
        raise _refuse("malformed signature") from None
    try:
        message = timestamp.encode("utf-8") + request.body
    except UnicodeEncodeError:
        raise _refuse("malformed timestamp") from None
    if not signature_valid(key, raw_signature, message):
        raise _refuse("bad signature")
    try:
        signed_at = float(timestamp)
    except ValueError:
        raise _refuse("malformed timestamp") from None
    current = request.received_at if now is None else now
    if signed_at != signed_at or abs(current - signed_at) > MAX_SKEW_SECONDS:
        raise _refuse("timestamp too far from now")
