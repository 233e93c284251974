"""Authenticating what Mattermost sends to the webhook.

Slash commands carry the command's token twice: in the ``token`` form field and in an
``Authorization: Token <token>`` header
(https://developers.mattermost.com/integrate/slash-commands/custom/).
:func:`check_command_token` compares them with the configured ``command_token`` in constant
time.

An outgoing webhook (how a mention of the bot reaches the service) carries its own token in
the ``token`` field only, form-encoded or JSON as the webhook's content type says
(https://developers.mattermost.com/integrate/webhooks/outgoing/).
:func:`check_outgoing_token` compares it with ``outgoing_webhook_token`` in constant time; with
no token configured, every such request is refused.

Button clicks and dialog submissions carry nothing Mattermost signs: the server POSTs the
action's ``integration.context`` (or the dialog's ``state``) back to us as it was posted, and
the docs suggest putting a secret or an HMAC there
(https://developers.mattermost.com/integrate/plugins/interactive-messages/,
https://developers.mattermost.com/integrate/plugins/interactive-dialogs/). So what the bot
posts carries a signed, expiring payload:

- a **context** (:func:`sign_context`, :func:`verify_context`) is the payload's own keys plus
  ``exp`` (Unix seconds after which it is refused) and ``sig``, the unpadded base64url
  HMAC-SHA256, keyed with ``actions_secret``, of the canonical JSON of every other key (sorted
  keys, no spaces, ASCII). The server keeps a context as JSON and sends it back re-encoded,
  so the signature is over the canonical form, not over bytes; numbers may come back as
  floats, and an integral float counts as its integer.
- a **state** (:func:`sign_state`, :func:`verify_state`) is one string,
  ``base64url(canonical JSON of payload + exp) "." signature``; its signature is over the
  same canonical bytes.

A context and a state are signed under different labels, so neither verifies as the other.
Values are strings or integers, so the canonical form has one spelling. Every key of a
context is signed, so a key added on the way is refused, except ``selected_option``, which
Mattermost adds itself when an option of a menu is picked: it is left out of the signature
and out of the returned payload (read it from the request; it is the user's choice, to be
checked against the options offered).

A valid context is a bearer credential for its action on its incident until it expires:
whoever can read it can replay it with any ``user_id``. The server keeps contexts
confidential (it strips ``integration`` from the posts it answers), so never log one, and
keep ``action_ttl_seconds`` no longer than buttons need to work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping

from pydantic import SecretStr

from chatops_core.errors import InvalidWebhook
from chatops_core.providers.mattermost.config import MattermostSettings

AUTHORIZATION_SCHEME = "Token"
EXPIRY_KEY = "exp"
SIGNATURE_KEY = "sig"
# Keys Mattermost itself writes into a context before sending it back (a menu's pick).
PLATFORM_KEYS = frozenset({"selected_option"})
RESERVED_KEYS = frozenset({EXPIRY_KEY, SIGNATURE_KEY}) | PLATFORM_KEYS
# A context is copied into every button of every card: keep it small.
MAX_PAYLOAD_BYTES = 512

Value = str | int
Payload = dict[str, Value]

# The purpose of a signature is part of what is signed, so one never passes for another.
_CONTEXT_LABEL = b"chatops/mattermost/context/v1\n"
_STATE_LABEL = b"chatops/mattermost/state/v1\n"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
# Integers a JSON number survives as exactly, also through a float64.
_MAX_EXACT = 2**53


# -- the slash command's token ------------------------------------------------------------


def _token_reject(reason: str) -> InvalidWebhook:
    return InvalidWebhook(f"Mattermost command token check failed: {reason}", http_status=401, reason=reason)


def _header_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Token <token>`` header; None for another scheme."""
    if not authorization:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != AUTHORIZATION_SCHEME.lower():
        return None
    return rest.strip() or None


def check_command_token(
    settings: MattermostSettings, form_token: str | None, authorization: str | None
) -> None:
    """Raise :class:`InvalidWebhook` (401) unless the slash command carries ``command_token``.

    ``form_token`` is the request's ``token`` form field, ``authorization`` its
    ``Authorization`` header. At least one must be given, and each one given must equal the
    configured token (a header of another scheme is not ours and is ignored). Every
    comparison is made, in constant time, whatever the others found.
    """
    expected = settings.command_token.get_secret_value().encode("utf-8")
    presented = [token for token in (form_token, _header_token(authorization)) if token]
    if not presented:
        raise _token_reject("missing token")
    matches = [hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass")) for token in presented]
    if not all(matches):
        raise _token_reject("token mismatch")


def _outgoing_reject(reason: str) -> InvalidWebhook:
    return InvalidWebhook(
        f"Mattermost outgoing webhook token check failed: {reason}", http_status=401, reason=reason
    )


def check_outgoing_token(settings: MattermostSettings, token: object) -> None:
    """Raise :class:`InvalidWebhook` (401) unless an outgoing webhook's ``token`` field equals
    ``outgoing_webhook_token``, compared in constant time. Without that setting, mentions are
    off and every outgoing webhook request is refused."""
    configured = settings.outgoing_webhook_token
    if configured is None:
        raise _outgoing_reject("mentions are not configured")
    if not isinstance(token, str) or not token:
        raise _outgoing_reject("missing token")
    expected = configured.get_secret_value().encode("utf-8")
    if not hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass")):
        raise _outgoing_reject("token mismatch")


# -- signed contexts and states ----------------------------------------------------------


def _reject(what: str, reason: str) -> InvalidWebhook:
    return InvalidWebhook(f"Mattermost {what} check failed: {reason}", http_status=401, reason=reason)


def _key(secret: SecretStr | str) -> bytes:
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        raise ValueError("the signing secret is empty")
    return value.encode("utf-8")


def _canonical(fields: Mapping[str, Value]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(key: bytes, label: bytes, message: bytes) -> str:
    return _b64(hmac.new(key, label + message, hashlib.sha256).digest())


def _same(expected: str, given: str) -> bool:
    # compare_digest takes text only when it is ASCII; bytes always.
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "surrogatepass"))


