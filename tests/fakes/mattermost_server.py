"""A local HTTP server that plays Mattermost, for unit and end-to-end tests.

It serves the REST API v4 calls the service makes (under ``/api/v4``), accepts slash-command
``response_url`` posts (under ``/hooks/commands/<id>``), records every request, and builds the
requests Mattermost sends to an integration (slash commands, button clicks, dialog
submissions) so tests can play Mattermost calling the ingress. It can be told to fail the way
Mattermost fails: 429 with ``X-Ratelimit-*`` headers and ``limit exceeded``, 5xx, 403 for a
missing permission, per-channel posting limits.

Behaviour follows Mattermost's documentation:

- REST API v4, errors, rate limiting: https://api.mattermost.com/ (``#tag/errors``,
  ``#tag/rate-limiting``, ``#tag/posts``, ``#tag/channels``, ``#tag/users``,
  ``#tag/integration_actions``); its source is
  https://github.com/mattermost/mattermost/tree/master/api/v4/source
- Slash commands (request fields, ``Authorization: Token``, ``response_url``: five more posts
  within 30 minutes, plain text or JSON): https://developers.mattermost.com/integrate/slash-commands/custom/
- Message buttons and menus (``attachments[].actions[].integration``, the request sent on a
  click, the ``update``/``ephemeral_text`` answer, ``update.props`` semantics):
  https://developers.mattermost.com/integrate/plugins/interactive-messages/
- Message attachments: https://developers.mattermost.com/integrate/reference/message-attachments/
- Interactive dialogs (``/api/v4/actions/dialogs/open``, the ``dialog_submission`` request):
  https://developers.mattermost.com/integrate/plugins/interactive-dialogs/
- Outgoing webhooks (the request sent when a message in a public channel starts with a
  trigger word, form-encoded or JSON; its ``token``; the ``text``/``response_type`` answer):
  https://developers.mattermost.com/integrate/webhooks/outgoing/

Where the documentation is silent the fake does what the Mattermost server does (source at
https://github.com/mattermost/mattermost, ``server/``); each such place says so in a comment.
Error ``id`` values are the server's; ``message`` texts are short paraphrases.

Recorded payloads from the documentation are in ``tests/fixtures/mattermost/``:
``slash_command.txt`` and ``slash_command_headers.json`` (custom slash commands page),
``button_click.json`` and ``action_response.json`` (interactive messages page),
``dialog_open.json`` (interactive dialogs page, trimmed to four elements),
``dialog_submission.json`` (the documented submission shape, with the values of the page's
dialog example), ``command_response.json`` (slash commands page), ``post_response.json`` (the
API reference's Post schema, with ids and attachments from the interactive messages page),
``error_response.json`` (API reference, errors), ``error_unauthorized.json`` (what the server
answers a bad token), ``rate_limited.json`` (API reference, rate limiting) and
``outgoing_webhook.json`` (the outgoing webhooks page's example request, as the JSON content
type sends it: the same fields, ``timestamp`` in milliseconds, plus ``file_ids``).

Standard library only, so end-to-end tests and the playground can run it in any process::

    with FakeMattermost() as mm:
        # point the provider's ``url`` at mm.url, ``bot_token`` at mm.token,
        # ``command_token`` at mm.command_token and ``team_id`` at mm.team_id, then:
        mm.run_slash_command(ingress_url, "declare sev2 Database timeouts")
        post = mm.wait_for(lambda: mm.posts("incidents"))[-1]
        mm.click(post["id"], "ack")
        # with ``outgoing_webhook_token`` at mm.outgoing_webhook_token:
        mm.mention(ingress_url, "@incident-bot what's open?")

Operations (the names ``calls()`` and ``fail()`` take):

================================  ===============================================
``get_user``                      ``GET /users/{id}`` and ``GET /users/me``
``get_user_by_username``          ``GET /users/username/{name}``
``create_post``                   ``POST /posts``
``create_post_ephemeral``         ``POST /posts/ephemeral``
``get_post``                      ``GET /posts/{id}``
``update_post``                   ``PUT /posts/{id}``
``patch_post``                    ``PUT /posts/{id}/patch``
``pin_post``                      ``POST /posts/{id}/pin``
``get_posts_for_channel``         ``GET /channels/{id}/posts``
``create_channel``                ``POST /channels``
``get_channel``                   ``GET /channels/{id}``
``get_channel_by_name``           ``GET /teams/{team_id}/channels/name/{name}``
``add_channel_member``            ``POST /channels/{id}/members``
``remove_channel_member``         ``DELETE /channels/{id}/members/{user_id}``
``delete_channel``                ``DELETE /channels/{id}`` (archives)
``patch_channel``                 ``PUT /channels/{id}/patch``
``open_dialog``                   ``POST /actions/dialogs/open``
``command_response``              ``POST /hooks/commands/{id}`` (a ``response_url``)
================================  ===============================================
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from tests.fakes.local_server import FakeHandler, LocalServer
from tests.fakes.recorded import CallRecord, Delivered, HttpCall, ManualClock, send, wait_for
from tests.fakes.recorded import Reply as _Reply

T = TypeVar("T")

# Personal access tokens and ids are 26 characters of Mattermost's id alphabet.
DEFAULT_TOKEN = "m8rb5i3yh7nwxgfpz9u1t4kdoa"
DEFAULT_COMMAND_TOKEN = "qzgakf1nx3yt9dr4n8585ihbxy"  # the token of the docs' example
DEFAULT_OUTGOING_TOKEN = "zmigewsanbbsdf59xnmduzypjc"  # the outgoing webhook docs' example
DEFAULT_TRIGGER_WORDS = ("@incident-bot",)
# An outgoing webhook's trigger_when: the first word equals a trigger word, or starts with one.
TRIGGER_EXACT_MATCH = 0
TRIGGER_STARTS_WITH = 1
TEAM_NAME = "example"  # sent as ``team_domain``
TEAM_DISPLAY_NAME = "Example"
BOT_USERNAME = "incident-bot"
DEFAULT_USERS = ("alice", "bob", "carol")
DEFAULT_CHANNELS = ("town-square", "off-topic", "incidents", "critical-incidents", "major-incidents")
COMMAND_RESPONSE = "command_response"  # the operation of response_url posts

# Mattermost's NewId: 16 random bytes in base32 with this alphabet, 26 characters.
_ID_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_ID = re.compile(r"^[a-z0-9]{26}$")
# Channel names. The docs do not state the rule; the server (model.IsValidChannelIdentifier)
# takes a lowercase letter or digit, then lowercase letters, digits, "-" and "_". Its minimum
# length is 2 on servers up to v10 (error id ...2_or_more...) and 1 on the newest
# (...1_or_more...); ChannelNameMaxLength is 64.
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CHANNEL_NAME_MAX = 64
_DISPLAY_NAME_MAX = 64  # ChannelDisplayNameMaxRunes
_HEADER_MAX = 1024  # ChannelHeaderMaxRunes
_PURPOSE_MAX = 250  # ChannelPurposeMaxRunes
_POST_MESSAGE_MAX = 16383  # "Posts size is limited to 16383 characters" (slash commands page)
_DIALOG_TITLE_MAX = 24  # "Title of the dialog. Maximum 24 characters."
RESPONSE_URL_USES = 5  # "five additional messages"
RESPONSE_URL_LIFETIME = 30 * 60.0  # "within a 30-minute time period"
# The docs give no lifetime for a trigger id. Servers up to v9 reject one older than 3 s
# (INTERACTIVE_DIALOG_TRIGGER_TIMEOUT_MILLISECONDS); newer ones allow
# OutgoingIntegrationRequestsTimeout (30 s by default). 3 s is the default here.
TRIGGER_TTL = 3.0
LIMIT_EXCEEDED = "limit exceeded\n"  # the server writes it with http.Error, so with "\n"


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call(HttpCall):
    """One request the fake received.

    ``op`` is the operation (see the module docstring; ``"unknown"`` for an unserved path),
    ``params`` the query parameters and top-level JSON fields together, ``json`` the parsed
    JSON body (None when there was none), ``text`` the raw body, ``headers`` the request
    headers with lowercase names. ``status``, ``response`` and ``response_headers`` are what
    the fake answered.
    """

    @property
    def error_id(self) -> str | None:
        """The Mattermost error ``id`` answered, if any."""
        if isinstance(self.response, dict) and "status_code" in self.response:
            value = self.response.get("id")
            return value if isinstance(value, str) else None
        return None


@dataclass(frozen=True)
class Outgoing:
    """A request Mattermost would send to an integration: where, what, with which headers.

    ``url`` is None when Mattermost would take it from configuration (a slash command's
    request URL): pass one to :func:`send`.
    """

    url: str | None
    body: bytes
    headers: dict[str, str]
    data: dict[str, Any]
    trigger_id: str = ""
    response_url: str = ""


@dataclass
class _User:
    id: str
    username: str
    is_bot: bool
    create_at: int

    def to_api(self) -> dict[str, Any]:
        first = "" if self.is_bot else self.username.capitalize()
        user: dict[str, Any] = {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "username": self.username,
            "auth_data": "",
            "auth_service": "",
            "email": f"{self.username}@{TEAM_NAME}.com",
            "email_verified": True,
            "nickname": "",
            "first_name": first,
            "last_name": "",
            "position": "",
            "roles": "system_user",
            "props": {},
            "notify_props": {},
            "locale": "en",
            "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
            "disable_welcome_email": False,
        }
        if self.is_bot:
            user.update(is_bot=True, bot_description="Incident response bot")
        return user


@dataclass
class _Channel:
    id: str
    team_id: str
    name: str
    display_name: str
    type: str
    creator_id: str
    create_at: int
    header: str = ""
    purpose: str = ""
    update_at: int = 0
    delete_at: int = 0
    last_post_at: int = 0
    total_msg_count: int = 0
    members: set[str] = field(default_factory=set)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.update_at or self.create_at,
            "delete_at": self.delete_at,
            "team_id": self.team_id,
            "type": self.type,
            "display_name": self.display_name,
            "name": self.name,
            "header": self.header,
            "purpose": self.purpose,
            "last_post_at": self.last_post_at,
            "total_msg_count": self.total_msg_count,
            "extra_update_at": 0,
            "creator_id": self.creator_id,
            "scheme_id": None,
            "props": None,
            "group_constrained": None,
            "shared": None,
            "total_msg_count_root": self.total_msg_count,
            "policy_id": None,
            "last_root_post_at": self.last_post_at,
        }


@dataclass
class _Hook:
    """A slash command's ``response_url``."""

    id: str
    create_at: float
    user_id: str
    channel_id: str
    uses: int = 0


