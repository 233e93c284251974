"""Trying the Mattermost provider with no Mattermost server.

- :func:`simulated_request`: the slash-command request Mattermost would send for ``/im
  <text>`` (form body, the command's token in the ``token`` field and in
  ``Authorization: Token``), for ``chatops simulate --provider <instance>``.
- :class:`MattermostPlayground` (``Playground`` where it can run): a local server that
  plays Mattermost (REST API v4, response URLs, dialogs) and prints each thing the bot does
  there, one line each, with channel and user names rather than ids: posts and cards with
  their buttons, edits, private answers, channels created, members added and removed, pins,
  archives and dialogs opened.
  :meth:`Playground.config_toml` gives the provider block that points an instance at it.

The playground is the test suite's Mattermost stand-in (``tests/fakes/mattermost_server.py``)
with a printer on top, so it runs from a source checkout, where ``make run`` starts it; an
installed package alone exposes no ``Playground``, and ``chatops run`` starts the others'.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import secrets
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from chatops_core.errors import ConfigError
from chatops_core.models import Actor
from chatops_core.providers.mattermost.config import MattermostSettings

__all__ = [
    "DEFAULT_USER_ID",
    "INSTANCE",
    "ORDER",
    "MattermostPlayground",
    "Playground",
    "answer_lines",
    "simulated_id",
    "simulated_request",
]

# The playground's instance: its webhook URL is /webhooks/mm.
INSTANCE = "mm"
# After Slack's among the playgrounds.
ORDER = 10
FORM_TYPE = "application/x-www-form-urlencoded"
USER_AGENT = "Mattermost-Bot/1.1"
# Mattermost ids: 26 characters of this alphabet.
_ID_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_MAX_LINE = 160


def simulated_id(name: str) -> str:
    """A stable 26-character Mattermost-shaped id for ``name`` (a user or channel name)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:26])


# Who types when `chatops simulate` is given no --user: alice, whom the playground knows.
DEFAULT_USER_NAME = "alice"
DEFAULT_USER_ID = simulated_id(f"user:{DEFAULT_USER_NAME}")


def simulated_request(
    settings: MattermostSettings,
    text: str,
    *,
    user: Actor,
    channel_id: str | None,
    channel_name: str | None,
    reply_url: str,
    trigger: str | None = None,
    command: str = "/im",
) -> tuple[bytes, dict[str, str], str]:
    """``(body, headers, content type)`` of the slash command Mattermost sends for
    ``command text`` typed by ``user`` in ``channel_name``.

    ``reply_url`` becomes the ``response_url``; ``trigger`` the ``trigger_id`` (a dialog
    opens only with one the server issued). Without a ``channel_id``, the id the playground
    gives ``channel_name``.
    https://developers.mattermost.com/integrate/slash-commands/custom/
    """
    token = settings.command_token.get_secret_value()
    name = (channel_name or "town-square").lstrip("~#")
    user_name = user.user_name or (DEFAULT_USER_NAME if user.user_id == DEFAULT_USER_ID else "")
    fields = {
        "channel_id": channel_id or simulated_id(f"channel:{name}"),
        "channel_name": name,
        "command": command,
        "response_url": reply_url,
        "team_domain": "simulated",
        "team_id": settings.team_id,
        "text": text,
        "token": token,
        "trigger_id": trigger or "",
        "user_id": user.user_id,
        "user_name": user_name.lstrip("@"),
    }
    headers = {
        "Accept": "application/json",
        "Authorization": f"Token {token}",
        "Content-Type": FORM_TYPE,
        "User-Agent": USER_AGENT,
    }
    return urlencode(fields).encode(), headers, FORM_TYPE


def answer_lines(answer: dict[str, Any], channel_name: str, names: Mapping[str, str]) -> list[str]:
    """An answer posted to the ``response_url`` as the person sees it: who sees it, then
    the message and any attachment (a card, a button), one line each."""
    private = answer.get("response_type") != "in_channel"
    head = "only you see:" if private else f"in ~{channel_name.lstrip('~#')}:"
    text = str(answer.get("text") or "")
    lines = [f"bot ({head})", *text.splitlines()]
    attachments = answer.get("attachments")
    if isinstance(attachments, list) and attachments:
        lines.append(_post_summary({"attachments": attachments}))
    return lines