def _is_utf8(text: str) -> bool:
    """Whether ``text`` survives a trip through UTF-8 JSON (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _signed_fields(payload: Mapping[str, Value], now: float, ttl: int) -> Payload:
    """``payload`` checked, plus its expiry: what a signature covers."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError("ttl must be a positive number of seconds")
    fields: Payload = {}
    for key, value in payload.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"payload key {key!r} must be a short identifier (letters, digits, '_')")
        if key in RESERVED_KEYS:
            raise ValueError(f"payload key {key!r} is reserved")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"payload value of {key!r} must be a string or an integer")
        if isinstance(value, int) and abs(value) >= _MAX_EXACT:
            raise ValueError(f"payload value of {key!r} is too large to survive JSON exactly")
        if isinstance(value, str) and not _is_utf8(value):
            raise ValueError(f"payload value of {key!r} is not valid Unicode text")
        fields[key] = value
    fields[EXPIRY_KEY] = math.floor(now) + ttl
    if len(_canonical(fields)) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload is over {MAX_PAYLOAD_BYTES} bytes; carry ids, not data")
    return fields


def _wire_value(value: object) -> Value | None:
    """A value as it came back through JSON, or None when no signer wrote it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) < _MAX_EXACT else None
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_EXACT:
        return int(value)
    return None


def _unexpired(fields: Payload, now: float, what: str) -> Payload:
    """The payload of verified ``fields``, unless it expired before ``now``."""
    payload = dict(fields)
    expiry = payload.pop(EXPIRY_KEY, None)
    if not isinstance(expiry, int):
        raise _reject(what, "missing expiry")
    if now > expiry:
        raise _reject(what, "expired")
    return payload


def sign_context(secret: SecretStr | str, payload: Mapping[str, Value], now: float, ttl: int) -> Payload:
    """The ``integration.context`` for a button: ``payload`` plus ``exp`` and ``sig``.

    ``now`` is Unix seconds, ``ttl`` how many seconds the button stays usable. Keys are short
    identifiers other than ``exp``, ``sig`` and ``selected_option``; values are strings or
    integers. A payload that breaks these rules, or whose context would be over
    :data:`MAX_PAYLOAD_BYTES`, is a programming error (:class:`ValueError`).
    """
    key = _key(secret)
    fields = _signed_fields(payload, now, ttl)
    return {**fields, SIGNATURE_KEY: _mac(key, _CONTEXT_LABEL, _canonical(fields))}


def verify_context(secret: SecretStr | str, context: object, now: float) -> Payload:
    """The payload :func:`sign_context` signed into ``context``.

    Raises :class:`InvalidWebhook` (401) when the context is missing, unsigned, forged,
    changed (a value, a key added or removed) or expired at ``now`` (Unix seconds).
    ``selected_option`` is neither checked nor returned.
    """
    key = _key(secret)
    if not isinstance(context, Mapping) or not context:
        raise _reject("action context", "missing context")
    signature = context.get(SIGNATURE_KEY)
    if not isinstance(signature, str) or not signature:
        raise _reject("action context", "missing signature")
    fields: Payload = {}
    for name, raw in context.items():
        if name == SIGNATURE_KEY or name in PLATFORM_KEYS:
            continue
        value = _wire_value(raw)
        if not isinstance(name, str) or value is None:
            raise _reject("action context", "malformed context")
        fields[name] = value
    if not _same(_mac(key, _CONTEXT_LABEL, _canonical(fields)), signature):
        raise _reject("action context", "signature mismatch")
    return _unexpired(fields, now, "action context")


def sign_state(secret: SecretStr | str, payload: Mapping[str, Value], now: float, ttl: int) -> str:
    """A dialog's ``state``: ``payload`` and its expiry, signed like a context, as one string."""
    key = _key(secret)
    body = _canonical(_signed_fields(payload, now, ttl))
    return f"{_b64(body)}.{_mac(key, _STATE_LABEL, body)}"


def verify_state(secret: SecretStr | str, state: object, now: float) -> Payload:
    """The payload :func:`sign_state` signed into ``state``.

    Raises :class:`InvalidWebhook` (401) when the state is missing, malformed, forged,
    changed or expired at ``now`` (Unix seconds).
    """
    key = _key(secret)
    if not isinstance(state, str) or not state:
        raise _reject("dialog state", "missing state")
    encoded, dot, signature = state.partition(".")
    if not dot or not _BASE64URL.match(encoded) or not _BASE64URL.match(signature):
        raise _reject("dialog state", "malformed state")
    try:
        body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise _reject("dialog state", "malformed state") from None
    if not _same(_mac(key, _STATE_LABEL, body), signature):
        raise _reject("dialog state", "signature mismatch")
    # Signed by us, so well formed; checked all the same rather than trusted.
    try:
        decoded = json.loads(body)
    except ValueError:
        raise _reject("dialog state", "malformed state") from None
    if not isinstance(decoded, dict):
        raise _reject("dialog state", "malformed state")
    fields: Payload = {}
    for name, raw in decoded.items():
        value = _wire_value(raw)
        if value is None:
            raise _reject("dialog state", "malformed state")
        fields[name] = value
    return _unexpired(fields, now, "dialog state")
