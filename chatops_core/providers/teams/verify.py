"""Authenticating what Microsoft Teams sends to the webhook, in either of its two modes.

Both modes arrive on the same URL; the ``Authorization`` header's scheme says which
(:func:`mode_of`). A request with neither scheme, or with the scheme of a mode the instance
does not run, is refused (401).

- **Webhook mode** (an outgoing webhook): ``Authorization: HMAC <base64>``, the HMAC-SHA256 of
  the raw request body keyed with the base64-decoded security token Teams showed when the
  webhook was created
  (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-outgoing-webhook).
  The digest is compared in constant time, over the bytes as they came: re-encoding the JSON
  would change them.
- **Bot mode** (Bot Framework): ``Authorization: Bearer <JWT>``, checked as
  https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-authentication
  says: signed RS256 by a key the OpenID metadata's ``jwks_uri`` lists (found by the token's
  ``kid``), issuer ``https://api.botframework.com``, audience the bot's app id, not expired and
  already valid with the documented 5 minute clock skew, its ``serviceurl`` claim equal to the
  activity's ``serviceUrl``, and, where the key lists ``endorsements``, the activity's
  ``channelId`` among them. The article answers a bad token with 403; the service answers
  every refusal 401, as for the other platforms.

The metadata and key fetches are the only I/O of the ingress side. Keys are cached (the
article: "relatively stable and may be cached for long periods of time") and fetched again
after :data:`KEYS_MAX_AGE_SECONDS`, or sooner when a token names a ``kid`` the cache does not
hold (Microsoft rotates its keys), but never twice within :data:`MIN_REFRESH_SECONDS`: a
flood of tokens with made-up ``kid`` values must not turn the service into a load on
Microsoft's metadata URL. A failed fetch refuses the request it was made for (401) and is
logged once, as a warning, until a fetch succeeds again; tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx
import jwt

from chatops_core.errors import InvalidWebhook
from chatops_core.providers.base import WebhookRequest
from chatops_core.providers.teams.config import BOT_ISSUER, TeamsSettings

log = logging.getLogger(__name__)

Mode = Literal["webhook", "bot"]

HMAC_SCHEME = "hmac"
BEARER_SCHEME = "bearer"
ALGORITHM = "RS256"
# "Industry-standard clock-skew is 5 minutes."
CLOCK_SKEW_SECONDS = 300
# How long fetched keys are used before they are fetched again (the Bot Framework SDK keeps
# them 5 days; a day keeps a withdrawn key from lingering as long).
KEYS_MAX_AGE_SECONDS = 24 * 3600.0
# The least time between two fetches of the metadata and keys, whatever asks for them.
MIN_REFRESH_SECONDS = 60.0
SERVICE_URL_CLAIM = "serviceurl"


def _refused(reason: str) -> InvalidWebhook:
    return InvalidWebhook("the request is not authentic", http_status=401, reason=reason)


def _authorization(request: WebhookRequest) -> tuple[str, str]:
    header = request.headers.get("Authorization") or ""
    scheme, _, credentials = str(header).strip().partition(" ")
    return scheme.lower(), credentials.strip()


def mode_of(request: WebhookRequest) -> Mode | None:
    """Which mode a request claims by its ``Authorization`` scheme (matched case-insensitively,
    as HTTP auth schemes are); None for any other or none."""
    scheme, _ = _authorization(request)
    if scheme == HMAC_SCHEME:
        return "webhook"
    if scheme == BEARER_SCHEME:
        return "bot"
    return None


def hmac_authorization(secret_b64: str, body: bytes) -> str:
    """The ``Authorization`` value Teams sends with ``body`` for the security token ``secret_b64``."""
    digest = hmac.new(base64.b64decode(secret_b64), body, hashlib.sha256).digest()
    return "HMAC " + base64.b64encode(digest).decode("ascii")


class _KeyCache:
    """The signing keys by ``kid``, fetched through the OpenID metadata, with refresh limits."""

    def __init__(
        self, metadata_url: str, *, http_timeout: float, min_refresh: float, clock: Callable[[], float]
    ) -> None:
        self._metadata_url = metadata_url
        self._timeout = http_timeout
        self._min_refresh = min_refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None  # last success
        self._tried_at: float | None = None  # last attempt, success or not
        self._warned = False

    def key(self, kid: str) -> dict[str, Any] | None:
        """The JWK of ``kid``: from the cache, else after one refresh when one is allowed."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= KEYS_MAX_AGE_SECONDS
            if (stale or kid not in self._keys) and self._may_fetch(now):
                self._refresh(now)
            return self._keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self._min_refresh

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            keys = self._fetch()
        except (httpx.HTTPError, ValueError, TypeError, KeyError) as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "could not fetch the Bot Framework signing keys (metadata %s): %s; bot-mode "
                    "requests are refused until a fetch succeeds",
                    self._metadata_url,
                    type(exc).__name__,
                )
            return
        self._keys = keys
        self._fetched_at = now
        self._warned = False

    def _fetch(self) -> dict[str, dict[str, Any]]:
        with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
            metadata = client.get(self._metadata_url)
            metadata.raise_for_status()
            jwks_uri = metadata.json()["jwks_uri"]
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise ValueError("the OpenID metadata names no jwks_uri")
            found = client.get(jwks_uri)
            found.raise_for_status()
            listed = found.json()["keys"]
        if not isinstance(listed, list):
            raise ValueError("the key set lists no keys")
        return {
            str(k["kid"]): k
            for k in listed
            if isinstance(k, dict) and isinstance(k.get("kid"), str) and k.get("kty") == "RSA"
        }


