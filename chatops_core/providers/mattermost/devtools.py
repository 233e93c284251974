"""Trying the Mattermost provider with no Mattermost server.

- :func:`simulated_request`: the slash-command request Mattermost would send for ``/im
  <text>`` (form body, the command's token in the ``token`` field and in
  ``Authorization: Token``), for ``chatops simulate --provider <instance>``.
- :class:`MattermostPlayground` (``Playground`` where it can run): a local server that
  plays Mattermost (REST API v4, response URLs, dialogs) and prints each thing the bot does
  there, with channel and user names rather than ids: posts and cards with their buttons,
  edits, answers (and who sees them), channels created, members added and removed, pins,
  archives and dialogs opened. ``chatops simulate`` tells it who types where
  (``POST /playground/session``) and gets a response URL on it, which prints each answer
  and passes it on. :meth:`Playground.config_toml` gives the provider block that points an
  instance at it.
- :func:`answer_lines`: an answer as the person sees it, Markdown shown as plain text.

The simulated person is the one ``--user-name`` names: with no ``--user``, their id is the
playground's id for that name (``alice``, ``bob`` and ``carol`` are there already; another
name is added as it first types), so the name the bot writes and the one the playground
prints are the same.

The playground is the test suite's Mattermost stand-in (``tests/fakes/mattermost_server.py``)
with a printer on top, so it runs from a source checkout, where ``make run`` starts it; an
installed package alone exposes no ``Playground``, and ``chatops run`` starts the others'.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode, urlsplit

from chatops_core.models import Actor
from chatops_core.providers import devtools
from chatops_core.providers.mattermost.config import MattermostSettings

__all__ = [
    "DEFAULT_USER_ID",
    "INSTANCE",
    "ORDER",
    "MattermostPlayground",
    "Playground",
    "answer_lines",
    "simulated_id",
    "simulated_person",
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
# Lines of one post printed after its first; the rest is counted.
MAX_PRINTED_LINES = 8


def simulated_id(name: str) -> str:
    """A stable 26-character Mattermost-shaped id for ``name`` (a user or channel name)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:26])


# Who types when `chatops simulate` is given no --user and no --user-name.
DEFAULT_USER_NAME = "simulator"
DEFAULT_USER_ID = simulated_id(f"user:{DEFAULT_USER_NAME}")


def simulated_person(user: Actor) -> tuple[str, str]:
    """``(user id, username)`` of the person ``chatops simulate`` plays.

    With no ``--user`` (the id is :data:`DEFAULT_USER_ID`), the person is the one
    ``--user-name`` names, with the playground's id for that name; otherwise the id given,
    with the name given (none: empty).
    """
    name = (user.user_name or "").strip().lstrip("@")
    if user.user_id == DEFAULT_USER_ID:
        name = name or DEFAULT_USER_NAME
        return simulated_id(f"user:{name}"), name
    return user.user_id, name


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
    user_id, user_name = simulated_person(user)
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
        "user_id": user_id,
        "user_name": user_name,
    }
    headers = {
        "Accept": "application/json",
        "Authorization": f"Token {token}",
        "Content-Type": FORM_TYPE,
        "User-Agent": USER_AGENT,
    }
    return urlencode(fields).encode(), headers, FORM_TYPE


def answer_lines(answer: dict[str, Any], channel_name: str, names: Mapping[str, str]) -> list[str]:
    """What the person sees of an answer posted to the ``response_url`` (or of a dialog
    opened for them): who sees it, then the message and its attachments (a card: its facts
    and buttons) as plain text, one line each."""
    dialog = answer.get("dialog")
    if isinstance(dialog, dict):
        return ["bot opened a form for you:", *dialog_lines(dialog)]
    if answer.get("response_type") == "in_channel":
        heading = f"bot (in ~{channel_name.lstrip('~#')}, everyone sees this):"
    else:
        heading = "bot (only you see this):"
    return [heading, *post_lines(answer)]


