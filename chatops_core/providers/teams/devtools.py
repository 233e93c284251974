"""Trying the Teams provider with no Microsoft tenant.

- :func:`simulated_request`: what Teams sends for "@IncidentBot <text>" typed in a channel.
  With webhook mode configured, an outgoing-webhook activity signed ``Authorization: HMAC``
  with the configured security token; otherwise a bot activity with ``Authorization: Bearer``
  and a JWT signed by the playground's simulator key, which the playground publishes in its
  key set (the key is fetched from the playground the settings' ``openid_metadata_url``
  names: a local JWT verifies nowhere else).
- :func:`response_answer`: the answer an outgoing webhook's HTTP response carries (Teams shows
  only that); ``pending`` when it is the "working on it" notice the ingress sends when the
  worker is late, whose result is posted to the channel.
- :func:`answer_lines`: an answer (a message, its Adaptive Card or MessageCard) as terminal
  lines.
- :class:`TeamsPlayground` (``Playground`` where it can run): the test suite's local Teams
  (``tests/fakes/teams_server.py``) with a printer on top: each card posted to a channel's
  incoming webhook and each bot post, reply and update is printed as
  ``[teams #incidents] (posted) ...``, and passed on to the `chatops simulate` that waits in
  that channel. Its :meth:`~TeamsPlayground.config_toml` runs the instance in webhook mode with
  the adaptive (Workflows) webhook of channel ``incidents``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chatops_core.errors import ConfigError
from chatops_core.models import Actor
from chatops_core.providers import devtools
from chatops_core.providers.teams.config import BOT_ISSUER, TeamsSettings
from chatops_core.providers.teams.inbound import WORKING_ON_IT, html_text
from chatops_core.providers.teams.verify import hmac_authorization

__all__ = [
    "DEFAULT_USER_ID",
    "INSTANCE",
    "ORDER",
    "SIMULATOR_KEY_PATH",
    "Playground",
    "TeamsPlayground",
    "answer_lines",
    "card_lines",
    "response_answer",
    "simulated_person",
    "simulated_request",
]

# The playground's instance: its webhook URL is /webhooks/teams.
INSTANCE = "teams"
# After Slack's, Mattermost's and Discord's among the playgrounds.
ORDER = 30
JSON_TYPE = "application/json"
BOT_NAME = "IncidentBot"
SERVICE_URL = "https://smba.trafficmanager.net/teams/"
# Where the playground hands out the private key simulated bot activities are signed with.
SIMULATOR_KEY_PATH = "/playground/simulator-key"
SIMULATOR_KID = "chatops-simulator"
TOKEN_LIFETIME_SECONDS = 300
ADAPTIVE_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
DEFAULT_USER_NAME = "simulator"
_NAMESPACE = uuid.UUID("6f1d7a4e-8c1b-4a57-9b8e-3c2f0d9e5a11")


def _aad_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"user:{name}"))


# Who types when `chatops simulate` is given no --user: the Entra object id of "simulator".
DEFAULT_USER_ID = _aad_id(DEFAULT_USER_NAME)


def simulated_person(user: Actor) -> tuple[str, str, str]:
    """``(Teams user id "29:...", Entra object id, display name)`` of the simulated person.

    With no ``--user`` the person is the one ``--user-name`` names (by default
    ``simulator``), with stable ids made from that name."""
    name = (user.user_name or "").strip().lstrip("@")
    if user.user_id == DEFAULT_USER_ID:
        name = name or DEFAULT_USER_NAME
        aad = _aad_id(name)
    else:
        aad = user.user_id
    teams_id = "29:" + hashlib.sha256(aad.encode()).hexdigest()[:40]
    return teams_id, aad, name or aad


def _channel_id(name: str) -> str:
    return f"19:{hashlib.sha256(f'channel:{name}'.encode()).hexdigest()[:32]}@thread.tacv2"


def _activity(
    settings: TeamsSettings,
    text: str,
    *,
    user: Actor,
    channel_id: str | None,
    channel_name: str | None,
    bot_id: str,
) -> dict[str, Any]:
    """A channel message mentioning the bot, as Teams shapes it."""
    name = (channel_name or "incidents").lstrip("#")
    channel = channel_id or _channel_id(name)
    teams_id, aad, user_name = simulated_person(user)
    now = datetime.now(UTC)
    activity_id = str(int(now.timestamp() * 1000)) + secrets.token_hex(2)
    at = f"<at>{BOT_NAME}</at>"
    return {
        "type": "message",
        "id": activity_id,
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "serviceUrl": _service_url(settings),
        "channelId": "msteams",
        "from": {"id": teams_id, "name": user_name, "aadObjectId": aad},
        "conversation": {
            "isGroup": True,
            "conversationType": "channel",
            "id": f"{channel};messageid={activity_id}",
        },
        "recipient": {"id": bot_id, "name": BOT_NAME},
        "textFormat": "plain",
        "text": f"{at} {text}",
        "entities": [{"type": "mention", "mentioned": {"id": bot_id, "name": BOT_NAME}, "text": at}],
        "channelData": {
            "teamsChannelId": channel,
            "channel": {"id": channel, "name": name},
            "tenant": {"id": str(uuid.uuid5(_NAMESPACE, "tenant"))},
        },
    }


def _service_url(settings: TeamsSettings) -> str:
    """The serviceUrl of simulated bot activities: the playground's, beside its metadata."""
    for channel in settings.channels.values():
        if channel.service_url:
            return channel.service_url
    return SERVICE_URL


