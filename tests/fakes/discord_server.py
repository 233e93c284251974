"""A local HTTP server that plays Discord, for unit and end-to-end tests.

It serves the HTTP API v10 calls the service makes (under ``/api/v10``): channel messages,
guild channels and their permission overwrites, interaction callbacks and the interaction
webhooks (``@original``, follow-ups), application command registration. It records every
request, puts Discord's rate-limit headers on every answer, and can be told to fail the way
Discord fails: 429 with ``retry_after``/``global`` and ``X-RateLimit-Scope``, 5xx, 403
``Missing Permissions``, 404 ``Unknown Channel``/``Unknown Message``, per-channel posting
limits. It also plays Discord's side of interactions: it holds an Ed25519 key pair, signs
interaction requests as Discord does, sends them to an Interactions Endpoint URL and applies
what that endpoint answers.

Behaviour follows Discord's documentation (https://github.com/discord/discord-api-docs):

- Interactions, receiving and responding (interaction object, callback types 1/4/5/6/7/9,
  ``/interactions/{id}/{token}/callback`` answering 204, tokens valid 15 minutes, the initial
  answer due within 3 s, ``@original``, follow-ups, a follow-up after a type 5 edits the
  loading message): https://discord.com/developers/docs/interactions/receiving-and-responding
- Interactions overview, security and authorization (``X-Signature-Ed25519`` hex over
  ``X-Signature-Timestamp`` + raw body, 401 on a bad signature, PING/PONG):
  https://discord.com/developers/docs/interactions/overview
- Application commands (naming regex, 1-32 / 1-100 characters, 25 options, subcommand
  nesting, 8000 characters a command, bulk overwrite):
  https://discord.com/developers/docs/interactions/application-commands
- Components (action rows: up to 5 buttons; ``custom_id`` 1-100 characters, unique in a
  message; legacy messages up to 5 action rows; Label type 18; modal submit payloads):
  https://discord.com/developers/docs/components/reference and
  https://discord.com/developers/docs/components/using-modal-components
- Messages (content up to 2000 characters; up to 10 embeds, 6000 characters in all, embed
  limits; flags EPHEMERAL 1<<6, LOADING 1<<7, IS_COMPONENTS_V2 1<<15; Get Channel Messages
  ``before``/``after``/``around``/``limit``; pins):
  https://discord.com/developers/docs/resources/message
- Channels (Modify Channel, Edit/Delete Channel Permission, Delete Channel, overwrite
  object): https://discord.com/developers/docs/resources/channel
- Guild channels (Create Guild Channel: name 1-100, topic 0-1024, ``permission_overwrites``,
  ``parent_id``): https://discord.com/developers/docs/resources/guild
- Rate limits (``X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket``, 429 body
  ``message``/``retry_after``/``global``, ``Retry-After``, ``X-RateLimit-Global``,
  ``X-RateLimit-Scope`` user/global/shared): https://discord.com/developers/docs/topics/rate-limits
- Error codes (0, 10003, 10004, 10008, 10015, 10062, 40060, 50001, 50006, 50013, 50035):
  https://discord.com/developers/docs/topics/opcodes-and-status-codes ; the form error shape
  (``{"code": 50035, "errors": {... "_errors": [{code, message}]}, "message": "Invalid Form
  Body"}``) and ``Authorization: Bot <token>``, snowflakes, ``User-Agent: DiscordBot (url,
  version)``: https://discord.com/developers/docs/reference

Where the documentation is silent the fake does what Discord is observed to do, and says so
in a comment: the 401 body ``{"message": "401: Unauthorized", "code": 0}``, 201 for a created
channel, text channel names lowercased with spaces turned into ``-``, the ``_errors`` codes'
names (messages are short paraphrases), the ``User-Agent`` of interaction requests.

Discord does not publish a signed request (public key, signature, timestamp and body) in its
documentation, and its official libraries' tests generate a key pair at run time
(discord-interactions-js ``src/__tests__/utils/SharedTestUtils.ts``); so the fake signs with
a key pair of its own and tests verify against ``public_key_hex``.

Recorded payloads from the documentation are in ``tests/fixtures/discord/`` (see
``SOURCES.md`` there for each one's source).

Standard library only, plus PyNaCl (or ``cryptography``) for Ed25519::

    with FakeDiscord() as discord:
        # point the provider's api_url at discord.api_url, bot_token at discord.token,
        # application_id at discord.application_id, public_key at discord.public_key_hex,
        # guild_id at discord.guild_id, then:
        discord.run_command(ingress_url, "declare", {"title": "DB down", "severity": "sev2"})
        message = discord.wait_for(lambda: discord.messages("incidents"))[-1]
        discord.click(ingress_url, message["id"], "ack")

Operations (the names ``calls()`` and ``fail()`` take; ``"*"`` in ``fail()`` is any):

=================================  ================================================================
``create_message``                 ``POST /channels/{id}/messages``
``get_messages``                   ``GET /channels/{id}/messages``
``get_message``                    ``GET /channels/{id}/messages/{message_id}``
``edit_message``                   ``PATCH /channels/{id}/messages/{message_id}``
``pin_message``                    ``PUT /channels/{id}/pins/{message_id}`` (deprecated form) and
                                   ``PUT /channels/{id}/messages/pins/{message_id}``
``get_channel``                    ``GET /channels/{id}``
``modify_channel``                 ``PATCH /channels/{id}``
``delete_channel``                 ``DELETE /channels/{id}``
``edit_permissions``               ``PUT /channels/{id}/permissions/{overwrite_id}``
``delete_permission``              ``DELETE /channels/{id}/permissions/{overwrite_id}``
``create_guild_channel``           ``POST /guilds/{guild_id}/channels``
``get_guild_channels``             ``GET /guilds/{guild_id}/channels``
``get_user``                       ``GET /users/{id}`` and ``GET /users/@me``
``interaction_callback``           ``POST /interactions/{id}/{token}/callback``
``get_original``                   ``GET /webhooks/{application_id}/{token}/messages/@original``
``edit_original``                  ``PATCH /webhooks/{application_id}/{token}/messages/@original``
``delete_original``                ``DELETE /webhooks/{application_id}/{token}/messages/@original``
``create_followup``                ``POST /webhooks/{application_id}/{token}``
``edit_followup``                  ``PATCH /webhooks/{application_id}/{token}/messages/{message_id}``
``bulk_overwrite_global_commands`` ``PUT /applications/{application_id}/commands``
``get_global_commands``            ``GET /applications/{application_id}/commands``
``bulk_overwrite_guild_commands``  ``PUT /applications/{application_id}/guilds/{guild_id}/commands``
``get_guild_commands``             ``GET /applications/{application_id}/guilds/{guild_id}/commands``
``inline_response``                (not HTTP) what an Interactions Endpoint answered inline
=================================  ================================================================
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
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.local_server import KeepAliveHandler, LocalServer
from tests.fakes.recorded import CallRecord, Delivered, HttpCall, ManualClock, send, wait_for
from tests.fakes.recorded import Reply as _Reply

try:  # PyNaCl, as Discord's own examples use
    from nacl.signing import SigningKey as _NaclSigningKey
    from nacl.signing import VerifyKey as _NaclVerifyKey
except ImportError:  # pragma: no cover - the cryptography package instead
    _NaclSigningKey = None  # type: ignore[assignment,misc]
    _NaclVerifyKey = None  # type: ignore[assignment,misc]

T = TypeVar("T")

API_PREFIX = "/api/v10"
# The docs' example bot token (reference, "Example Bot Token Authorization Header").
DEFAULT_TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"
DISCORD_EPOCH_MS = 1_420_070_400_000  # snowflake epoch, reference "Snowflakes"
BOT_USERNAME = "incident-bot"
DEFAULT_USERS = ("alice", "bob", "carol")
DEFAULT_CHANNELS = ("general", "incidents", "critical-incidents", "major-incidents")
INCIDENT_CATEGORY = "Incidents"  # a category channel (type 4) for parent_id

# Channel types (resources/channel "Channel Types").
GUILD_TEXT = 0
GUILD_VOICE = 2
GUILD_CATEGORY = 4
GUILD_ANNOUNCEMENT = 5
# Interaction types and callback types (receiving-and-responding).
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
APPLICATION_COMMAND_AUTOCOMPLETE = 4
MODAL_SUBMIT = 5
PONG = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
MODAL = 9
# Message flags (resources/message "Message Flags").
EPHEMERAL = 1 << 6
LOADING = 1 << 7
IS_COMPONENTS_V2 = 1 << 15
# Component types (components/reference).
ACTION_ROW = 1
BUTTON = 2
TEXT_INPUT = 4
LABEL = 18
LINK_STYLE = 5
PREMIUM_STYLE = 6
# Application command option types (application-commands "Application Command Option Type").
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11

# Limits from the docs.
CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
EMBED_LIMITS = {
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field.name": 256,
    "field.value": 1024,
    "footer.text": 2048,
    "author.name": 256,
}
ACTION_ROWS_MAX = 5  # legacy (non components v2) messages
V2_COMPONENTS_MAX = 40
BUTTONS_PER_ROW = 5
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
MODAL_TITLE_MAX = 45
MODAL_COMPONENTS_MAX = 5
CHANNEL_NAME_MAX = 100
TOPIC_MAX = 1024
COMMAND_NAME_MAX = 32
COMMAND_DESCRIPTION_MAX = 100
COMMAND_OPTIONS_MAX = 25
COMMAND_CHOICES_MAX = 25
COMMAND_SIZE_MAX = 8000
GET_MESSAGES_DEFAULT = 50
GET_MESSAGES_MAX = 100
INTERACTION_TOKEN_TTL = 15 * 60.0  # "Interaction tokens are valid for 15 minutes"
INITIAL_RESPONSE_DEADLINE = 3.0  # "you must send an initial response within 3 seconds"
RATE_LIMITED = "You are being rate limited."
# Discord's User-Agent rule (reference, "User Agent"): DiscordBot ($url, $versionNumber).
USER_AGENT = re.compile(r"^DiscordBot \((?P<url>[^,()]+), (?P<version>[^)]+)\)")
# What Discord sends interaction requests with (observed; the docs do not name it).
INTERACTIONS_USER_AGENT = "Discord-Interactions/1.0 (+https://discord.com)"
# Command names: ^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$ with the lowercase variant
# where one exists; Python's re has no \p, so letters/digits are tested with str methods.
_NAME_EXTRA = set("-_'")
_SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call(HttpCall):
    """One request the fake received.

    ``op`` is the operation (see the module docstring; ``"unknown"`` for an unserved path),
    ``params`` the query parameters, ``json`` the parsed JSON body (None when there was none),
    ``text`` the raw body, ``headers`` the request headers with lowercase names. ``status``,
    ``response`` and ``response_headers`` are what the fake answered.
    """

    @property
    def code(self) -> int | None:
        """Discord's JSON error ``code`` answered, if any."""
        if isinstance(self.response, dict) and isinstance(self.response.get("code"), int):
            return int(self.response["code"])
        return None

    @property
    def user_agent(self) -> str:
        return self.headers.get("user-agent", "")