def post_lines(post: Mapping[str, Any]) -> list[str]:
    """A post (or a command response) as a person reads it: its message, then each
    attachment's heading, title, text, fields, footer and buttons, Markdown as plain text."""
    lines = markdown_lines(str(post.get("message") or post.get("text") or ""))
    for attachment in _attachments(post):
        for key in ("pretext", "title", "text"):
            lines += markdown_lines(str(attachment.get(key) or ""))
        facts = [
            f"{plain_text(str(f.get('title') or ''))}: {plain_text(str(f.get('value') or ''))}"
            for f in attachment.get("fields") or []
            if isinstance(f, dict) and f.get("title")
        ]
        if facts:
            lines.append(" · ".join(facts))
        lines += markdown_lines(str(attachment.get("footer") or ""))
        buttons = _buttons(attachment)
        if buttons:
            lines.append(buttons)
    return lines


def dialog_lines(dialog: Mapping[str, Any]) -> list[str]:
    """A dialog as lines: its title, then one line per element (its label, what it takes,
    its default or choices)."""
    lines = [str(dialog.get("title") or "a form")]
    if dialog.get("introduction_text"):
        lines += markdown_lines(str(dialog["introduction_text"]))
    for element in dialog.get("elements") or []:
        if not isinstance(element, dict):
            continue
        label = str(element.get("display_name") or element.get("name") or "")
        kind = str(element.get("subtype") or element.get("type") or "text")
        options = [
            str(o.get("text") or o.get("value")) for o in element.get("options") or [] if isinstance(o, dict)
        ]
        shown = f"{label}: [{' | '.join(options)}]" if options else f"{label}: [{kind}]"
        if element.get("default"):
            shown += f" (default {element['default']})"
        if element.get("optional"):
            shown += " (optional)"
        lines.append(shown)
    if dialog.get("submit_label"):
        lines.append(f"[{dialog['submit_label']}]")
    return lines


# Emoji the service writes as shortcodes, as Mattermost shows them.
_EMOJI = {
    "red_circle": "🔴",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "large_blue_circle": "🔵",
    "rotating_light": "🚨",
    "white_check_mark": "✅",
    "warning": "⚠️",
    "fire": "🔥",
}
_SHORTCODE = re.compile(r":([a-z0-9_+-]+):")
_ESCAPED = re.compile(r"\\([\\`*_~\[\]<>#|])")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w\\])_(?=\S)(.+?)(?<=\S)_(?![\w])")
_STRIKE = re.compile(r"~~(.+?)~~")
_CODE = re.compile(r"`([^`]*)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BULLET = re.compile(r"^(\s*)[-*] ")


def plain_text(text: str) -> str:
    """One line of Mattermost Markdown as it reads: no emphasis marks, code marks or
    escapes, emoji shortcodes as emoji, links as ``text <url>``."""
    parts = re.split(r"(\\[\\`*_~\[\]<>#|])", text)
    out: list[str] = []
    for part in parts:
        if _ESCAPED.fullmatch(part):
            # A literal character: kept out of the Markdown rules below.
            out.append("\x00" + part[1])
            continue
        part = _CODE.sub(r"\1", part)
        part = _LINK.sub(r"\1 <\2>", part)
        part = _BOLD.sub(r"\1", part)
        part = _STRIKE.sub(r"\1", part)
        part = _ITALIC.sub(r"\1", part)
        part = _SHORTCODE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), part)
        out.append(part)
    return "".join(out).replace("\x00", "")


def markdown_lines(text: str) -> list[str]:
    """Mattermost Markdown as plain lines: blank lines left out, list items as bullets."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        lines.append(plain_text(_BULLET.sub(r"\1• ", raw.rstrip())))
    return lines


def _attachments(post: Mapping[str, Any]) -> list[dict[str, Any]]:
    props = post.get("props")
    found = post.get("attachments") or (props.get("attachments") if isinstance(props, dict) else None)
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def _buttons(attachment: Mapping[str, Any]) -> str:
    """An attachment's buttons and menus as ``[Acknowledge] [Severity ▾]``."""
    shown = []
    for action in attachment.get("actions") or []:
        if not isinstance(action, dict) or not action.get("name"):
            continue
        menu = action.get("type") == "select"
        shown.append(f"[{action['name']}{' ▾' if menu else ''}]")
    return " ".join(shown)


# The local Mattermost of the test suite, in a source checkout.
_LOCAL_SERVER_MODULE = "tests.fakes.mattermost_server"