@dataclass
class _Fault:
    status: int
    reset: int
    limit: int
    body: Any
    error_id: str | None
    message: str | None


def app_error(status: int, error_id: str, message: str, request_id: str = "") -> dict[str, Any]:
    """Mattermost's error body.

    The docs show ``id, message, request_id, status_code, is_oauth``; the server writes
    ``detailed_error`` (emptied for non-admin sessions) and leaves ``is_oauth`` out unless
    true (``json:"is_oauth,omitempty"``), which is what is sent here.
    """
    return {
        "id": error_id,
        "message": message,
        "detailed_error": "",
        "request_id": request_id,
        "status_code": status,
    }


def _error(status: int, error_id: str, message: str) -> _Reply:
    return _Reply(status, app_error(status, error_id, message))


def _invalid_body(name: str) -> _Reply:
    return _error(
        400, "api.context.invalid_body_param.app_error", f"Invalid or missing {name} in request body."
    )


def _invalid_url(name: str) -> _Reply:
    return _error(
        400, "api.context.invalid_url_param.app_error", f"Invalid or missing {name} parameter in request URL."
    )


def _forbidden() -> _Reply:
    return _error(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.")


def _unauthorized() -> _Reply:
    return _error(
        401, "api.context.session_expired.app_error", "Invalid or expired session, please login again."
    )


def rate_limit_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """The headers of a rate-limited answer.

    ``X-Ratelimit-Reset`` is the seconds until the limit resets, as the docs' 429 example and
    the server (``ceil(ResetAfter)``) send it; the server also sends ``Retry-After``.
    """
    return {
        "X-Ratelimit-Limit": str(limit),
        "X-Ratelimit-Remaining": str(remaining),
        "X-Ratelimit-Reset": str(reset),
        "Retry-After": str(reset),
    }


# -- helpers for tests ----------------------------------------------------------------------


def slash_command_form(
    *,
    command: str,
    text: str,
    token: str,
    channel_id: str,
    channel_name: str,
    team_id: str,
    team_domain: str,
    user_id: str,
    user_name: str,
    response_url: str,
    trigger_id: str,
) -> tuple[bytes, dict[str, str]]:
    """The form body and headers of a slash command request, as Mattermost sends it.

    Fields in the order of the docs' example; the token goes both in the ``token`` field and
    in ``Authorization: Token``.
    """
    fields = {
        "channel_id": channel_id,
        "channel_name": channel_name,
        "command": command,
        "response_url": response_url,
        "team_domain": team_domain,
        "team_id": team_id,
        "text": text,
        "token": token,
        "trigger_id": trigger_id,
        "user_id": user_id,
        "user_name": user_name,
    }
    headers = {
        "Accept": "application/json",
        "Authorization": f"Token {token}",
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "Mattermost-Bot/1.1",
    }
    return urlencode(fields).encode(), headers


def button_click_payload(
    *,
    user_id: str,
    user_name: str,
    post_id: str,
    channel_id: str,
    channel_name: str,
    team_id: str,
    team_domain: str,
    trigger_id: str,
    context: Mapping[str, Any],
    type: str = "button",  # noqa: A002 - the field's name
    data_source: str = "",
) -> dict[str, Any]:
    """The JSON Mattermost POSTs to an action's ``integration.url`` when it is clicked.

    The docs list ``user_id, post_id, channel_id, team_id, context``; the server's
    PostActionIntegrationRequest also sends the other fields (``team_name`` as
    ``team_domain``). For a menu, ``context`` carries ``selected_option``.
    """
    return {
        "user_id": user_id,
        "user_name": user_name,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "team_id": team_id,
        "team_domain": team_domain,
        "post_id": post_id,
        "trigger_id": trigger_id,
        "type": type,
        "data_source": data_source,
        "context": dict(context),
    }


def dialog_submission_payload(
    *,
    callback_id: str,
    state: str,
    user_id: str,
    channel_id: str,
    team_id: str,
    submission: Mapping[str, Any],
    cancelled: bool = False,
) -> dict[str, Any]:
    """The JSON Mattermost POSTs to a dialog's ``url`` on submit (or, with
    ``notify_on_cancel``, on cancel: ``cancelled`` true and ``submission`` empty)."""
    return {
        "type": "dialog_submission",
        "callback_id": callback_id,
        "state": state,
        "user_id": user_id,
        "channel_id": channel_id,
        "team_id": team_id,
        "submission": {} if cancelled else dict(submission),
        "cancelled": cancelled,
    }


def outgoing_webhook_payload(
    *,
    token: str,
    team_id: str,
    team_domain: str,
    channel_id: str,
    channel_name: str,
    timestamp_ms: int,
    user_id: str,
    user_name: str,
    post_id: str,
    text: str,
    trigger_word: str,
    file_ids: Iterable[str] = (),
    content_type: str = "application/json",
) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    """The body, headers and fields of an outgoing webhook's request, as Mattermost sends it.

    The fields of the docs' example plus ``file_ids`` (the server's OutgoingWebhookPayload,
    ids joined with commas). JSON carries ``timestamp`` as the post's ``create_at`` in
    milliseconds; the form encoding divides it to seconds, as in the docs' example. The
    server sets ``Content-Type`` and ``Accept: application/json`` and nothing else of note.
    """
    fields: dict[str, Any] = {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "timestamp": timestamp_ms,
        "user_id": user_id,
        "user_name": user_name,
        "post_id": post_id,
        "text": text,
        "trigger_word": trigger_word,
        "file_ids": ",".join(file_ids),
    }
    headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": "Go-http-client/1.1"}
    if content_type == "application/json":
        return json.dumps(fields).encode(), headers, fields
    form = {**fields, "timestamp": str(timestamp_ms // 1000)}
    return urlencode(form).encode(), headers, form


def trigger_word_of(
    message: str, trigger_words: Iterable[str], trigger_when: int = TRIGGER_EXACT_MATCH
) -> str | None:
    """The trigger word a message sets off, or None: the server compares the message's first
    word (split on whitespace) with each trigger word, for equality or as a prefix."""
    words = message.split()
    if not words:
        return None
    for word in trigger_words:
        if words[0] == word or (trigger_when == TRIGGER_STARTS_WITH and words[0].startswith(word)):
            return word
    return None


@dataclass(frozen=True)
class Mentioned:
    """A message posted by :meth:`FakeMattermost.mention`: its post, the outgoing webhook's
    request and the integration's answer (both None when Mattermost would send nothing)."""

    post_id: str
    outgoing: Outgoing | None
    delivered: Delivered | None


# -- the server -----------------------------------------------------------------------------


class FakeMattermost(CallRecord[Call, _Fault], LocalServer):
    """Mattermost's REST API v4 and slash-command response URLs on ``127.0.0.1``, in a thread.

    One team (``team_id``, named ``example``); users ``incident-bot`` (the bot, owner of
    ``token``) and ``users``; public channels ``channels``, each with every seeded user as a
    member. ``clock`` gives the time for timestamps, trigger and ``response_url`` expiry and
    posting limits (pass a :class:`ManualClock` to move time without sleeping).

    ``outgoing_webhook_token`` is the token of an outgoing webhook whose trigger word is
    ``@incident-bot`` (see :meth:`mention`).

    Switches: ``require_membership`` (posting where the bot is not a member is 403),
    ``ephemeral_allowed`` (False: ``POST /posts/ephemeral`` is 403, as for a bot without
    ``create_post_ephemeral``), ``single_use_triggers``, ``trigger_ttl``,
    ``channel_name_min_length`` (2, or 1 as the newest servers). ``port``: where to listen
    (0: a free port).
    """

    _any_op = None  # faults are scripted per operation only

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        command_token: str = DEFAULT_COMMAND_TOKEN,
        outgoing_webhook_token: str = DEFAULT_OUTGOING_TOKEN,
        users: Iterable[str] = DEFAULT_USERS,
        channels: Iterable[str] = DEFAULT_CHANNELS,
        clock: Callable[[], float] = time.time,
        trigger_ttl: float = TRIGGER_TTL,
        single_use_triggers: bool = True,
        channel_name_min_length: int = 2,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        self.token = token
        self.command_token = command_token
        self.outgoing_webhook_token = outgoing_webhook_token
        self.clock = clock
        self.trigger_ttl = trigger_ttl
        # The docs do not say a trigger id works once, and the server does not record used
        # ones; refusing a second use (error id of the fake's own) keeps clients honest.
        self.single_use_triggers = single_use_triggers
        self.channel_name_min_length = channel_name_min_length
        self.require_membership = False
        self.ephemeral_allowed = True
        self._port = port
        self._rng = random.Random(seed)
        self._trigger_key = self._rng.randbytes(32)
        self._lock = threading.RLock()
        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._posts: dict[str, dict[str, Any]] = {}
        self._channel_posts: dict[str, list[str]] = {}
        self._ephemeral: list[dict[str, Any]] = []
        self._hooks: dict[str, _Hook] = {}
        self._responses: list[tuple[str, dict[str, Any]]] = []
        self._dialogs: list[dict[str, Any]] = []
        self._used_triggers: set[str] = set()
        self._calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._limits: dict[str, float] = {}
        self._recent_posts: dict[str, deque[float]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.team_id = self._new_id()
        self.bot_user_id = self.add_user(BOT_USERNAME, is_bot=True)
        for username in users:
            self.add_user(username)
        for name in channels:
            self.add_channel(name, members=[u.id for u in self._users.values()])

    # -- lifecycle ---------------------------------------------------------------------
    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v4"

    # -- state set-up ------------------------------------------------------------------
    def add_user(self, username: str, *, is_bot: bool = False, user_id: str | None = None) -> str:
        """Create a user directly (with ``user_id``, or a new id); returns its id."""
        with self._lock:
            user = _User(id=user_id or self._new_id(), username=username, is_bot=is_bot, create_at=self._ms())
            self._users[user.id] = user
            return user.id

    def add_channel(
        self,
        name: str,
        *,
        type: str = "O",  # noqa: A002 - Mattermost's field name
        members: Iterable[str] = (),
        display_name: str | None = None,
        channel_id: str | None = None,
    ) -> str:
        """Create a channel directly (no validation; with ``channel_id``, or a new id);
        returns its id."""
        with self._lock:
            channel = _Channel(
                id=channel_id or self._new_id(),
                team_id=self.team_id,
                name=name,
                display_name=display_name or name.replace("-", " ").title(),
                type=type,
                creator_id=self.bot_user_id,
                create_at=self._ms(),
            )
            channel.members.update(self._require_user(m).id for m in members)
            self._channels[channel.id] = channel
            self._channel_posts[channel.id] = []
            return channel.id

    def add_post(
        self,
        channel: str,
        message: str,
        *,
        user: str = "alice",
        props: Mapping[str, Any] | None = None,
        root_id: str = "",
    ) -> str:
        """Post ``message`` as ``user`` (a username or id) directly; returns the post's id."""
        with self._lock:
            found = self._require_channel(channel)
            return self._store_post(found, self._require_user(user).id, message, dict(props or {}), root_id)[
                "id"
            ]

    def archive_channel(self, channel: str) -> None:
        with self._lock:
            self._require_channel(channel).delete_at = self._ms()

    def limit_channel(self, channel: str, per_second: float = 1.0) -> None:
        """Allow ``per_second`` posts per second into ``channel``; more are 429 ``limit exceeded``."""
        with self._lock:
            self._limits[self._require_channel(channel).id] = per_second

    def fail(
        self,
        op: str,
        times: int = 1,
        status: int = 429,
        *,
        reset: int = 1,
        limit: int = 10,
        body: Any = None,
        error_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``op`` fail before they take effect.

        - ``status=429``: the ``X-Ratelimit-*`` headers (``reset`` seconds, ``limit``,
          remaining 0) plus ``Retry-After``, and the text body ``limit exceeded``;
        - ``status=403``: Mattermost's permission error; ``401``: its session error;
        - any other status: an error body with ``error_id``/``message`` (defaults name the fake);
        - ``body``: the exact answer instead (dict as JSON, str/bytes as text).
        """
        self._script_fault(
            op,
            times,
            lambda: _Fault(
                status=status, reset=reset, limit=limit, body=body, error_id=error_id, message=message
            ),
        )

    def new_trigger_id(self, user: str = "alice") -> str:
        """A trigger id for ``user`` issued now, shaped as the server's.

        The server's is base64 of ``<id>:<user id>:<ms>:<base64 ECDSA signature>``; the fake
        signs with HMAC instead, which clients cannot tell apart (the id is opaque to them).
        """
        with self._lock:
            user_id = self._require_user(user).id
            raw = f"{self._new_id()}:{user_id}:{self._ms()}"
            signature = hmac.new(self._trigger_key, raw.encode() + b":", hashlib.sha256).digest()
            token = f"{raw}:{base64.b64encode(signature).decode()}"
            return base64.b64encode(token.encode()).decode()

    # -- requests Mattermost sends to an integration --------------------------------------
    def slash_command(
        self,
        text: str = "",
        *,
        command: str = "/im",
        user: str = "alice",
        channel: str = "incidents",
        token: str | None = None,
        url: str | None = None,
    ) -> Outgoing:
        """A slash command typed by ``user`` in ``channel``, with a fresh ``response_url``
        (served here) and trigger id."""
        with self._lock:
            found_user = self._require_user(user)
            found = self._require_channel(channel)
            hook = _Hook(
                id=self._new_id(), create_at=self.clock(), user_id=found_user.id, channel_id=found.id
            )
            self._hooks[hook.id] = hook
            response_url = f"{self.url}/hooks/commands/{hook.id}"
            trigger_id = self.new_trigger_id(found_user.id)
            body, headers = slash_command_form(
                command=command,
                text=text,
                token=self.command_token if token is None else token,
                channel_id=found.id,
                channel_name=found.name,
                team_id=self.team_id,
                team_domain=TEAM_NAME,
                user_id=found_user.id,
                user_name=found_user.username,
                response_url=response_url,
                trigger_id=trigger_id,
            )
            return Outgoing(
                url=url,
                body=body,
                headers=headers,
                data=dict(parse_qsl(body.decode(), keep_blank_values=True)),
                trigger_id=trigger_id,
                response_url=response_url,
            )

    def button_click(
        self,
        post_id: str,
        action: str,
        *,
        user: str = "alice",
        selected_option: str | None = None,
    ) -> Outgoing:
        """The request Mattermost sends when ``user`` clicks ``action`` (its id or name) of a
        post's attachments; URL and context are the action's ``integration``."""
        with self._lock:
            post = self._posts.get(post_id)
            if post is None:
                raise KeyError(f"FakeMattermost has no post {post_id!r}")
            found = _find_action(post, action)
            if found is None:
                raise KeyError(f"post {post_id} has no action {action!r}")
            integration = found.get("integration") or {}
            context = dict(integration.get("context") or {})
            if selected_option is not None:
                context["selected_option"] = selected_option
            clicker = self._require_user(user)
            channel = self._channels[post["channel_id"]]
            trigger_id = self.new_trigger_id(clicker.id)
            data = button_click_payload(
                user_id=clicker.id,
                user_name=clicker.username,
                post_id=post_id,
                channel_id=channel.id,
                channel_name=channel.name,
                team_id=self.team_id,
                team_domain=TEAM_NAME,
                trigger_id=trigger_id,
                context=context,
                type=str(found.get("type") or "button"),
                data_source=str(found.get("data_source") or ""),
            )
            return Outgoing(
                url=str(integration.get("url") or "") or None,
                body=json.dumps(data).encode(),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                data=data,
                trigger_id=trigger_id,
            )

    def dialog_submission(
        self,
        submission: Mapping[str, Any],
        *,
        dialog: Mapping[str, Any] | None = None,
        user: str | None = None,
        channel: str = "incidents",
        cancelled: bool = False,
    ) -> Outgoing:
        """The request Mattermost sends when a dialog opened here (default: the latest) is
        submitted (or cancelled) by its user."""
        with self._lock:
            opened = dialog if dialog is not None else (self._dialogs[-1] if self._dialogs else None)
            if opened is None:
                raise LookupError("no dialog was opened")
            spec = opened.get("dialog") or {}
            user_id = self._require_user(user).id if user else str(opened.get("user_id") or "")
            data = dialog_submission_payload(
                callback_id=str(spec.get("callback_id") or ""),
                state=str(spec.get("state") or ""),
                user_id=user_id,
                channel_id=self._require_channel(channel).id,
                team_id=self.team_id,
                submission=submission,
                cancelled=cancelled,
            )
            return Outgoing(
                url=str(opened.get("url") or "") or None,
                body=json.dumps(data).encode(),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                data=data,
            )

    def outgoing_webhook(
        self,
        post_id: str,
        *,
        trigger_word: str = DEFAULT_TRIGGER_WORDS[0],
        token: str | None = None,
        content_type: str = "application/json",
        url: str | None = None,
    ) -> Outgoing:
        """The request an outgoing webhook sends for a stored post (``token`` defaults to
        ``outgoing_webhook_token``). It does not check that the post would set it off: see
        :meth:`mention` for that."""
        with self._lock:
            post = self._posts.get(post_id)
            if post is None:
                raise KeyError(f"FakeMattermost has no post {post_id!r}")
            channel = self._channels[post["channel_id"]]
            author = self._users[post["user_id"]]
            body, headers, data = outgoing_webhook_payload(
                token=self.outgoing_webhook_token if token is None else token,
                team_id=self.team_id,
                team_domain=TEAM_NAME,
                channel_id=channel.id,
                channel_name=channel.name,
                timestamp_ms=int(post["create_at"]),
                user_id=author.id,
                user_name=author.username,
                post_id=post_id,
                text=str(post["message"]),
                trigger_word=trigger_word,
                file_ids=post.get("file_ids") or (),
                content_type=content_type,
            )
            return Outgoing(url=url, body=body, headers=headers, data=data)

    def mention(
        self,
        url: str,
        message: str,
        *,
        user: str = "alice",
        channel: str = "incidents",
        root_id: str = "",
        token: str | None = None,
        trigger_words: Iterable[str] = DEFAULT_TRIGGER_WORDS,
        trigger_when: int = TRIGGER_EXACT_MATCH,
        content_type: str = "application/json",
    ) -> Mentioned:
        """Post ``message`` as ``user`` and play the outgoing webhook (callback ``url``) it
        sets off, then apply the answer as Mattermost does: ``text`` or ``attachments`` make a
        post (in the message's thread with ``response_type: comment``), anything else nothing.

        As the server does, nothing is sent for a message in a channel that is not public or
        whose first word sets off no trigger word.
        """
        post_id = self.add_post(channel, message, user=user, root_id=root_id)
        with self._lock:
            found = self._require_channel(channel)
            word = trigger_word_of(message, trigger_words, trigger_when)
            if found.type != "O" or word is None:
                return Mentioned(post_id, None, None)
        outgoing = self.outgoing_webhook(
            post_id, trigger_word=word, token=token, content_type=content_type, url=url
        )
        delivered = send(outgoing)
        answer = delivered.json
        if isinstance(answer, dict) and (answer.get("text") is not None or answer.get("attachments")):
            with self._lock:
                props = dict(answer.get("props") or {})
                if answer.get("attachments"):
                    props["attachments"] = answer["attachments"]
                props["from_webhook"] = "true"
                # The server answers under the triggering post itself (its id as root_id), as the
                # webhook's creator (here the bot's account).
                root = post_id if answer.get("response_type") == "comment" else ""
                self._store_post(found, self.bot_user_id, str(answer.get("text") or ""), props, root)
        return Mentioned(post_id, outgoing, delivered)

    def run_slash_command(self, url: str, text: str = "", **kwargs: Any) -> Delivered:
        """Send a slash command to ``url`` and apply its immediate answer as Mattermost does
        (``in_channel``: a post in the channel; otherwise an ephemeral one to the user)."""
        outgoing = self.slash_command(text, url=url, **kwargs)
        delivered = send(outgoing)
        answer = delivered.json
        if (
            delivered.status == 200
            and isinstance(answer, dict)
            and (answer.get("text") or answer.get("attachments"))
        ):
            with self._lock:
                hook = self._hooks[outgoing.response_url.rsplit("/", 1)[1]]
                self._apply_command_response(hook, answer)
        return delivered

    def click(self, post_id: str, action: str, **kwargs: Any) -> Delivered:
        """Click a button and apply the integration's answer as Mattermost does: ``update``
        edits the post, ``ephemeral_text`` goes to the clicker."""
        outgoing = self.button_click(post_id, action, **kwargs)
        delivered = send(outgoing)
        answer = delivered.json
        if delivered.status == 200 and isinstance(answer, dict):
            with self._lock:
                self._apply_action_response(post_id, outgoing.data["user_id"], answer)
        return delivered

    def menu_choice(self, post_id: str, action: str, option: str, *, user: str = "alice") -> Outgoing:
        """The request Mattermost sends when ``user`` picks ``option`` in the menu ``action``
        (its id or name) of a post: the action's context with ``selected_option`` added, the
        chosen option's ``value``. In a menu of users (``data_source: "users"``) that value is
        the user's id; a username of the fake's is taken for its id."""
        with self._lock:
            post = self._posts.get(post_id)
            found = _find_action(post, action) if post is not None else None
            if found is not None and found.get("type") != "select":
                raise KeyError(f"action {action!r} of post {post_id} is not a menu")
            if found is not None and found.get("data_source") == "users":
                known = next((u for u in self._users.values() if u.username == option), None)
                option = known.id if known is not None else option
        return self.button_click(post_id, action, user=user, selected_option=option)

    def choose(self, post_id: str, action: str, option: str, **kwargs: Any) -> Delivered:
        """Pick ``option`` in a post's menu (see :meth:`menu_choice`) and apply the
        integration's answer as :meth:`click` does."""
        outgoing = self.menu_choice(post_id, action, option, **kwargs)
        delivered = send(outgoing)
        answer = delivered.json
        if delivered.status == 200 and isinstance(answer, dict):
            with self._lock:
                self._apply_action_response(post_id, outgoing.data["user_id"], answer)
        return delivered

    # -- inspection --------------------------------------------------------------------
    def posts(self, channel: str) -> list[dict[str, Any]]:
        """The posts of a channel (id or name), oldest first, thread replies included, as
        stored (action ``integration`` kept, unlike in API answers)."""
        with self._lock:
            found = self._find_channel(channel)
            if found is None:
                return []
            return [_copy(self._posts[p]) for p in self._channel_posts[found.id]]

    def post(self, post_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._posts.get(post_id)
            return _copy(found) if found is not None else None

    def ephemeral_posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral posts (API, command answers, action answers): ``user_id`` and ``post``."""
        with self._lock:
            found = self._find_channel(channel) if channel else None
            return [_copy(e) for e in self._ephemeral if found is None or e["post"]["channel_id"] == found.id]

    def responses(self, hook: str | None = None) -> list[dict[str, Any]]:
        """Accepted ``response_url`` posts (a ``response_url`` or its id), oldest first."""
        with self._lock:
            hook_id = hook.rstrip("/").rsplit("/", 1)[-1] if hook else None
            return [_copy(body) for h, body in self._responses if hook_id is None or h == hook_id]

    def dialogs(self) -> list[dict[str, Any]]:
        """Dialogs opened: ``trigger_id``, ``url``, ``dialog``, ``user_id``."""
        with self._lock:
            return [_copy(d) for d in self._dialogs]

    def channel(self, channel: str) -> dict[str, Any] | None:
        """A channel as the API shows it, plus ``members`` (user ids); None if unknown."""
        with self._lock:
            found = self._find_channel(channel)
            if found is None:
                return None
            return {**found.to_api(), "members": sorted(found.members)}

    def channel_id(self, name: str) -> str:
        with self._lock:
            return self._require_channel(name).id

    def user_id(self, username: str) -> str:
        with self._lock:
            return self._require_user(username).id

    def _summary(self, call: Call) -> str:
        return f"{call.op}->{call.status}{'/' + call.error_id if call.error_id else ''}"

    # -- request handling (called from the server threads) ------------------------------
    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one request; ``headers`` has lowercase names."""
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        text = raw.decode("utf-8", "replace")
        body_json: Any = None
        # The REST API decodes every body as JSON; a response_url only a JSON-typed one.
        is_api = parts.path.startswith("/api/v4/")
        if raw.strip() and (is_api or "json" in headers.get("content-type", "")):
            try:
                body_json = json.loads(text)
            except ValueError:
                body_json = _BAD_JSON
        with self._lock:
            request_id = self._new_id()
            if parts.path.startswith("/hooks/commands/"):
                op = COMMAND_RESPONSE
                reply = self._command_response(parts.path[len("/hooks/commands/") :], method, headers, text)
            elif is_api:
                op, handler, args = _route(method, parts.path[len("/api/v4") :])
                reply = self._api(op, handler, args, query, headers, body_json)
            else:
                op = "unknown"
                reply = _error(404, "api.context.404.app_error", "Sorry, we could not find the page.")
            if isinstance(reply.body, dict) and reply.body.get("request_id") == "":
                reply.body["request_id"] = request_id
            reply.headers.setdefault("X-Request-Id", request_id)
            params = {**query, **(body_json if isinstance(body_json, dict) else {})}
            self._record(
                Call(
                    op=op,
                    method=method,
                    path=parts.path,
                    params=params,
                    json=None if body_json is _BAD_JSON else body_json,
                    text=text,
                    headers=dict(headers),
                    time=self.clock(),
                    status=reply.status,
                    response=reply.body,
                    response_headers=dict(reply.headers),
                )
            )
            return reply.status, reply.body, reply.headers

    def _api(
        self,
        op: str,
        handler: Callable[..., tuple[int, Any]] | None,
        args: tuple[str, ...],
        query: dict[str, str],
        headers: Mapping[str, str],
        body: Any,
    ) -> _Reply:
        try:
            self._apply_fault(op)
            self._check_token(headers, query)
            if handler is None:
                raise _error(404, "api.context.404.app_error", "Sorry, we could not find the page.")
            status, answer = handler(self, *args, query=query, body=body)
            return _Reply(status, answer)
        except _Reply as reply:
            return reply

    def _apply_fault(self, op: str) -> None:
        fault = self._take_fault(op)
        if fault is None:
            return
        headers = rate_limit_headers(fault.limit, 0, fault.reset) if fault.status == 429 else {}
        if fault.body is not None:
            raise _Reply(fault.status, fault.body, headers)
        if fault.status == 429:
            raise _Reply(429, LIMIT_EXCEEDED, headers)
        if fault.status == 403 and fault.error_id is None:
            raise _forbidden()
        if fault.status == 401 and fault.error_id is None:
            raise _unauthorized()
        raise _error(
            fault.status,
            fault.error_id or "fake.scripted_failure.app_error",
            fault.message or "Scripted failure of the fake Mattermost.",
        )

    def _check_token(self, headers: Mapping[str, str], query: Mapping[str, str]) -> None:
        # As the server's ParseAuthTokenFromRequest: "Bearer <t>" (any case), "Token <t>",
        # or ?access_token=. Without a valid session every route answers 401.
        auth = headers.get("authorization", "")
        token = ""
        if len(auth) > 6 and auth[:6].upper() == "BEARER":
            token = auth[7:]
        elif len(auth) > 5 and auth[:5].lower() == "token":
            token = auth[6:]
        else:
            token = query.get("access_token", "")
        if not token or not hmac.compare_digest(token.strip().encode(), self.token.encode()):
            raise _unauthorized()

    # -- slash-command response URLs (lock held) -------------------------------------------
    def _command_response(self, hook_id: str, method: str, headers: Mapping[str, str], text: str) -> _Reply:
        try:
            self._apply_fault(COMMAND_RESPONSE)
            if method != "POST":
                raise _error(405, "api.context.404.app_error", "Method not allowed.")
            # The server (CommandWebhookStore.Get) finds only hooks younger than 30 minutes.
            hook = self._hooks.get(hook_id)
            if hook is None or self.clock() - hook.create_at > RESPONSE_URL_LIFETIME:
                raise _error(404, "app.command_webhook.get.missing", "Unable to find the webhook.")
            # A JSON body is a command response; anything else is its text.
            if "json" in headers.get("content-type", ""):
                try:
                    response = json.loads(text or "null")
                except ValueError:
                    response = None
                if not isinstance(response, dict):
                    raise _error(400, "web.command_webhook.parse.app_error", "Unable to parse incoming data.")
            else:
                response = {"text": text}
            # The server's TryUse(hook, 5): a sixth post is refused.
            if hook.uses >= RESPONSE_URL_USES:
                raise _error(400, "app.command_webhook.try_use.invalid", "Invalid webhook.")
            hook.uses += 1
            self._responses.append((hook.id, response))
            self._apply_command_response(hook, response)
            return _Reply(200, "ok")
        except _Reply as reply:
            return reply

    def _apply_command_response(self, hook: _Hook, response: Mapping[str, Any]) -> None:
        # "channel_id: Overrides the channel to which the message gets posted."
        channel = self._channels.get(str(response.get("channel_id") or "")) or self._channels[hook.channel_id]
        props = dict(response.get("props") or {})
        if response.get("attachments"):
            props["attachments"] = response["attachments"]
        props["from_webhook"] = "true"
        message = str(response.get("text") or "")
        # response_type defaults to ephemeral ("Set to blank or ephemeral ...").
        if response.get("response_type") == "in_channel":
            post = self._store_post(channel, hook.user_id, message, props, "")
            # "Passing attachments will ignore this field and set the type to slack_attachment."
            post["type"] = (
                "slack_attachment" if response.get("attachments") else str(response.get("type") or "")
            )
        else:
            post = self._new_post(channel, hook.user_id, message, props, "")
            self._ephemeral.append({"user_id": hook.user_id, "post": post})

    def _apply_action_response(self, post_id: str, user_id: str, answer: Mapping[str, Any]) -> None:
        post = self._posts.get(post_id)
        if post is None:
            return
        update = answer.get("update")
        if isinstance(update, dict):
            # As the server's DoPostAction: the post is updated with update.message (blank
            # when absent); update.props absent keeps the props, {} clears them, else
            # replaces them; pinned and reactions are kept.
            post["message"] = str(update.get("message") or "")
            if isinstance(update.get("props"), dict):
                kept = {k: v for k, v in post["props"].items() if k in _KEPT_ON_UPDATE}
                post["props"] = {**_copy(update["props"]), **kept}
            now = self._ms()
            post["update_at"] = post["edit_at"] = now
        text = answer.get("ephemeral_text")
        if text:
            channel = self._channels[post["channel_id"]]
            self._ephemeral.append(
                {
                    "user_id": user_id,
                    "post": self._new_post(channel, self.bot_user_id, str(text), {}, post["root_id"]),
                }
            )

    # -- state helpers (lock held) ------------------------------------------------------
    def _ms(self) -> int:
        return int(self.clock() * 1000)

    def _new_id(self) -> str:
        return "".join(self._rng.choice(_ID_ALPHABET) for _ in range(26))

    def _find_channel(self, ref: str | None) -> _Channel | None:
        if not ref:
            return None
        if ref in self._channels:
            return self._channels[ref]
        name = ref.lstrip("~#")
        return next((c for c in self._channels.values() if c.name == name), None)

    def _require_channel(self, ref: str) -> _Channel:
        found = self._find_channel(ref)
        if found is None:
            raise KeyError(f"FakeMattermost has no channel {ref!r}")
        return found

    def _require_user(self, ref: str) -> _User:
        found = self._users.get(ref) or next((u for u in self._users.values() if u.username == ref), None)
        if found is None:
            raise KeyError(f"FakeMattermost has no user {ref!r}")
        return found

    def _new_post(
        self, channel: _Channel, user_id: str, message: str, props: dict[str, Any], root_id: str
    ) -> dict[str, Any]:
        now = self._ms()
        return {
            "id": self._new_id(),
            "create_at": now,
            "update_at": now,
            "edit_at": 0,
            "delete_at": 0,
            "is_pinned": False,
            "user_id": user_id,
            "channel_id": channel.id,
            "root_id": root_id,
            "original_id": "",
            "message": message,
            "type": "",
            "props": props,
            "hashtags": "",
            "pending_post_id": "",
            "reply_count": 0,
            "last_reply_at": 0,
            "participants": None,
            "metadata": {},
        }

    def _store_post(
        self, channel: _Channel, user_id: str, message: str, props: dict[str, Any], root_id: str
    ) -> dict[str, Any]:
        # The server gives ids to actions that have none (Post.GenerateActionIds).
        for action in _actions(props):
            if not action.get("id"):
                action["id"] = self._new_id()
        post = self._new_post(channel, user_id, message, props, root_id)
        self._posts[post["id"]] = post
        self._channel_posts[channel.id].append(post["id"])
        channel.last_post_at = post["create_at"]
        channel.total_msg_count += 1
        if root_id and root_id in self._posts:
            root = self._posts[root_id]
            root["reply_count"] += 1
            root["last_reply_at"] = post["create_at"]
        return post

    def _rate_limit(self, channel: _Channel) -> None:
        per_second = self._limits.get(channel.id)
        if not per_second:
            return
        # Mattermost's own limiter (RateLimitSettings) counts requests per session or
        # address, not per channel; this per-channel limit answers exactly as it does.
        now = self.clock()
        recent = self._recent_posts.setdefault(channel.id, deque())
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        allowed = max(1, int(per_second))
        if len(recent) >= allowed:
            reset = max(1, math.ceil(recent[0] + 1.0 - now))
            raise _Reply(429, LIMIT_EXCEEDED, rate_limit_headers(allowed, 0, reset))
        recent.append(now)

    def _session_channel(self, channel_id: str) -> _Channel:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise _error(404, "app.channel.get.existing.app_error", "Unable to find the existing channel.")
        if channel.type == "P" and self.bot_user_id not in channel.members:
            raise _forbidden()
        return channel

    def _post_for_edit(self, post_id: str) -> dict[str, Any]:
        if not _ID.match(post_id):
            raise _invalid_url("post_id")
        post = self._posts.get(post_id)
        # The server answers a post it cannot load with a permission error (403), not 404.
        if post is None or post["delete_at"]:
            raise _forbidden()
        if post["user_id"] != self.bot_user_id:
            raise _forbidden()  # edit_others_posts: not granted to the bot here
        if self._channels[post["channel_id"]].delete_at:
            raise _error(
                400,
                "api.post.update_post.can_not_update_post_in_deleted.error",
                "Can not update a post in a deleted channel.",
            )
        return post

    # -- REST handlers (lock held; return (status, body)) ---------------------------------
    def _get_user(self, user_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if user_id == "me":
            user_id = self.bot_user_id
        if not _ID.match(user_id):
            raise _invalid_url("user_id")
        user = self._users.get(user_id)
        if user is None:
            raise _error(404, "app.user.missing_account.const", "Unable to find the user.")
        return 200, user.to_api()

    def _get_user_by_username(self, username: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        user = next((u for u in self._users.values() if u.username == unquote(username)), None)
        if user is None:
            raise _error(404, "app.user.get_by_username.app_error", "Unable to find the user.")
        return 200, user.to_api()

    def _create_post(self, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        data = _object(body, "post")
        # The server checks create_post on the channel first: an unknown channel is 403.
        channel = self._channels.get(str(data.get("channel_id") or ""))
        if channel is None or (channel.type == "P" and self.bot_user_id not in channel.members):
            raise _forbidden()
        if self.require_membership and self.bot_user_id not in channel.members:
            raise _forbidden()
        if channel.delete_at:
            raise _error(
                400, "api.post.create_post.can_not_post_to_deleted.error", "Can not post to deleted channel."
            )
        message = data.get("message", "")
        if not isinstance(message, str):
            raise _invalid_body("post")
        if len(message) > _POST_MESSAGE_MAX:
            raise _error(400, "model.post.is_valid.message_length.app_error", "Message is too long.")
        props = data.get("props") or {}
        if not isinstance(props, dict):
            raise _invalid_body("post")
        root_id = str(data.get("root_id") or "")
        if root_id:
            root = self._posts.get(root_id)
            if root is None or root["channel_id"] != channel.id or root["root_id"]:
                raise _error(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
        self._rate_limit(channel)
        props = _copy(props)
        if self._users[self.bot_user_id].is_bot:
            props["from_bot"] = "true"  # the server marks a bot's posts so
        post = self._store_post(channel, self.bot_user_id, message, props, root_id)
        return 201, _for_client(post)

    def _create_post_ephemeral(self, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        data = _object(body, "ephemeral_post")
        if not self.ephemeral_allowed:
            raise _forbidden()
        user_id = str(data.get("user_id") or "")
        if not _ID.match(user_id):
            raise _invalid_body("user_id")
        post_data = data.get("post")
        if not isinstance(post_data, dict):
            raise _invalid_body("post")
        channel = self._channels.get(str(post_data.get("channel_id") or ""))
        if channel is None:
            raise _forbidden()
        post = self._new_post(
            channel,
            self.bot_user_id,
            str(post_data.get("message") or ""),
            _copy(post_data.get("props") or {}),
            "",
        )
        post["type"] = "system_ephemeral"
        self._ephemeral.append({"user_id": user_id, "post": post})
        return 201, _for_client(post)

    def _get_post(self, post_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not _ID.match(post_id):
            raise _invalid_url("post_id")
        post = self._posts.get(post_id)
        if post is None or post["delete_at"]:
            raise _error(404, "app.post.get.app_error", "Unable to get the post.")
        self._session_channel(post["channel_id"])
        return 200, _for_client(post)

    def _update_post(self, post_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        data = _object(body, "post")
        # The post in the body must be the one in the URL.
        if data.get("id") != post_id:
            raise _invalid_body("id")
        post = self._post_for_edit(post_id)
        # "Only the fields listed below are updatable, omitted fields will be treated as
        # blank." (API reference, Update a post). file_ids cannot be changed.
        message = data.get("message") or ""
        if len(str(message)) > _POST_MESSAGE_MAX:
            raise _error(400, "model.post.is_valid.message_length.app_error", "Message is too long.")
        now = self._ms()
        if message != post["message"]:
            post["edit_at"] = now
        post.update(
            message=str(message),
            props=_copy(data.get("props") or {}),
            is_pinned=bool(data.get("is_pinned", False)),
            has_reactions=bool(data.get("has_reactions", False)),
            update_at=now,
        )
        return 200, _for_client(post)

    def _patch_post(self, post_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        data = _object(body, "post")
        post = self._post_for_edit(post_id)
        # "Omitted fields will not be updated." (API reference, Patch a post)
        now = self._ms()
        if "message" in data and data["message"] is not None:
            message = str(data["message"])
            if len(message) > _POST_MESSAGE_MAX:
                raise _error(400, "model.post.is_valid.message_length.app_error", "Message is too long.")
            if message != post["message"]:
                post["edit_at"] = now
            post["message"] = message
        if data.get("props") is not None:
            if not isinstance(data["props"], dict):
                raise _invalid_body("post")
            post["props"] = _copy(data["props"])
        for key in ("is_pinned", "has_reactions"):
            if data.get(key) is not None:
                post[key] = bool(data[key])
        post["update_at"] = now
        return 200, _for_client(post)

    def _pin_post(self, post_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not _ID.match(post_id):
            raise _invalid_url("post_id")
        post = self._posts.get(post_id)
        if post is None:
            raise _forbidden()  # the permission check on the post's channel fails first
        post["is_pinned"] = True
        post["update_at"] = self._ms()
        return 200, {"status": "OK"}

    def _get_posts_for_channel(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not _ID.match(channel_id):
            raise _invalid_url("channel_id")
        channel = self._session_channel(channel_id)
        newest_first = [self._posts[p] for p in reversed(self._channel_posts[channel.id])]
        newest_first = [p for p in newest_first if not p["delete_at"]]
        if query.get("since"):
            since = int(query["since"])
            newest_first = [p for p in newest_first if p["update_at"] > since]
        else:
            ids = [p["id"] for p in newest_first]
            if query.get("before") in ids:
                newest_first = newest_first[ids.index(query["before"]) + 1 :]
            elif query.get("after") in ids:
                newest_first = newest_first[: ids.index(query["after"])]
            per_page = min(int(query.get("per_page") or 60), 200)
            page = int(query.get("page") or 0)
            newest_first = newest_first[page * per_page : (page + 1) * per_page]
        return 200, {
            "order": [p["id"] for p in newest_first],
            "posts": {p["id"]: _for_client(p) for p in newest_first},
            "next_post_id": "",
            "prev_post_id": "",
            "has_next": False,
        }

    def _create_channel(self, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        data = _object(body, "channel")
        team_id = str(data.get("team_id") or "")
        if team_id != self.team_id:
            raise _forbidden()  # not a member of that team: no create_*_channel there
        kind = data.get("type")
        name = data.get("name")
        display_name = data.get("display_name")
        header = data.get("header") or ""
        purpose = data.get("purpose") or ""
        if (
            not isinstance(display_name, str)
            or not display_name.strip()
            or len(display_name) > _DISPLAY_NAME_MAX
        ):
            raise _error(400, "model.channel.is_valid.display_name.app_error", "Invalid display name.")
        if not isinstance(name, str) or not self._valid_channel_name(name):
            minimum = self.channel_name_min_length
            raise _error(
                400,
                f"model.channel.is_valid.{minimum}_or_more.app_error",
                f"Name must be {minimum} or more lowercase alphanumeric characters.",
            )
        if kind not in ("O", "P"):
            raise _error(400, "model.channel.is_valid.type.app_error", "Invalid type.")
        if len(str(header)) > _HEADER_MAX:
            raise _error(400, "model.channel.is_valid.header.app_error", "Invalid header.")
        if len(str(purpose)) > _PURPOSE_MAX:
            raise _error(400, "model.channel.is_valid.purpose.app_error", "Invalid purpose.")
        # Archived channels keep their names.
        if any(c.team_id == team_id and c.name == name for c in self._channels.values()):
            raise _error(
                400,
                "store.sql_channel.save_channel.exists.app_error",
                "A channel with that name already exists on the same team.",
            )
        channel_id = self.add_channel(name, type=kind, members=[self.bot_user_id], display_name=display_name)
        channel = self._channels[channel_id]
        channel.header, channel.purpose = str(header), str(purpose)
        return 201, channel.to_api()

    def _valid_channel_name(self, name: str) -> bool:
        return (
            self.channel_name_min_length <= len(name) <= _CHANNEL_NAME_MAX
            and bool(_CHANNEL_NAME.match(name))
            # The server refuses names shaped as a direct message's ("<id>__<id>").
            and not re.fullmatch(r"[a-z0-9]{26}__[a-z0-9]{26}", name)
        )

    def _get_channel(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not _ID.match(channel_id):
            raise _invalid_url("channel_id")
        return 200, self._session_channel(channel_id).to_api()

    def _get_channel_by_name(
        self, team_id: str, name: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        if not _ID.match(team_id):
            raise _invalid_url("team_id")
        if team_id != self.team_id:
            raise _forbidden()
        include_deleted = query.get("include_deleted", "").lower() == "true"
        found = next(
            (
                c
                for c in self._channels.values()
                if c.name == unquote(name) and (include_deleted or not c.delete_at)
            ),
            None,
        )
        if found is None:
            raise _error(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")
        if found.type == "P" and self.bot_user_id not in found.members:
            raise _forbidden()
        return 200, found.to_api()

    def _add_channel_member(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        data = _object(body, "user_id")
        if not _ID.match(channel_id):
            raise _invalid_url("channel_id")
        channel = self._session_channel(channel_id)
        user_id = str(data.get("user_id") or "")
        if not _ID.match(user_id):
            raise _invalid_body("user_id")
        if user_id not in self._users:
            raise _error(404, "app.user.missing_account.const", "Unable to find the user.")
        if channel.delete_at:
            raise _error(
                400,
                "api.channel.add_user_to_channel.deleted.app_error",
                "The channel has been archived or deleted.",
            )
        # Adding a member again answers the existing membership.
        channel.members.add(user_id)
        return 201, {
            "channel_id": channel.id,
            "user_id": user_id,
            "roles": "channel_user",
            "last_viewed_at": 0,
            "msg_count": 0,
            "mention_count": 0,
            "notify_props": {
                "desktop": "default",
                "email": "default",
                "mark_unread": "all",
                "push": "default",
            },
            "last_update_at": self._ms(),
            "scheme_guest": False,
            "scheme_user": True,
            "scheme_admin": False,
            "explicit_roles": "",
        }

    def _remove_channel_member(
        self, channel_id: str, user_id: str, *, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        if not _ID.match(channel_id):
            raise _invalid_url("channel_id")
        if not _ID.match(user_id):
            raise _invalid_url("user_id")
        channel = self._session_channel(channel_id)
        if channel.name == "town-square":
            raise _error(
                400, "api.channel.remove.default.app_error", "Unable to remove user from the default channel."
            )
        if user_id not in channel.members:
            raise _error(
                404,
                "app.channel.get_member.missing.app_error",
                "No channel member found for that user ID and channel ID.",
            )
        channel.members.discard(user_id)
        return 200, {"status": "OK"}

    def _delete_channel(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not _ID.match(channel_id):
            raise _invalid_url("channel_id")
        channel = self._session_channel(channel_id)
        if channel.name == "town-square":
            raise _error(
                400, "api.channel.delete_channel.cannot.app_error", "Unable to delete the default channel."
            )
        if channel.delete_at:
            raise _error(
                400,
                "api.channel.delete_channel.deleted.app_error",
                "The channel has been archived or deleted.",
            )
        channel.delete_at = channel.update_at = self._ms()
        return 200, {"status": "OK"}

    def _patch_channel(self, channel_id: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        data = _object(body, "channel")
        if not _ID.match(channel_id):
            raise _invalid_url("channel_id")
        channel = self._session_channel(channel_id)
        if data.get("header") is not None:
            if len(str(data["header"])) > _HEADER_MAX:
                raise _error(400, "model.channel.is_valid.header.app_error", "Invalid header.")
            channel.header = str(data["header"])
        if data.get("purpose") is not None:
            if len(str(data["purpose"])) > _PURPOSE_MAX:
                raise _error(400, "model.channel.is_valid.purpose.app_error", "Invalid purpose.")
            channel.purpose = str(data["purpose"])
        if data.get("display_name") is not None:
            display_name = str(data["display_name"])
            if not display_name.strip() or len(display_name) > _DISPLAY_NAME_MAX:
                raise _error(400, "model.channel.is_valid.display_name.app_error", "Invalid display name.")
            channel.display_name = display_name
        channel.update_at = self._ms()
        return 200, channel.to_api()

    def _open_dialog(self, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        data = _object(body, "dialog")
        if not data.get("url"):
            raise _invalid_body("url")
        trigger_id = str(data.get("trigger_id") or "")
        user_id = self._check_trigger(trigger_id)
        dialog = data.get("dialog")
        if (
            not isinstance(dialog, dict)
            or not 0 < len(str(dialog.get("title") or "")) <= _DIALOG_TITLE_MAX
            or not isinstance(dialog.get("elements", []), list)
        ):
            raise _invalid_body("dialog")
        if self.single_use_triggers:
            self._used_triggers.add(trigger_id)
        self._dialogs.append(
            {"trigger_id": trigger_id, "url": data["url"], "dialog": _copy(dialog), "user_id": user_id}
        )
        return 200, {"status": "OK"}

    def _check_trigger(self, trigger_id: str) -> str:
        """The user id of a trigger this fake issued, checked in the server's order."""
        try:
            decoded = base64.b64decode(trigger_id, validate=True).decode()
        except ValueError:
            raise _error(
                400,
                "interactive_message.decode_trigger_id.base64_decode_failed",
                "Unable to decode trigger ID.",
            ) from None
        parts = decoded.split(":")
        if len(parts) != 4:
            raise _error(
                400, "interactive_message.decode_trigger_id.missing_data", "Trigger ID is missing data."
            )
        _, user_id, stamp, signature = parts
        try:
            issued = int(stamp) / 1000
        except ValueError:
            issued = 0.0
        if self.clock() - issued > self.trigger_ttl:
            raise _error(
                400,
                "interactive_message.decode_trigger_id.expired",
                f"Trigger ID for interactive dialog is expired. Maximum TTL is {self.trigger_ttl:g}s.",
            )
        expected = hmac.new(self._trigger_key, ":".join(parts[:3]).encode() + b":", hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(expected).decode(), signature):
            raise _error(
                400,
                "interactive_message.decode_trigger_id.verify_signature_failed",
                "Signature verification failed for trigger ID.",
            )
        if self.single_use_triggers and trigger_id in self._used_triggers:
            raise _error(400, "fake.trigger_id.already_used.app_error", "Trigger ID was already used.")
        return user_id


_BAD_JSON = object()
# What an action's update.props does not replace: "the username and icon of the original message".
_KEPT_ON_UPDATE = ("override_username", "override_icon_url", "override_icon_emoji")


def _object(body: Any, name: str) -> dict[str, Any]:
    """A JSON object body, or the server's 400 naming the parameter."""
    if not isinstance(body, dict):
        raise _invalid_body(name)
    return body


def _copy(value: T) -> T:
    return json.loads(json.dumps(value))


def _for_client(post: Mapping[str, Any]) -> dict[str, Any]:
    """A post as the API answers it: without its actions' ``integration`` (url and context).

    The docs say the context "is kept confidential"; the server strips it on the way out
    (Post.StripActionIntegrations in ToJSON/EncodeJSON) and keeps it stored.
    """
    answer = _copy(dict(post))
    props = answer.get("props")
    if isinstance(props, dict):
        for action in _actions(props):
            action.pop("integration", None)
        props.pop("mm_blocks_actions", None)
    return answer


def _actions(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The actions of a post's attachments (the objects themselves)."""
    attachments = props.get("attachments") if isinstance(props, Mapping) else None
    found: list[dict[str, Any]] = []
    for attachment in attachments if isinstance(attachments, list) else []:
        actions = attachment.get("actions") if isinstance(attachment, dict) else None
        found.extend(a for a in (actions if isinstance(actions, list) else []) if isinstance(a, dict))
    return found


def _find_action(post: Mapping[str, Any], action: str) -> dict[str, Any] | None:
    return next(
        (a for a in _actions(post.get("props") or {}) if action in (a.get("id"), a.get("name"))), None
    )


_ROUTES: list[tuple[str, re.Pattern[str], str, Callable[..., tuple[int, Any]]]] = [
    (
        "GET",
        re.compile(r"^/users/username/([^/]+)$"),
        "get_user_by_username",
        FakeMattermost._get_user_by_username,
    ),
    ("GET", re.compile(r"^/users/([^/]+)$"), "get_user", FakeMattermost._get_user),
    (
        "POST",
        re.compile(r"^/posts/ephemeral$"),
        "create_post_ephemeral",
        FakeMattermost._create_post_ephemeral,
    ),
    ("POST", re.compile(r"^/posts$"), "create_post", FakeMattermost._create_post),
    ("GET", re.compile(r"^/posts/([^/]+)$"), "get_post", FakeMattermost._get_post),
    ("PUT", re.compile(r"^/posts/([^/]+)/patch$"), "patch_post", FakeMattermost._patch_post),
    ("PUT", re.compile(r"^/posts/([^/]+)$"), "update_post", FakeMattermost._update_post),
    ("POST", re.compile(r"^/posts/([^/]+)/pin$"), "pin_post", FakeMattermost._pin_post),
    (
        "GET",
        re.compile(r"^/channels/([^/]+)/posts$"),
        "get_posts_for_channel",
        FakeMattermost._get_posts_for_channel,
    ),
    ("POST", re.compile(r"^/channels$"), "create_channel", FakeMattermost._create_channel),
    ("GET", re.compile(r"^/channels/([^/]+)$"), "get_channel", FakeMattermost._get_channel),
    (
        "GET",
        re.compile(r"^/teams/([^/]+)/channels/name/([^/]+)$"),
        "get_channel_by_name",
        FakeMattermost._get_channel_by_name,
    ),
    (
        "POST",
        re.compile(r"^/channels/([^/]+)/members$"),
        "add_channel_member",
        FakeMattermost._add_channel_member,
    ),
    (
        "DELETE",
        re.compile(r"^/channels/([^/]+)/members/([^/]+)$"),
        "remove_channel_member",
        FakeMattermost._remove_channel_member,
    ),
    ("DELETE", re.compile(r"^/channels/([^/]+)$"), "delete_channel", FakeMattermost._delete_channel),
    ("PUT", re.compile(r"^/channels/([^/]+)/patch$"), "patch_channel", FakeMattermost._patch_channel),
    ("POST", re.compile(r"^/actions/dialogs/open$"), "open_dialog", FakeMattermost._open_dialog),
]


def _route(method: str, path: str) -> tuple[str, Callable[..., tuple[int, Any]] | None, tuple[str, ...]]:
    """The operation serving ``method path`` (path below ``/api/v4``), its handler and path ids."""
    for verb, pattern, op, handler in _ROUTES:
        match = pattern.match(path)
        if match and verb == method:
            return op, handler, match.groups()
    return "unknown", None, ()


def _handler_for(served: FakeMattermost) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        fake = served
        server_version = "FakeMattermost/1.0"
        # The server encodes with json.Encoder, which ends the body with a newline.
        json_end = "\n"
        fixed_headers = (("X-Version-Id", "fake.10.0.0"),)

        do_GET = FakeHandler.serve
        do_POST = FakeHandler.serve
        do_PUT = FakeHandler.serve
        do_DELETE = FakeHandler.serve

    return Handler


__all__ = [
    "COMMAND_RESPONSE",
    "DEFAULT_COMMAND_TOKEN",
    "DEFAULT_TOKEN",
    "Call",
    "Delivered",
    "FakeMattermost",
    "ManualClock",
    "Outgoing",
    "app_error",
    "button_click_payload",
    "dialog_submission_payload",
    "rate_limit_headers",
    "send",
    "slash_command_form",
    "wait_for",
]
