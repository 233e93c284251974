"""A local HTTP server that plays Slack, for unit and end-to-end tests.

It serves the Web API methods the service calls (under ``/api/``), records every call,
accepts ``response_url`` posts (under ``/response/<name>``) and can be told to fail the
way Slack fails: HTTP 429 with ``Retry-After``, ``{"ok": false, "error": "ratelimited"}``
with HTTP 200, 5xx, per-channel posting limits.

Behaviour follows Slack's documentation:

- Web API responses and errors: https://docs.slack.dev/apis/web-api/ and each method's page
  (https://docs.slack.dev/reference/methods/chat.postMessage, ...).
- Channel names: https://docs.slack.dev/reference/methods/conversations.create
- Rate limits: https://docs.slack.dev/apis/web-api/rate-limits
- ``response_url``: https://docs.slack.dev/interactivity/handling-user-interaction/
- Request signing (``signed_headers``): https://docs.slack.dev/authentication/verifying-requests-from-slack/
- Modals: https://docs.slack.dev/reference/methods/views.open (a ``trigger_id`` opens one view,
  within 3 s) and https://docs.slack.dev/reference/views/modal-view (limits)
- Threads: https://docs.slack.dev/reference/methods/conversations.history lists a channel's
  own messages, not replies in threads (except replies also sent to the channel with
  ``reply_broadcast``, subtype ``thread_broadcast``);
  https://docs.slack.dev/reference/methods/conversations.replies lists a thread.

Standard library only (plus the project's own request signing), so end-to-end tests can run
it in any process::

    with FakeSlack() as slack:
        settings = SlackSettings(bot_token=slack.token, signing_secret="s", api_url=slack.api_url)
        ...
        slack.wait_for(lambda: slack.responses("r"))
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from chatops_core.providers.slack.devtools import sign_slack
from tests.fakes.local_server import KeepAliveHandler, LocalServer
from tests.fakes.recorded import CallRecord, wait_for
from tests.fakes.recorded import Reply as _Reply

T = TypeVar("T")

DEFAULT_TOKEN = "xoxb-test-token"
DEFAULT_CHANNELS = ("incidents", "critical-incidents", "major-incidents", "general")
BOT_USER_ID = "UBOT0001"
TEAM_ID = "T0001"
RESPONSE = "response"  # the ``method`` of response_url posts in calls() and fail()
RATE_LIMIT_CODES = ("ratelimited", "rate_limited", "message_limit_exceeded")

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_VALID_NAME = re.compile(r"^[a-z0-9_-]+$")
_MAX_NAME = 80
_MAX_TOPIC = 250
_MAX_MODAL_TITLE = 24
_MAX_METADATA = 3000
_MAX_VIEW_BLOCKS = 100
_TRIGGER_ID = re.compile(r"^[0-9]+\.[0-9]+\.[0-9a-zA-Z]+$")


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request the fake received.

    ``params`` holds the form fields, query parameters and top-level JSON fields together
    (``blocks`` sent as a form field is decoded); ``json`` is the JSON body, if any.
    ``status`` and ``response`` are what the fake answered. For ``response_url`` posts
    ``method`` is ``"response"`` and ``params`` is ``{"name": <name>}``.
    """

    method: str
    params: dict[str, Any]
    json: Any
    time: float
    status: int = 200
    response: Any = None

    @property
    def ok(self) -> bool:
        """True when the call succeeded (2xx and not ``{"ok": false}``)."""
        if not 200 <= self.status < 300:
            return False
        return not (isinstance(self.response, dict) and self.response.get("ok") is False)

    @property
    def error(self) -> str | None:
        """The Slack ``error`` code answered, if any."""
        if isinstance(self.response, dict):
            code = self.response.get("error")
            return code if isinstance(code, str) else None
        return None


@dataclass
class _Fault:
    status: int
    retry_after: float | None
    error: str | None
    body: Any


@dataclass
class _Hold:
    after: bool  # answer held after the call took effect (else before)
    dropped: bool = False  # released without taking effect
    released: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Channel:
    id: str
    name: str
    topic: str = ""
    is_private: bool = False
    is_archived: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    creator: str = BOT_USER_ID
    members: set[str] = field(default_factory=set)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_member": BOT_USER_ID in self.members,
            "created": self.created,
            "creator": self.creator,
            "topic": {"value": self.topic, "creator": BOT_USER_ID if self.topic else "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "num_members": len(self.members),
        }