@dataclass(frozen=True)
class Outgoing:
    """An interaction request as Discord sends it: where, the raw body, the signed headers.

    ``url`` is None when it comes from configuration (the Interactions Endpoint URL): pass
    one to :func:`send`. ``data`` is the parsed body.
    """

    url: str | None
    body: bytes
    headers: dict[str, str]
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def token(self) -> str:
        return str(self.data["token"])


class UserRef(str):
    """A USER option's value in :meth:`FakeDiscord.command`: a username or id of the fake."""


@dataclass
class _Interaction:
    id: str
    token: str
    type: int
    created: float
    channel_id: str
    user_id: str
    message_id: str | None = None  # the message a component was on
    response_type: int | None = None  # the initial response, once given
    original_id: str | None = None  # the message @original names
    followups: list[str] = field(default_factory=list)


@dataclass
class _Fault:
    status: int
    retry_after: float
    is_global: bool
    scope: str | None
    code: int | None
    message: str | None
    body: Any


# -- Discord's error bodies ----------------------------------------------------------------


def api_error(code: int, message: str) -> dict[str, Any]:
    """Discord's JSON error body (opcodes-and-status-codes, "Example JSON Error Response")."""
    return {"message": message, "code": code}


def form_error(errors: Mapping[str, Any]) -> dict[str, Any]:
    """Discord's ``Invalid Form Body`` (reference, "Error Messages")."""
    return {"code": 50035, "errors": dict(errors), "message": "Invalid Form Body"}


def rate_limit_body(
    retry_after: float, is_global: bool = False, message: str = RATE_LIMITED
) -> dict[str, Any]:
    """The body of a 429 (rate-limits, "Rate Limit Response Structure")."""
    return {"message": message, "retry_after": retry_after, "global": is_global}


def _errors_at(path: Sequence[str | int], code: str, message: str) -> dict[str, Any]:
    """``{"a": {"0": {"b": {"_errors": [...]}}}}`` for the path ``("a", 0, "b")``."""
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        node = {str(key): node}
    return node


def _invalid(path: Sequence[str | int], code: str, message: str) -> _Reply:
    return _Reply(400, form_error(_errors_at(path, code, message)))


def _merge(target: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        if key == "_errors":
            target.setdefault("_errors", []).extend(value)
        else:
            _merge(target.setdefault(key, {}), value)


class _Form:
    """Collects every form error of one request, as Discord reports them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}

    def add(self, path: Sequence[str | int], code: str, message: str) -> None:
        _merge(self.errors, _errors_at(path, code, message))

    def length(self, path: Sequence[str | int], value: Any, low: int, high: int) -> None:
        if not isinstance(value, str):
            self.add(path, "BASE_TYPE_STRING", "Must be a string.")  # observed code name
        elif not low <= len(value) <= high:
            if low == 0:
                self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
            else:
                self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def check(self) -> None:
        if self.errors:
            raise _Reply(400, form_error(self.errors))


def _unauthorized() -> _Reply:
    # What Discord answers a missing or wrong token (observed; the docs list code 0 as
    # "General error" and 401 as "The Authorization header was missing or invalid").
    return _Reply(401, api_error(0, "401: Unauthorized"))


def _unknown(code: int) -> _Reply:
    messages = {
        10003: "Unknown Channel",
        10004: "Unknown Guild",
        10008: "Unknown Message",
        10013: "Unknown User",
        10015: "Unknown Webhook",
        10062: "Unknown interaction",
        10063: "Unknown application command",
    }
    return _Reply(404, api_error(code, messages.get(code, "Not Found")))


# -- signing ---------------------------------------------------------------------------------


class Ed25519Keys:
    """An Ed25519 key pair (PyNaCl, or the ``cryptography`` package without it)."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        if _NaclSigningKey is not None:
            self._nacl = _NaclSigningKey(seed)
            self.public_key = bytes(self._nacl.verify_key)
        else:  # pragma: no cover
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            self._crypto = Ed25519PrivateKey.from_private_bytes(seed)
            self.public_key = self._crypto.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    def sign(self, message: bytes) -> bytes:
        if _NaclSigningKey is not None:
            return bytes(self._nacl.sign(message).signature)
        return self._crypto.sign(message)  # pragma: no cover


def sign_request(keys: Ed25519Keys, timestamp: str, body: bytes) -> str:
    """``X-Signature-Ed25519``: hex of the Ed25519 signature of timestamp + raw body."""
    return keys.sign(timestamp.encode() + body).hex()


def verify_signature(public_key_hex: str, signature_hex: str, timestamp: str, body: bytes) -> bool:
    """Check a request the way the docs' Python example does (PyNaCl ``VerifyKey``)."""
    try:
        key = bytes.fromhex(public_key_hex)
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        return False
    message = timestamp.encode() + body
    if _NaclVerifyKey is not None:
        from nacl.exceptions import BadSignatureError

        try:
            _NaclVerifyKey(key).verify(message, signature)
            return True
        except (BadSignatureError, ValueError, TypeError):
            return False
    from cryptography.exceptions import InvalidSignature  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # pragma: no cover

    try:  # pragma: no cover
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):  # pragma: no cover
        return False


# -- helpers for tests ----------------------------------------------------------------------


def _copy(value: T) -> T:
    return copy.deepcopy(value)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


def _valid_command_name(name: Any, *, lowercase: bool) -> bool:
    if not isinstance(name, str) or not 1 <= len(name) <= COMMAND_NAME_MAX:
        return False
    if lowercase and name != name.lower():
        return False
    return all(ch.isalnum() or ch in _NAME_EXTRA for ch in name)


def _bucket_id(method: str, template: str) -> str:
    # Bucket ids are opaque strings (the docs' example is "abcd1234").
    return hashlib.sha1(f"{method} {template}".encode()).hexdigest()[:16]  # noqa: S324 - not security


def _text_channel_name(name: str) -> str:
    # Discord lowercases text channel names and turns runs of spaces into "-" (observed; the
    # docs only say "1-100 characters").
    return re.sub(r"\s+", "-", name.strip()).lower()


# -- the server -----------------------------------------------------------------------------