class TeamsVerifier:
    """Checks a request's ``Authorization`` for the modes ``settings`` configures.

    ``clock`` (monotonic seconds) paces the key fetches; token times are checked against the
    wall clock, as their ``exp``/``nbf`` are written.
    """

    def __init__(
        self,
        settings: TeamsSettings,
        *,
        http_timeout: float = 5.0,
        min_refresh_seconds: float = MIN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._keys = _KeyCache(
            settings.openid_metadata_url,
            http_timeout=http_timeout,
            min_refresh=min_refresh_seconds,
            clock=clock,
        )

    def verify(self, request: WebhookRequest) -> Mode:
        """The mode of an authentic request; :class:`InvalidWebhook` (401) otherwise."""
        mode = mode_of(request)
        if mode is None:
            raise _refused("no HMAC or Bearer authorization")
        _, credentials = _authorization(request)
        if mode == "webhook":
            self._check_hmac(credentials, request.body)
        else:
            self._check_token(credentials, request.body)
        return mode

    # -- webhook mode ------------------------------------------------------------------
    def _check_hmac(self, signature: str, body: bytes) -> None:
        secret = self._settings.outgoing_webhook_secret
        if secret is None:
            raise _refused("webhook mode is not configured")
        try:
            given = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise _refused("malformed HMAC signature") from None
        key = base64.b64decode(secret.get_secret_value())
        expected = hmac.new(key, body, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, given):
            raise _refused("HMAC signature mismatch")

    # -- bot mode ------------------------------------------------------------------------
    def _check_token(self, token: str, body: bytes) -> None:
        app_id = self._settings.app_id
        if app_id is None or not self._settings.bot_mode:
            raise _refused("bot mode is not configured")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise _refused("token not signed RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refused("token names no key")
        jwk = self._keys.key(kid)
        if jwk is None:
            raise _refused("token signed by an unknown key")
        try:
            public_key = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            claims = jwt.decode(
                token,
                key=public_key,
                algorithms=[ALGORITHM],
                audience=app_id,
                issuer=BOT_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise _refused(f"token refused: {type(exc).__name__}") from None
        activity = _activity(body)
        service_url = activity.get("serviceUrl")
        if not isinstance(service_url, str) or claims.get(SERVICE_URL_CLAIM) != service_url:
            raise _refused("serviceurl claim does not match the activity")
        endorsements = jwk.get("endorsements")
        if isinstance(endorsements, list) and endorsements and activity.get("channelId") not in endorsements:
            raise _refused("the key is not endorsed for the activity's channel")


def _activity(body: bytes) -> Mapping[str, Any]:
    """The activity a token came with; a body that is not one cannot match its claims."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _refused("body is not a JSON activity") from None
    if not isinstance(data, dict):
        raise _refused("body is not a JSON activity")
    return data


__all__ = ["MIN_REFRESH_SECONDS", "Mode", "TeamsVerifier", "hmac_authorization", "mode_of"]