def simulated_request(
    settings: TeamsSettings,
    text: str,
    *,
    user: Actor,
    channel_id: str | None,
    channel_name: str | None,
    reply_url: str | None = None,
    trigger: str | None = None,
    command: str = "/im",
) -> tuple[bytes, dict[str, str], str]:
    """``(body, headers, content type)`` of "@IncidentBot ``text``" typed by ``user`` in
    ``channel_name``: an outgoing-webhook request in webhook mode, else a bot activity.

    Teams has no response URL and no slash commands: ``reply_url``, ``trigger`` and
    ``command`` are not sent (the answer comes back in the HTTP response, or in the channel).
    """
    headers = {"Content-Type": "application/json; charset=utf-8"}
    secret = settings.outgoing_webhook_secret
    if secret is not None:
        bot_id = "28:" + str(uuid.uuid5(_NAMESPACE, "outgoing-webhook"))
        activity = _activity(
            settings, text, user=user, channel_id=channel_id, channel_name=channel_name, bot_id=bot_id
        )
        body = json.dumps(activity, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers["Authorization"] = hmac_authorization(secret.get_secret_value(), body)
        return body, headers, JSON_TYPE
    if settings.app_id is None:
        raise ConfigError("the Teams instance runs neither webhook mode nor bot mode")
    activity = _activity(
        settings,
        text,
        user=user,
        channel_id=channel_id,
        channel_name=channel_name,
        bot_id="28:" + settings.app_id,
    )
    body = json.dumps(activity, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers["Authorization"] = "Bearer " + local_jwt(settings, activity["serviceUrl"])
    return body, headers, JSON_TYPE


def local_jwt(settings: TeamsSettings, service_url: str, *, key_pem: bytes | None = None) -> str:
    """A Bot Framework token for ``settings``' bot signed with the playground's simulator key
    (``key_pem``; fetched from the playground when not given)."""
    if settings.app_id is None:
        raise ConfigError("a bot token needs the instance's app_id")
    pem = key_pem if key_pem is not None else _simulator_key(settings)
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "serviceurl": service_url,
        "nbf": now - 5,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "iss": BOT_ISSUER,
        "aud": settings.app_id,
    }
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": SIMULATOR_KID})


def _simulator_key(settings: TeamsSettings) -> bytes:
    parts = urlsplit(settings.openid_metadata_url)
    url = f"{parts.scheme}://{parts.netloc}{SIMULATOR_KEY_PATH}"
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise ConfigError(
            "a simulated bot-mode request is signed by the local playground's key: point "
            "openid_metadata_url at the playground (or configure webhook mode)"
        )
    try:
        with urllib.request.urlopen(url, timeout=devtools.FORWARD_TIMEOUT_SECONDS) as resp:  # noqa: S310 - local
            return bytes(resp.read())
    except OSError as exc:
        raise ConfigError(f"the Teams playground did not hand out its simulator key: {exc}") from None


def response_answer(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The answer an outgoing webhook's HTTP response carries, or None (a bot-mode 200, an
    error). ``pending`` is set on the "working on it" notice, whose result follows."""
    if "json" not in content_type.lower():
        return None
    try:
        answer = json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(answer, dict) or answer.get("type") != "message":
        return None
    if str(answer.get("text") or "").startswith(WORKING_ON_IT):
        answer = {**answer, "pending": True}
    return answer


def answer_lines(answer: Mapping[str, Any], channel_name: str, names: Mapping[str, str]) -> list[str]:
    """What the person sees of an answer: where it shows (outgoing webhook answers and bot
    replies are visible to the whole channel), then its text and cards as plain lines."""
    where = str(answer.get("channel") or channel_name).lstrip("#")
    return [f"bot (in #{where}, everyone sees this):", *message_lines(answer)]


def message_lines(message: Mapping[str, Any]) -> list[str]:
    """A message activity, a webhook envelope or a MessageCard as lines."""
    if message.get("@type") == "MessageCard":
        return card_lines(message)
    lines = _text_lines(str(message.get("text") or ""))
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, Mapping) and isinstance(attachment.get("content"), Mapping):
            lines += card_lines(attachment["content"])
    return lines


def _text_lines(text: str) -> list[str]:
    out = []
    for raw in text.replace("<br>", "\n").replace("<br/>", "\n").splitlines():
        line = html_text(raw) if "<" in raw or "&" in raw else " ".join(raw.split())
        if line:
            out.append(line.replace("**", ""))
    return out


def card_lines(card: Mapping[str, Any]) -> list[str]:
    """An Adaptive Card (its text blocks, fact sets and actions) or a MessageCard (title,
    text, sections' facts and actions) as lines; actions as ``[Title]`` on one line."""
    lines: list[str] = []
    actions: list[str] = []
    if card.get("@type") == "MessageCard":
        for key in ("title", "text"):
            lines += _text_lines(str(card.get(key) or ""))
        for section in card.get("sections") or []:
            if not isinstance(section, Mapping):
                continue
            for key in ("activityTitle", "activitySubtitle", "text"):
                lines += _text_lines(str(section.get(key) or ""))
            facts = [
                f"{f.get('name')}: {f.get('value')}"
                for f in section.get("facts") or []
                if isinstance(f, Mapping)
            ]
            if facts:
                lines.append(" · ".join(facts))
        actions = [str(a.get("name")) for a in card.get("potentialAction") or [] if isinstance(a, Mapping)]
    else:
        _walk(card.get("body") or [], lines, actions)
        actions += [str(a.get("title")) for a in card.get("actions") or [] if isinstance(a, Mapping)]
    shown = " ".join(f"[{a}]" for a in actions if a and a != "None")
    return [*lines, shown] if shown else lines


def _walk(items: Any, lines: list[str], actions: list[str]) -> None:
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "TextBlock":
            lines += _text_lines(str(item.get("text") or ""))
        elif kind == "FactSet":
            facts = [
                f"{f.get('title')}: {f.get('value')}"
                for f in item.get("facts") or []
                if isinstance(f, Mapping)
            ]
            if facts:
                lines.append(" · ".join(facts))
        elif kind == "ActionSet":
            actions += [str(a.get("title")) for a in item.get("actions") or [] if isinstance(a, Mapping)]
        for key in ("items", "columns"):
            _walk(item.get(key), lines, actions)


# -- the playground ------------------------------------------------------------------------

_LOCAL_SERVER_MODULE = "tests.fakes.teams_server"
CHANNELS = ("general", "incidents", "critical-incidents")


def local_server_available() -> bool:
    """Whether the local Teams the playground is built on is here (a source checkout)."""
    return devtools.local_server_available(_LOCAL_SERVER_MODULE)


def _local_server() -> ModuleType:
    return devtools.local_server_module(_LOCAL_SERVER_MODULE, "Teams")


@dataclass
class _Session:
    """One `chatops simulate` run: the channel typed in and where its answers go."""

    alias: str
    forward_url: str | None


class TeamsPlayground(devtools.LocalPlayground):
    """A local Teams that prints what the bot does there.

    Channels ``general``, ``incidents`` and ``critical-incidents``, each with incoming
    webhooks and a bot conversation; the playground publishes, beside its own signing key, the
    simulator key :func:`simulated_request` signs bot activities with. ``out`` receives each
    printed line (the console by default); nothing is kept across restarts.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        out: Callable[[str], None] | None = None,
        *,
        name: str = "teams",
    ) -> None:
        super().__init__("Teams", host, out, name)
        module = _local_server()
        self._sessions: dict[str, _Session] = {}  # by channel alias, the latest
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._simulator_pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        playground = self

        class _Printing(module.FakeTeams):  # type: ignore[misc, name-defined]
            def _handle(
                self, method: str, target: str, headers: Mapping[str, str], raw: bytes
            ) -> tuple[int, Any, dict[str, str]]:
                own = playground.own_answer(method, urlsplit(target).path, raw)
                if own is not None:
                    return own
                with self._lock:
                    answer = super()._handle(method, target, headers, raw)
                    call = self._calls[-1]
                    shown = playground._shown(self, call)
                if shown is not None:
                    alias, message, verb = shown
                    lines = [f"[{playground._name} #{alias}] ({verb})", *message_lines(message)]
                    playground._say(
                        [
                            f"{lines[0]} {lines[1]}" if len(lines) > 1 else lines[0],
                            *(f"    {ln}" for ln in lines[2:]),
                        ]
                    )
                    playground._forward(alias, {**message, "channel": alias})
                return answer  # type: ignore[no-any-return]

        self._server = _Printing(channels=CHANNELS, seed=secrets.randbits(32), port=port)
        simulator = module.RsaKey(SIMULATOR_KID, private_key=private)
        # The fake signs with its newest key (the last): the simulator's goes first.
        self._server.keys.insert(0, simulator)

    @property
    def api_url(self) -> str:
        """Where the Bot Connector is (the ``serviceUrl`` of the playground's activities)."""
        return str(self._server.service_url)

    def config_toml(self, instance: str) -> str:
        """The ``[providers.<instance>]`` block: webhook mode, notifications through the
        Workflows webhook of ``incidents``."""
        quote = json.dumps
        fake = self._server
        return "\n".join(
            [
                f"[providers.{instance}]",
                'type = "teams"',
                f"outgoing_webhook_secret = {quote(fake.outgoing_secret)}",
                'default_channel = "incidents"',
                f"[providers.{instance}.channels.incidents]",
                f"webhook_url = {quote(fake.workflow_url('incidents'))}",
                'format = "adaptive"',
                "",
            ]
        )

    # -- simulate's side -----------------------------------------------------------------
    def names(self) -> dict[str, str]:
        """Channel and user ids the playground knows, with their names."""
        fake = self._server
        with fake._lock:
            channels = {cid: c["alias"] for cid, c in fake._conversations.items()}
            users = {u["aadObjectId"]: u["login"] for u in fake._users.values()}
        return {**channels, **users}

    def open_session(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Register a `chatops simulate` run in a channel (made when new): what is posted
        there next is passed on to its ``forward_url``."""
        fake = self._server
        alias = str(request.get("channel_name") or "incidents").lstrip("#") or "incidents"
        if not devtools_alias_ok(alias):
            alias = "incidents"
        with fake._lock:
            if alias not in fake._conversation_by_alias:
                fake.add_channel(alias)
            channel_id = fake.conversation_id(alias)
        with self._lock:
            self._sessions.pop(alias, None)
            self._sessions[alias] = _Session(alias, str(request.get("forward_url") or "") or None)
            devtools.keep_latest(self._sessions, devtools.MAX_SESSIONS)
        return {"channel_id": channel_id, "channel_name": alias}

    def own_answer(self, method: str, path: str, raw: bytes) -> tuple[int, Any, dict[str, str]] | None:
        """The simulate side's answers, and the simulator key :func:`simulated_request` signs with."""
        if path == SIMULATOR_KEY_PATH and method == "GET":
            return 200, self._simulator_pem, {}
        return super().own_answer(method, path, raw)

    def _shown(self, fake: Any, call: Any) -> tuple[str, Mapping[str, Any], str] | None:
        """What a call put in a channel: ``(alias, message, verb)``; None for anything else."""
        if not call.ok or not isinstance(call.json, Mapping):
            return None
        if call.op in ("workflow_post", "connector_post"):
            if call.op == "connector_post" and "HTTP error 429" in str(call.response or ""):
                return None
            return str(call.target or "?"), call.json, "posted"
        if call.op in ("send_activity", "reply_activity", "update_activity"):
            cid = str(call.target or "").split(";messageid=")[0]
            found = fake._conversations.get(cid)
            alias = found["alias"] if found else cid
            verb = {"send_activity": "posted", "reply_activity": "replied", "update_activity": "updated"}[
                call.op
            ]
            return alias, call.json, verb
        return None

    def _forward(self, alias: str, message: Mapping[str, Any]) -> None:
        with self._lock:
            session = self._sessions.get(alias)
        if session is not None and session.forward_url:
            devtools.forward_answer(session.forward_url, message)


def devtools_alias_ok(alias: str) -> bool:
    return bool(alias) and all(c.isalnum() or c in "-_." for c in alias) and len(alias) <= 64


if local_server_available():
    # Where it is not (an installed package alone), the platform has no playground.
    Playground = TeamsPlayground