class FakeDiscord(CallRecord[Call, _Fault], LocalServer):
    """Discord's HTTP API v10 and its side of HTTP interactions on ``127.0.0.1``, in a thread.

    One application (``application_id``), its bot user (``bot_user_id``, owner of ``token``),
    one guild (``guild_id``) with users ``users``, a category ``Incidents`` and text channels
    ``channels``. ``clock`` gives the time for timestamps, snowflakes, interaction token
    expiry, rate-limit windows and posting limits (pass a :class:`ManualClock` to move time
    without sleeping). ``seed`` makes ids, tokens and the key pair reproducible.

    Switches: ``strict_channel_names`` (refuse a text channel name that is not lowercase
    without spaces, instead of rewriting it as Discord does), ``enforce_initial_deadline``
    (a callback more than 3 s after the interaction is 404 Unknown interaction),
    ``bucket_limit``/``bucket_window``/``enforce_buckets`` (the per-route limit the headers
    report; when enforced, going over is a 429 with scope ``user``).
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        users: Iterable[str] = DEFAULT_USERS,
        channels: Iterable[str] = DEFAULT_CHANNELS,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        port: int = 0,
        strict_channel_names: bool = False,
        enforce_initial_deadline: bool = True,
        bucket_limit: int = 50,
        bucket_window: float = 1.0,
        enforce_buckets: bool = False,
    ) -> None:
        self.token = token
        self.clock = clock
        self.strict_channel_names = strict_channel_names
        self.enforce_initial_deadline = enforce_initial_deadline
        self.bucket_limit = bucket_limit
        self.bucket_window = bucket_window
        self.enforce_buckets = enforce_buckets
        self._port = port
        self._rng = random.Random(seed)
        self.keys = Ed25519Keys(self._rng.randbytes(32))
        self._lock = threading.RLock()
        self._increment = itertools.count()
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, dict[str, Any]] = {}
        self._channel_messages: dict[str, list[str]] = {}
        self._ephemeral: dict[str, str] = {}  # message id -> the user who sees it
        self._interactions: dict[str, _Interaction] = {}  # by token
        self._modals: list[dict[str, Any]] = []
        self._inline: list[dict[str, Any]] = []
        self._global_commands: list[dict[str, Any]] = []
        self._guild_commands: dict[str, list[dict[str, Any]]] = {}
        self._calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._limits: dict[str, float] = {}
        self._recent_posts: dict[str, deque[float]] = {}
        self._buckets: dict[tuple[str, str], tuple[float, int]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.application_id = self._snowflake()
        self.guild_id = self._snowflake()
        self.bot_user_id = self.application_id  # a bot's user id is its application's id
        self._users[self.bot_user_id] = self._user_object(self.bot_user_id, BOT_USERNAME, bot=True)
        for username in users:
            self.add_user(username)
        self.category_id = self.add_channel(INCIDENT_CATEGORY, type=GUILD_CATEGORY)
        for name in channels:
            self.add_channel(name)

    # -- lifecycle ---------------------------------------------------------------------
    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    @property
    def api_url(self) -> str:
        """What the provider's ``api_url`` takes (``https://discord.com/api/v10`` in production)."""
        return f"{self.url}{API_PREFIX}"

    @property
    def public_key_hex(self) -> str:
        """The application's public key, as the developer portal shows it (hex)."""
        return self.keys.public_key_hex

    # -- state set-up ------------------------------------------------------------------
    def add_user(self, username: str, *, user_id: str | None = None, global_name: str | None = None) -> str:
        """Add a guild member; returns the user id."""
        with self._lock:
            uid = user_id or self._snowflake()
            self._users[uid] = self._user_object(uid, username, global_name=global_name)
            return uid

    def add_channel(
        self,
        name: str,
        *,
        type: int = GUILD_TEXT,  # noqa: A002 - Discord's field name
        parent_id: str | None = None,
        topic: str | None = None,
        channel_id: str | None = None,
        permission_overwrites: Iterable[Mapping[str, Any]] = (),
    ) -> str:
        """Create a guild channel directly (no validation); returns its id."""
        with self._lock:
            cid = channel_id or self._snowflake()
            self._channels[cid] = {
                "id": cid,
                "type": type,
                "guild_id": self.guild_id,
                "name": name,
                "position": len(self._channels),
                "permission_overwrites": [self._overwrite(o) for o in permission_overwrites],
                "parent_id": parent_id,
                "topic": topic,
                "nsfw": False,
                "rate_limit_per_user": 0,
                "last_message_id": None,
                "flags": 0,
            }
            self._channel_messages[cid] = []
            return cid

    def add_message(self, channel: str, content: str, *, user: str = "alice", **fields: Any) -> str:
        """Post a message as ``user`` directly; returns its id."""
        with self._lock:
            found = self._require_channel(channel)
            author = self._require_user(user)
            return self._store_message(found["id"], author, {"content": content, **fields})["id"]

    def limit_channel(self, channel: str, per_second: float = 1.0) -> None:
        """Allow ``per_second`` messages a second into ``channel``; more are 429 (scope ``user``)."""
        with self._lock:
            self._limits[self._require_channel(channel)["id"]] = per_second

    def fail(
        self,
        op: str,
        times: int = 1,
        status: int = 429,
        *,
        retry_after: float = 1.0,
        is_global: bool = False,
        scope: str | None = None,
        code: int | None = None,
        message: str | None = None,
        body: Any = None,
    ) -> None:
        """Make the next ``times`` calls of ``op`` (``"*"``: any operation) fail before they
        take effect.

        - ``429``: ``{"message", "retry_after", "global"}``, ``Retry-After`` (whole seconds,
          rounded up), ``X-RateLimit-Scope`` (``scope``, default ``global`` or ``user``) and,
          when ``is_global``, ``X-RateLimit-Global: true`` without the bucket headers, as the
          docs' examples show; ``scope="shared"`` says "The resource is being rate limited.";
        - ``403``: ``Missing Permissions`` (50013); ``401``: ``401: Unauthorized`` (0);
        - ``404``: ``code`` (default 10003 Unknown Channel; 10008 Unknown Message, ...);
        - ``5xx``: ``{"message": "<status>: ...", "code": 0}``;
        - ``body``: the exact answer instead (dict/list as JSON, str/bytes as text).
        """
        self._script_fault(
            op, times, lambda: _Fault(status, retry_after, is_global, scope, code, message, body)
        )

    # -- Discord's side of interactions ---------------------------------------------------
    def signed_headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """The headers Discord sends an interaction with, signed with the fake's key."""
        stamp = timestamp if timestamp is not None else str(int(self.clock()))
        return {
            "Content-Type": "application/json",
            "User-Agent": INTERACTIONS_USER_AGENT,
            "X-Signature-Ed25519": sign_request(self.keys, stamp, body),
            "X-Signature-Timestamp": stamp,
        }

    def outgoing(
        self, data: Mapping[str, Any], *, url: str | None = None, timestamp: str | None = None
    ) -> Outgoing:
        """Sign any interaction body (compact JSON, as Discord sends it)."""
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return Outgoing(url=url, body=body, headers=self.signed_headers(body, timestamp), data=dict(data))

    def ping(self, *, url: str | None = None) -> Outgoing:
        """PING (type 1), as Discord sends to check an Interactions Endpoint URL."""
        with self._lock:
            record = self._new_interaction(PING, channel_id="", user_id="")
            data = {
                "id": record.id,
                "application_id": self.application_id,
                "type": PING,
                "token": record.token,
                "version": 1,
                "entitlements": [],
                "authorizing_integration_owners": {},
                "attachment_size_limit": 10485760,
            }
            return self.outgoing(data, url=url)

    def command(
        self,
        subcommand: str | None = None,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        command: str = "im",
        user: str = "alice",
        channel: str = "incidents",
        url: str | None = None,
    ) -> Outgoing:
        """APPLICATION_COMMAND (type 2): ``/<command> <subcommand> option:value ...``.

        ``options`` maps names to values; each option's type comes from the registered
        command (guild first, then global) or else from the value (``str`` 3, ``bool`` 5,
        ``int`` 4, ``float`` 10, :class:`UserRef` 6). A USER value is a username or id of the
        fake; it is sent as the user id, with the user under ``data.resolved.users`` and the
        member under ``data.resolved.members``. A list of option dicts is sent as it is.
        Without ``subcommand`` the options are top-level.
        """
        with self._lock:
            invoker = self._require_user(user)
            found = self._require_channel(channel)
            registered = self._registered(command)
            schema: list[dict[str, Any]] = list(registered.get("options") or []) if registered else []
            resolved_users: dict[str, Any] = {}
            if subcommand is not None:
                sub = next(
                    (o for o in schema if o.get("name") == subcommand and o.get("type") == SUB_COMMAND), None
                )
                schema = list(sub.get("options") or []) if sub else []
            typed = self._typed_options(options, schema, resolved_users)
            data: dict[str, Any] = {
                "id": str(registered["id"]) if registered else self._snowflake(),
                "name": command,
                "type": 1,
            }
            if registered and registered.get("guild_id"):
                data["guild_id"] = registered["guild_id"]
            data["options"] = (
                [{"type": SUB_COMMAND, "name": subcommand, "options": typed}] if subcommand else typed
            )
            if resolved_users:
                data["resolved"] = {
                    "users": resolved_users,
                    "members": {uid: self._member_object(uid, with_user=False) for uid in resolved_users},
                }
            record = self._new_interaction(APPLICATION_COMMAND, channel_id=found["id"], user_id=invoker["id"])
            return self.outgoing(self._interaction_body(record, data), url=url)

    def component_click(
        self,
        message_id: str,
        custom_id: str,
        *,
        user: str = "alice",
        values: Sequence[str] | None = None,
        url: str | None = None,
    ) -> Outgoing:
        """MESSAGE_COMPONENT (type 3): ``user`` clicks the component ``custom_id`` of a message."""
        with self._lock:
            message = self._messages.get(message_id)
            if message is None:
                raise KeyError(f"FakeDiscord has no message {message_id!r}")
            component = _find_component(message.get("components") or [], custom_id)
            if component is None:
                raise KeyError(f"message {message_id} has no component {custom_id!r}")
            clicker = self._require_user(user)
            data: dict[str, Any] = {"custom_id": custom_id, "component_type": component.get("type", BUTTON)}
            if component.get("id"):
                data["id"] = component["id"]
            if values is not None:
                data["values"] = list(values)
            record = self._new_interaction(
                MESSAGE_COMPONENT,
                channel_id=message["channel_id"],
                user_id=clicker["id"],
                message_id=message_id,
            )
            body = self._interaction_body(record, data)
            body["message"] = self._public_message(message)
            return self.outgoing(body, url=url)

    def modal_submit(
        self,
        values: Mapping[str, str],
        *,
        custom_id: str | None = None,
        shape: str | None = None,
        user: str | None = None,
        channel: str | None = None,
        url: str | None = None,
    ) -> Outgoing:
        """MODAL_SUBMIT (type 5): the latest modal opened (or ``custom_id``) submitted with
        ``values`` (text input custom_id -> value).

        ``shape`` is ``"label"`` (Label, type 18, holding the input) or ``"action_row"`` (the
        classic ActionRow holding a TextInput); by default the shape the modal was opened with.
        """
        with self._lock:
            opened = self._modals[-1] if self._modals and custom_id is None else None
            modal = opened["data"] if opened else {"custom_id": custom_id, "components": []}
            if opened is None and custom_id is None:
                raise LookupError("no modal was opened; pass custom_id")
            if shape is None:
                tops = [c.get("type") for c in modal.get("components") or []]
                shape = "action_row" if tops and all(t == ACTION_ROW for t in tops) else "label"
            if shape not in ("label", "action_row"):
                raise ValueError("shape is 'label' or 'action_row'")
            ids = itertools.count(1)
            components = []
            for input_id, value in values.items():
                inner = {"type": TEXT_INPUT, "id": 0, "custom_id": input_id, "value": value}
                if shape == "label":
                    outer = {"type": LABEL, "id": next(ids), "component": inner}
                else:
                    outer = {"type": ACTION_ROW, "id": next(ids), "components": [inner]}
                inner["id"] = next(ids)
                components.append(outer)
            user_ref = user or (opened["user_id"] if opened else "alice")
            invoker = self._require_user(user_ref)
            channel_id = (
                self._require_channel(channel)["id"]
                if channel
                else (opened["channel_id"] if opened else self._require_channel("incidents")["id"])
            )
            message_id = opened.get("message_id") if opened else None
            record = self._new_interaction(
                MODAL_SUBMIT, channel_id=channel_id, user_id=invoker["id"], message_id=message_id
            )
            body = self._interaction_body(record, {"custom_id": modal["custom_id"], "components": components})
            if message_id and message_id in self._messages:
                body["message"] = self._public_message(self._messages[message_id])
            return self.outgoing(body, url=url)

    def deliver(self, outgoing: Outgoing, url: str | None = None, timeout: float = 10.0) -> Delivered:
        """Send an interaction and apply the endpoint's inline answer as Discord would.

        A 200 whose JSON is an interaction response is applied (type 4 posts the message,
        5 shows a "thinking" message that a PATCH of ``@original`` fills, 6 acknowledges,
        7 updates the component's message, 9 opens a modal); it is recorded as an
        ``inline_response`` call. Anything else (401, 202 after a callback, ...) changes nothing.
        """
        delivered = send(outgoing, url, timeout)
        answer = delivered.json
        if delivered.status == 200 and isinstance(answer, dict) and "type" in answer:
            with self._lock:
                record = self._interactions.get(outgoing.token)
                status, response = 204, None
                try:
                    if record is None:
                        raise _unknown(10062)
                    self._respond(record, answer)
                except _Reply as reply:
                    status, response = reply.status, reply.body
                self._inline.append(
                    {"interaction_id": outgoing.id, "response": _copy(answer), "status": status}
                )
                self._record(
                    Call(
                        "inline_response",
                        "POST",
                        str(url or outgoing.url or ""),
                        {},
                        answer,
                        delivered.body.decode("utf-8", "replace"),
                        {},
                        self.clock(),
                        status,
                        response,
                    )
                )
        return delivered

    def run_ping(self, url: str) -> Delivered:
        return self.deliver(self.ping(url=url))

    def run_command(
        self, url: str, subcommand: str | None = None, options: Any = None, **kwargs: Any
    ) -> Delivered:
        """Send ``/im <subcommand> ...`` to ``url`` and apply the answer (see :meth:`deliver`)."""
        return self.deliver(self.command(subcommand, options, url=url, **kwargs))

    def click(self, url: str, message_id: str, custom_id: str, **kwargs: Any) -> Delivered:
        """Click a button of a message and apply the answer (see :meth:`deliver`)."""
        return self.deliver(self.component_click(message_id, custom_id, url=url, **kwargs))

    def submit_modal(self, url: str, values: Mapping[str, str], **kwargs: Any) -> Delivered:
        """Submit the latest modal and apply the answer (see :meth:`deliver`)."""
        return self.deliver(self.modal_submit(values, url=url, **kwargs))

    # -- inspection --------------------------------------------------------------------
    def messages(self, channel: str, *, ephemeral: bool = False) -> list[dict[str, Any]]:
        """A channel's messages (id or name), oldest first; with ``ephemeral``, the
        ephemeral ones (``flags`` 64) too."""
        with self._lock:
            found = self._find_channel(channel)
            if found is None:
                return []
            return [
                _copy(self._messages[m])
                for m in self._channel_messages[found["id"]]
                if ephemeral or m not in self._ephemeral
            ]

    def message(self, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._messages.get(message_id)
            return _copy(found) if found is not None else None

    def ephemeral_messages(self, user: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages, oldest first, optionally only those ``user`` sees."""
        with self._lock:
            uid = self._require_user(user)["id"] if user else None
            return [
                _copy(self._messages[m]) for m, seen_by in self._ephemeral.items() if uid in (None, seen_by)
            ]

    def pinned(self, channel: str) -> list[str]:
        with self._lock:
            found = self._require_channel(channel)
            return [m for m in self._channel_messages[found["id"]] if self._messages[m]["pinned"]]

    def original(self, interaction: Outgoing | str) -> dict[str, Any] | None:
        """The ``@original`` message of an interaction (an :class:`Outgoing` or its token)."""
        with self._lock:
            token = interaction.token if isinstance(interaction, Outgoing) else interaction
            record = self._interactions.get(token)
            if record is None or record.original_id is None:
                return None
            return _copy(self._messages[record.original_id])

    def followups(self, interaction: Outgoing | str) -> list[dict[str, Any]]:
        with self._lock:
            token = interaction.token if isinstance(interaction, Outgoing) else interaction
            record = self._interactions.get(token)
            return [_copy(self._messages[m]) for m in record.followups] if record else []

    def response_type(self, interaction: Outgoing | str) -> int | None:
        """The initial response type an interaction got (None: not yet)."""
        with self._lock:
            token = interaction.token if isinstance(interaction, Outgoing) else interaction
            record = self._interactions.get(token)
            return record.response_type if record else None

    def modals(self) -> list[dict[str, Any]]:
        """Modals opened (type 9 responses): ``interaction_id``, ``user_id``, ``channel_id``,
        ``message_id`` and ``data``."""
        with self._lock:
            return _copy(self._modals)

    def inline_responses(self) -> list[dict[str, Any]]:
        with self._lock:
            return _copy(self._inline)

    def channel(self, channel: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._find_channel(channel)
            return _copy(found) if found is not None else None

    def channel_id(self, name: str) -> str:
        with self._lock:
            return str(self._require_channel(name)["id"])

    def user_id(self, username: str) -> str:
        with self._lock:
            return str(self._require_user(username)["id"])

    def global_commands(self) -> list[dict[str, Any]]:
        with self._lock:
            return _copy(self._global_commands)

    def guild_commands(self, guild_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return _copy(self._guild_commands.get(guild_id or self.guild_id, []))

    def bad_user_agents(self) -> list[Call]:
        """API calls whose ``User-Agent`` is not ``DiscordBot (url, version)``."""
        with self._lock:
            return [
                c
                for c in self._calls
                if c.op not in ("inline_response", "unknown") and not USER_AGENT.match(c.user_agent)
            ]

    def _summary(self, call: Call) -> str:
        return f"{call.op}->{call.status}{'/' + str(call.code) if call.code else ''}"

    # -- request handling (called from the server threads) ------------------------------
    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        text = raw.decode("utf-8", "replace")
        body: Any = None
        bad_json = False
        if raw.strip():
            try:
                body = json.loads(text)
            except ValueError:
                bad_json = True
        with self._lock:
            if parts.path.startswith(API_PREFIX + "/"):
                path = parts.path[len(API_PREFIX) :]
                op, template, handler, args, needs_bot = _route(method, path)
            else:
                op, template, handler, args, needs_bot = "unknown", "", None, (), False
            major = args[0] if args else ""
            bucket_key = (_bucket_id(method, template), major)
            try:
                self._apply_fault(op, bucket_key)
                if handler is None:
                    raise _Reply(404, api_error(0, "404: Not Found"))
                if needs_bot:
                    self._check_token(headers)
                if bad_json:
                    raise _Reply(400, api_error(50109, "The request body contains invalid JSON."))
                self._count_bucket(bucket_key)
                status, answer = handler(self, *args, query=query, body=body)
                reply = _Reply(status, answer, self._bucket_headers(bucket_key))
            except _Reply as error:
                reply = error
                if (
                    not any(k.lower().startswith("x-ratelimit") for k in reply.headers)
                    and handler is not None
                ):
                    reply.headers.update(self._bucket_headers(bucket_key))
            self._record(
                Call(
                    op,
                    method,
                    parts.path,
                    query,
                    body,
                    text,
                    dict(headers),
                    self.clock(),
                    reply.status,
                    reply.body,
                    dict(reply.headers),
                )
            )
            return reply.status, reply.body, reply.headers

    def _check_token(self, headers: Mapping[str, str]) -> None:
        auth = headers.get("authorization", "")
        expected = f"Bot {self.token}"
        if not hmac.compare_digest(auth.encode(), expected.encode()):
            raise _unauthorized()

    # -- rate limits ------------------------------------------------------------------
    def _count_bucket(self, key: tuple[str, str]) -> None:
        now = self.clock()
        start, count = self._buckets.get(key, (now, 0))
        if now - start >= self.bucket_window:
            start, count = now, 0
        if self.enforce_buckets and count >= self.bucket_limit:
            retry = round(start + self.bucket_window - now, 3)
            self._buckets[key] = (start, count)
            raise self._too_many(key, retry, scope="user")
        self._buckets[key] = (start, count + 1)

    def _bucket_headers(self, key: tuple[str, str], remaining: int | None = None) -> dict[str, str]:
        now = self.clock()
        start, count = self._buckets.get(key, (now, 0))
        if now - start >= self.bucket_window:
            start, count = now, 0
        left = max(self.bucket_limit - count, 0) if remaining is None else remaining
        reset = start + self.bucket_window
        return {
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": str(left),
            "X-RateLimit-Reset": f"{reset:.3f}",
            "X-RateLimit-Reset-After": f"{max(reset - now, 0.0):.3f}",
            "X-RateLimit-Bucket": key[0],
        }

    def _too_many(
        self,
        key: tuple[str, str],
        retry_after: float,
        *,
        scope: str,
        is_global: bool = False,
        message: str | None = None,
    ) -> _Reply:
        text = message or ("The resource is being rate limited." if scope == "shared" else RATE_LIMITED)
        headers = {"Retry-After": str(max(1, math.ceil(retry_after))), "X-RateLimit-Scope": scope}
        if is_global:
            # The docs' global example carries no bucket headers.
            headers["X-RateLimit-Global"] = "true"
        else:
            now = self.clock()
            headers.update(
                {
                    "X-RateLimit-Limit": str(self.bucket_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{now + retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                    "X-RateLimit-Bucket": key[0],
                }
            )
        return _Reply(429, rate_limit_body(retry_after, is_global, text), headers)

    def _apply_fault(self, op: str, key: tuple[str, str]) -> None:
        fault = self._take_fault(op)
        if fault is None:
            return
        if fault.status == 429:
            scope = fault.scope or ("global" if fault.is_global else "user")
            reply = self._too_many(
                key, fault.retry_after, scope=scope, is_global=fault.is_global, message=fault.message
            )
            if fault.body is not None:
                reply.body = fault.body
            raise reply
        if fault.body is not None:
            raise _Reply(fault.status, fault.body)
        if fault.status == 401:
            raise _unauthorized()
        if fault.status == 403:
            raise _Reply(403, api_error(fault.code or 50013, fault.message or "Missing Permissions"))
        if fault.status == 404:
            if fault.message:
                raise _Reply(404, api_error(fault.code or 10003, fault.message))
            raise _unknown(fault.code or 10003)
        if fault.status >= 500:
            reason = {
                500: "Internal Server Error",
                502: "Bad Gateway",
                503: "Service Unavailable",
                504: "Gateway Timeout",
            }.get(fault.status, "Server Error")
            raise _Reply(
                fault.status, api_error(fault.code or 0, fault.message or f"{fault.status}: {reason}")
            )
        raise _Reply(
            fault.status, api_error(fault.code or 0, fault.message or "Scripted failure of the fake Discord.")
        )

    def _posting_limit(self, channel_id: str) -> None:
        per_second = self._limits.get(channel_id)
        if per_second is None:
            return
        now = self.clock()
        recent = self._recent_posts.setdefault(channel_id, deque())
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        allowed = max(1, int(per_second))
        if len(recent) >= allowed:
            retry = round(recent[0] + 1.0 - now, 3)
            raise self._too_many(
                (_bucket_id("POST", "/channels/{id}/messages"), channel_id), retry, scope="user"
            )
        recent.append(now)

    # -- ids and objects --------------------------------------------------------------
    def _snowflake(self) -> str:
        ms = int(self.clock() * 1000) - DISCORD_EPOCH_MS
        return str((max(ms, 0) << 22) | (1 << 17) | (1 << 12) | (next(self._increment) & 0xFFF))

    def _user_object(
        self, uid: str, username: str, *, bot: bool = False, global_name: str | None = None
    ) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": uid,
            "username": username,
            "discriminator": "0",
            "global_name": None if bot else (global_name or username.capitalize()),
            "avatar": None,
            "public_flags": 0,
        }
        if bot:
            user["bot"] = True
        return user

    def _member_object(self, uid: str, *, with_user: bool = True) -> dict[str, Any]:
        member: dict[str, Any] = {
            "avatar": None,
            "deaf": False,
            "flags": 0,
            "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "mute": False,
            "nick": None,
            "pending": False,
            "permissions": "2248473465835073",
            "premium_since": None,
            "roles": [],
        }
        if with_user:
            member["user"] = _copy(self._users[uid])
        return member

    def _find_channel(self, ref: str | None) -> dict[str, Any] | None:
        if not ref:
            return None
        if ref in self._channels:
            return self._channels[ref]
        name = ref.lstrip("#")
        return next((c for c in self._channels.values() if c["name"] == name), None)

    def _require_channel(self, ref: str) -> dict[str, Any]:
        found = self._find_channel(ref)
        if found is None:
            raise KeyError(f"FakeDiscord has no channel {ref!r}")
        return found

    def _require_user(self, ref: str) -> dict[str, Any]:
        if ref in self._users:
            return self._users[ref]
        found = next((u for u in self._users.values() if u["username"] == ref), None)
        if found is None:
            raise KeyError(f"FakeDiscord has no user {ref!r}")
        return found

    def _api_channel(self, channel_id: str) -> dict[str, Any]:
        found = self._channels.get(channel_id)
        if found is None:
            raise _unknown(10003)
        return found

    def _api_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        self._api_channel(channel_id)
        found = self._messages.get(message_id)
        if found is None or found["channel_id"] != channel_id or message_id in self._ephemeral:
            raise _unknown(10008)
        return found

    def _overwrite(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        # "the allow and deny keys can be omitted or set to null, which both default to "0""
        return {
            "id": str(raw.get("id")),
            "type": int(raw.get("type", 0)),
            "allow": str(raw.get("allow") or "0"),
            "deny": str(raw.get("deny") or "0"),
        }

    def _registered(self, name: str) -> dict[str, Any] | None:
        for command in self._guild_commands.get(self.guild_id, []) + self._global_commands:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        return None

    def _typed_options(
        self, options: Any, schema: list[dict[str, Any]], resolved: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if options is None:
            return []
        if isinstance(options, Sequence) and not isinstance(options, str | bytes):
            return [dict(o) for o in options]
        declared = {o.get("name"): o.get("type") for o in schema}
        typed = []
        for name, value in options.items():
            kind = declared.get(name)
            if kind is None:
                if isinstance(value, UserRef):
                    kind = USER
                elif isinstance(value, bool):
                    kind = BOOLEAN
                elif isinstance(value, int):
                    kind = INTEGER
                elif isinstance(value, float):
                    kind = NUMBER
                else:
                    kind = STRING
            if kind in (USER, MENTIONABLE) and not isinstance(value, bool):
                target = self._require_user(str(value))
                resolved[target["id"]] = _copy(target)
                value = target["id"]
            typed.append({"name": name, "type": kind, "value": value})
        return typed

    def _new_interaction(
        self, kind: int, *, channel_id: str, user_id: str, message_id: str | None = None
    ) -> _Interaction:
        iid = self._snowflake()
        secret = base64.urlsafe_b64encode(self._rng.randbytes(48)).decode().rstrip("=")
        token = base64.b64encode(f"interaction:{iid}:{secret}".encode()).decode().rstrip("=")
        record = _Interaction(iid, token, kind, self.clock(), channel_id, user_id, message_id)
        self._interactions[token] = record
        return record

    def _interaction_body(self, record: _Interaction, data: dict[str, Any]) -> dict[str, Any]:
        channel = self._channels[record.channel_id]
        return {
            "app_permissions": "2248473465835073",
            "application_id": self.application_id,
            "attachment_size_limit": 10485760,
            "authorizing_integration_owners": {"0": self.guild_id},
            "channel": {
                k: channel[k]
                for k in (
                    "id",
                    "type",
                    "guild_id",
                    "name",
                    "parent_id",
                    "topic",
                    "nsfw",
                    "position",
                    "rate_limit_per_user",
                    "flags",
                    "last_message_id",
                )
            }
            | {"permissions": "2248473465835073"},
            "channel_id": record.channel_id,
            "context": 0,
            "data": data,
            "entitlements": [],
            "guild": {"id": self.guild_id, "features": [], "locale": "en-US"},
            "guild_id": self.guild_id,
            "guild_locale": "en-US",
            "id": record.id,
            "locale": "en-US",
            "member": self._member_object(record.user_id),
            "token": record.token,
            "type": record.type,
            "version": 1,
        }

    # -- messages ----------------------------------------------------------------------
    def _check_message(self, body: Any, *, creating: bool, flags_before: int = 0) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        form = _Form()
        content = body.get("content")
        if content is not None:
            form.length(["content"], content, 0, CONTENT_MAX)
        embeds = body.get("embeds")
        if embeds is not None:
            if not isinstance(embeds, list):
                form.add(["embeds"], "BASE_TYPE_LIST", "Must be a list.")  # observed code name
            else:
                if len(embeds) > EMBEDS_MAX:
                    form.add(["embeds"], "BASE_TYPE_MAX_LENGTH", f"Must be {EMBEDS_MAX} or fewer in length.")
                total = 0
                for index, embed in enumerate(embeds):
                    total += _check_embed(form, index, embed)
                if total > EMBED_TOTAL_MAX:
                    form.add(
                        ["embeds"],
                        "MAX_EMBED_SIZE_EXCEEDED",
                        f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}",
                    )
        flags = body.get("flags")
        if flags is not None and not isinstance(flags, int):
            form.add(["flags"], "NUMBER_TYPE_COERCE", "Value is not int.")
        v2 = bool(((flags or 0) | flags_before) & IS_COMPONENTS_V2)
        components = body.get("components")
        if components is not None:
            _check_components(form, components, v2=v2)
        if v2 and (body.get("content") or body.get("embeds")):
            form.add(
                ["content"],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
            )
        form.check()
        if creating and not (content or embeds or components or body.get("sticker_ids") or body.get("poll")):
            raise _Reply(400, api_error(50006, "Cannot send an empty message"))
        return body

    def _store_message(
        self,
        channel_id: str,
        author: Mapping[str, Any],
        fields: Mapping[str, Any],
        *,
        ephemeral_to: str | None = None,
        interaction: _Interaction | None = None,
    ) -> dict[str, Any]:
        mid = self._snowflake()
        message: dict[str, Any] = {
            "id": mid,
            "type": 0,
            "channel_id": channel_id,
            "guild_id": self.guild_id,
            "author": _copy(dict(author)),
            "content": str(fields.get("content") or ""),
            "embeds": [_normalize_embed(e) for e in fields.get("embeds") or []],
            "components": _copy(list(fields.get("components") or [])),
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": bool(fields.get("tts", False)),
            "timestamp": _iso(self.clock()),
            "edited_timestamp": None,
            "flags": int(fields.get("flags") or 0),
        }
        if interaction is not None:
            # Interaction messages come from the application's webhook (type 20 for a command
            # answer, 19 for a reply to a component), with interaction_metadata.
            message["webhook_id"] = self.application_id
            message["application_id"] = self.application_id
            message["type"] = (
                20 if interaction.type == APPLICATION_COMMAND else 19 if interaction.message_id else 0
            )
            message["interaction_metadata"] = {
                "id": interaction.id,
                "type": interaction.type,
                "user": _copy(self._users.get(interaction.user_id, {})),
                "authorizing_integration_owners": {"0": self.guild_id},
            }
        self._messages[mid] = message
        self._channel_messages.setdefault(channel_id, []).append(mid)
        if ephemeral_to is not None:
            self._ephemeral[mid] = ephemeral_to
        else:
            self._channels[channel_id]["last_message_id"] = mid
        return message

    def _edit_message(self, message: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        for key in ("content", "components"):
            if key in body:
                message[key] = _copy(body[key]) if body[key] is not None else ("" if key == "content" else [])
        if "embeds" in body:
            message["embeds"] = [_normalize_embed(e) for e in body["embeds"] or []]
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS can be changed, IS_COMPONENTS_V2 only set; the rest stay.
            keep = message["flags"] & ~(1 << 2)
            message["flags"] = keep | (int(body["flags"]) & ((1 << 2) | IS_COMPONENTS_V2))
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = _iso(self.clock())
        return message

    def _public_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return _copy(dict(message))

    def _create_message(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        channel = self._api_channel(channel_id)
        if channel["type"] == GUILD_CATEGORY:
            raise _Reply(400, api_error(50008, "Cannot send messages in a non-text channel"))
        self._check_message(body, creating=True)
        if body.get("flags") and int(body["flags"]) & ~((1 << 2) | (1 << 12) | IS_COMPONENTS_V2):
            raise _invalid(["flags"], "MESSAGE_FLAGS_INVALID", "Invalid flags for message create.")
        self._posting_limit(channel_id)
        bot = self._users[self.bot_user_id]
        return 200, self._public_message(self._store_message(channel_id, bot, body))

    def _get_messages(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self._api_channel(channel_id)
        try:
            limit = int(query.get("limit", GET_MESSAGES_DEFAULT))
        except ValueError:
            raise _invalid(["limit"], "NUMBER_TYPE_COERCE", "Value is not int.") from None
        if not 1 <= limit <= GET_MESSAGES_MAX:
            raise _invalid(["limit"], "NUMBER_TYPE_MAX", f"Must be between 1 and {GET_MESSAGES_MAX}.")
        given = [k for k in ("around", "before", "after") if k in query]
        if len(given) > 1:
            raise _invalid(
                [given[1]], "BASE_TYPE_CHOICES", "before, after and around are mutually exclusive."
            )
        ids = [m for m in self._channel_messages[channel_id] if m not in self._ephemeral]
        ids.sort(key=int)
        if "after" in query:
            # The `limit` messages just after `after`, answered newest first (observed).
            chosen = [m for m in ids if int(m) > int(query["after"])][:limit]
        elif "before" in query:
            chosen = [m for m in ids if int(m) < int(query["before"])][-limit:]
        elif "around" in query:
            pivot = int(query["around"])
            older = [m for m in ids if int(m) < pivot]
            newer = [m for m in ids if int(m) >= pivot]
            # About half before the pivot, the rest from it on.
            take_new = newer[: limit - min(len(older), limit // 2)]
            room = limit - len(take_new)
            chosen = (older[-room:] if room > 0 else []) + take_new
        else:
            chosen = ids[-limit:]
        return 200, [self._public_message(self._messages[m]) for m in reversed(chosen)]

    def _get_message(
        self, channel_id: str, message_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        return 200, self._public_message(self._api_message(channel_id, message_id))

    def _edit_channel_message(
        self, channel_id: str, message_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        message = self._api_message(channel_id, message_id)
        self._check_message(body, creating=False, flags_before=message["flags"])
        if message["author"]["id"] != self.bot_user_id:
            raise _Reply(403, api_error(50005, "Cannot edit a message authored by another user"))
        return 200, self._public_message(self._edit_message(message, body))

    def _pin_message(
        self, channel_id: str, message_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        message = self._api_message(channel_id, message_id)
        message["pinned"] = True
        return 204, None

    # -- channels ----------------------------------------------------------------------
    def _check_channel_fields(self, body: Mapping[str, Any], *, creating: bool, kind: int) -> None:
        form = _Form()
        if creating or "name" in body:
            name = body.get("name")
            if name is None:
                form.add(["name"], "BASE_TYPE_REQUIRED", "This field is required")
            else:
                form.length(["name"], name, 1, CHANNEL_NAME_MAX)
                if (
                    self.strict_channel_names
                    and isinstance(name, str)
                    and kind in (GUILD_TEXT, GUILD_ANNOUNCEMENT)
                    and name != _text_channel_name(name)
                ):
                    form.add(
                        ["name"], "CHANNEL_NAME_INVALID", "Text channel names are lowercase without spaces."
                    )
        if body.get("topic") is not None:
            form.length(["topic"], body["topic"], 0, TOPIC_MAX)
        overwrites = body.get("permission_overwrites")
        if overwrites is not None:
            if not isinstance(overwrites, list):
                form.add(["permission_overwrites"], "BASE_TYPE_LIST", "Must be a list.")
            else:
                for index, raw in enumerate(overwrites):
                    _check_overwrite(form, ["permission_overwrites", index], raw, require_id=True)
        parent = body.get("parent_id")
        if parent is not None:
            found = self._channels.get(str(parent))
            if found is None or found["type"] != GUILD_CATEGORY:
                form.add(["parent_id"], "CHANNEL_PARENT_INVALID", "Category does not exist.")
        form.check()

    def _create_guild_channel(self, guild_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if guild_id != self.guild_id:
            raise _unknown(10004)
        if not isinstance(body, dict):
            raise _invalid(["name"], "BASE_TYPE_REQUIRED", "This field is required")
        kind = int(body.get("type") or GUILD_TEXT)
        self._check_channel_fields(body, creating=True, kind=kind)
        name = str(body["name"])
        if kind in (GUILD_TEXT, GUILD_ANNOUNCEMENT):
            name = _text_channel_name(name)
        cid = self.add_channel(
            name,
            type=kind,
            parent_id=str(body["parent_id"]) if body.get("parent_id") else None,
            topic=body.get("topic"),
            permission_overwrites=body.get("permission_overwrites") or (),
        )
        channel = self._channels[cid]
        if body.get("nsfw") is not None:
            channel["nsfw"] = bool(body["nsfw"])
        if body.get("position") is not None:
            channel["position"] = int(body["position"])
        # Discord answers 201 Created (observed; the docs say "Returns the new channel object").
        return 201, _copy(channel)

    def _get_guild_channels(self, guild_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if guild_id != self.guild_id:
            raise _unknown(10004)
        return 200, [_copy(c) for c in self._channels.values()]

    def _get_channel(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, _copy(self._api_channel(channel_id))

    def _modify_channel(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        channel = self._api_channel(channel_id)
        if not isinstance(body, dict):
            raise _invalid([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        self._check_channel_fields(body, creating=False, kind=channel["type"])
        if "name" in body:
            name = str(body["name"])
            channel["name"] = (
                _text_channel_name(name) if channel["type"] in (GUILD_TEXT, GUILD_ANNOUNCEMENT) else name
            )
        if "topic" in body:
            channel["topic"] = body["topic"]
        if "parent_id" in body:
            channel["parent_id"] = str(body["parent_id"]) if body["parent_id"] else None
        if "permission_overwrites" in body:
            channel["permission_overwrites"] = [
                self._overwrite(o) for o in body["permission_overwrites"] or []
            ]
        for key in ("nsfw", "position", "rate_limit_per_user"):
            if key in body and body[key] is not None:
                channel[key] = body[key]
        return 200, _copy(channel)

    def _delete_channel(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        channel = self._api_channel(channel_id)
        del self._channels[channel_id]
        for other in self._channels.values():
            if other.get("parent_id") == channel_id:  # "they will have their parent_id removed"
                other["parent_id"] = None
        return 200, _copy(channel)

    def _edit_permissions(
        self, channel_id: str, overwrite_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        channel = self._api_channel(channel_id)
        form = _Form()
        _check_overwrite(form, [], body if isinstance(body, dict) else {}, require_id=False)
        form.check()
        overwrite = self._overwrite({**body, "id": overwrite_id})
        overwrites = [o for o in channel["permission_overwrites"] if o["id"] != overwrite_id]
        channel["permission_overwrites"] = [*overwrites, overwrite]
        return 204, None

    def _delete_permission(
        self, channel_id: str, overwrite_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        channel = self._api_channel(channel_id)
        channel["permission_overwrites"] = [
            o for o in channel["permission_overwrites"] if o["id"] != overwrite_id
        ]
        return 204, None

    def _get_user(self, user_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        uid = self.bot_user_id if user_id == "@me" else user_id
        if uid not in self._users:
            raise _unknown(10013)
        return 200, _copy(self._users[uid])

    # -- interactions ---------------------------------------------------------------------
    def _interaction_for(self, interaction_id: str, token: str) -> _Interaction:
        record = self._interactions.get(token)
        if record is None or record.id != interaction_id:
            raise _unknown(10062)
        return record

    def _webhook_interaction(self, application_id: str, token: str) -> _Interaction:
        record = self._interactions.get(token)
        if (
            record is None
            or application_id != self.application_id
            or self.clock() - record.created > INTERACTION_TOKEN_TTL
        ):
            raise _unknown(10015)
        return record

    def _interaction_callback(
        self, interaction_id: str, token: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        record = self._interaction_for(interaction_id, token)
        if self.enforce_initial_deadline and self.clock() - record.created > INITIAL_RESPONSE_DEADLINE:
            raise _unknown(10062)
        message = self._respond(record, body)
        if query.get("with_response", "").lower() == "true":
            answer: dict[str, Any] = {
                "interaction": {
                    "id": record.id,
                    "type": record.type,
                    "response_message_id": record.original_id,
                    "response_message_loading": bool(message and message["flags"] & LOADING),
                    "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL),
                },
                "resource": {"type": body["type"]},
            }
            if message is not None and body["type"] in (CHANNEL_MESSAGE_WITH_SOURCE, UPDATE_MESSAGE):
                answer["resource"]["message"] = self._public_message(message)
            return 200, answer
        return 204, None

    def _respond(self, record: _Interaction, body: Any) -> dict[str, Any] | None:
        """Apply an initial interaction response (callback endpoint or inline answer)."""
        if not isinstance(body, dict) or not isinstance(body.get("type"), int):
            raise _invalid(["type"], "BASE_TYPE_REQUIRED", "This field is required")
        kind = body["type"]
        if record.response_type is not None:
            raise _Reply(400, api_error(40060, "Interaction has already been acknowledged."))
        allowed = {
            PING: {PONG},
            APPLICATION_COMMAND: {CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, MODAL},
            MESSAGE_COMPONENT: {
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
                MODAL,
            },
            # "MODAL: Not available for MODAL_SUBMIT and PING interactions"; 6 and 7 only when
            # the modal came from a component on a message.
            MODAL_SUBMIT: {CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE}
            | ({DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE} if record.message_id else set()),
        }.get(record.type, set())
        if kind not in allowed:
            raise _invalid(
                ["type"],
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Response type {kind} is not valid for interaction type {record.type}.",
            )
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise _invalid(["data"], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        message: dict[str, Any] | None = None
        if kind == PONG:
            pass
        elif kind == MODAL:
            _check_modal(data)
            self._modals.append(
                {
                    "interaction_id": record.id,
                    "user_id": record.user_id,
                    "channel_id": record.channel_id,
                    "message_id": record.message_id,
                    "data": _copy(data),
                }
            )
        elif kind in (CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE):
            flags = int(data.get("flags") or 0)
            if kind == CHANNEL_MESSAGE_WITH_SOURCE:
                self._check_message(data, creating=True)
                fields = dict(data)
            else:
                fields = {"content": "", "flags": (flags & EPHEMERAL) | LOADING}
            message = self._store_message(
                record.channel_id,
                self._users[self.bot_user_id],
                fields,
                ephemeral_to=record.user_id if flags & EPHEMERAL else None,
                interaction=record,
            )
            record.original_id = message["id"]
        elif kind == DEFERRED_UPDATE_MESSAGE:
            record.original_id = record.message_id
        elif kind == UPDATE_MESSAGE:
            target = self._messages.get(record.message_id or "")
            if target is None:
                raise _unknown(10008)
            self._check_message(data, creating=False, flags_before=target["flags"])
            message = self._edit_message(target, data)
            record.original_id = target["id"]
        record.response_type = kind
        return message

    def _original_message(self, record: _Interaction) -> dict[str, Any]:
        if record.original_id is None or record.original_id not in self._messages:
            raise _unknown(10008)
        return self._messages[record.original_id]

    def _get_original(
        self, application_id: str, token: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        record = self._webhook_interaction(application_id, token)
        return 200, self._public_message(self._original_message(record))

    def _edit_original(
        self, application_id: str, token: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        record = self._webhook_interaction(application_id, token)
        message = self._original_message(record)
        self._check_message(body, creating=False, flags_before=message["flags"])
        return 200, self._public_message(self._edit_message(message, body))

    def _delete_original(
        self, application_id: str, token: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        record = self._webhook_interaction(application_id, token)
        message = self._original_message(record)
        self._messages.pop(message["id"], None)
        self._ephemeral.pop(message["id"], None)
        self._channel_messages[message["channel_id"]].remove(message["id"])
        record.original_id = None
        return 204, None

    def _create_followup(
        self, application_id: str, token: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        record = self._webhook_interaction(application_id, token)
        if record.response_type is None:
            raise _unknown(10015)  # nothing acknowledged yet: the webhook does not exist
        original = self._messages.get(record.original_id or "")
        if (
            record.response_type == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
            and original
            and original["flags"] & LOADING
        ):
            # "this endpoint will function as Edit Original Interaction Response"
            self._check_message(body, creating=False, flags_before=original["flags"])
            return 200, self._public_message(self._edit_message(original, body))
        self._check_message(body, creating=True)
        flags = int(body.get("flags") or 0)
        message = self._store_message(
            record.channel_id,
            self._users[self.bot_user_id],
            body,
            ephemeral_to=record.user_id if flags & EPHEMERAL else None,
            interaction=record,
        )
        record.followups.append(message["id"])
        return 200, self._public_message(message)

    def _edit_followup(
        self, application_id: str, token: str, message_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        record = self._webhook_interaction(application_id, token)
        if message_id not in record.followups and message_id != record.original_id:
            raise _unknown(10008)
        message = self._messages[message_id]
        self._check_message(body, creating=False, flags_before=message["flags"])
        return 200, self._public_message(self._edit_message(message, body))

    # -- application commands -------------------------------------------------------------
    def _check_application(self, application_id: str) -> None:
        if application_id != self.application_id:
            raise _Reply(403, api_error(50001, "Missing Access"))

    def _overwrite_commands(
        self, existing: list[dict[str, Any]], body: Any, guild_id: str | None
    ) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise _invalid([], "BASE_TYPE_LIST", "Must be a list.")
        form = _Form()
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(body):
            _check_command(form, index, command)
            if isinstance(command, dict):
                key = (str(command.get("name")), int(command.get("type") or 1))
                if key in seen:
                    form.add(
                        [index, "name"],
                        "APPLICATION_COMMANDS_DUPLICATE_NAME",
                        "Application command names must be unique",
                    )
                seen.add(key)
        form.check()
        by_key = {(c["name"], c["type"]): c for c in existing}
        result = []
        for command in body:
            kind = int(command.get("type") or 1)
            stored = _normalize_command(command, kind)
            previous = by_key.get((command["name"], kind))
            if previous is not None:
                same = all(previous.get(k) == v for k, v in stored.items())
                stored.update(id=previous["id"], version=previous["version"] if same else self._snowflake())
            else:
                stored.update(id=self._snowflake())
                stored["version"] = stored["id"]
            stored["application_id"] = self.application_id
            if guild_id:
                stored["guild_id"] = guild_id
            result.append(stored)
        return result

    def _bulk_global(self, application_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self._check_application(application_id)
        self._global_commands = self._overwrite_commands(self._global_commands, body, None)
        return 200, _copy(self._global_commands)

    def _get_global(self, application_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self._check_application(application_id)
        return 200, _copy(self._global_commands)

    def _bulk_guild(
        self, application_id: str, guild_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        self._check_application(application_id)
        if guild_id != self.guild_id:
            raise _unknown(10004)
        commands = self._overwrite_commands(self._guild_commands.get(guild_id, []), body, guild_id)
        self._guild_commands[guild_id] = commands
        return 200, _copy(commands)

    def _get_guild(
        self, application_id: str, guild_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        self._check_application(application_id)
        if guild_id != self.guild_id:
            raise _unknown(10004)
        return 200, _copy(self._guild_commands.get(guild_id, []))


# -- validation helpers -------------------------------------------------------------------


def _check_embed(form: _Form, index: int, embed: Any) -> int:
    """Check one embed's limits; returns its characters counted toward the 6000."""
    if not isinstance(embed, dict):
        form.add(["embeds", index], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return 0
    path: list[str | int] = ["embeds", index]
    total = 0

    def text(value: Any, where: list[str | int], limit: int) -> None:
        nonlocal total
        if value is None:
            return
        value = str(value).strip()  # "Leading and trailing whitespace characters are not included"
        total += len(value)
        if len(value) > limit:
            form.add(path + where, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    text(embed.get("title"), ["title"], EMBED_LIMITS["title"])
    text(embed.get("description"), ["description"], EMBED_LIMITS["description"])
    fields = embed.get("fields") or []
    if len(fields) > EMBED_LIMITS["fields"]:
        form.add(
            path + ["fields"], "BASE_TYPE_MAX_LENGTH", f"Must be {EMBED_LIMITS['fields']} or fewer in length."
        )
    for number, item in enumerate(fields):
        if not isinstance(item, dict):
            continue
        for key in ("name", "value"):
            if not str(item.get(key) or "").strip():
                form.add(path + ["fields", number, key], "BASE_TYPE_REQUIRED", "This field is required")
        text(item.get("name"), ["fields", number, "name"], EMBED_LIMITS["field.name"])
        text(item.get("value"), ["fields", number, "value"], EMBED_LIMITS["field.value"])
    if isinstance(embed.get("footer"), dict):
        text(embed["footer"].get("text"), ["footer", "text"], EMBED_LIMITS["footer.text"])
    if isinstance(embed.get("author"), dict):
        text(embed["author"].get("name"), ["author", "name"], EMBED_LIMITS["author.name"])
    return total


def _normalize_embed(embed: Any) -> dict[str, Any]:
    # "you can set every field except type (it will be rich regardless ...)"
    result = _copy(dict(embed)) if isinstance(embed, dict) else {}
    result["type"] = "rich"
    return result


def _check_custom_id(
    form: _Form, path: list[str | int], component: Mapping[str, Any], seen: set[str]
) -> None:
    custom_id = component.get("custom_id")
    if custom_id is None:
        form.add(path + ["custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
        return
    form.length(path + ["custom_id"], custom_id, 1, CUSTOM_ID_MAX)
    if isinstance(custom_id, str):
        if custom_id in seen:
            form.add(
                path + ["custom_id"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)


def _check_button(form: _Form, path: list[str | int], button: Mapping[str, Any], seen: set[str]) -> None:
    style = button.get("style")
    if style == LINK_STYLE:
        if not button.get("url"):
            form.add(path + ["url"], "BASE_TYPE_REQUIRED", "This field is required")
        if "custom_id" in button:
            form.add(
                path + ["custom_id"],
                "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
                "A link button cannot have a custom_id",
            )
    elif style == PREMIUM_STYLE:
        if not button.get("sku_id"):
            form.add(path + ["sku_id"], "BASE_TYPE_REQUIRED", "This field is required")
    elif style in (1, 2, 3, 4):
        _check_custom_id(form, path, button, seen)
        if "url" in button:
            form.add(path + ["url"], "BUTTON_COMPONENT_URL_NOT_ALLOWED", "Only link buttons can have a url")
    else:
        form.add(path + ["style"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}.")
    label = button.get("label")
    if label is not None:
        form.length(path + ["label"], label, 0, BUTTON_LABEL_MAX)


def _check_components(form: _Form, components: Any, *, v2: bool) -> None:
    if not isinstance(components, list):
        form.add(["components"], "BASE_TYPE_LIST", "Must be a list.")
        return
    seen: set[str] = set()
    if not v2 and len(components) > ACTION_ROWS_MAX:
        form.add(["components"], "BASE_TYPE_MAX_LENGTH", f"Must be {ACTION_ROWS_MAX} or fewer in length.")
    total = 0
    for index, component in enumerate(components):
        path: list[str | int] = ["components", index]
        if not isinstance(component, dict):
            form.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        total += 1
        kind = component.get("type")
        if kind != ACTION_ROW:
            if not v2:
                form.add(path + ["type"], "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).')
            continue
        children = component.get("components")
        if not isinstance(children, list) or not children:
            form.add(path + ["components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
            continue
        total += len(children)
        kinds = {c.get("type") for c in children if isinstance(c, dict)}
        if BUTTON in kinds:
            if len(children) > BUTTONS_PER_ROW:
                form.add(path + ["components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
            if kinds != {BUTTON}:
                form.add(
                    path + ["components"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "An action row with buttons cannot also contain a select.",
                )
        elif len(children) > 1:
            form.add(
                path + ["components"],
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "An action row can contain a single select.",
            )
        for number, child in enumerate(children):
            child_path = path + ["components", number]
            if not isinstance(child, dict):
                continue
            if child.get("type") == BUTTON:
                _check_button(form, child_path, child, seen)
            elif child.get("type") in (3, 5, 6, 7, 8):
                _check_custom_id(form, child_path, child, seen)
            else:
                form.add(
                    child_path + ["type"], "BASE_TYPE_CHOICES", "Not a component allowed in an action row."
                )
    if v2 and total > V2_COMPONENTS_MAX:
        form.add(["components"], "BASE_TYPE_MAX_LENGTH", f"Must be {V2_COMPONENTS_MAX} or fewer in length.")


def _check_modal(data: Mapping[str, Any]) -> None:
    form = _Form()
    if data.get("custom_id") is None:
        form.add(["data", "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    else:
        form.length(["data", "custom_id"], data["custom_id"], 1, CUSTOM_ID_MAX)
    if data.get("title") is None:
        form.add(["data", "title"], "BASE_TYPE_REQUIRED", "This field is required")
    else:
        form.length(["data", "title"], data["title"], 1, MODAL_TITLE_MAX)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= MODAL_COMPONENTS_MAX:
        form.add(
            ["data", "components"],
            "BASE_TYPE_BAD_LENGTH",
            f"Must be between 1 and {MODAL_COMPONENTS_MAX} in length.",
        )
    else:
        seen: set[str] = set()
        for index, component in enumerate(components):
            path: list[str | int] = ["data", "components", index]
            if not isinstance(component, dict):
                continue
            if component.get("type") == LABEL:
                inner = component.get("component")
                form.length(path + ["label"], component.get("label"), 1, 45)
                if isinstance(inner, dict):
                    _check_custom_id(form, path + ["component"], inner, seen)
                else:
                    form.add(path + ["component"], "BASE_TYPE_REQUIRED", "This field is required")
            elif component.get("type") == ACTION_ROW:
                # Deprecated but still accepted: an ActionRow holding one TextInput.
                children = component.get("components") or []
                if (
                    len(children) != 1
                    or not isinstance(children[0], dict)
                    or children[0].get("type") != TEXT_INPUT
                ):
                    form.add(
                        path + ["components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 1 in length."
                    )
                else:
                    _check_custom_id(form, path + ["components", 0], children[0], seen)
            elif component.get("type") != 10:  # a Text Display is allowed on its own
                form.add(
                    path + ["type"], "BASE_TYPE_CHOICES", "Not a component allowed at the top of a modal."
                )
    form.check()


def _check_overwrite(form: _Form, path: list[str | int], raw: Any, *, require_id: bool) -> None:
    if not isinstance(raw, dict):
        form.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    if require_id and not _SNOWFLAKE.match(str(raw.get("id") or "")):
        form.add(path + ["id"], "NUMBER_TYPE_COERCE", "Value is not snowflake.")
    if raw.get("type") not in (0, 1, "0", "1"):
        form.add(path + ["type"], "BASE_TYPE_CHOICES", "Value must be one of (0, 1).")
    for key in ("allow", "deny"):
        value = raw.get(key)
        if value is not None and not str(value).isdigit():
            form.add(path + [key], "NUMBER_TYPE_COERCE", "Value is not int.")


def _command_size(node: Mapping[str, Any]) -> int:
    size = len(str(node.get("name") or "")) + len(str(node.get("description") or ""))
    for choice in node.get("choices") or []:
        if isinstance(choice, dict):
            size += len(str(choice.get("name") or "")) + len(str(choice.get("value") or ""))
    for option in node.get("options") or []:
        if isinstance(option, dict):
            size += _command_size(option)
    return size


def _check_options(form: _Form, path: list[str | int], options: Any, *, depth: int) -> None:
    """Options at ``depth`` 0 (the command's), 1 (a group's or subcommand's), 2 (a grouped
    subcommand's). Only command → subcommand, command → group → subcommand nest."""
    if not isinstance(options, list):
        form.add(path, "BASE_TYPE_LIST", "Must be a list.")
        return
    if len(options) > COMMAND_OPTIONS_MAX:
        form.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {COMMAND_OPTIONS_MAX} or fewer in length.")
    names: set[str] = set()
    kinds = [o.get("type") for o in options if isinstance(o, dict)]
    nested = [k for k in kinds if k in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    if nested and len(nested) != len(kinds):
        form.add(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Subcommands and groups cannot be mixed with other options.",
        )
    optional_seen = False
    for index, option in enumerate(options):
        where = path + [index]
        if not isinstance(option, dict):
            form.add(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        kind = option.get("type")
        if kind not in range(1, 12):
            form.add(where + ["type"], "BASE_TYPE_CHOICES", "Value must be one of (1, ..., 11).")
        if not _valid_command_name(option.get("name"), lowercase=True):
            form.add(where + ["name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        elif option["name"] in names:
            form.add(
                where + ["name"],
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            )
        else:
            names.add(option["name"])
        form.length(where + ["description"], option.get("description"), 1, COMMAND_DESCRIPTION_MAX)
        if kind == SUB_COMMAND_GROUP:
            if depth != 0:
                form.add(
                    where + ["type"],
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Groups nest only at the top.",
                )
            sub = option.get("options") or []
            if any(isinstance(s, dict) and s.get("type") != SUB_COMMAND for s in sub):
                form.add(
                    where + ["options"],
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "A group holds subcommands only.",
                )
            _check_options(form, where + ["options"], sub, depth=1)
        elif kind == SUB_COMMAND:
            if depth == 2:
                form.add(
                    where + ["type"], "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Subcommands do not nest."
                )
            _check_options(form, where + ["options"], option.get("options") or [], depth=2)
        else:
            if option.get("options"):
                form.add(
                    where + ["options"],
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Only subcommands and groups have options.",
                )
            choices = option.get("choices")
            if choices is not None and (not isinstance(choices, list) or len(choices) > COMMAND_CHOICES_MAX):
                form.add(
                    where + ["choices"],
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {COMMAND_CHOICES_MAX} or fewer in length.",
                )
            # "Required options must be listed before optional options"
            if option.get("required"):
                if optional_seen:
                    form.add(
                        where + ["required"],
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                optional_seen = True


def _check_command(form: _Form, index: int, command: Any) -> None:
    if not isinstance(command, dict):
        form.add([index], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    kind = command.get("type") or 1
    if kind == 1:
        if not _valid_command_name(command.get("name"), lowercase=True):
            form.add([index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        form.length([index, "description"], command.get("description"), 1, COMMAND_DESCRIPTION_MAX)
        _check_options(form, [index, "options"], command.get("options") or [], depth=0)
        if _command_size(command) > COMMAND_SIZE_MAX:
            form.add(
                [index], "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({COMMAND_SIZE_MAX})"
            )
    else:
        # USER and MESSAGE commands: mixed case and spaces allowed, no description or options.
        name = command.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= COMMAND_NAME_MAX:
            form.add(
                [index, "name"],
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {COMMAND_NAME_MAX} in length.",
            )
        if command.get("options"):
            form.add(
                [index, "options"],
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Only CHAT_INPUT commands have options.",
            )


def _normalize_command(command: Mapping[str, Any], kind: int) -> dict[str, Any]:
    stored: dict[str, Any] = {
        "type": kind,
        "name": command["name"],
        "description": command.get("description") or "",
        "default_member_permissions": command.get("default_member_permissions"),
        "nsfw": bool(command.get("nsfw", False)),
        "contexts": command.get("contexts"),
        "integration_types": command.get("integration_types", [0]),
    }
    for key in ("name_localizations", "description_localizations"):
        if command.get(key) is not None:
            stored[key] = _copy(command[key])
    if command.get("options"):
        stored["options"] = _copy(list(command["options"]))
    return stored


def _find_component(components: Iterable[Any], custom_id: str) -> dict[str, Any] | None:
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("custom_id") == custom_id:
            return component
        for key in ("components", "accessory", "component"):
            inner = component.get(key)
            if isinstance(inner, dict):
                inner = [inner]
            if isinstance(inner, list):
                found = _find_component(inner, custom_id)
                if found is not None:
                    return found
    return None


# -- routing -------------------------------------------------------------------------------

_S = r"([^/]+)"
# (method, pattern, template for the bucket, op, handler, needs the bot token)
_ROUTES: list[tuple[str, re.Pattern[str], str, str, Callable[..., tuple[int, Any]], bool]] = [
    (
        "POST",
        re.compile(rf"^/channels/{_S}/messages$"),
        "/channels/{id}/messages",
        "create_message",
        FakeDiscord._create_message,
        True,
    ),
    (
        "GET",
        re.compile(rf"^/channels/{_S}/messages$"),
        "/channels/{id}/messages",
        "get_messages",
        FakeDiscord._get_messages,
        True,
    ),
    (
        "PUT",
        re.compile(rf"^/channels/{_S}/(?:messages/)?pins/{_S}$"),
        "/channels/{id}/pins/{mid}",
        "pin_message",
        FakeDiscord._pin_message,
        True,
    ),
    (
        "GET",
        re.compile(rf"^/channels/{_S}/messages/{_S}$"),
        "/channels/{id}/messages/{mid}",
        "get_message",
        FakeDiscord._get_message,
        True,
    ),
    (
        "PATCH",
        re.compile(rf"^/channels/{_S}/messages/{_S}$"),
        "/channels/{id}/messages/{mid}",
        "edit_message",
        FakeDiscord._edit_channel_message,
        True,
    ),
    (
        "PUT",
        re.compile(rf"^/channels/{_S}/permissions/{_S}$"),
        "/channels/{id}/permissions/{oid}",
        "edit_permissions",
        FakeDiscord._edit_permissions,
        True,
    ),
    (
        "DELETE",
        re.compile(rf"^/channels/{_S}/permissions/{_S}$"),
        "/channels/{id}/permissions/{oid}",
        "delete_permission",
        FakeDiscord._delete_permission,
        True,
    ),
    (
        "GET",
        re.compile(rf"^/channels/{_S}$"),
        "/channels/{id}",
        "get_channel",
        FakeDiscord._get_channel,
        True,
    ),
    (
        "PATCH",
        re.compile(rf"^/channels/{_S}$"),
        "/channels/{id}",
        "modify_channel",
        FakeDiscord._modify_channel,
        True,
    ),
    (
        "DELETE",
        re.compile(rf"^/channels/{_S}$"),
        "/channels/{id}",
        "delete_channel",
        FakeDiscord._delete_channel,
        True,
    ),
    (
        "POST",
        re.compile(rf"^/guilds/{_S}/channels$"),
        "/guilds/{id}/channels",
        "create_guild_channel",
        FakeDiscord._create_guild_channel,
        True,
    ),
    (
        "GET",
        re.compile(rf"^/guilds/{_S}/channels$"),
        "/guilds/{id}/channels",
        "get_guild_channels",
        FakeDiscord._get_guild_channels,
        True,
    ),
    ("GET", re.compile(rf"^/users/{_S}$"), "/users/{id}", "get_user", FakeDiscord._get_user, True),
    # Interaction callbacks and webhooks are authorised by their token, not the bot's.
    (
        "POST",
        re.compile(rf"^/interactions/{_S}/{_S}/callback$"),
        "/interactions/{id}/{token}/callback",
        "interaction_callback",
        FakeDiscord._interaction_callback,
        False,
    ),
    (
        "GET",
        re.compile(rf"^/webhooks/{_S}/{_S}/messages/@original$"),
        "/webhooks/{id}/{token}/messages/@original",
        "get_original",
        FakeDiscord._get_original,
        False,
    ),
    (
        "PATCH",
        re.compile(rf"^/webhooks/{_S}/{_S}/messages/@original$"),
        "/webhooks/{id}/{token}/messages/@original",
        "edit_original",
        FakeDiscord._edit_original,
        False,
    ),
    (
        "DELETE",
        re.compile(rf"^/webhooks/{_S}/{_S}/messages/@original$"),
        "/webhooks/{id}/{token}/messages/@original",
        "delete_original",
        FakeDiscord._delete_original,
        False,
    ),
    (
        "PATCH",
        re.compile(rf"^/webhooks/{_S}/{_S}/messages/{_S}$"),
        "/webhooks/{id}/{token}/messages/{mid}",
        "edit_followup",
        FakeDiscord._edit_followup,
        False,
    ),
    (
        "POST",
        re.compile(rf"^/webhooks/{_S}/{_S}$"),
        "/webhooks/{id}/{token}",
        "create_followup",
        FakeDiscord._create_followup,
        False,
    ),
    (
        "PUT",
        re.compile(rf"^/applications/{_S}/commands$"),
        "/applications/{id}/commands",
        "bulk_overwrite_global_commands",
        FakeDiscord._bulk_global,
        True,
    ),
    (
        "GET",
        re.compile(rf"^/applications/{_S}/commands$"),
        "/applications/{id}/commands",
        "get_global_commands",
        FakeDiscord._get_global,
        True,
    ),
    (
        "PUT",
        re.compile(rf"^/applications/{_S}/guilds/{_S}/commands$"),
        "/applications/{id}/guilds/{gid}/commands",
        "bulk_overwrite_guild_commands",
        FakeDiscord._bulk_guild,
        True,
    ),
    (
        "GET",
        re.compile(rf"^/applications/{_S}/guilds/{_S}/commands$"),
        "/applications/{id}/guilds/{gid}/commands",
        "get_guild_commands",
        FakeDiscord._get_guild,
        True,
    ),
]


def _route(
    method: str, path: str
) -> tuple[str, str, Callable[..., tuple[int, Any]] | None, tuple[str, ...], bool]:
    """The operation serving ``method path`` (below ``/api/v10``): op, bucket template,
    handler, path ids, whether the bot token is required."""
    for verb, pattern, template, op, handler, needs_bot in _ROUTES:
        match = pattern.match(path)
        if match and verb == method:
            return op, template, handler, match.groups(), needs_bot
    return "unknown", "", None, (), False


def _handler_for(served: FakeDiscord) -> type[BaseHTTPRequestHandler]:
    class Handler(KeepAliveHandler):
        fake = served
        server_version = "FakeDiscord/1.0"
        none_is_empty = True
        bodiless_statuses = (204,)

        do_GET = KeepAliveHandler.serve
        do_POST = KeepAliveHandler.serve
        do_PUT = KeepAliveHandler.serve
        do_PATCH = KeepAliveHandler.serve
        do_DELETE = KeepAliveHandler.serve

    return Handler


__all__ = [
    "API_PREFIX",
    "DEFAULT_TOKEN",
    "EPHEMERAL",
    "INTERACTION_TOKEN_TTL",
    "IS_COMPONENTS_V2",
    "LOADING",
    "Call",
    "Delivered",
    "Ed25519Keys",
    "FakeDiscord",
    "ManualClock",
    "Outgoing",
    "UserRef",
    "api_error",
    "form_error",
    "rate_limit_body",
    "send",
    "sign_request",
    "verify_signature",
    "wait_for",
]
