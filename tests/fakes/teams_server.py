"""A local HTTP server that plays Microsoft Teams, for unit and end-to-end tests.

One server on ``127.0.0.1`` plays everything the service talks to on Teams' side:

- **Incoming webhooks**, one pair of secret URLs per channel alias: a Workflows URL ("When a
  Teams webhook request is received", path shaped like a Logic Apps manual trigger
  ``/workflows/{id}/triggers/manual/paths/invoke?...&sig=...``) that takes only the Adaptive
  Card envelope, answers ``202`` and fails *asynchronously* on a wrong envelope (still 202; the
  flow run is recorded as failed and nothing is shown); and a legacy connector URL
  (``/webhookb2/{group}@{tenant}/IncomingWebhook/{id}/{guid}``) that takes MessageCard JSON
  and answers ``200`` with body ``1``. Per-URL limits (fixed windows): over them a Workflows
  URL answers 429 with ``Retry-After``; a connector answers 200 whose body says
  "Microsoft Teams endpoint returned HTTP error 429 ..." ("Connectors do not throw 429s").
- **Outgoing webhook requests** as Teams sends them: a Bot Framework Activity signed
  ``Authorization: HMAC <base64(HMAC-SHA256(key=base64-decoded secret, raw body))>``, sent with
  Teams' 5 s timeout; the answer is recorded as what Teams would show in the reply chain.
- **Bot Framework** (bot mode): an OpenID metadata document and a JWKS (RSA keys made with
  ``cryptography``; rotation adds a new ``kid``), signed inbound activities
  (``Authorization: Bearer <JWT>``, RS256, ``iss`` ``https://api.botframework.com``, ``aud`` the
  app id, ``nbf``/``exp``, ``serviceurl``) with knobs to forge them, the OAuth2 token endpoint
  (client credentials, scope ``https://api.botframework.com/.default``), and the Bot Connector
  API under a ``serviceUrl`` (post, update in place, reply) requiring a token from that endpoint.

Behaviour follows Microsoft's documentation:

- Outgoing webhooks (HMAC over the raw UTF-8 body with the base64-decoded security token,
  ``Authorization: HMAC ...``, 5 s to answer, reply ``{"type": "message", "text": ...}``, cards
  in the reply support only ``openUrl``, @mention only, public channels; the docs' test values
  ``vqF0En+Z0ucuRTM/01o2GuhMH3hKKk/N2bOmlM31zaA=`` / ``HMAC 03TCao0i55H1eVKUusZOTZRjtvYTs+mO41mPL+R1e1U=``
  come without the body they sign, so they cannot serve as a test vector):
  https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-outgoing-webhook
- Incoming webhooks, Workflows and the Adaptive Card envelope (``type`` ``message``,
  ``attachments[].contentType`` ``application/vnd.microsoft.card.adaptive``, ``content`` the
  card): https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
  and https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
- Connector MessageCard, the ``1`` answer, rate limits (1 s: 4, 30 s: 60, 3600 s: 100,
  7200 s: 150, 86400 s: 1800, "fixed-rate window and incremental counter") and the
  "Microsoft Teams endpoint returned HTTP error 429" body check:
  https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
- MessageCard reference (``@type``, ``@context``, ``summary``/``text``, ``sections``,
  ``potentialAction`` ``OpenUri``): https://learn.microsoft.com/en-us/outlook/actionable-messages/message-card-reference
- Bot rate limits (HTTP 429, back off): https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit
- Bot Connector authentication (token request to
  ``https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token``, its response
  ``token_type``/``expires_in``/``ext_expires_in``/``access_token``; the OpenID metadata at
  ``https://login.botframework.com/v1/.well-known/openidconfiguration`` with ``issuer``,
  ``jwks_uri``, ``id_token_signing_alg_values_supported``, ``token_endpoint_auth_methods_supported``;
  keys with ``endorsements``; the JWT checks: Bearer, issuer, audience = app id, expiry with
  5 min skew, signature by a listed key, ``serviceurl`` claim = the activity's ``serviceUrl``):
  https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-authentication
- Bot Connector API (``POST /v3/conversations/{id}/activities``, ``POST .../activities/{activityId}``
  to reply, ``PUT .../activities/{activityId}`` to update, ``ResourceResponse`` ``{"id"}``,
  ``ErrorResponse`` ``{"error": {"code", "message"}}``):
  https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference
- Adaptive Card actions in bots (``Action.Submit`` arrives as a ``message`` activity with
  ``value`` and ``replyToId``): https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-actions

Where the documentation is silent the fake does what Teams is observed to do and says so in a
comment: the Workflows failure text ``Property 'type' must be 'AdaptiveCard'``, the rest of
the connector's 429 text, the Bot Connector's 401 body, the AAD error texts.

Two documented details the fake follows as tokens really carry them: the ``serviceUrl`` claim
is spelled ``serviceurl`` in the JWT, and the article says to reject a bad token with 403 where
the service's contract answers 401 (the fake only builds the tokens; the answer is the
service's). RSA keys are shared by all fakes in a process (generating them is slow); each fake
publishes them under its own ``kid``.

Not played: creating conversations (``POST /v3/conversations``), deleting activities, members
and roster calls, Microsoft Graph (channel creation), ``x5c`` certificate chains in the JWKS,
the ``endorsements`` check of ``channelId`` (the keys carry ``["msteams"]``), private channels,
Adaptive Card schema validation beyond the card's ``type``, and bot rate limits other than the
scripted ones (Microsoft does not publish their values).

Recorded payloads from the documentation are in ``tests/fixtures/teams/`` (``SOURCES.md``).

Standard library plus ``cryptography`` (RSA)::

    with FakeTeams() as teams:
        # provider config: outgoing_webhook_secret=teams.outgoing_secret, app_id=teams.app_id,
        # app_password=teams.app_password, openid_metadata_url=teams.openid_metadata_url,
        # token_url=teams.token_url; channel "incidents": webhook_url=teams.workflow_url("incidents")
        answer = teams.send_outgoing(ingress_url, "declare sev2 DB down")
        card = teams.wait_for(lambda: teams.cards("incidents"))[-1]

Operations (the names ``calls()`` and ``fail()`` take; ``"*"`` in ``fail()`` is any):

=====================  =====================================================================
``workflow_post``      ``POST`` a Workflows webhook URL
``connector_post``     ``POST`` a legacy connector webhook URL
``openid_metadata``    ``GET /v1/.well-known/openidconfiguration``
``jwks``               ``GET /v1/.well-known/keys``
``token``              ``POST /botframework.com/oauth2/v2.0/token``
``send_activity``      ``POST {serviceUrl}v3/conversations/{id}/activities``
``reply_activity``     ``POST {serviceUrl}v3/conversations/{id}/activities/{activityId}``
``update_activity``    ``PUT {serviceUrl}v3/conversations/{id}/activities/{activityId}``
``outgoing_reply``     (not HTTP) what the service answered an outgoing webhook request
=====================  =====================================================================
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import math
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.local_server import KeepAliveHandler, LocalServer
from tests.fakes.recorded import CallRecord, HttpCall, ManualClock, wait_for
from tests.fakes.recorded import Delivered as _Delivered
from tests.fakes.recorded import Reply as _Reply

T = TypeVar("T")

BOT_ISSUER = "https://api.botframework.com"  # "iss" of tokens the channel sends to a bot
BOT_SCOPE = "https://api.botframework.com/.default"
# The botframework.com tenant id, "iss"/"tid" of the tokens AAD hands a bot.
BOTFRAMEWORK_TENANT = "d6d49420-f39b-4df7-a1dc-d59a935871db"
OPENID_PATH = "/v1/.well-known/openidconfiguration"
JWKS_PATH = "/v1/.well-known/keys"
TOKEN_PATH = "/botframework.com/oauth2/v2.0/token"
SERVICE_PATH = "/teams/"  # as in https://smba.trafficmanager.net/teams/
ADAPTIVE_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
OUTGOING_TIMEOUT = 5.0  # "your code will have 5 seconds to respond"
CLOCK_SKEW = 300.0  # "Industry-standard clock-skew is 5 minutes"
TOKEN_LIFETIME = 3600
# Per-URL limits (window seconds, maximum requests), from "Rate limiting for connectors".
CONNECTOR_LIMITS: tuple[tuple[float, int], ...] = ((1, 4), (30, 60), (3600, 100), (7200, 150), (86400, 1800))
WORKFLOW_LIMITS: tuple[tuple[float, int], ...] = ((1, 4), (30, 60), (3600, 100))
# The docs' check is `Contains("Microsoft Teams endpoint returned HTTP error 429")`; the rest of
# the text (ContextId) is as observed.
CONNECTOR_429_TEXT = (
    "Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=fake-teams,cv={cv}."
)
# What a Workflows flow run reports for a body that is not the Adaptive Card envelope (observed
# in flow run history as AdaptiveSerializationException).
NOT_ADAPTIVE = "Property 'type' must be 'AdaptiveCard'"
DEFAULT_CHANNELS = ("general", "incidents", "critical-incidents")
DEFAULT_USERS = ("alice", "bob", "carol")
BOT_NAME = "IncidentBot"


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call(HttpCall):
    """One request the fake received (``op`` as in the module docstring, ``"unknown"`` for an
    unserved path); headers have lowercase names; ``status``/``response`` what it answered."""

    target: str | None = None  # channel alias or conversation id


@dataclass(frozen=True)
class Outgoing:
    """A request as Teams sends it to the service: raw body, headers, parsed body."""

    url: str | None
    body: bytes
    headers: dict[str, str]
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data.get("id"))


@dataclass(frozen=True)
class Delivered(_Delivered):
    """What the service answered (``status`` 0 with ``timed_out`` when it did not in time).

    ``shown`` is what Teams would show for it (outgoing webhooks: the reply in the chain)."""

    timed_out: bool = False
    elapsed: float = 0.0
    shown: dict[str, Any] | None = None


@dataclass
class _Fault:
    status: int
    retry_after: float
    body: Any
    real_429: bool


@dataclass
class _Hook:
    alias: str
    kind: str  # "workflow" | "connector"
    path: str
    query: str
    sig: str
    limits: tuple[tuple[float, int], ...]
    removed: bool = False


# -- signing helpers ---------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def hmac_signature(secret_b64: str, body: bytes) -> str:
    """``HMAC <base64>``: base64(HMAC-SHA256(key = base64-decoded secret, raw body))."""
    digest = hmac.new(base64.b64decode(secret_b64), body, hashlib.sha256).digest()
    return "HMAC " + base64.b64encode(digest).decode()


def verify_hmac(secret_b64: str, body: bytes, authorization: str | None) -> bool:
    """Check an ``Authorization`` header as the docs' samples do (constant time)."""
    if not authorization:
        return False
    try:
        expected = hmac_signature(secret_b64, body)
    except ValueError:
        return False
    return hmac.compare_digest(expected.encode(), authorization.encode())


