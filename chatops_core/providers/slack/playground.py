"""A local stand-in for Slack, so the product can be tried with no workspace.

``chatops run`` starts it when no platform is configured (see
:mod:`chatops_core.providers.devtools`). It answers the Web API calls the bot makes as Slack
does (https://docs.slack.dev/reference/methods) and prints each thing the bot does, one or a
few lines each, with channel and user names rather than ids: posts, updates, thread replies,
private answers, channels created, topics, invitations and removals, pins, archives and forms
opened. ``chatops simulate`` plays the person typing commands: it tells the
playground who it is and where it types (``POST /playground/session``), and gets a response
URL on the playground, which prints each answer and passes it on to ``simulate``.

Channels, users and recent messages are kept in ``playground.json`` under the data
directory, so a restarted stack still shows the names of the channels it made.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from chatops_core.providers.devtools import NAMES_PATH, SESSION_PATH
from chatops_core.providers.slack.plaintext import block_lines, mrkdwn_text, view_lines

STATE_FILE = "playground.json"
# Under the data directory: the signing secret of the playground's instance, generated once so
# that `chatops simulate` signs with the one the running stack checks.
SECRET_FILE = "playground.secret"
BOT_USER_ID = "UPLAYGROUND"
BOT_NAME = "incident-bot"
TEAM_ID = "TPLAYGROUND"
RESPONSE_PREFIX = "/commands/"
# Messages kept for conversations.history (the bot looks for its earlier posts there).
MAX_MESSAGES = 500
# Sessions of `chatops simulate` remembered (each holds one response URL).
MAX_SESSIONS = 200
# Lines of one answer printed; the rest is counted.
MAX_PRINTED_LINES = 8
FORWARD_TIMEOUT_SECONDS = 5.0
# How soon the server notices it is asked to stop.
POLL_SECONDS = 0.05
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class _Refusal(Exception):
    """A Slack error answer: ``{"ok": false, "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Channel:
    id: str
    name: str
    topic: str = ""
    archived: bool = False
    members: list[str] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_private": False,
            "is_archived": self.archived,
            "is_member": BOT_USER_ID in self.members,
            "topic": {"value": self.topic},
        }


@dataclass
class _Session:
    """One `chatops simulate` run: who typed, where, and where its answers go."""

    user_id: str
    channel_id: str
    forward_url: str | None


