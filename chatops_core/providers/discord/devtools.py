"""Trying the Discord provider with no Discord.

- :func:`simulated_request`: the interaction Discord would send for ``/im <text>`` (the
  words written as the subcommand and its typed options), signed with Ed25519 over
  ``X-Signature-Timestamp`` + body exactly as Discord signs, for ``chatops simulate``.
  Only the playground's key pair can sign: its private key is derived from the
  playground's bot token, so ``simulate`` can sign for a playground it did not start; a
  real application's private key is Discord's, and simulate says so.
- :func:`interaction` builds the interaction of a command's text (tests use it too).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from nacl.signing import SigningKey

from chatops_core.commands.grammar import INCIDENT_ID_RE, parse_severity, severity_word
from chatops_core.errors import ConfigError
from chatops_core.models import Actor
from chatops_core.providers import devtools
from chatops_core.providers.discord import commands, inbound
from chatops_core.providers.discord.config import DiscordSettings

__all__ = [
    "DEFAULT_USER_ID",
    "INSTANCE",
    "DiscordPlayground",
    "ORDER",
    "answer_lines",
    "command_options",
    "interaction",
    "new_trigger",
    "playground_signing_key",
    "signed_headers",
    "simulated_request",
]

INSTANCE = "discord"
ORDER = 20
JSON_TYPE = "application/json"
# Who types when `chatops simulate` is given no --user: alice, whom the playground knows.
DEFAULT_USER_ID = str(100_000_000_000_000_000 + int(hashlib.sha256(b"user:alice").hexdigest()[:12], 16))
_SEED_PREFIX = b"chatops-discord-playground:"


def snowflake() -> str:
    """A new id shaped as Discord's (a time-ordered 64-bit number)."""
    return str(((int(time.time() * 1000) - 1420070400000) << 22) | secrets.randbits(22))


def new_trigger() -> str:
    """A fresh interaction token."""
    return "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)


def playground_signing_key(bot_token: str) -> SigningKey:
    """The playground's signing key, derived from its bot token."""
    return SigningKey(hashlib.sha256(_SEED_PREFIX + bot_token.encode("utf-8")).digest())