def local_server_available() -> bool:
    """Whether the local Mattermost the playground is built on is here (a source checkout)."""
    return devtools.local_server_available(_LOCAL_SERVER_MODULE)


def _local_server() -> ModuleType:
    return devtools.local_server_module(_LOCAL_SERVER_MODULE, "Mattermost")


USERS = ("alice", "bob", "carol")
CHANNELS = ("town-square", "incidents", "critical-incidents", "major-incidents")
_HOOK_PATH = "/hooks/commands/"
_MEMBERS_PATH = re.compile(r"^/api/v4/channels/([^/]+)/members$")
_POST_PATH = re.compile(r"^/api/v4/posts/([^/]+)(?:/patch|/pin)?$")
_CHANNEL_PATH = re.compile(r"^/api/v4/channels/([^/]+)(?:/.*)?$")


@dataclasses.dataclass
class _Session:
    """One `chatops simulate` run: who typed, where, and where its answers go."""

    user_id: str
    channel_id: str
    forward_url: str | None


class MattermostPlayground(devtools.LocalPlayground):
    """A local Mattermost that prints what the bot does there.

    One team with users ``alice``, ``bob`` and ``carol`` and channels ``town-square``,
    ``incidents``, ``critical-incidents`` and ``major-incidents``, whose ids are the ones
    :func:`simulated_request` sends, so a simulated command names people and channels the
    playground knows. It listens on ``127.0.0.1:<port>`` (0: a free port); ``out`` receives
    each printed line (the console by default); ``name`` prefixes each line. Nothing is kept
    across restarts (``data_dir`` is accepted for the playgrounds' common signature).

    Each line says where and what, as ``[mm ~channel] (posted) text``, with the post's
    buttons on an indented line below it.
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
        super().__init__("Mattermost", host, out, name)
        module = _local_server()
        self._actions_secret = secrets.token_hex(24)
        self._sessions: dict[str, _Session] = {}  # by response URL hook id
        self._triggers: dict[str, _Session] = {}  # a simulated command's trigger id
        playground = self

        class _Printing(module.FakeMattermost):  # type: ignore[misc, name-defined]
            def _handle(
                self, method: str, target: str, headers: Mapping[str, str], raw: bytes
            ) -> tuple[int, Any, dict[str, str]]:
                path = urlsplit(target).path
                own = playground.own_answer(method, path, raw)
                if own is not None:
                    return own
                with self._lock:
                    before = playground._before(self, method, path)
                    answer = super()._handle(method, target, headers, raw)
                    call = self._calls[-1]
                    lines = playground._describe(self, call, before)
                    forward = playground._forward_of(call)
                if lines:
                    playground._say(lines)
                if forward is not None:
                    devtools.forward_answer(*forward)
                return answer  # type: ignore[no-any-return]

            def _check_trigger(self, trigger_id: str) -> str:
                # A simulated command's trigger id, as the session registered it: the
                # server issues those, here `chatops simulate` does.
                session = playground._triggers.get(trigger_id)
                if session is not None and trigger_id not in self._used_triggers:
                    return session.user_id
                return str(super()._check_trigger(trigger_id))

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

    # -- simulate's side -----------------------------------------------------------------
    def names(self) -> dict[str, str]:
        """Every user and channel id the playground knows, with its name."""
        fake = self._server
        with fake._lock:
            users = {u.id: u.username for u in fake._users.values()}
            return {**users, **{c.id: c.name for c in fake._channels.values()}}

    def open_session(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Register a `chatops simulate` run: the person (added, or named as typed, when
        new), the channel they type in (made when new; they become a member), their
        command's trigger id and where their answers go. Answers the channel and a
        response URL of this server, which prints each answer and passes it on."""
        fake = self._server
        user_id, user_name = simulated_person(
            Actor(user_id=str(request.get("user_id") or DEFAULT_USER_ID), user_name=request.get("user_name"))
        )
        channel_id = str(request.get("channel_id") or "")
        channel_name = str(request.get("channel_name") or "").lstrip("~#") or "town-square"
        forward = str(request.get("forward_url") or "") or None
        with fake._lock:
            known = fake._users.get(user_id)
            taken = any(u.username == user_name and u.id != user_id for u in fake._users.values())
            if known is None:
                fake.add_user(user_name or user_id, user_id=user_id)
            elif user_name and known.username != user_name and not taken:
                fake._users[user_id] = dataclasses.replace(known, username=user_name)
            channel = fake._channels.get(channel_id) if channel_id else fake._find_channel(channel_name)
            if channel is None:
                made = fake.add_channel(
                    channel_name if not channel_id else (channel_name or channel_id),
                    members=[fake.bot_user_id],
                    channel_id=channel_id or simulated_id(f"channel:{channel_name}"),
                )
                channel = fake._channels[made]
            channel.members.add(user_id)
            reply_url = fake.slash_command("", user=user_id, channel=channel.id).response_url
            session = _Session(user_id, channel.id, forward)
            self._sessions[reply_url.rsplit("/", 1)[1]] = session
            trigger = str(request.get("trigger") or "")
            if trigger:
                self._triggers[trigger] = session
            for kept in (self._sessions, self._triggers):
                devtools.keep_latest(kept, devtools.MAX_SESSIONS)
            return {"channel_id": channel.id, "channel_name": channel.name, "reply_url": reply_url}

    def _forward_of(self, call: Any) -> tuple[str, Any] | None:
        """Where to pass on what a call showed the person (an answer, a dialog), if anyone
        `chatops simulate` waits for it."""
        if not call.ok:
            return None
        if call.op == "command_response":
            session = self._sessions.get(call.path.rsplit("/", 1)[-1])
            body = call.json if isinstance(call.json, dict) else {"text": call.text}
        elif call.op == "open_dialog":
            params = call.params if isinstance(call.params, dict) else {}
            session = self._triggers.get(str(params.get("trigger_id") or ""))
            body = {"dialog": params.get("dialog") or {}}
        else:
            return None
        if session is None or not session.forward_url:
            return None
        return session.forward_url, body

    # -- printing ------------------------------------------------------------------------
    def _before(self, fake: Any, method: str, path: str) -> Any:
        """What a call may change, as it stands before the call: the members of a channel
        someone is added to."""
        match = _MEMBERS_PATH.match(path)
        if method == "POST" and match:
            channel = fake._channels.get(match.group(1))
            return set(channel.members) if channel is not None else set()
        return None

    def _describe(self, fake: Any, call: Any, before: Any) -> list[str]:
        """The lines of a call that changed something; none for reads and refusals."""
        if not call.ok:
            if call.status == 429:
                wait = call.response_headers.get("X-Ratelimit-Reset", "?")
                return [f"[{self._name}] (rate limited, {call.op}) try again in {wait}s"]
            return []
        params = call.params if isinstance(call.params, dict) else {}
        answer = call.response if isinstance(call.response, dict) else {}

        def where(ref: Any) -> str:
            found = fake._find_channel(str(ref or "")) if ref else None
            return f"[{self._name} ~{found.name if found else ref}]"

        def user(ref: Any) -> str:
            found = fake._users.get(str(ref or ""))
            return f"@{found.username}" if found else f"@{ref}"

        def path_id(pattern: re.Pattern[str]) -> str:
            match = pattern.match(call.path)
            return match.group(1) if match else ""

        op = call.op
        if op == "create_post":
            verb = "replied in a thread" if params.get("root_id") else "posted"
            return _post_said(f"{where(params.get('channel_id'))} ({verb})", params)
        if op in ("patch_post", "update_post"):
            post = fake._posts.get(path_id(_POST_PATH)) or answer
            return _post_said(f"{where(post.get('channel_id'))} (updated)", post)
        if op == "create_post_ephemeral":
            post = _object(params.get("post"))
            head = f"{where(post.get('channel_id'))} (only {user(params.get('user_id'))} sees)"
            return _post_said(head, post)
        if op == "command_response":
            hook = fake._hooks.get(call.path.rsplit("/", 1)[-1])
            body = call.json if isinstance(call.json, dict) else {"text": call.text}
            channel = hook.channel_id if hook else ""
            if body.get("response_type") == "in_channel":
                whom = "answer in the channel"
            else:
                whom = f"answer only {user(hook.user_id if hook else '')} sees"
            return _post_said(f"{where(channel)} ({whom})", body)
        if op == "create_channel":
            lines = [f"[{self._name} ~{answer.get('name')}] (channel created) {answer.get('display_name')}"]
            header, purpose = str(answer.get("header") or ""), str(answer.get("purpose") or "")
            if header:
                lines.append(f"    header: {plain_text(header)}")
            if purpose and purpose != header:
                lines.append(f"    purpose: {plain_text(purpose)}")
            return lines
        if op == "patch_channel":
            changed = [
                f"{key.replace('_', ' ')} {plain_text(str(params[key]))}"
                for key in ("display_name", "header", "purpose")
                if params.get(key) is not None
            ]
            return [f"{where(path_id(_CHANNEL_PATH))} ({'; '.join(changed) or 'changed'})"]
        if op == "add_channel_member":
            added = str(params.get("user_id") or "")
            if isinstance(before, set) and added in before:
                return []
            return [f"{where(answer.get('channel_id'))} (added) {user(added)}"]
        if op == "remove_channel_member":
            return [f"{where(path_id(_CHANNEL_PATH))} (removed) {user(call.path.rsplit('/', 1)[-1])}"]
        if op == "delete_channel":
            return [f"{where(path_id(_CHANNEL_PATH))} (archived)"]
        if op == "pin_post":
            post = fake._posts.get(path_id(_POST_PATH)) or {}
            shown = post_lines(post)
            return [f"{where(post.get('channel_id'))} (pinned) {_first_line(post, shown)}".rstrip()]
        if op == "open_dialog":
            dialog = _object(params.get("dialog"))
            session = self._triggers.get(str(params.get("trigger_id") or ""))
            whom = f" for {user(session.user_id)}" if session else ""
            shown = dialog_lines(dialog)
            return [f"[{self._name}] (form opened{whom}) {shown[0]}", *(f"    {ln}" for ln in shown[1:])]
        return []