# The local Mattermost of the test suite, in a source checkout.
_LOCAL_SERVER = Path(__file__).resolve().parents[3] / "tests" / "fakes" / "mattermost_server.py"
_LOCAL_SERVER_MODULE = "tests.fakes.mattermost_server"


def local_server_available() -> bool:
    """Whether the local Mattermost the playground is built on is here (a source checkout)."""
    try:
        if importlib.util.find_spec(_LOCAL_SERVER_MODULE) is not None:
            return True
    except ImportError:
        pass
    return _LOCAL_SERVER.is_file()


def _local_server() -> ModuleType:
    """The local Mattermost's module: imported when ``tests`` is importable (tests, a shell
    in the checkout), else loaded from the checkout by its path (``chatops run``)."""
    try:
        return importlib.import_module(_LOCAL_SERVER_MODULE)
    except ImportError:
        pass
    name = "chatops_mattermost_local_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _LOCAL_SERVER)
    if spec is None or spec.loader is None or not _LOCAL_SERVER.is_file():
        raise ConfigError(
            "the Mattermost playground runs from a source checkout (it is the test suite's "
            "local Mattermost); run `make run` from the repository"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


USERS = ("alice", "bob", "carol")
CHANNELS = ("town-square", "incidents", "critical-incidents", "major-incidents")


class MattermostPlayground:
    """A local Mattermost that prints what the bot does there.

    One team with users ``alice``, ``bob`` and ``carol`` and channels ``town-square``,
    ``incidents``, ``critical-incidents`` and ``major-incidents``, whose ids are the ones
    :func:`simulated_request` sends, so a simulated command names people and channels the
    playground knows. It listens on ``127.0.0.1:<port>`` (0: a free port); ``out`` receives
    each printed line (the console by default); ``name`` prefixes each line. Nothing is kept
    across restarts (``data_dir`` is accepted for the playgrounds' common signature).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        out: Callable[[str], None] | None = None,
        *,
        name: str = "mm",
    ) -> None:
        if host != "127.0.0.1":
            raise ConfigError("the Mattermost playground listens on 127.0.0.1 only")
        module = _local_server()
        self._out = out or print
        self._name = name
        self._actions_secret = secrets.token_hex(24)
        playground = self

        class _Printing(module.FakeMattermost):  # type: ignore[misc, name-defined]
            def _handle(
                self, method: str, target: str, headers: Mapping[str, str], raw: bytes
            ) -> tuple[int, Any, dict[str, str]]:
                with self._lock:
                    answer = super()._handle(method, target, headers, raw)
                    call = self._calls[-1]
                    line = playground._describe(self, call)
                if line:
                    playground._say(line)
                return answer  # type: ignore[no-any-return]

        self._server = _Printing(
            secrets.token_hex(13),
            command_token=secrets.token_hex(13),
            seed=secrets.randbits(32),
            users=(),
            channels=(),
            port=port,
        )
        for user in USERS:
            self._server.add_user(user, user_id=simulated_id(f"user:{user}"))
        members = [simulated_id(f"user:{user}") for user in USERS]
        for channel in CHANNELS:
            self._server.add_channel(
                channel,
                members=[*members, self._server.bot_user_id],
                channel_id=simulated_id(f"channel:{channel}"),
            )
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        """The server's base URL (the provider's ``url``)."""
        return str(self._server.url)

    @property
    def api_url(self) -> str:
        """Where REST API v4 is: ``{url}/api/v4``."""
        return str(self._server.api_url)

    @property
    def server(self) -> Any:
        """The Mattermost stand-in itself: its users, channels, posts, and the requests it
        builds (a slash command, a click on a posted button, a dialog submission)."""
        return self._server

    def config_toml(self, instance: str, *, webhook_url: str | None = None) -> str:
        """The ``[providers.<instance>]`` block that points an instance at this playground."""
        quote = json.dumps
        lines = [
            f"[providers.{instance}]",
            'type = "mattermost"',
            f"url = {quote(self.url)}",
            f"bot_token = {quote(self._server.token)}",
            f"command_token = {quote(self._server.command_token)}",
            f"actions_secret = {quote(self._actions_secret)}",
            f"team_id = {quote(self._server.team_id)}",
            f"bot_user_id = {quote(self._server.bot_user_id)}",
            'default_channel = "incidents"',
            "create_incident_channels = true",
        ]
        if webhook_url:
            lines.append(f"webhook_url = {quote(webhook_url)}")
        lines += [
            f"[providers.{instance}.notification_channels]",
            '"SEV-1" = "critical-incidents"',
            '"SEV-2" = "major-incidents"',
            "",
        ]
        return "\n".join(lines)

    # -- printing ------------------------------------------------------------------------
    def _say(self, line: str) -> None:
        with self._lock:
            self._out(line)

    def _describe(self, fake: Any, call: Any) -> str | None:
        """One line for a call that changed something, None for reads and refusals."""
        if not call.ok:
            if call.status == 429:
                wait = call.response_headers.get("X-Ratelimit-Reset", "?")
                return f"[{self._name}] rate limited ({call.op}): try again in {wait}s"
            return None
        params = call.params if isinstance(call.params, dict) else {}
        answer = call.response if isinstance(call.response, dict) else {}

        def channel(ref: Any) -> str:
            found = fake.channel(str(ref or "")) if ref else None
            return f"~{found['name']}" if found else str(ref)

        def user(ref: Any) -> str:
            found = next((u for u in fake._users.values() if u.id == ref), None)
            return f"@{found.username}" if found else str(ref)

        op = call.op
        if op == "create_post":
            where = channel(params.get("channel_id"))
            thread = " (in a thread)" if params.get("root_id") else ""
            return f"[{self._name}] posted in {where}{thread}: {_post_summary(params)}"
        if op == "patch_post":
            where = channel(answer.get("channel_id"))
            return f"[{self._name}] edited a card in {where}: {_post_summary(params)}"
        if op == "create_post_ephemeral":
            post = params.get("post") or {}
            who, where = user(params.get("user_id")), channel(post.get("channel_id"))
            return f"[{self._name}] to {who} only, in {where}: {_post_summary(post)}"
        if op == "command_response":
            body = call.json if isinstance(call.json, dict) else {"text": call.text}
            private = body.get("response_type") != "in_channel"
            return f"[{self._name}] answered{' privately' if private else ''}: {_post_summary(body)}"
        if op == "create_channel":
            return f"[{self._name}] created channel ~{answer.get('name')} ({answer.get('display_name')})"
        if op == "add_channel_member":
            return (
                f"[{self._name}] added {user(params.get('user_id'))} to {channel(answer.get('channel_id'))}"
            )
        if op == "remove_channel_member":
            return f"[{self._name}] removed a member from {channel(call.path.split('/')[4])}"
        if op == "delete_channel":
            return f"[{self._name}] archived {channel(call.path.split('/')[4])}"
        if op == "pin_post":
            return f"[{self._name}] pinned a card"
        if op == "open_dialog":
            dialog = params.get("dialog") or {}
            return f"[{self._name}] opened the dialog “{dialog.get('title')}”"
        return None


if local_server_available():
    # Where it is not (an installed package alone), the platform has no playground and
    # `chatops run` starts the others'.
    Playground = MattermostPlayground


def _post_summary(post: Mapping[str, Any]) -> str:
    """A post in one line: its text, or its card's title and status, and its buttons."""
    props = post.get("props") if isinstance(post.get("props"), dict) else {}
    attachments = post.get("attachments") or (props or {}).get("attachments") or []
    parts: list[str] = []
    text = str(post.get("message") or post.get("text") or "").strip()
    if text:
        parts.append(text.splitlines()[0])
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict):
            continue
        fields = {
            f.get("title"): f.get("value") for f in attachment.get("fields") or [] if isinstance(f, dict)
        }
        head = attachment.get("title") or attachment.get("text") or attachment.get("fallback") or ""
        if fields.get("Status"):
            head = f"{head} · {fields.get('Status')} · commander {fields.get('Commander')}"
        buttons = [a.get("name") for a in attachment.get("actions") or [] if isinstance(a, dict)]
        if buttons:
            head += " " + " ".join(f"[{b}]" for b in buttons)
        parts.append(str(head))
    line = " — ".join(parts) or "(empty)"
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…"