def signed_headers(key: SigningKey, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """The headers Discord sends: the signature of timestamp + body, and the timestamp."""
    stamp = timestamp if timestamp is not None else str(int(time.time()))
    signature = key.sign(stamp.encode("utf-8") + body).signature.hex()
    return {
        "X-Signature-Ed25519": signature,
        "X-Signature-Timestamp": stamp,
        "Content-Type": JSON_TYPE,
        "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)",
    }


def _options(word: str, words: list[str]) -> dict[str, Any]:
    """The typed options of subcommand ``word`` from the words typed after it."""
    values: dict[str, Any] = {}
    rest = list(words)

    def take_incident() -> None:
        if rest and INCIDENT_ID_RE.match(rest[0]):
            values["incident"] = rest.pop(0)

    if word == "declare":
        if rest and parse_severity(rest[0]) is not None:
            severity = parse_severity(rest.pop(0))
            assert severity is not None
            values["severity"] = severity_word(severity)
        if rest:
            values["title"] = " ".join(rest)
    elif word == "list":
        for token in rest:
            if token.lower() in ("open", "all"):
                values["filter"] = token.lower()
            elif parse_severity(token) is not None:
                values["severity"] = severity_word(parse_severity(token))  # type: ignore[arg-type]
    elif word == "escalate":
        take_incident()
        if rest and parse_severity(rest[0]) is not None:
            values["severity"] = severity_word(parse_severity(rest[0]))  # type: ignore[arg-type]
    elif word == "assign":
        for token in rest:
            mention = token.strip("<>@!")
            if token.startswith("<@") and mention.isdigit():
                values["user"] = mention
            elif INCIDENT_ID_RE.match(token):
                values["incident"] = token
    elif word in ("note", "mitigate", "resolve"):
        take_incident()
        if rest:
            values["note"] = " ".join(rest)
    elif word == "help":
        if rest:
            values["command"] = rest[0].lower()
    else:
        take_incident()
    return values


def command_options(text: str) -> tuple[str, dict[str, Any]]:
    """The subcommand and typed options (by name) that ``/im <text>`` is written as."""
    words = text.split()
    word = words[0].lower() if words else "help"
    return word, (_options(word, words[1:]) if word in commands.SUBCOMMANDS else {})


def interaction(
    text: str,
    *,
    application_id: str,
    guild_id: str,
    channel_id: str,
    channel_name: str,
    user: Actor,
    token: str | None = None,
    interaction_id: str | None = None,
    users: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The APPLICATION_COMMAND interaction of ``/im <text>`` as Discord sends it.

    ``users`` names the user ids a USER option may resolve (id → user name).
    """
    word, values = command_options(text)
    option_types = {o["name"]: o["type"] for o in commands.SUBCOMMANDS.get(word, ("", []))[1]}
    options = [
        {"name": k, "type": option_types.get(k, commands.STRING), "value": v} for k, v in values.items()
    ]
    data: dict[str, Any] = {
        "id": snowflake(),
        "name": commands.COMMAND_NAME,
        "type": commands.CHAT_INPUT,
        "options": [{"type": commands.SUB_COMMAND, "name": word, "options": options}],
    }
    if "user" in values:
        user_id = values["user"]
        name = (users or {}).get(user_id, f"user{user_id[-4:]}")
        data["resolved"] = {"users": {user_id: {"id": user_id, "username": name, "global_name": name}}}
    user_object = {
        "id": user.user_id,
        "username": user.user_name or "simulator",
        "global_name": user.user_name,
    }
    return {
        "id": interaction_id or snowflake(),
        "application_id": application_id,
        "type": inbound.APPLICATION_COMMAND,
        "token": token or new_trigger(),
        "version": 1,
        "guild_id": guild_id,
        "channel_id": channel_id,
        "channel": {"id": channel_id, "name": channel_name, "type": 0, "guild_id": guild_id},
        "member": {"user": user_object, "roles": [], "permissions": "0"},
        "data": data,
        "locale": "en-US",
    }


def simulated_request(
    settings: DiscordSettings,
    text: str,
    *,
    user: Actor,
    channel_id: str | None,
    channel_name: str | None,
    reply_url: str,
    trigger: str | None = None,
    command: str = "/im",
) -> tuple[bytes, dict[str, str], str]:
    """``(body, headers, content type)`` of the interaction Discord sends for ``/im text``,
    signed with the playground's key. ``trigger`` is the interaction's token; the answer
    goes to the interaction webhook on ``api_url`` (``reply_url`` is the playground's)."""
    key = playground_signing_key(settings.bot_token.get_secret_value())
    if key.verify_key.encode().hex() != settings.public_key:
        raise ConfigError(
            "chatops simulate signs Discord interactions only for the Discord playground; a real "
            "application's interactions are signed by Discord with a key only Discord holds"
        )
    name = (channel_name or "incidents").lstrip("#")
    channel = channel_id or simulated_snowflake(f"channel:{name}")
    payload = interaction(
        text,
        application_id=settings.application_id,
        guild_id=settings.guild_id,
        channel_id=channel,
        channel_name=name,
        user=user,
        token=trigger,
    )
    body = json.dumps(payload).encode("utf-8")
    return body, signed_headers(key, body), JSON_TYPE


def answer_lines(answer: dict[str, Any], channel_name: str, names: Mapping[str, str]) -> list[str]:
    """An answer (a message body) as the person sees it."""
    flags = answer.get("flags")
    private = isinstance(flags, int) and bool(flags & 64)
    head = "only you see:" if private else f"in #{channel_name.lstrip('#')}:"
    lines = [f"bot ({head})", *str(answer.get("content") or "").splitlines()]
    for embed in answer.get("embeds") or []:
        if isinstance(embed, dict):
            lines.append(f"[{embed.get('title', '')}]")
    return lines


# -- the playground --------------------------------------------------------------------------

# The local Discord of the test suite, in a source checkout.
_LOCAL_SERVER_MODULE = "tests.fakes.discord_server"
USERS = ("alice", "bob", "carol")
CHANNELS = ("general", "incidents", "critical-incidents", "major-incidents")
_MAX_LINE = 160


def simulated_snowflake(name: str) -> str:
    """A stable id for a playground user or channel ``name``."""
    return str(100_000_000_000_000_000 + int(hashlib.sha256(name.encode()).hexdigest()[:12], 16))


def local_server_available() -> bool:
    """Whether the local Discord the playground is built on is here (a source checkout)."""
    return devtools.local_server_available(_LOCAL_SERVER_MODULE)


def _local_server() -> ModuleType:
    return devtools.local_server_module(_LOCAL_SERVER_MODULE, "Discord")


class DiscordPlayground(devtools.LocalPlayground):
    """A local Discord that prints what the bot does there, by name.

    One guild with users ``alice``, ``bob`` and ``carol`` and text channels ``general``,
    ``incidents``, ``critical-incidents`` and ``major-incidents``. Its key pair is derived from
    its bot token (see :func:`playground_signing_key`), so ``chatops simulate`` signs as
    Discord does. ``POST /playground/session`` makes the simulated interaction's token known
    (deferred, as the ingress answers a command) and passes every answer on that token to
    ``forward_url``; ``GET /playground/names`` maps ids to names.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        out: Callable[[str], None] | None = None,
        *,
        name: str = INSTANCE,
    ) -> None:
        super().__init__("Discord", host, out, name)
        module = _local_server()
        self._module = module
        self._forward: dict[str, str] = {}
        playground = self
        token = secrets.token_urlsafe(40)

        class _Printing(module.FakeDiscord):  # type: ignore[misc, name-defined]
            def _handle(
                self, method: str, target: str, headers: Mapping[str, str], raw: bytes
            ) -> tuple[int, Any, dict[str, str]]:
                own = playground.own_answer(method, target.split("?", 1)[0], raw)
                if own is not None:
                    return own
                with self._lock:
                    answer = super()._handle(method, target, headers, raw)
                    call = self._calls[-1]
                    line = playground._describe(self, call)
                if line:
                    playground._say([line])
                playground._pass_on(call)
                return answer  # type: ignore[no-any-return]

        self._server = _Printing(token, users=(), channels=(), port=port, enforce_initial_deadline=False)
        self._server.keys = module.Ed25519Keys(bytes(playground_signing_key(token)))
        for user in USERS:
            self._server.add_user(user, user_id=simulated_snowflake(f"user:{user}"))
        for channel in CHANNELS:
            self._server.add_channel(channel, channel_id=simulated_snowflake(f"channel:{channel}"))

    def config_toml(self, instance: str) -> str:
        quote = json.dumps
        return "\n".join(
            [
                f"[providers.{instance}]",
                'type = "discord"',
                f"application_id = {quote(self._server.application_id)}",
                f"public_key = {quote(self._server.public_key_hex)}",
                f"bot_token = {quote(self._server.token)}",
                f"api_url = {quote(self.api_url)}",
                f"guild_id = {quote(self._server.guild_id)}",
                f"archive_category_id = {quote(self._server.category_id)}",
                'default_channel = "incidents"',
                "create_incident_channels = true",
                "archive_on_close = true",
                f"[providers.{instance}.notification_channels]",
                '"SEV-1" = "critical-incidents"',
                '"SEV-2" = "major-incidents"',
                "",
            ]
        )

    # -- simulate's side -------------------------------------------------------------------
    def names(self) -> dict[str, str]:
        """Every user and channel id the playground knows, with its name."""
        fake = self._server
        with fake._lock:
            names = {u["id"]: u["username"] for u in fake._users.values()}
            names.update({c["id"]: c["name"] for c in fake._channels.values()})
        return names

    def open_session(self, asked: Mapping[str, Any]) -> dict[str, Any]:
        """Make the simulated interaction's token known, deferred, and where its answers go."""
        fake, module = self._server, self._module
        with fake._lock:
            name = str(asked.get("channel_name") or "incidents").lstrip("#")
            channel = fake._find_channel(str(asked.get("channel_id") or "")) or fake._find_channel(name)
            if channel is None:
                raise devtools.SessionRefused(404, f"no channel {name!r} in the playground")
            user_id = str(asked.get("user_id") or DEFAULT_USER_ID)
            if user_id not in fake._users:
                fake.add_user(str(asked.get("user_name") or "simulator"), user_id=user_id)
            trigger = str(asked.get("trigger") or new_trigger())
            record = module._Interaction(
                fake._snowflake(), trigger, module.APPLICATION_COMMAND, fake.clock(), channel["id"], user_id
            )
            fake._interactions[trigger] = record
            # As Discord does with the ingress's answer to a command: a deferred message.
            fake._respond(record, {"type": module.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE})
        forward = asked.get("forward_url")
        if isinstance(forward, str) and forward:
            with self._lock:
                self._forward[trigger] = forward
        return {"channel_id": channel["id"], "channel_name": channel["name"], "reply_url": forward or ""}

    def _pass_on(self, call: Any) -> None:
        if (
            call.op not in ("edit_original", "create_followup")
            or not call.ok
            or not isinstance(call.json, dict)
        ):
            return
        token = call.path.split("/")[5] if len(call.path.split("/")) > 5 else ""
        with self._lock:
            forward = self._forward.get(token)
        if forward:
            devtools.forward_answer(forward, call.json)

    # -- printing --------------------------------------------------------------------------
    def _describe(self, fake: Any, call: Any) -> str | None:
        if not call.ok:
            if call.status == 429:
                wait = (
                    (call.response or {}).get("retry_after", "?") if isinstance(call.response, dict) else "?"
                )
                return f"[{self._name}] rate limited ({call.op}): try again in {wait}s"
            return None
        body = call.json if isinstance(call.json, dict) else {}
        answer = call.response if isinstance(call.response, dict) else {}

        def channel(ref: Any) -> str:
            found = fake._find_channel(str(ref or ""))
            return f"#{found['name']}" if found else str(ref)

        def user(ref: Any) -> str:
            found = fake._users.get(str(ref))
            return f"@{found['username']}" if found else str(ref)

        parts = call.path.split("/")
        op = call.op
        if op == "create_message":
            return f"[{self._name} {channel(parts[4])}] (posted) {_summary(body)}"
        if op == "edit_message":
            return f"[{self._name} {channel(parts[4])}] (card edited) {_summary(body)}"
        if op == "edit_original":
            private = bool(int(answer.get("flags") or 0) & 64)
            who = "answer only the caller sees" if private else "answer"
            return f"[{self._name} {channel(answer.get('channel_id'))}] ({who}) {_summary(body)}"
        if op == "create_followup":
            private = bool(int(body.get("flags") or 0) & 64)
            who = "answer only the caller sees" if private else "follow-up"
            return f"[{self._name} {channel(answer.get('channel_id'))}] ({who}) {_summary(body)}"
        if op == "create_guild_channel":
            return (
                f"[{self._name} #{answer.get('name')}] (channel created) {answer.get('topic') or ''}".rstrip()
            )
        if op == "edit_permissions":
            return f"[{self._name} {channel(parts[4])}] (let in) {user(parts[6])}"
        if op == "delete_permission":
            return f"[{self._name} {channel(parts[4])}] (taken out) {user(parts[6])}"
        if op == "pin_message":
            return f"[{self._name} {channel(parts[4])}] (pinned) a card"
        if op == "modify_channel":
            moved = " and moved to the archive category" if body.get("parent_id") else ""
            return f"[{self._name} {channel(parts[4])}] (locked{moved})"
        if op == "inline_response" and body.get("type") == 9:
            return f"[{self._name}] (form opened) {(body.get('data') or {}).get('title')}"
        return None


def _summary(body: Mapping[str, Any]) -> str:
    parts: list[str] = []
    text = str(body.get("content") or "").strip()
    if text:
        parts.append(text.splitlines()[0])
    for embed in body.get("embeds") or []:
        if isinstance(embed, dict):
            fields = {f.get("name"): f.get("value") for f in embed.get("fields") or [] if isinstance(f, dict)}
            head = str(embed.get("title") or "")
            if fields.get("Status"):
                head += f" · {fields['Status']} · commander {fields.get('Commander')}"
            parts.append(head)
    rows = body.get("components") or []
    buttons = [b.get("label") for row in rows for b in row.get("components") or [] if b.get("type") == 2]
    if any(c.get("type") in (3, 5) for row in rows for c in row.get("components") or []):
        buttons.append("Severity ▾")
        buttons.append("Commander ▾")
    line = " — ".join(parts) or "(empty)"
    if buttons:
        line += " " + " ".join(f"[{b}]" for b in buttons)
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…"


if local_server_available():
    # Where it is not (an installed package alone), Discord has no playground.
    Playground = DiscordPlayground