if local_server_available():
    # Where it is not (an installed package alone), the platform has no playground and
    # `chatops run` starts the others'.
    Playground = MattermostPlayground


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_line(post: Mapping[str, Any], lines: list[str]) -> str:
    """The line that stands for a post: its message's first line, else its card's summary
    (the attachment's fallback), else its first line of text."""
    message = markdown_lines(str(post.get("message") or post.get("text") or ""))
    if message:
        return message[0]
    for attachment in _attachments(post):
        if attachment.get("fallback"):
            return plain_text(str(attachment["fallback"]).splitlines()[0])
    return lines[0] if lines else "(empty)"


def _post_said(head: str, post: Mapping[str, Any]) -> list[str]:
    """A post as printed: ``head`` and its first line, then a few more of its lines (what
    the first line does not already say) and its buttons, indented."""
    shown = post_lines(post)
    first = _first_line(post, shown)
    buttons = [_buttons(a) for a in _attachments(post)]
    rest = [ln for ln in shown if ln != first and ln not in buttons and ln not in first]
    rest = [ln for ln in rest if not _is_card_fact(ln, post)]
    if len(rest) > MAX_PRINTED_LINES:
        rest = [*rest[: MAX_PRINTED_LINES - 1], f"… {len(rest) - MAX_PRINTED_LINES + 1} more lines"]
    return [f"{head} {first}".rstrip(), *(f"    {ln}" for ln in [*rest, *filter(None, buttons)])]


def _is_card_fact(line: str, post: Mapping[str, Any]) -> bool:
    """Whether ``line`` is a card's heading, title, fields or footer, which its summary
    already says; printed posts leave those out, as Slack's playground does."""
    for attachment in _attachments(post):
        if not attachment.get("fallback"):
            continue
        parts = [attachment.get(key) for key in ("pretext", "title", "footer")]
        said = {plain_text(str(p)) for p in parts if p}
        if line in said or (attachment.get("fields") and line.startswith(_fields_start(attachment))):
            return True
    return False


def _fields_start(attachment: Mapping[str, Any]) -> str:
    fields = [f for f in attachment.get("fields") or [] if isinstance(f, dict) and f.get("title")]
    return f"{plain_text(str(fields[0]['title']))}: " if fields else "\x00"