_KEY_POOL: list[rsa.RSAPrivateKey] = []
_KEY_POOL_LOCK = threading.Lock()


def _pooled_private_key(index: int) -> rsa.RSAPrivateKey:
    """The ``index``-th RSA key of this process, made on first use: generating 2048-bit keys
    is slow, so fakes share the material (each fake has its own ``kid`` for it)."""
    with _KEY_POOL_LOCK:
        while len(_KEY_POOL) <= index:
            _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEY_POOL[index]


class RsaKey:
    """An RSA signing key with its ``kid``; :meth:`jwk` is its public JWKS entry."""

    def __init__(
        self,
        kid: str,
        endorsements: Iterable[str] = ("msteams",),
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.kid = kid
        self.endorsements = list(endorsements)
        self.private_key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _int_b64url(numbers.n),
            "e": _int_b64url(numbers.e),
            "endorsements": list(self.endorsements),
        }

    def sign_jwt(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        header = {"alg": "RS256", "kid": kid or self.kid, "typ": "JWT", "x5t": kid or self.kid}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
        )
        signature = self.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, unverified."""
    head, body, _ = token.split(".")
    return json.loads(_b64url_decode(head)), json.loads(_b64url_decode(body))


def verify_jwt_with_jwks(token: str, jwks: Mapping[str, Any]) -> dict[str, Any] | None:
    """Verify an RS256 signature against a JWKS with ``cryptography`` only; the claims, or
    None when no listed key signed it. (Claims such as ``aud``/``exp`` are not checked here.)"""
    header, claims = jwt_parts(token)
    key = next((k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if key is None or header.get("alg") != "RS256":
        return None
    public = rsa.RSAPublicNumbers(
        int.from_bytes(_b64url_decode(key["e"]), "big"), int.from_bytes(_b64url_decode(key["n"]), "big")
    ).public_key()
    signing_input, _, signature = token.rpartition(".")
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(_b64url_decode(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return None
    return claims


# -- helpers for tests ---------------------------------------------------------------------------


def send(outgoing: Outgoing, url: str | None = None, timeout: float = OUTGOING_TIMEOUT) -> Delivered:
    """POST ``outgoing`` to ``url`` (default: its own) and return the answer, whatever its status."""
    target = url or outgoing.url
    if not target:
        raise ValueError("no URL to send to")
    request = urllib.request.Request(target, data=outgoing.body, headers=outgoing.headers, method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - local test URLs
            body = response.read()
            return Delivered(
                response.status, dict(response.headers.items()), body, elapsed=time.monotonic() - started
            )
    except urllib.error.HTTPError as error:
        return Delivered(
            error.code, dict(error.headers.items()), error.read(), elapsed=time.monotonic() - started
        )
    except TimeoutError:
        return Delivered(0, {}, b"", timed_out=True, elapsed=time.monotonic() - started)
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError | socket.timeout):
            return Delivered(0, {}, b"", timed_out=True, elapsed=time.monotonic() - started)
        raise


def _copy(value: T) -> T:
    return copy.deepcopy(value)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(code: str, message: str) -> dict[str, Any]:
    """The Bot Connector ``ErrorResponse``."""
    return {"error": {"code": code, "message": message}}


def _card_actions(node: Any) -> list[str]:
    """Every ``type`` of an Adaptive Card action found anywhere in ``node``."""
    found: list[str] = []
    if isinstance(node, dict):
        kind = node.get("type")
        if isinstance(kind, str) and kind.startswith("Action."):
            found.append(kind)
        for value in node.values():
            found.extend(_card_actions(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_card_actions(item))
    return found


def _envelope_problem(body: Any) -> str | None:
    """Why a Workflows flow run would fail on ``body``, or None when it posts."""
    if not isinstance(body, dict):
        return NOT_ADAPTIVE
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        # A bare card or any other JSON reaches "Post card" as the card itself.
        return (
            NOT_ADAPTIVE
            if body.get("type") != "AdaptiveCard"
            else NOT_ADAPTIVE + " (send the message envelope)"
        )
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CONTENT_TYPE:
            return NOT_ADAPTIVE
        content = attachment.get("content")
        if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
            return NOT_ADAPTIVE
    return None


# -- the server ---------------------------------------------------------------------------------


class FakeTeams(CallRecord[Call, _Fault], LocalServer):
    """Microsoft Teams' webhooks and Bot Framework services on ``127.0.0.1``, in a thread.

    Channel aliases ``channels`` each get a Workflows URL and a legacy connector URL and, for
    bot mode, a conversation (``conversation_id(alias)``). ``clock`` gives the time for rate
    windows, token and JWT lifetimes (a :class:`ManualClock` moves it without sleeping).
    ``seed`` makes ids and secrets reproducible (RSA keys are always fresh).
    """

    def __init__(
        self,
        *,
        channels: Iterable[str] = DEFAULT_CHANNELS,
        users: Iterable[str] = DEFAULT_USERS,
        bot_name: str = BOT_NAME,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        self.clock = clock
        self.bot_name = bot_name
        self._port = port
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self.tenant_id = self._guid()
        self.team_id = f"19:{self._hex(32)}@thread.tacv2"
        self.app_id = self._guid()
        self.app_password = _b64url(self._rng.randbytes(30))
        # The security token Teams shows when an outgoing webhook is created (base64).
        self.outgoing_secret = base64.b64encode(self._rng.randbytes(32)).decode()
        self.outgoing_bot_id = f"28:{self._guid()}"
        self.bot_id = f"28:{self.app_id}"
        self._users: dict[str, dict[str, Any]] = {}
        self._hooks: dict[str, _Hook] = {}  # by path
        self._hook_by_alias: dict[tuple[str, str], _Hook] = {}
        self._cards: dict[str, list[dict[str, Any]]] = {}
        self._flow_runs: dict[str, list[dict[str, Any]]] = {}
        self._replies: dict[str, list[dict[str, Any]]] = {}
        self._conversations: dict[str, dict[str, Any]] = {}  # by id
        self._conversation_by_alias: dict[str, str] = {}
        self._activities: dict[str, dict[str, Any]] = {}  # by activity id
        self._windows: dict[tuple[str, float, int], int] = {}
        self._tokens: dict[str, float] = {}  # access token -> expiry
        self._calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = {}
        # Pool slot 0 signs what no published key matches (forgeries, the AAD access tokens);
        # slots 1.. are the published keys, one more per rotation.
        self.foreign_key = RsaKey("foreign-" + self._hex(8), private_key=_pooled_private_key(0))
        self._key_slots = itertools.count(1)
        self.keys: list[RsaKey] = [
            RsaKey(self._kid(), private_key=_pooled_private_key(next(self._key_slots)))
        ]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for name in users:
            self.add_user(name)
        for alias in channels:
            self.add_channel(alias)

    # -- lifecycle -----------------------------------------------------------------------
    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    @property
    def openid_metadata_url(self) -> str:
        return self.url + OPENID_PATH

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def service_url(self) -> str:
        """The ``serviceUrl`` activities carry (``https://smba.trafficmanager.net/teams/``)."""
        return self.url + SERVICE_PATH

    # -- set-up --------------------------------------------------------------------------
    def add_user(self, name: str) -> dict[str, Any]:
        with self._lock:
            aad = self._guid()
            user = {"id": f"29:{self._hex(40)}", "name": name.capitalize(), "aadObjectId": aad, "login": name}
            self._users[name] = user
            return _copy(user)

    def user(self, name: str) -> dict[str, Any]:
        with self._lock:
            return _copy(self._require_user(name))

    def add_channel(
        self,
        alias: str,
        *,
        workflow_limits: tuple[tuple[float, int], ...] = WORKFLOW_LIMITS,
        connector_limits: tuple[tuple[float, int], ...] = CONNECTOR_LIMITS,
    ) -> None:
        """A channel with a Workflows URL, a connector URL and a bot conversation."""
        with self._lock:
            workflow_id = self._hex(32)
            sig = _b64url(self._rng.randbytes(32))
            workflow = _Hook(
                alias,
                "workflow",
                f"/workflows/{workflow_id}/triggers/manual/paths/invoke",
                f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}",
                sig,
                workflow_limits,
            )
            connector = _Hook(
                alias,
                "connector",
                f"/webhookb2/{self._guid()}@{self.tenant_id}/IncomingWebhook/{self._hex(32)}/{self._guid()}",
                "",
                "",
                connector_limits,
            )
            for hook in (workflow, connector):
                self._hooks[hook.path] = hook
                self._hook_by_alias[(alias, hook.kind)] = hook
            self._cards.setdefault(alias, [])
            self._flow_runs.setdefault(alias, [])
            self._replies.setdefault(alias, [])
            channel_id = f"19:{self._hex(32)}@thread.tacv2"
            self._conversations[channel_id] = {
                "id": channel_id,
                "alias": alias,
                "conversationType": "channel",
                "activities": [],
            }
            self._conversation_by_alias[alias] = channel_id

    def add_conversation(self, alias: str, conversation_type: str = "personal") -> str:
        """A group chat (``groupChat``) or personal chat (``personal``) for bot mode."""
        with self._lock:
            prefix = "19:" if conversation_type == "groupChat" else "a:"
            cid = prefix + self._hex(40) + ("@thread.v2" if conversation_type == "groupChat" else "")
            self._conversations[cid] = {
                "id": cid,
                "alias": alias,
                "conversationType": conversation_type,
                "activities": [],
            }
            self._conversation_by_alias[alias] = cid
            return cid

    def workflow_url(self, alias: str) -> str:
        hook = self._hook(alias, "workflow")
        return f"{self.url}{hook.path}?{hook.query}"

    def connector_url(self, alias: str) -> str:
        return self.url + self._hook(alias, "connector").path

    def webhook_url(self, alias: str, format: str = "adaptive") -> str:  # noqa: A002 - config name
        """The ``webhook_url`` for a channel alias of ``format`` ``adaptive`` or ``messagecard``."""
        return self.workflow_url(alias) if format == "adaptive" else self.connector_url(alias)

    def remove_webhook(self, alias: str, kind: str = "workflow") -> None:
        """Delete a webhook (the workflow or the connector): its URL answers 404 from now on."""
        with self._lock:
            self._hook(alias, kind).removed = True

    def set_limits(self, alias: str, kind: str, limits: tuple[tuple[float, int], ...]) -> None:
        with self._lock:
            self._hook(alias, kind).limits = tuple(limits)

    def conversation_id(self, alias: str) -> str:
        with self._lock:
            return self._conversation_by_alias[alias]

    def fail(
        self,
        op: str,
        times: int = 1,
        status: int = 429,
        *,
        retry_after: float = 1.0,
        body: Any = None,
        real_429: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``op`` (``"*"``: any) fail before taking effect.

        ``429``: ``Retry-After`` and an error body; for ``connector_post`` a 200 whose body
        reports the 429 (as connectors do), unless ``real_429``. ``400``: a bad payload answer;
        ``401``/``403``/``404``/``5xx``: the operation's error shape. ``body``: exactly that.
        """
        self._script_fault(op, times, lambda: _Fault(status, retry_after, body, real_429))

    # -- keys (bot mode) -------------------------------------------------------------------
    @property
    def signing_key(self) -> RsaKey:
        """The key inbound activities are signed with (the newest)."""
        return self.keys[-1]

    def rotate_keys(self, *, keep_old: bool = True) -> str:
        """Publish a new signing key and sign with it from now on; returns its ``kid``.

        A service that cached the old JWKS meets an unknown ``kid`` and must refresh."""
        with self._lock:
            key = RsaKey(self._kid(), private_key=_pooled_private_key(next(self._key_slots)))
            self.keys = ([*self.keys] if keep_old else []) + [key]
            return key.kid

    def openid_metadata(self) -> dict[str, Any]:
        """The document at ``openid_metadata_url`` (shape as in the authentication article)."""
        return {
            "issuer": BOT_ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.jwk() for key in self.keys]}

    def inbound_jwt(
        self,
        service_url: str | None = None,
        *,
        audience: str | None = None,
        issuer: str = BOT_ISSUER,
        lifetime: float = 3600.0,
        expired: bool = False,
        not_yet_valid: bool = False,
        foreign_key: bool = False,
        kid: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A token as the Bot Connector sends a bot, with knobs to forge it.

        ``foreign_key`` signs with a key the JWKS does not list (under a listed ``kid`` unless
        ``kid`` says otherwise); ``expired`` puts ``exp`` past the 5 minute skew;
        ``not_yet_valid`` puts ``nbf`` beyond it; ``audience``/``issuer``/``service_url`` override.
        """
        now = int(self.clock())
        claims: dict[str, Any] = {
            "serviceurl": service_url if service_url is not None else self.service_url,
            "nbf": now - 5,
            "exp": now + int(lifetime),
            "iss": issuer,
            "aud": audience if audience is not None else self.app_id,
        }
        if expired:
            claims["nbf"], claims["exp"] = now - 7200, now - int(CLOCK_SKEW) - 60
        if not_yet_valid:
            claims["nbf"] = now + int(CLOCK_SKEW) + 60
        claims.update(extra or {})
        with self._lock:
            if foreign_key:
                return self.foreign_key.sign_jwt(claims, kid=kid or self.signing_key.kid)
            return self.signing_key.sign_jwt(claims, kid=kid)

    # -- the outgoing webhook (webhook mode) ------------------------------------------------
    def outgoing_activity(
        self,
        command: str,
        *,
        user: str = "alice",
        channel: str = "incidents",
        mention: bool = True,
        url: str | None = None,
        secret: str | None = None,
        signature: str | None = None,
    ) -> Outgoing:
        """What an outgoing webhook POSTs for "@Bot <command>" in ``channel``, HMAC-signed.

        ``secret`` signs with another secret; ``signature`` sets the header as given ("" drops it).
        """
        with self._lock:
            data = self._message_activity(
                command, user=user, alias=channel, mention=mention, bot=self.outgoing_bot_id
            )
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        auth = signature if signature is not None else hmac_signature(secret or self.outgoing_secret, body)
        if auth:
            headers["Authorization"] = auth
        return Outgoing(url, body, headers, data)

    def send_outgoing(
        self, url: str, command: str, *, timeout: float = OUTGOING_TIMEOUT, **kwargs: Any
    ) -> Delivered:
        """Send an outgoing webhook request and record what Teams would show in the reply chain.

        Teams shows the answer's ``text`` and attachments when the service answers 2xx with a
        message within 5 s; otherwise an error notice (``shown["error"]``). Card actions other
        than ``Action.OpenUrl`` are listed in ``shown["unsupported_actions"]``.
        """
        outgoing = self.outgoing_activity(command, url=url, **kwargs)
        return self.deliver_outgoing(outgoing, timeout=timeout)

    def deliver_outgoing(
        self, outgoing: Outgoing, url: str | None = None, timeout: float = OUTGOING_TIMEOUT
    ) -> Delivered:
        delivered = send(outgoing, url, timeout)
        answer = delivered.json
        shown: dict[str, Any] = {"in_reply_to": outgoing.id, "status": delivered.status}
        if delivered.timed_out:
            shown["error"] = "timeout"
        elif not 200 <= delivered.status < 300:
            shown["error"] = f"HTTP {delivered.status}"
        elif isinstance(answer, dict):
            shown["text"] = answer.get("text")
            shown["attachments"] = _copy(answer.get("attachments") or [])
            shown["unsupported_actions"] = [
                a for a in _card_actions(shown["attachments"]) if a != "Action.OpenUrl"
            ]
        else:
            shown["error"] = "unreadable answer"
        alias = self._alias_of_channel(outgoing.data)
        with self._lock:
            self._replies.setdefault(alias, []).append(shown)
            self._record(
                Call(
                    "outgoing_reply",
                    "POST",
                    str(url or outgoing.url or ""),
                    {},
                    answer,
                    delivered.body.decode("utf-8", "replace"),
                    {},
                    self.clock(),
                    delivered.status,
                    shown,
                    target=alias,
                )
            )
        return Delivered(
            delivered.status,
            delivered.headers,
            delivered.body,
            delivered.timed_out,
            delivered.elapsed,
            _copy(shown),
        )

    # -- bot mode inbound ----------------------------------------------------------------
    def bot_activity(
        self,
        command: str,
        *,
        user: str = "alice",
        conversation: str = "incidents",
        mention: bool = True,
        url: str | None = None,
        token: str | None = None,
        **forge: Any,
    ) -> Outgoing:
        """A message activity to the bot (channel, group chat or personal chat by the
        conversation's type), signed ``Authorization: Bearer <JWT>``; ``forge`` goes to
        :meth:`inbound_jwt`; ``token`` replaces the token ("" drops the header)."""
        with self._lock:
            data = self._message_activity(
                command, user=user, alias=conversation, mention=mention, bot=self.bot_id
            )
        return self._signed(data, url, token, forge)

    def submit_click(
        self,
        activity_id: str,
        data: Mapping[str, Any],
        *,
        user: str = "alice",
        url: str | None = None,
        token: str | None = None,
        **forge: Any,
    ) -> Outgoing:
        """``user`` clicks an ``Action.Submit`` whose ``data`` is ``data`` on the bot's activity
        ``activity_id``: a ``message`` activity with ``value`` and ``replyToId``."""
        with self._lock:
            shown = self._activities.get(activity_id)
            if shown is None:
                raise KeyError(f"FakeTeams has no activity {activity_id!r}")
            conversation = self._conversations[shown["conversation"]["id"]]
            activity = self._base_activity(user, conversation, self.bot_id)
            activity["replyToId"] = activity_id
            if conversation["conversationType"] == "channel":
                root = shown.get("replyToId") or activity_id
                activity["conversation"]["id"] = f"{conversation['id']};messageid={root}"
            activity["value"] = _copy(dict(data))
            activity["text"] = None
        return self._signed(activity, url, token, forge)

    def deliver(self, outgoing: Outgoing, url: str | None = None, timeout: float = 15.0) -> Delivered:
        """Send a bot-mode activity; the answer is returned as it is (bots answer 200/202)."""
        return send(outgoing, url, timeout)

    # -- inspection ----------------------------------------------------------------------
    def cards(self, alias: str) -> list[dict[str, Any]]:
        """What a channel shows from its webhooks, oldest first: ``{"source": "workflow" |
        "connector", "kind": "adaptive" | "messagecard", "card": ..., "time": ...}``."""
        with self._lock:
            return _copy(self._cards.get(alias, []))

    def flow_runs(self, alias: str) -> list[dict[str, Any]]:
        """Workflows runs of a channel: ``{"status": "Succeeded" | "Failed", "error", "body"}``."""
        with self._lock:
            return _copy(self._flow_runs.get(alias, []))

    def replies(self, alias: str) -> list[dict[str, Any]]:
        """What Teams showed in reply to outgoing webhook requests in a channel."""
        with self._lock:
            return _copy(self._replies.get(alias, []))

    def activities(self, conversation: str, *, replies: bool = True) -> list[dict[str, Any]]:
        """A conversation's bot activities as shown (updates replaced), oldest first; by
        alias or id; without ``replies`` only the thread roots."""
        with self._lock:
            cid = self._conversation_by_alias.get(conversation, conversation)
            found = self._conversations.get(cid)
            if found is None:
                return []
            return [
                _copy(self._activities[a])
                for a in found["activities"]
                if replies or not self._activities[a].get("replyToId")
            ]

    def activity(self, activity_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._activities.get(activity_id)
            return _copy(found) if found is not None else None

    # -- request handling ----------------------------------------------------------------
    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        text = raw.decode("utf-8", "replace")
        form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        body: Any = None
        bad_json = False
        if raw.strip() and not form:
            try:
                body = json.loads(text)
            except ValueError:
                bad_json = True
        with self._lock:
            op, handler, args = self._route(method, parts.path)
            reply_target: str | None = None
            try:
                if handler is None:
                    raise _Reply(404, {"error": {"code": "NotFound", "message": "Not found."}})
                reply_target, status, answer, extra = handler(
                    *args, query=query, body=body, bad_json=bad_json, headers=headers, text=text, op=op
                )
                reply = _Reply(status, answer, extra)
            except _Reply as error:
                reply = error
            self._record(
                Call(
                    op,
                    method,
                    parts.path,
                    query,
                    body if not form else dict(parse_qsl(text)),
                    text,
                    dict(headers),
                    self.clock(),
                    reply.status,
                    reply.body,
                    dict(reply.headers),
                    reply_target or (args[0].alias if args and isinstance(args[0], _Hook) else None),
                )
            )
            return reply.status, reply.body, reply.headers

    def _route(self, method: str, path: str) -> tuple[str, Callable[..., Any] | None, tuple[Any, ...]]:
        hook = self._hooks.get(path)
        if hook is not None and method == "POST":
            return (
                hook.kind + "_post",
                self._workflow_post if hook.kind == "workflow" else self._connector_post,
                (hook,),
            )
        if path == OPENID_PATH and method == "GET":
            return "openid_metadata", self._get_openid, ()
        if path == JWKS_PATH and method == "GET":
            return "jwks", self._get_jwks, ()
        if path == TOKEN_PATH and method == "POST":
            return "token", self._token, ()
        match = re.match(r"^/teams/v3/conversations/([^/]+)/activities(?:/([^/]+))?$", path)
        if match:
            cid, aid = unquote(match.group(1)), match.group(2)
            if aid is None and method == "POST":
                return "send_activity", self._send_activity, (cid, None)
            if aid is not None and method == "POST":
                return "reply_activity", self._send_activity, (cid, unquote(aid))
            if aid is not None and method == "PUT":
                return "update_activity", self._update_activity, (cid, unquote(aid))
        return "unknown", None, ()

    def _count(self, key: str, limits: tuple[tuple[float, int], ...]) -> float | None:
        """Count a request in fixed windows; the seconds until the fullest window resets when
        over a limit (the request is then not counted), else None."""
        now = self.clock()
        waits = []
        for window, maximum in limits:
            index = int(now // window)
            if self._windows.get((key, window, index), 0) >= maximum:
                waits.append((index + 1) * window - now)
        if waits:
            return max(waits)
        for window, _ in limits:
            index = int(now // window)
            self._windows[(key, window, index)] = self._windows.get((key, window, index), 0) + 1
        return None

    # -- incoming webhooks -----------------------------------------------------------------
    def _workflow_post(
        self, hook: _Hook, *, query: Mapping[str, str], body: Any, bad_json: bool, **_: Any
    ) -> Any:
        if hook.removed:
            # A deleted flow's trigger URL (Logic Apps' error envelope).
            raise _Reply(
                404, {"error": {"code": "WorkflowNotFound", "message": "The workflow was not found."}}
            )
        if not hmac.compare_digest(str(query.get("sig", "")).encode(), hook.sig.encode()):
            raise _Reply(
                401,
                {
                    "error": {
                        "code": "DirectApiAuthorizationRequired",
                        "message": "The request must be authenticated.",
                    }
                },
            )
        fault = self._take_fault("workflow_post")
        if fault is not None:
            self._raise_webhook_fault(fault, "workflow")
        if bad_json or body is None:
            raise _Reply(
                400,
                {
                    "error": {
                        "code": "InvalidRequestContent",
                        "message": "The request content is not valid JSON.",
                    }
                },
            )
        wait = self._count(hook.path, hook.limits)
        if wait is not None:
            retry = max(1, math.ceil(wait))
            raise _Reply(
                429,
                {"error": {"code": "TooManyRequests", "message": "Rate limit is exceeded. Try again later."}},
                {"Retry-After": str(retry)},
            )
        run = {
            "id": self._hex(16),
            "status": "Succeeded",
            "error": None,
            "body": _copy(body),
            "time": self.clock(),
        }
        problem = _envelope_problem(body)
        if problem is not None:
            run["status"], run["error"] = "Failed", problem
        else:
            for attachment in body["attachments"]:
                self._cards[hook.alias].append(
                    {
                        "source": "workflow",
                        "kind": "adaptive",
                        "card": _copy(attachment["content"]),
                        "time": self.clock(),
                    }
                )
        self._flow_runs[hook.alias].append(run)
        # The trigger accepts before the flow runs: 202 whatever the run does later.
        return hook.alias, 202, b"", {"x-ms-workflow-run-id": run["id"]}

    def _connector_post(self, hook: _Hook, *, body: Any, bad_json: bool, **_: Any) -> Any:
        if hook.removed:
            raise _Reply(404, b"Webhook not found.")  # observed text/plain
        fault = self._take_fault("connector_post")
        if fault is not None:
            self._raise_webhook_fault(fault, "connector")
        if bad_json or not isinstance(body, dict):
            raise _Reply(400, b"Bad payload received by generic incoming webhook.")  # observed
        wait = self._count(hook.path, hook.limits)
        if wait is not None:
            # "Connectors do not throw 429s": the status is 200 and the body reports it.
            return hook.alias, 200, CONNECTOR_429_TEXT.format(cv=self._hex(22)).encode(), {}
        if body.get("type") == "message" and isinstance(body.get("attachments"), list):
            problem = _envelope_problem(body)
            if problem is not None:
                raise _Reply(400, b"Bad payload received by generic incoming webhook.")
            for attachment in body["attachments"]:
                self._cards[hook.alias].append(
                    {
                        "source": "connector",
                        "kind": "adaptive",
                        "card": _copy(attachment["content"]),
                        "time": self.clock(),
                    }
                )
            return hook.alias, 200, b"1", {}
        if not (body.get("text") or body.get("summary")):
            raise _Reply(400, b"Summary or Text is required.")  # observed
        self._cards[hook.alias].append(
            {"source": "connector", "kind": "messagecard", "card": _copy(body), "time": self.clock()}
        )
        return hook.alias, 200, b"1", {}

    def _raise_webhook_fault(self, fault: _Fault, kind: str) -> None:
        if fault.body is not None:
            raise _Reply(fault.status, fault.body)
        if fault.status == 429:
            if kind == "connector" and not fault.real_429:
                raise _Reply(200, CONNECTOR_429_TEXT.format(cv=self._hex(22)).encode())
            raise _Reply(
                429,
                {"error": {"code": "TooManyRequests", "message": "Rate limit is exceeded. Try again later."}},
                {"Retry-After": str(max(1, math.ceil(fault.retry_after)))},
            )
        if fault.status == 400:
            raise _Reply(400, b"Bad payload received by generic incoming webhook.")
        if fault.status == 404:
            raise _Reply(
                404,
                b"Webhook not found."
                if kind == "connector"
                else {"error": {"code": "WorkflowNotFound", "message": "The workflow was not found."}},
            )
        raise _Reply(
            fault.status,
            {
                "error": {
                    "code": "ServiceUnavailable" if fault.status >= 500 else "Error",
                    "message": f"Scripted failure {fault.status}.",
                }
            },
        )

    # -- Bot Framework -------------------------------------------------------------------
    def _get_openid(self, **_: Any) -> Any:
        fault = self._take_fault("openid_metadata")
        if fault is not None:
            raise _Reply(fault.status, fault.body)
        return None, 200, self.openid_metadata(), {}

    def _get_jwks(self, **_: Any) -> Any:
        fault = self._take_fault("jwks")
        if fault is not None:
            raise _Reply(fault.status, fault.body)
        return None, 200, self.jwks(), {}

    def _token(self, *, text: str, headers: Mapping[str, str], **_: Any) -> Any:
        form = dict(parse_qsl(text))
        basic = headers.get("authorization", "")
        if basic.startswith("Basic "):  # client_secret_basic instead of the form fields
            try:
                client_id, _sep, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                client_id, client_secret = "", ""
            form.setdefault("client_id", unquote(client_id))
            form.setdefault("client_secret", unquote(client_secret))
        fault = self._take_fault("token")
        if fault is not None:
            raise _Reply(
                fault.status,
                fault.body
                or self._aad_error(
                    "temporarily_unavailable", "AADSTS50196: The server terminated an operation."
                ),
            )
        if form.get("grant_type") != "client_credentials":
            raise _Reply(
                400,
                self._aad_error(
                    "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type."
                ),
            )
        if form.get("client_id") != self.app_id:
            raise _Reply(
                400,
                self._aad_error(
                    "unauthorized_client",
                    f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found "
                    "in the directory 'Bot Framework'.",
                ),
            )
        if not hmac.compare_digest(form.get("client_secret", "").encode(), self.app_password.encode()):
            raise _Reply(
                401,
                self._aad_error(
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{self.app_id}'.",
                ),
            )
        if form.get("scope") != BOT_SCOPE:
            raise _Reply(
                400,
                self._aad_error(
                    "invalid_scope",
                    "AADSTS70011: The provided request must include a 'scope' input parameter. The "
                    "provided value for the input parameter 'scope' is not valid. "
                    f"The scope {form.get('scope')} is not valid.",
                ),
            )
        now = int(self.clock())
        claims = {
            "aud": BOT_ISSUER,
            "iss": f"https://sts.windows.net/{BOTFRAMEWORK_TENANT}/",
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME,
            "appid": self.app_id,
            "tid": BOTFRAMEWORK_TENANT,
            "jti": self._hex(16),
        }
        token = self.foreign_key.sign_jwt(claims, kid="aad-" + self.foreign_key.kid)
        self._tokens[token] = now + TOKEN_LIFETIME
        return (
            None,
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": token,
            },
            {},
        )

    def _aad_error(self, error: str, description: str) -> dict[str, Any]:
        """Azure AD's OAuth2 error body (``error``, ``error_description`` with trace lines,
        ``error_codes``, ...)."""
        code = re.search(r"AADSTS(\d+)", description)
        return {
            "error": error,
            "error_description": (
                f"{description}\r\nTrace ID: {self._guid()}\r\nCorrelation ID: {self._guid()}"
                f"\r\nTimestamp: {_iso(self.clock())}"
            ),
            "error_codes": [int(code.group(1))] if code else [],
            "timestamp": _iso(self.clock()),
            "trace_id": self._guid(),
            "correlation_id": self._guid(),
        }

    def _check_bearer(self, headers: Mapping[str, str]) -> None:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        expiry = self._tokens.get(token)
        if expiry is None or self.clock() >= expiry:
            # What the Bot Connector answers a missing, foreign or expired token (observed).
            raise _Reply(401, {"message": "Authorization has been denied for this request."})

    def _connector_fault(self, op: str) -> None:
        fault = self._take_fault(op)
        if fault is None:
            return
        if fault.body is not None:
            raise _Reply(fault.status, fault.body)
        if fault.status == 429:
            raise _Reply(
                429,
                _error("Throttled", "Too many requests."),
                {"Retry-After": str(max(1, math.ceil(fault.retry_after)))},
            )
        if fault.status == 403:
            raise _Reply(
                403, _error("BotNotInConversationRoster", "The bot is not part of the conversation roster.")
            )
        if fault.status == 404:
            raise _Reply(404, _error("ConversationNotFound", "Conversation not found."))
        if fault.status == 401:
            raise _Reply(401, {"message": "Authorization has been denied for this request."})
        if fault.status == 400:
            raise _Reply(400, _error("BadArgument", "Malformed activity."))
        raise _Reply(fault.status, _error("ServiceError", f"Scripted failure {fault.status}."))

    def _conversation(self, cid: str) -> dict[str, Any]:
        found = self._conversations.get(cid.split(";messageid=")[0])
        if found is None:
            raise _Reply(404, _error("ConversationNotFound", "Conversation not found."))
        return found

    def _check_activity(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("type") != "message":
            raise _Reply(400, _error("BadArgument", "Unknown activity type"))
        if not body.get("text") and not body.get("attachments"):
            raise _Reply(400, _error("BadArgument", "Activity has no text and no attachments."))
        for attachment in body.get("attachments") or []:
            if (
                attachment.get("contentType") == ADAPTIVE_CONTENT_TYPE
                and (attachment.get("content") or {}).get("type") != "AdaptiveCard"
            ):
                raise _Reply(400, _error("BadArgument", "Malformed Adaptive Card."))
        return body

    def _send_activity(
        self, cid: str, reply_to: str | None, *, body: Any, headers: Mapping[str, str], op: str, **_: Any
    ) -> Any:
        self._check_bearer(headers)
        self._connector_fault(op)
        conversation = self._conversation(cid)
        activity = _copy(self._check_activity(body))
        if reply_to is None and ";messageid=" in cid:
            # A channel thread's conversation id ("...;messageid=<root>") posts into that thread.
            reply_to = cid.split(";messageid=")[1]
        if reply_to is not None:
            if reply_to not in conversation["activities"] and reply_to not in self._activities:
                raise _Reply(404, _error("NotFound", "The activity to reply to was not found."))
            activity["replyToId"] = reply_to
        aid = str(int(self.clock() * 1000)) + f"{next(self._counter):03d}"
        activity.update(
            {
                "id": aid,
                "conversation": {
                    "id": conversation["id"],
                    "conversationType": conversation["conversationType"],
                },
                "from": {"id": self.bot_id, "name": self.bot_name},
                "timestamp": _iso(self.clock()),
                "version": 1,
            }
        )
        self._activities[aid] = activity
        conversation["activities"].append(aid)
        return cid, 200, {"id": aid}, {}

    def _update_activity(
        self, cid: str, aid: str, *, body: Any, headers: Mapping[str, str], op: str, **_: Any
    ) -> Any:
        self._check_bearer(headers)
        self._connector_fault(op)
        conversation = self._conversation(cid)
        if aid not in conversation["activities"]:
            raise _Reply(404, _error("NotFound", "Activity not found."))
        activity = _copy(self._check_activity(body))
        old = self._activities[aid]
        activity.update(
            {
                "id": aid,
                "conversation": old["conversation"],
                "from": old["from"],
                "timestamp": old["timestamp"],
                "lastModified": _iso(self.clock()),
                "version": old.get("version", 1) + 1,
            }
        )
        if old.get("replyToId"):
            activity["replyToId"] = old["replyToId"]
        self._activities[aid] = activity  # updates replace what is shown
        return cid, 200, {"id": aid}, {}

    # -- building activities -------------------------------------------------------------------
    def _signed(
        self, data: dict[str, Any], url: str | None, token: str | None, forge: Mapping[str, Any]
    ) -> Outgoing:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        jwt = token if token is not None else self.inbound_jwt(**forge)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if jwt:
            headers["Authorization"] = f"Bearer {jwt}"
        return Outgoing(url, body, headers, data)

    def _base_activity(self, user: str, conversation: dict[str, Any], bot: str) -> dict[str, Any]:
        sender = self._require_user(user)
        now = self.clock()
        kind = conversation["conversationType"]
        convo: dict[str, Any] = {
            "conversationType": kind,
            "tenantId": self.tenant_id,
            "id": conversation["id"],
        }
        if kind != "personal":
            convo["isGroup"] = True
        activity: dict[str, Any] = {
            "type": "message",
            "id": str(int(now * 1000)) + f"{next(self._counter):03d}",
            "timestamp": _iso(now),
            "localTimestamp": _iso(now),
            "serviceUrl": self.service_url,
            "channelId": "msteams",
            "from": {"id": sender["id"], "name": sender["name"], "aadObjectId": sender["aadObjectId"]},
            "conversation": convo,
            "recipient": {"id": bot, "name": self.bot_name},
            "textFormat": "plain",
            "locale": "en-US",
            "entities": [
                {
                    "type": "clientInfo",
                    "locale": "en-US",
                    "country": "US",
                    "platform": "Web",
                    "timezone": "Europe/London",
                }
            ],
            "channelData": {"tenant": {"id": self.tenant_id}},
        }
        if kind == "channel":
            activity["channelData"].update(
                {
                    "teamsChannelId": conversation["id"],
                    "teamsTeamId": self.team_id,
                    "channel": {"id": conversation["id"], "name": conversation["alias"]},
                    "team": {"id": self.team_id, "name": "Operations"},
                }
            )
        return activity

    def _message_activity(
        self, command: str, *, user: str, alias: str, mention: bool, bot: str
    ) -> dict[str, Any]:
        cid = self._conversation_by_alias.get(alias, alias)
        conversation = self._conversations.get(cid)
        if conversation is None:
            raise KeyError(f"FakeTeams has no channel or conversation {alias!r}")
        activity = self._base_activity(user, conversation, bot)
        if conversation["conversationType"] == "channel":
            # A new channel post: the conversation id names the thread's root message.
            activity["conversation"]["id"] += f";messageid={activity['id']}"
        at = f"<at>{self.bot_name}</at>"
        activity["text"] = f"{at} {command}" if mention else command
        html = (
            '<div><span itemscope="" itemtype="http://schema.skype.com/Mention" itemid="0">'
            f"{self.bot_name}</span> {command}</div>"
        )
        activity["attachments"] = [
            {"contentType": "text/html", "content": html if mention else f"<div>{command}</div>"}
        ]
        if mention:
            activity["entities"].append(
                {"type": "mention", "mentioned": {"id": bot, "name": self.bot_name}, "text": at}
            )
        return activity

    def _alias_of_channel(self, data: Mapping[str, Any]) -> str:
        channel = (data.get("channelData") or {}).get("teamsChannelId") or ""
        found = self._conversations.get(channel)
        return found["alias"] if found else channel

    # -- ids -------------------------------------------------------------------------------
    def _hex(self, length: int) -> str:
        with self._lock:
            return "".join(self._rng.choice("0123456789abcdef") for _ in range(length))

    def _guid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _kid(self) -> str:
        return _b64url(self._rng.randbytes(20))

    def _hook(self, alias: str, kind: str) -> _Hook:
        found = self._hook_by_alias.get((alias, kind))
        if found is None:
            raise KeyError(f"FakeTeams has no {kind} webhook for {alias!r}")
        return found

    def _require_user(self, name: str) -> dict[str, Any]:
        found = self._users.get(name) or next((u for u in self._users.values() if u["id"] == name), None)
        if found is None:
            raise KeyError(f"FakeTeams has no user {name!r}")
        return found


def _handler_for(served: FakeTeams) -> type[BaseHTTPRequestHandler]:
    class Handler(KeepAliveHandler):
        fake = served
        server_version = "FakeTeams/1.0"
        json_type = "application/json; charset=utf-8"
        none_is_empty = True
        typed_when_empty = False

        do_GET = KeepAliveHandler.serve
        do_POST = KeepAliveHandler.serve
        do_PUT = KeepAliveHandler.serve
        do_DELETE = KeepAliveHandler.serve

    return Handler


__all__ = [
    "ADAPTIVE_CONTENT_TYPE",
    "BOT_ISSUER",
    "BOT_SCOPE",
    "CONNECTOR_LIMITS",
    "NOT_ADAPTIVE",
    "OUTGOING_TIMEOUT",
    "WORKFLOW_LIMITS",
    "Call",
    "Delivered",
    "FakeTeams",
    "ManualClock",
    "Outgoing",
    "RsaKey",
    "hmac_signature",
    "jwt_parts",
    "send",
    "verify_hmac",
    "verify_jwt_with_jwks",
    "wait_for",
]