class Playground:
    """The local Slack: a Web API under ``/api/``, response URLs under ``/commands/``.

    ``data_dir`` (optional) is where its channels, users and recent messages are kept across
    restarts; ``out`` receives each printed line (the console by default).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        out: Callable[[str], None] | None = None,
    ) -> None:
        self._host = host
        self._data_dir = data_dir
        self._state_file = data_dir / STATE_FILE if data_dir is not None else None
        self._out = out or _print
        self._server = _PlaygroundServer((host, port), _Handler)
        self._server.playground = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_SECONDS,), name="playground", daemon=True
        )
        self._lock = threading.RLock()
        self._next_id = 1
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, str] = {BOT_USER_ID: BOT_NAME}
        self._messages: list[dict[str, Any]] = []
        self._sessions: dict[str, _Session] = {}
        self._triggers: dict[str, str] = {}  # trigger id -> session token
        self._forwards: list[tuple[str, Any]] = []  # to pass on to `simulate` once answered
        self._secret: str | None = None
        self._load()

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def config_toml(self, instance: str) -> str:
        """The ``[providers.<instance>]`` table of a Slack instance that talks to this playground.

        Its signing secret is generated once and kept in the data directory, so that
        ``chatops simulate`` signs with the same one.
        """
        lines = [
            f"[providers.{instance}]",
            'type = "slack"',
            'bot_token = "xoxb-playground"',
            f"signing_secret = {json.dumps(self._signing_secret())}",
            f"api_url = {json.dumps(self.api_url)}",
            f"bot_user_id = {json.dumps(BOT_USER_ID)}",
            'default_channel = "#incidents"',
            "create_incident_channels = true",
        ]
        return "\n".join(lines) + "\n"

    def _signing_secret(self) -> str:
        with self._lock:
            if self._secret is None:
                self._secret = _kept_secret(self._data_dir)
            return self._secret

    # -- names -----------------------------------------------------------------------------
    def name_of(self, ref: str) -> str | None:
        """The name of a user or channel id, None when unknown."""
        with self._lock:
            channel = self._channels.get(ref)
            if channel is not None:
                return channel.name
            return self._users.get(ref)

    def names(self) -> dict[str, str]:
        """Every id the playground knows, with its name."""
        with self._lock:
            return {**self._users, **{cid: c.name for cid, c in self._channels.items()}}

    def _user(self, user_id: str) -> str:
        return "@" + (self._users.get(user_id) or user_id)

    def _text(self, text: str) -> str:
        return " ".join(mrkdwn_text(text, self.name_of).split())

    def _say_message(self, head: str, text: str, blocks: Any = None) -> None:
        """Print a message: ``head`` and its first line, then a few more lines and its controls."""
        lines = [" ".join(line.split()) for line in mrkdwn_text(text, self.name_of).splitlines()]
        lines = [line for line in lines if line]
        first, rest = (lines[0], lines[1:]) if lines else ("", [])
        if len(rest) > MAX_PRINTED_LINES:
            rest = [*rest[: MAX_PRINTED_LINES - 1], f"… {len(rest) - MAX_PRINTED_LINES + 1} more lines"]
        self._say(f"{head} {first}".rstrip(), [*rest, *self._controls(blocks)])

    # -- channels --------------------------------------------------------------------------
    def _new_id(self) -> str:
        channel_id = f"C{self._next_id:08d}"
        self._next_id += 1
        return channel_id

    def _by_name(self, name: str) -> _Channel | None:
        for channel in self._channels.values():
            if channel.name == name:
                return channel
        return None

    def _channel(self, ref: Any, *, create: bool = True) -> _Channel:
        """The channel ``ref`` names (an id, ``#name`` or ``name``).

        A name not seen yet is a channel that already exists in the workspace (``#incidents``),
        so it is made on first use; so is an id from before the playground kept its state.
        """
        ref = str(ref or "").strip()
        if not ref:
            raise _Refusal("channel_not_found")
        if ref in self._channels:
            return self._channels[ref]
        if _CHANNEL_ID.match(ref):
            if not create:
                raise _Refusal("channel_not_found")
            channel = _Channel(id=ref, name=ref)
            self._channels[ref] = channel
            return channel
        name = ref.removeprefix("#")
        found = self._by_name(name)
        if found is not None:
            return found
        if not create:
            raise _Refusal("channel_not_found")
        channel = _Channel(id=self._new_id(), name=name, members=[BOT_USER_ID])
        self._channels[channel.id] = channel
        return channel

    # -- the Web API ---------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one Web API call as Slack does, printing what it changes."""
        handler = _METHODS.get(method)
        with self._lock:
            try:
                if handler is None:
                    self._say(f"[slack] ({method})")
                    return {"ok": True}
                answer = handler(self, params)
            except _Refusal as refusal:
                return {"ok": False, "error": refusal.code}
            if method not in _READS:
                self._save()
            forwards, self._forwards = self._forwards, []
        for url, body in forwards:
            _forward(url, body)
        return {"ok": True, **answer}

    def _say(self, line: str, more: Iterable[str] = ()) -> None:
        self._out(line)
        for extra in more:
            self._out(f"    {extra}")

    def _where(self, channel: _Channel) -> str:
        return f"[slack #{channel.name}]"

    def _controls(self, blocks: Any) -> list[str]:
        """The buttons and menus of a message, one line per actions block."""
        if not isinstance(blocks, list):
            return []
        actions = [b for b in blocks if isinstance(b, dict) and b.get("type") in ("actions",)]
        return block_lines(actions, self.name_of)

    def _remember(self, message: dict[str, Any]) -> None:
        self._messages.append(message)
        del self._messages[:-MAX_MESSAGES]

    def _find(self, channel: _Channel, ts: str) -> dict[str, Any] | None:
        for message in reversed(self._messages):
            if message["channel"] == channel.id and message["ts"] == ts:
                return message
        return None

    def _next_ts(self) -> str:
        ts = time.time()
        last = max((float(m["ts"]) for m in self._messages[-5:]), default=0.0)
        return f"{max(ts, last + 0.000001):.6f}"

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"user_id": BOT_USER_ID, "user": BOT_NAME, "team": "playground", "team_id": TEAM_ID}

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        if channel.archived:
            raise _Refusal("is_archived")
        blocks = _json_param(params.get("blocks"))
        message: dict[str, Any] = {
            "channel": channel.id,
            "ts": self._next_ts(),
            "user": BOT_USER_ID,
            "text": str(params.get("text") or ""),
        }
        metadata = _json_param(params.get("metadata"))
        if isinstance(metadata, dict):
            message["metadata"] = metadata
        thread = str(params.get("thread_ts") or "")
        if thread:
            message["thread_ts"] = thread
            broadcast = _flag(params.get("reply_broadcast"))
            verb = "replied in a thread, also sent to the channel" if broadcast else "replied in a thread"
        else:
            verb = "posted"
        self._remember(message)
        self._say_message(f"{self._where(channel)} ({verb})", message["text"], blocks)
        return {"channel": channel.id, "ts": message["ts"], "message": dict(message)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        ts = str(params.get("ts") or "")
        text = str(params.get("text") or "")
        message = self._find(channel, ts)
        if message is not None:
            message["text"] = text
        self._say_message(f"{self._where(channel)} (updated)", text, _json_param(params.get("blocks")))
        return {"channel": channel.id, "ts": ts, "text": text}

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        who = self._user(str(params.get("user") or ""))
        text = str(params.get("text") or "")
        self._say_message(
            f"{self._where(channel)} (only {who} sees)", text, _json_param(params.get("blocks"))
        )
        return {"message_ts": self._next_ts()}

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("name") or "")
        if not re.fullmatch(r"[a-z0-9_-]{1,80}", name):
            raise _Refusal("invalid_name_specials")
        if self._by_name(name) is not None:
            raise _Refusal("name_taken")
        channel = _Channel(id=self._new_id(), name=name, members=[BOT_USER_ID])
        self._channels[channel.id] = channel
        self._say(f"{self._where(channel)} (channel created)")
        return {"channel": channel.to_api()}

    def _set_topic(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        channel.topic = str(params.get("topic") or "")
        self._say(f"{self._where(channel)} (topic) {self._text(channel.topic)}")
        return {"channel": channel.to_api()}

    def _invite(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        users = _id_list(params.get("users"))
        if not users:
            raise _Refusal("no_user")
        if BOT_USER_ID in users:
            raise _Refusal("cant_invite_self")
        if any(u in channel.members for u in users):
            raise _Refusal("already_in_channel")
        channel.members += users
        self._say(f"{self._where(channel)} (invited) {', '.join(self._user(u) for u in users)}")
        return {"channel": channel.to_api()}

    def _kick(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        user = str(params.get("user") or "")
        if user not in channel.members:
            raise _Refusal("not_in_channel")
        channel.members.remove(user)
        self._say(f"{self._where(channel)} (removed) {self._user(user)}")
        return {}

    def _join(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        if BOT_USER_ID not in channel.members:
            channel.members.append(BOT_USER_ID)
            self._say(f"{self._where(channel)} (joined) {self._user(BOT_USER_ID)}")
        return {"channel": channel.to_api()}

    def _archive(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        if channel.archived:
            raise _Refusal("already_archived")
        channel.archived = True
        self._say(f"{self._where(channel)} (archived)")
        return {}

    def _pin(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"))
        ts = str(params.get("timestamp") or "")
        if ts in channel.pinned:
            raise _Refusal("already_pinned")
        message = self._find(channel, ts)
        channel.pinned.append(ts)
        what = self._text(message["text"]) if message else f"message {ts}"
        self._say(f"{self._where(channel)} (pinned) {what}")
        return {}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = _json_param(params.get("view"))
        if not isinstance(view, dict):
            raise _Refusal("invalid_arguments")
        session = self._sessions.get(self._triggers.get(str(params.get("trigger_id") or ""), ""))
        lines = view_lines(view, self.name_of)
        title = lines[0] if lines else "a form"
        whom = f" for {self._user(session.user_id)}" if session else ""
        self._say(f"[slack] (form opened{whom}) {title}", lines[1:])
        if session is not None and session.forward_url:
            # The person sees the form: `simulate` shows it.
            self._forwards.append((session.forward_url, {"view": view}))
        return {"view": {"id": f"V{self._next_id:08d}", **view}}

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        exclude = _flag(params.get("exclude_archived"))
        channels = [c.to_api() for c in self._channels.values() if not (exclude and c.archived)]
        return {"channels": channels, "response_metadata": {"next_cursor": ""}}

    def _info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel(params.get("channel"), create=False).to_api()}

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"), create=False)
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        inclusive = _flag(params.get("inclusive"))
        limit = int(params.get("limit") or 100)

        def within(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        found = [
            dict(m)
            for m in reversed(self._messages)
            if m["channel"] == channel.id and "thread_ts" not in m and within(float(m["ts"]))
        ]
        return {"messages": found[:limit], "has_more": len(found) > limit}

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params.get("channel"), create=False)
        ts = str(params.get("ts") or "")
        thread = [
            dict(m)
            for m in self._messages
            if m["channel"] == channel.id and (m["ts"] == ts or m.get("thread_ts") == ts)
        ]
        if not thread:
            raise _Refusal("thread_not_found")
        return {"messages": thread}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user") or "")
        if user not in self._users:
            raise _Refusal("user_not_found")
        name = self._users[user]
        return {"user": {"id": user, "name": name, "real_name": name, "profile": {"display_name": name}}}

    # -- simulate's side ---------------------------------------------------------------------
    def open_session(self, request: dict[str, Any]) -> dict[str, Any]:
        """Register a `chatops simulate` run: the person, the channel they type in, their
        form trigger and where their answers go. Answers the channel's id and a response URL.
        """
        user_id = str(request.get("user_id") or "")
        channel_name = str(request.get("channel_name") or "").removeprefix("#")
        channel_id = str(request.get("channel_id") or "")
        with self._lock:
            if user_id and (request.get("user_name") or user_id not in self._users):
                self._users[user_id] = str(request.get("user_name") or user_id)
            if channel_id:
                channel = self._channels.get(channel_id)
                if channel is None:
                    channel = _Channel(id=channel_id, name=channel_name or channel_id)
                    self._channels[channel_id] = channel
            else:
                channel = self._channel(channel_name or "general")
            if user_id and user_id not in channel.members:
                channel.members.append(user_id)
            token = secrets.token_urlsafe(16)
            forward = request.get("forward_url")
            self._sessions[token] = _Session(user_id, channel.id, str(forward) if forward else None)
            trigger = str(request.get("trigger") or "")
            if trigger:
                self._triggers[trigger] = token
                while len(self._triggers) > MAX_SESSIONS:
                    self._triggers.pop(next(iter(self._triggers)))
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._save()
        return {
            "channel_id": channel.id,
            "channel_name": channel.name,
            "reply_url": f"{self.url}{RESPONSE_PREFIX}{token}",
        }

    def respond(self, token: str, body: Any) -> tuple[int, str]:
        """A post to a response URL: print it, pass it on to its `simulate`, answer ``ok``.

        Slack shows the answer whether or not anyone still looks, so a `simulate` that has
        gone does not make the post fail.
        """
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return 404, "expired_url"
            channel = self._channels.get(session.channel_id) or _Channel(
                session.channel_id, session.channel_id
            )
            message = body if isinstance(body, dict) else {"text": str(body)}
            if message.get("delete_original"):
                self._say(f"{self._where(channel)} (answer deleted)")
            else:
                public = message.get("response_type") == "in_channel"
                whom = (
                    "answer in the channel" if public else f"answer only {self._user(session.user_id)} sees"
                )
                self._say_message(f"{self._where(channel)} ({whom})", str(message.get("text") or ""))
            forward = session.forward_url
        if forward:
            _forward(forward, body)
        return 200, "ok"

    # -- persistence -------------------------------------------------------------------------
    def _load(self) -> None:
        if self._state_file is None or not self._state_file.exists():
            return
        try:
            state = json.loads(self._state_file.read_text(encoding="utf-8"))
            channels = [_Channel(**c) for c in state.get("channels", [])]
            users = {str(k): str(v) for k, v in dict(state.get("users", {})).items()}
            messages = [m for m in state.get("messages", []) if isinstance(m, dict)]
            next_id = int(state.get("next_id", 1))
        except (OSError, ValueError, TypeError) as exc:
            self._out(f"[slack] could not read {self._state_file} ({exc}); starting afresh")
            return
        self._channels = {c.id: c for c in channels}
        self._users.update(users)
        self._messages = messages[-MAX_MESSAGES:]
        self._next_id = next_id

    def _save(self) -> None:
        if self._state_file is None:
            return
        state = {
            "next_id": self._next_id,
            "channels": [asdict(c) for c in self._channels.values()],
            "users": self._users,
            "messages": self._messages,
        }
        tmp = self._state_file.with_name(self._state_file.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self._state_file)


_METHODS: dict[str, Callable[[Playground, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": Playground._auth_test,
    "chat.postMessage": Playground._post_message,
    "chat.update": Playground._update,
    "chat.postEphemeral": Playground._post_ephemeral,
    "conversations.create": Playground._create,
    "conversations.setTopic": Playground._set_topic,
    "conversations.invite": Playground._invite,
    "conversations.kick": Playground._kick,
    "conversations.join": Playground._join,
    "conversations.archive": Playground._archive,
    "conversations.list": Playground._list,
    "conversations.info": Playground._info,
    "conversations.history": Playground._history,
    "conversations.replies": Playground._replies,
    "pins.add": Playground._pin,
    "views.open": Playground._views_open,
    "users.info": Playground._users_info,
}


# Methods that change nothing, so the state file is not written after them.
_READS = frozenset(
    {
        "auth.test",
        "conversations.list",
        "conversations.info",
        "conversations.history",
        "conversations.replies",
        "users.info",
    }
)


def _print(line: str) -> None:
    print(line, flush=True)


def _json_param(value: Any) -> Any:
    """A parameter that is JSON in a form body and already decoded in a JSON body."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _id_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v]
    return [v for v in str(value or "").split(",") if v]


def _forward(url: str, body: Any) -> None:
    """Pass an answer on to the `simulate` that waits for it; a gone one is no error."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_SECONDS) as resp:
            resp.read()
    except (OSError, ValueError):
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _PlaygroundServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _body(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            try:
                return json.loads(raw or b"{}")
            except ValueError:
                return {}
        return dict(parse_qsl(raw.decode("utf-8", "replace")))

    def _answer(self, status: int, body: Any) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        kind = "text/plain" if isinstance(body, str) else "application/json"
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == NAMES_PATH:
            self._answer(200, self.server.playground.names())
        else:
            self._answer(404, "not found")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self._body()
        playground = self.server.playground
        if self.path.startswith("/api/"):
            params = body if isinstance(body, dict) else {}
            self._answer(200, playground.call(self.path[len("/api/") :], params))
        elif self.path.startswith(RESPONSE_PREFIX):
            status, text = playground.respond(self.path[len(RESPONSE_PREFIX) :], body)
            self._answer(status, text)
        elif self.path == SESSION_PATH and isinstance(body, dict):
            self._answer(200, playground.open_session(body))
        else:
            self._answer(404, "not found")


class _PlaygroundServer(ThreadingHTTPServer):
    daemon_threads = True
    playground: Playground


def _kept_secret(data_dir: Path | None) -> str:
    """The playground's signing secret: the one kept under ``data_dir``, else a new one (kept
    there, readable by the owner only)."""
    if data_dir is None:
        return secrets.token_hex(16)
    path = data_dir / SECRET_FILE
    if path.exists():
        kept = path.read_text(encoding="utf-8").strip()
        if kept:
            return kept
    secret = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret)
    return secret