def _error(code: str, **extra: Any) -> _Reply:
    return _Reply(200, {"ok": False, "error": code, **extra})


# -- helpers for tests ----------------------------------------------------------------------


def signed_headers(body: bytes, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack would send with ``body``: a ``v0`` signature and its timestamp."""
    headers = sign_slack(signing_secret, body, int(time.time()) if timestamp is None else timestamp)
    return {**headers, "Content-Type": "application/x-www-form-urlencoded"}


# -- the server -----------------------------------------------------------------------------


class FakeSlack(CallRecord[Call, _Fault], LocalServer):
    """Slack's Web API and ``response_url`` on ``127.0.0.1``, in a daemon thread.

    ``channels`` are the channels that exist at start (ids ``C0001``, ``C0002``...).
    Users: any well-formed id (``U...``/``W...``) exists unless removed with
    :meth:`remove_user`; :meth:`add_user` gives one a name. ``max_response_posts`` caps
    posts per ``response_url`` as Slack does (5); ``None`` (the default) does not.
    """

    _op_field = "method"
    _any_op = None  # faults are scripted per method only

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        channels: Iterable[str] = DEFAULT_CHANNELS,
        *,
        bot_user_id: str = BOT_USER_ID,
        max_response_posts: int | None = None,
    ) -> None:
        self.token = token
        self.bot_user_id = bot_user_id
        self.max_response_posts = max_response_posts
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self._channels: dict[str, _Channel] = {}
        # Channels by name (the first with a name, where set-up made two), so that finding
        # one stays as quick with a thousand channels as with four.
        self._by_name: dict[str, _Channel] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemeral: list[dict[str, Any]] = []
        self._calls: list[Call] = []
        self._responses: list[tuple[str, Any]] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._holds: dict[str, deque[_Hold]] = {}
        self._held: list[_Hold] = []
        self._limits: dict[str, float] = {}
        self._last_post: dict[str, float] = {}
        self._user_names: dict[str, str] = {}
        self._removed_users: set[str] = set()
        self._views: list[dict[str, Any]] = []
        self._used_triggers: set[str] = set()
        self._expired_triggers: set[str] = set()
        self._all_triggers_expired = False
        # When True, posting in a public channel the bot has not joined is ``not_in_channel``
        # (as Slack answers without the chat:write.public scope).
        self.require_membership = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Client connections open now (kept alive between requests), and how many were opened.
        self._connections: set[socket.socket] = set()
        self._connections_opened = 0
        for name in channels:
            self.add_channel(name)

    # -- lifecycle ---------------------------------------------------------------------
    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def stop(self) -> None:
        """Stop listening and release the port (and any held request); connections kept
        open by clients are closed, so a stopped Slack answers nothing on them either."""
        self.release()
        super().stop()
        with self._lock:
            open_now, self._connections = self._connections, set()
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            self._connections_opened += 1

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    @property
    def api_url(self) -> str:
        """The Web API base URL, for ``SlackSettings.api_url``."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "r") -> str:
        """A ``response_url`` whose posts are recorded under ``name``."""
        return f"{self.url}/response/{name}"

    # -- state set-up ------------------------------------------------------------------
    def add_channel(self, name: str, *, members: Iterable[str] = (), is_private: bool = False) -> str:
        """Create a channel directly (no validation); returns its id."""
        with self._lock:
            channel = _Channel(id=f"C{next(self._ids):04d}", name=name, is_private=is_private)
            channel.members.update(members)
            self._channels[channel.id] = channel
            self._by_name.setdefault(name, channel)
            self._messages[channel.id] = []
            return channel.id

    def archive_channel(self, channel: str) -> None:
        """Archive a channel: posting to it answers ``is_archived``."""
        with self._lock:
            self._require_channel(channel).is_archived = True

    def add_im(self, user_id: str) -> str:
        """Open a direct message between the bot and ``user_id``; returns its id (``D...``)."""
        with self._lock:
            channel = _Channel(id=f"D{next(self._ids):04d}", name=f"im-{user_id.lower()}", is_private=True)
            channel.members.update({user_id, self.bot_user_id})
            self._channels[channel.id] = channel
            self._by_name.setdefault(channel.name, channel)
            self._messages[channel.id] = []
            return channel.id

    def add_message(
        self, channel: str, text: str, *, user: str = "U1AAA", thread_ts: str | None = None
    ) -> str:
        """Post ``text`` as ``user`` (a person, not the bot) directly; returns the message's ts.

        With ``thread_ts`` the message is a reply in that message's thread.
        """
        with self._lock:
            found = self._require_channel(channel)
            ts = self._next_ts()
            self._messages[found.id].append(
                {
                    "ts": ts,
                    "channel": found.id,
                    "user": user,
                    "text": text,
                    "blocks": None,
                    "thread_ts": thread_ts,
                    "edited": 0,
                    "pinned": False,
                    "metadata": None,
                }
            )
            return ts

    def expire_triggers(self, *trigger_ids: str) -> None:
        """Make ``views.open`` answer ``expired_trigger_id`` for these triggers (all, without any)."""
        with self._lock:
            if trigger_ids:
                self._expired_triggers.update(trigger_ids)
            else:
                self._all_triggers_expired = True

    def add_user(self, user_id: str, name: str | None = None) -> None:
        """Make ``user_id`` exist (again), optionally with a name."""
        with self._lock:
            self._removed_users.discard(user_id)
            if name:
                self._user_names[user_id] = name

    def remove_user(self, user_id: str) -> None:
        """Make ``user_id`` unknown: calls naming it answer ``user_not_found``."""
        with self._lock:
            self._removed_users.add(user_id)

    def fail(
        self,
        method: str,
        times: int = 1,
        status: int = 429,
        retry_after: float | None = 1,
        error: str | None = None,
        body: Any = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (``"response"`` for response_url posts).

        - ``status=429``: HTTP 429 with ``Retry-After: <retry_after>`` (omitted when None)
          and ``{"ok": false, "error": "ratelimited"}``;
        - ``status=200, error="ratelimited"`` (or any code): HTTP 200 with ``{"ok": false}``;
        - ``status=503`` and friends: that status with ``body`` (default: a short text);
        - ``body``: the exact answer (dict as JSON, str/bytes as text).

        For ``"response"`` the error code is answered as plain text, as Slack does.
        """
        self._script_fault(
            method, times, lambda: _Fault(status=status, retry_after=retry_after, error=error, body=body)
        )

    def hold(self, method: str, *, after: bool) -> None:
        """Keep the next call of ``method`` waiting until :meth:`release`.

        ``after=False`` holds it before it takes effect (nothing is posted yet);
        ``after=True`` lets it take effect and holds only the answer, as when a client dies
        between Slack's posting and its reading of the reply. :meth:`wait_held` waits for
        the call to arrive.
        """
        with self._lock:
            self._holds.setdefault(method, deque()).append(_Hold(after=after))

    def wait_held(self, timeout: float = 10.0) -> None:
        """Wait until a call is being held."""
        wait_for(lambda: any(h.reached.is_set() for h in self._held) or None, timeout=timeout)

    def release(self, *, drop: bool = False) -> None:
        """Let every held call go on (a client that went away just gets no answer).

        ``drop=True``: a call held before taking effect never does (it is answered 503),
        as a request that never reached Slack.
        """
        with self._lock:
            held, self._held = self._held, []
            for queue in self._holds.values():
                held.extend(queue)
            self._holds.clear()
        for hold in held:
            hold.dropped = drop
            hold.released.set()

    def limit_channel(self, channel: str, per_second: float = 1.0) -> None:
        """Allow ``per_second`` ``chat.postMessage`` calls per second into ``channel``; more get 429."""
        with self._lock:
            self._limits[self._require_channel(channel).id] = per_second

    def clear_calls(self) -> None:
        """Forget recorded calls and response posts (state such as messages stays)."""
        with self._lock:
            self._calls.clear()
            self._responses.clear()

    # -- inspection --------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        """Every call received, oldest first, optionally only those of ``method``."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def responses(self, name: str | None = None) -> list[Any]:
        """The accepted ``response_url`` posts (parsed JSON), optionally for one ``name``."""
        with self._lock:
            return [body for n, body in self._responses if name is None or n == name]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages in a channel (id, ``#name`` or ``name``): ``ts, channel, text, blocks, user, edited``."""
        with self._lock:
            found = self._find_channel(channel)
            if found is None:
                return []
            return [json.loads(json.dumps(m)) for m in self._messages[found.id]]

    def restore_triggers(self) -> None:
        """Undo :meth:`expire_triggers`: every well-formed trigger is accepted again."""
        with self._lock:
            self._expired_triggers.clear()
            self._all_triggers_expired = False

    def views(self) -> list[dict[str, Any]]:
        """The views opened with ``views.open``, oldest first (``id``, ``trigger_id``, ``view``)."""
        with self._lock:
            return [json.loads(json.dumps(v)) for v in self._views]

    def ephemeral_messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages sent with ``chat.postEphemeral`` (``channel``, ``user``, ``text``, ``blocks``)."""
        with self._lock:
            found = self._find_channel(channel) if channel else None
            return [dict(m) for m in self._ephemeral if found is None or m["channel"] == found.id]

    def channel(self, channel: str) -> dict[str, Any] | None:
        """A channel as ``conversations.info`` would show it, plus ``members``; None if unknown."""
        with self._lock:
            found = self._find_channel(channel)
            if found is None:
                return None
            return {**found.to_api(), "members": sorted(found.members)}

    @property
    def connections_opened(self) -> int:
        """How many connections clients have opened (one serves many calls when kept alive)."""
        with self._lock:
            return self._connections_opened

    def channel_id(self, name: str) -> str:
        """The id of the channel called ``name`` (with or without ``#``)."""
        with self._lock:
            return self._require_channel(name).id

    def _summary(self, call: Call) -> str:
        return f"{call.method}->{call.status}{'/' + call.error if call.error else ''}"

    # -- request handling (called from the server threads) ------------------------------
    def _handle(
        self, path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one request; ``headers`` has lowercase names."""
        params, body_json = _decode(headers.get("content-type", ""), raw)
        params = {**query, **params}
        if path.startswith("/api/"):
            method = path[len("/api/") :]
            hold = self._take_hold(method)
            if hold is not None and not hold.after:
                hold.reached.set()
                hold.released.wait(timeout=120)
            if hold is not None and hold.dropped and not hold.after:
                reply = _Reply(503, "dropped")
            else:
                reply = self._api(method, params, headers)
            if hold is not None and hold.after:
                hold.reached.set()
                hold.released.wait(timeout=120)
        elif path.startswith("/response/"):
            method = RESPONSE
            reply = self._response(path[len("/response/") :], body_json if body_json is not None else params)
            params = {"name": path[len("/response/") :]}
        else:
            return 404, "not found", {}
        with self._lock:
            self._calls.append(
                Call(
                    method=method,
                    params=params,
                    json=body_json,
                    time=time.time(),
                    status=reply.status,
                    response=reply.body,
                )
            )
        return reply.status, reply.body, reply.headers

    def _take_hold(self, method: str) -> _Hold | None:
        with self._lock:
            queue = self._holds.get(method)
            if not queue:
                return None
            hold = queue.popleft()
            self._held.append(hold)
            return hold

    def _api(self, method: str, params: dict[str, Any], headers: Mapping[str, str]) -> _Reply:
        with self._lock:
            try:
                self._apply_fault(method, json_errors=True)
                self._check_token(params, headers)
                handler = _METHODS.get(method)
                if handler is None:
                    raise _error("unknown_method")
                return _Reply(200, {"ok": True, **handler(self, params)})
            except _Reply as reply:
                return reply

    def _response(self, name: str, body: Any) -> _Reply:
        with self._lock:
            try:
                self._apply_fault(RESPONSE, json_errors=False)
                if self.max_response_posts is not None:
                    used = sum(1 for n, _ in self._responses if n == name)
                    if used >= self.max_response_posts:
                        raise _Reply(404, "used_url")
                if not isinstance(body, dict):
                    raise _Reply(400, "invalid_payload")
                self._responses.append((name, body))
                return _Reply(200, "ok")
            except _Reply as reply:
                return reply

    def _apply_fault(self, method: str, *, json_errors: bool) -> None:
        fault = self._take_fault(method)
        if fault is None:
            return
        headers: dict[str, str] = {}
        if fault.status == 429 and fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.body is not None:
            raise _Reply(fault.status, fault.body, headers)
        code = fault.error or ("ratelimited" if fault.status == 429 else None)
        if code is None:
            body: Any = "fake failure" if fault.status >= 300 else {"ok": False, "error": "fake_failure"}
        else:
            body = {"ok": False, "error": code} if json_errors else code
        raise _Reply(fault.status, body, headers)

    def _check_token(self, params: dict[str, Any], headers: Mapping[str, str]) -> None:
        auth = headers.get("authorization", "")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else params.get("token")
        if not token:
            raise _error("not_authed")
        if not hmac.compare_digest(str(token), self.token):
            raise _error("invalid_auth")

    # -- state helpers (lock held) ------------------------------------------------------
    def _find_channel(self, ref: str | None) -> _Channel | None:
        if not ref:
            return None
        if ref in self._channels:
            return self._channels[ref]
        return self._by_name.get(ref[1:] if ref.startswith("#") else ref)

    def _require_channel(self, ref: str) -> _Channel:
        found = self._find_channel(ref)
        if found is None:
            raise KeyError(f"FakeSlack has no channel {ref!r}")
        return found

    def _user_exists(self, user_id: str) -> bool:
        return user_id == self.bot_user_id or (
            bool(_USER_ID.match(user_id)) and user_id not in self._removed_users
        )

    def _channel_param(self, params: dict[str, Any], *, by_name: bool = True) -> _Channel:
        ref = str(params.get("channel") or "")
        found = self._find_channel(ref) if by_name else self._channels.get(ref)
        if found is None:
            raise _error("channel_not_found")
        return found

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _rate_limit(self, channel: _Channel) -> None:
        per_second = self._limits.get(channel.id)
        if not per_second:
            return
        now = time.monotonic()
        interval = 1.0 / per_second
        last = self._last_post.get(channel.id)
        if last is not None and now - last < interval:
            wait = max(1, math.ceil(interval - (now - last)))
            raise _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
        self._last_post[channel.id] = now

    # -- Web API methods (lock held; return the fields besides "ok") ----------------------
    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "incident-bot",
            "team_id": TEAM_ID,
            "user_id": self.bot_user_id,
            "bot_id": "B0001",
        }

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params)
        if channel.is_archived:
            raise _error("is_archived")
        if self.require_membership and self.bot_user_id not in channel.members:
            raise _error("not_in_channel")
        text, blocks = _content(params)
        self._rate_limit(channel)
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        thread_ts = params.get("thread_ts") or None
        message = {
            "ts": self._next_ts(),
            "channel": channel.id,
            "user": self.bot_user_id,
            "text": text,
            "blocks": blocks,
            "thread_ts": thread_ts,
            "edited": 0,
            "pinned": False,
            "metadata": metadata,
        }
        if thread_ts and _flag(params.get("reply_broadcast")):
            # A reply also sent to the channel: it shows in the channel's history too.
            message["subtype"] = "thread_broadcast"
        self._messages[channel.id].append(message)
        return {"channel": channel.id, "ts": message["ts"], "message": dict(message)}

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params)
        user = str(params.get("user") or "")
        if not self._user_exists(user):
            raise _error("user_not_found")
        text, blocks = _content(params)
        ts = self._next_ts()
        self._ephemeral.append(
            {"ts": ts, "channel": channel.id, "user": user, "text": text, "blocks": blocks}
        )
        return {"message_ts": ts}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)  # chat.update takes ids only
        ts = str(params.get("ts") or "")
        message = next((m for m in self._messages[channel.id] if m["ts"] == ts), None)
        if message is None:
            raise _error("message_not_found")
        if channel.is_archived:
            raise _error("is_archived")
        text, blocks = _content(params)
        message.update(text=text, blocks=blocks, edited=message["edited"] + 1)
        return {"channel": channel.id, "ts": ts, "text": text, "message": dict(message)}

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("name") or "")
        if not name:
            raise _error("invalid_name_required")
        if len(name) > _MAX_NAME:
            raise _error("invalid_name_maxlength")
        if not _VALID_NAME.match(name):
            raise _error("invalid_name_specials")
        if not name.strip("-_"):
            raise _error("invalid_name_punctuation")
        if name in self._by_name:
            raise _error("name_taken")
        is_private = str(params.get("is_private", "")).lower() in ("1", "true")
        channel_id = self.add_channel(name, members=[self.bot_user_id], is_private=is_private)
        return {"channel": self._channels[channel_id].to_api()}

    def _set_topic(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)
        if channel.is_archived:
            raise _error("is_archived")
        topic = str(params.get("topic") or "")
        if len(topic) > _MAX_TOPIC:
            raise _error("too_long")
        channel.topic = topic
        return {"channel": channel.to_api()}

    def _invite(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)
        if channel.is_archived:
            raise _error("is_archived")
        users = _id_list(params.get("users"))
        if not users:
            raise _error("no_user")
        errors: list[dict[str, Any]] = []
        for user in users:
            if user == self.bot_user_id:
                errors.append({"user": user, "ok": False, "error": "cant_invite_self"})
            elif not self._user_exists(user):
                errors.append({"user": user, "ok": False, "error": "user_not_found"})
            elif user in channel.members:
                errors.append({"user": user, "ok": False, "error": "already_in_channel"})
        if errors:
            # Without force=true one refusal fails the whole call.
            raise _error(str(errors[0]["error"]), errors=errors)
        channel.members.update(users)
        return {"channel": channel.to_api()}

    def _kick(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)
        user = str(params.get("user") or "")
        if user == self.bot_user_id:
            raise _error("cant_kick_self")
        if not self._user_exists(user):
            raise _error("user_not_found")
        if user not in channel.members:
            raise _error("not_in_channel")
        channel.members.discard(user)
        return {}

    def _join(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)
        if channel.is_archived:
            raise _error("is_archived")
        already = self.bot_user_id in channel.members
        channel.members.add(self.bot_user_id)
        extra = {"warning": "already_in_channel"} if already else {}
        return {"channel": channel.to_api(), **extra}

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)  # history takes ids only
        oldest = float(params.get("oldest") or 0)
        latest = float(params["latest"]) if params.get("latest") else math.inf
        inclusive = _flag(params.get("inclusive"))
        limit = int(params.get("limit") or 100)
        with_metadata = _flag(params.get("include_all_metadata"))
        found = [
            m
            for m in reversed(self._messages[channel.id])
            # Replies in a thread are not part of the channel's history, unless they were
            # also sent to the channel (``reply_broadcast``).
            if _in_channel(m)
            and float(m["ts"]) >= oldest
            and (float(m["ts"]) <= latest if inclusive else float(m["ts"]) < latest)
        ][:limit]
        return {"messages": [_listed(m, with_metadata) for m in found], "has_more": False}

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)
        ts = str(params.get("ts") or "")
        messages = self._messages[channel.id]
        message = next((m for m in messages if m["ts"] == ts), None)
        if message is None:
            raise _error("thread_not_found")
        root_ts = message.get("thread_ts") or message["ts"]
        root = next((m for m in messages if m["ts"] == root_ts), message)
        oldest = float(params.get("oldest") or 0)
        latest = float(params["latest"]) if params.get("latest") else math.inf
        inclusive = _flag(params.get("inclusive"))
        limit = int(params.get("limit") or 1000)
        replies = [
            m
            for m in messages
            if m.get("thread_ts") == root_ts
            and m["ts"] != root_ts
            and (oldest <= float(m["ts"]) <= latest if inclusive else oldest < float(m["ts"]) < latest)
        ]
        # The thread's first message always comes first.
        found = [root, *replies][:limit]
        with_metadata = _flag(params.get("include_all_metadata"))
        return {"messages": [_listed(m, with_metadata) for m in found], "has_more": False}

    def _archive(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)
        if channel.is_archived:
            raise _error("already_archived")
        if channel.name == "general":
            raise _error("cant_archive_general")
        channel.is_archived = True
        return {}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger_id = str(params.get("trigger_id") or "")
        view = params.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise _error("invalid_arguments") from None
        if not trigger_id:
            raise _error(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing `trigger_id`"]}
            )
        if not _TRIGGER_ID.match(trigger_id):
            raise _error("invalid_trigger_id")
        if self._all_triggers_expired or trigger_id in self._expired_triggers:
            raise _error("expired_trigger_id")
        if trigger_id in self._used_triggers:
            raise _error("exchanged_trigger_id")
        if not isinstance(view, dict) or not _valid_modal(view):
            raise _error("invalid_arguments")
        self._used_triggers.add(trigger_id)
        view_id = f"V{next(self._ids):08d}"
        opened = {
            **view,
            "id": view_id,
            "team_id": TEAM_ID,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{next(self._ids):08d}",
            "root_view_id": view_id,
            "app_id": "A0001",
            "bot_id": "B0001",
        }
        self._views.append({"id": view_id, "trigger_id": trigger_id, "view": opened})
        return {"view": opened}

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        channels = [c.to_api() for c in self._channels.values() if not c.is_archived]
        return {"channels": channels, "response_metadata": {"next_cursor": ""}}

    def _pin(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=False)
        ts = str(params.get("timestamp") or "")
        message = next((m for m in self._messages[channel.id] if m["ts"] == ts), None)
        if message is None:
            raise _error("message_not_found")
        if message["pinned"]:
            raise _error("already_pinned")
        message["pinned"] = True
        return {}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user") or "")
        if not self._user_exists(user):
            raise _error("user_not_found")
        name = self._user_names.get(user, user.lower())
        return {
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": name,
                "real_name": name,
                "is_bot": user == self.bot_user_id,
                "deleted": False,
                "profile": {"display_name": name, "real_name": name},
            }
        }


_METHODS: dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._post_message,
    "chat.postEphemeral": FakeSlack._post_ephemeral,
    "chat.update": FakeSlack._update,
    "conversations.create": FakeSlack._create,
    "conversations.setTopic": FakeSlack._set_topic,
    "conversations.invite": FakeSlack._invite,
    "conversations.kick": FakeSlack._kick,
    "conversations.join": FakeSlack._join,
    "conversations.history": FakeSlack._history,
    "conversations.list": FakeSlack._list,
    "pins.add": FakeSlack._pin,
    "users.info": FakeSlack._users_info,
    "conversations.replies": FakeSlack._replies,
    "conversations.archive": FakeSlack._archive,
    "views.open": FakeSlack._views_open,
}


def _decode(content_type: str, raw: bytes) -> tuple[dict[str, Any], Any]:
    """Form fields (or top-level JSON fields) and the JSON body, if any."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (not media and raw.lstrip()[:1] == b"{"):
        try:
            body = json.loads(raw.decode("utf-8") or "null")
        except ValueError:
            return {}, None
        return (dict(body) if isinstance(body, dict) else {}), body
    params: dict[str, Any] = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if isinstance(params.get("blocks"), str):
        try:
            params["blocks"] = json.loads(params["blocks"])
        except ValueError:
            params["blocks"] = _BAD_BLOCKS
    return params, None


_BAD_BLOCKS = object()


def _content(params: dict[str, Any]) -> tuple[str, list[Any] | None]:
    text = params.get("text")
    blocks = params.get("blocks")
    if blocks is _BAD_BLOCKS or (blocks is not None and not isinstance(blocks, list)):
        raise _error("invalid_blocks")
    if not text and not blocks:
        raise _error("no_text")
    return str(text or ""), blocks


def _flag(value: Any) -> bool:
    """A boolean argument as the Web API takes it: ``1``/``true`` (form or query) or JSON true."""
    return value is True or str(value or "").lower() in ("1", "true")


def _in_channel(message: dict[str, Any]) -> bool:
    """Whether a message shows in the channel itself: not a reply in a thread, or a reply
    also sent to the channel."""
    thread_ts = message.get("thread_ts")
    return not thread_ts or thread_ts == message["ts"] or message.get("subtype") == "thread_broadcast"


def _listed(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    """A stored message as a listing shows it (metadata only when asked for)."""
    item = {k: v for k, v in message.items() if k != "metadata"}
    if with_metadata and message.get("metadata"):
        item["metadata"] = message["metadata"]
    return item


def _valid_modal(view: Any) -> bool:
    """The checks Slack makes on a modal that the tests rely on (type, title, sizes, blocks)."""
    if not isinstance(view, dict) or view.get("type") != "modal":
        return False
    title = view.get("title")
    if not isinstance(title, dict) or not 0 < len(str(title.get("text") or "")) <= _MAX_MODAL_TITLE:
        return False
    if len(str(view.get("private_metadata") or "")) > _MAX_METADATA:
        return False
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= _MAX_VIEW_BLOCKS:
        return False
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    return not has_input or isinstance(view.get("submit"), dict)


def _id_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(KeepAliveHandler):
        server_version = "FakeSlack/1.0"
        json_type = "application/json; charset=utf-8"

        def setup(self) -> None:
            super().setup()
            fake._opened(self.connection)

        def finish(self) -> None:
            fake._closed(self.connection)
            super().finish()

        def answer(
            self, method: str, target: str, headers: dict[str, str], raw: bytes
        ) -> tuple[int, Any, Mapping[str, str]]:
            parts = urlsplit(target)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            return fake._handle(parts.path, query, headers, raw)

        do_POST = KeepAliveHandler.serve
        do_GET = KeepAliveHandler.serve

    return Handler
