"""Turn a verified Teams activity into an :class:`Inbound`, without any I/O.

Both modes send a Bot Framework Activity
(https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference#activity-object):

- a ``message`` activity is a command: in a channel or group chat it comes with the bot's
  ``<at>Name</at>`` mention, which is taken off the text; in a personal chat (bot mode) no
  mention is needed. Teams writes the text as HTML (``&nbsp;`` after a mention, ``<p>`` or
  ``<div>`` around it): tags are dropped, entities decoded and whitespace folded, so
  ``<at>IncidentBot</at>&nbsp;declare sev2 DB down`` is ``declare sev2 DB down``. Other
  people's mentions become ``@Name`` (spaces as dots) with the person in ``mentioned``. An
  empty command is ``help``.
- a ``message`` activity with a ``value`` is a click on one of the bot's ``Action.Submit``
  buttons (bot mode): its data ``{"chatops": 1, "action", "incident", "version"}`` becomes
  ``<action> <incident>`` run as the clicker, ``replyToId`` naming the card clicked
  (https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-actions).
  A ``value`` that is not ours is acknowledged and dropped; Resolve runs without a note
  (Teams forms are not used).
- every other activity type (``conversationUpdate``, ``invoke``, ``messageReaction``,
  ``installationUpdate``...), a message from the bot itself, and a channel message that does
  not mention the bot are acknowledged with nothing to do.

What the ingress answers differs by mode. An outgoing webhook shows only what its HTTP
response carries, so a webhook-mode command gets an ``answer_key`` (the ingress holds the
response open for the worker's answer) and, as the answer sent when the worker is late, a
message saying where the result will be posted. Outgoing webhooks carry no timestamp or
nonce: the same body again is a replay, de-duplicated on the body's digest. A bot-mode
activity is answered 200 with an empty body, as the Bot Framework expects, and
de-duplicated on its activity id. ``reply_to`` holds what :mod:`chatops_core.providers.teams`
needs to answer; nothing else reads it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from chatops_core.commands.grammar import parse_incident_ref
from chatops_core.models import Actor, InboundCommand, Person
from chatops_core.providers.base import Inbound, InboundKind, WebhookRequest
from chatops_core.providers.teams.config import TeamsSettings

PLATFORM = "teams"
JSON_TYPE = "application/json"
# reply_to keys and values.
REPLY_MODE = "mode"
REPLY_CONVERSATION = "conversation_id"
REPLY_SERVICE_URL = "service_url"
REPLY_ACTIVITY = "activity_id"
# The data of the bot's Action.Submit buttons: {"chatops": 1, "action", "incident", "version"}.
SUBMIT_MARK = "chatops"
SUBMIT_VERSION = 1
CARD_ACTIONS = frozenset({"ack", "mitigate", "resolve", "escalate"})
# Bot Framework ids of a bot start with "28:" followed by its app id.
BOT_ID_PREFIX = "28:"
EMPTY_COMMAND = "help"
# The command text is what a person types: a generous cap keeps junk out of the queue.
MAX_TEXT_CHARS = 4000
# How the answer sent when the worker is late begins (the result follows in the channel).
WORKING_ON_IT = "Working on it:"

_AT = re.compile(r"<at\b[^>]*>(.*?)</at\s*>", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<br\s*/?>|</(?:p|div)\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def read(body: bytes) -> dict[str, Any]:
    """The activity's JSON object; ValueError (answered 400) when it is not one."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("the Teams activity is not UTF-8") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ValueError("the body is not a Teams activity")
    return data


def html_text(text: str) -> str:
    """``text`` as Teams wrote it (HTML) as plain text: tags dropped, ``<p>``/``<div>`` and
    ``<br>`` ending a line, entities (``&nbsp;``, ``&amp;``) decoded, whitespace folded."""
    text = _BREAK.sub(" ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    return " ".join(text.split())


def _mention_label(name: str) -> str:
    label = _NOT_NAME.sub(".", name.strip()).strip(".")
    return f"@{label}" if label else ""


def command_text(
    activity: Mapping[str, Any], bot_ids: frozenset[str]
) -> tuple[str, bool, list[Mapping[str, Any]]]:
    """The command in a message, whether it mentioned the bot, and the other people it mentions.

    The bot's mention is the ``<at>`` element a ``mention`` entity names for one of
    ``bot_ids``; without such an entity, a leading ``<at>`` element is taken to be it (an
    outgoing webhook is only called when mentioned).
    """
    raw = _str(activity.get("text")) or ""
    bot_labels: set[str] = set()
    others: dict[str, Mapping[str, Any]] = {}
    for entity in activity.get("entities") or []:
        entity = _obj(entity)
        if entity.get("type") != "mention":
            continue
        mentioned = _obj(entity.get("mentioned"))
        label = _AT.fullmatch(_str(entity.get("text")) or "")
        name = html_text(label.group(1)) if label else _str(mentioned.get("name")) or ""
        if _str(mentioned.get("id")) in bot_ids:
            bot_labels.add(name)
        elif name:
            others[name] = mentioned
    mentioned_bot = False
    people: list[Mapping[str, Any]] = []
    pieces: list[str] = []
    position = 0
    for index, match in enumerate(_AT.finditer(raw)):
        name = html_text(match.group(1))
        pieces.append(raw[position : match.start()])
        position = match.end()
        leading = index == 0 and not html_text(raw[: match.start()])
        if not mentioned_bot and (name in bot_labels or (not bot_labels and leading)):
            mentioned_bot = True
            pieces.append(" ")
            continue
        pieces.append(f" {_mention_label(name)} ")
        if name in others and others[name] not in people:
            people.append(others[name])
    pieces.append(raw[position:])
    text = html_text("".join(pieces))[:MAX_TEXT_CHARS].strip()
    return text or EMPTY_COMMAND, mentioned_bot, people


def _actor(activity: Mapping[str, Any]) -> Actor:
    sender = _obj(activity.get("from"))
    user_id = _str(sender.get("aadObjectId")) or _str(sender.get("id"))
    if user_id is None:
        raise ValueError("the Teams activity names no sender")
    return Actor(user_id=user_id, user_name=_str(sender.get("name")))


def _channel(activity: Mapping[str, Any]) -> tuple[str | None, str | None]:
    channel = _obj(_obj(activity.get("channelData")).get("channel"))
    conversation = _str(_obj(activity.get("conversation")).get("id"))
    return _str(channel.get("id")) or conversation, _str(channel.get("name"))


def _conversation_type(activity: Mapping[str, Any]) -> str:
    """``personal``, ``groupChat`` or ``channel`` (older activities leave it out; a channel's
    carry ``channelData.channel``)."""
    conversation = _obj(activity.get("conversation"))
    kind = _str(conversation.get("conversationType"))
    if kind:
        return kind
    if _obj(_obj(activity.get("channelData")).get("channel")):
        return "channel"
    return "groupChat" if conversation.get("isGroup") else "personal"


def _bot_ids(activity: Mapping[str, Any], settings: TeamsSettings) -> frozenset[str]:
    ids = {_str(_obj(activity.get("recipient")).get("id"))}
    if settings.app_id:
        ids.add(BOT_ID_PREFIX + settings.app_id)
    return frozenset(i for i in ids if i)


def _ignored() -> Inbound:
    return Inbound(kind=InboundKind.IGNORE, status=200, body=b"", content_type="text/plain; charset=utf-8")


def received_answer(settings: TeamsSettings) -> bytes:
    """What an outgoing webhook is answered when the worker's answer is late."""
    alias = settings.default_channel
    if alias and alias in settings.channels:
        text = f"{WORKING_ON_IT} the result will be posted to the {alias} channel."
    else:
        text = f"{WORKING_ON_IT} the result will follow."
    return json.dumps({"type": "message", "text": text}).encode("utf-8")


def parse(
    instance: str, settings: TeamsSettings, request: WebhookRequest, mode: Literal["webhook", "bot"]
) -> Inbound:
    """The :class:`Inbound` of a verified activity that came in ``mode``."""
    activity = read(request.body)
    if activity["type"] != "message":
        return _ignored()
    sender = _obj(activity.get("from"))
    bot_ids = _bot_ids(activity, settings)
    if _str(sender.get("id")) in bot_ids:
        return _ignored()
    value = activity.get("value")
    if value is not None:
        if mode != "bot":
            return _ignored()  # an outgoing webhook's cards carry only Action.OpenUrl
        return _click(instance, activity, request, value)
    text, mentioned_bot, people = command_text(activity, bot_ids)
    if _conversation_type(activity) != "personal" and not mentioned_bot:
        return _ignored()  # a channel message that is not addressed to the bot
    mentioned = [
        Person(instance=instance, user_id=_str(p.get("id")), display=_str(p.get("name")) or str(p.get("id")))
        for p in people
        if _str(p.get("id"))
    ]
    if mode == "webhook":
        return _webhook_command(instance, settings, activity, request, text, mentioned)
    activity_id = _required_id(activity)
    return Inbound(
        kind=InboundKind.COMMAND,
        status=200,
        body=b"",
        command=_command(
            instance, activity, request, key=activity_id, text=text, source="command", mentioned=mentioned
        ),
        dedupe_key=f"{PLATFORM}:{instance}:activity:{activity_id}",
    )


def _required_id(activity: Mapping[str, Any]) -> str:
    activity_id = _str(activity.get("id"))
    if activity_id is None:
        raise ValueError("the Teams activity has no id")
    return activity_id


def _received(request: WebhookRequest) -> datetime:
    return datetime.fromtimestamp(request.received_at, tz=UTC)


def _bot_reply_to(activity: Mapping[str, Any], activity_id: str) -> dict[str, str]:
    service_url = _str(activity.get("serviceUrl"))
    conversation = _str(_obj(activity.get("conversation")).get("id"))
    if service_url is None or conversation is None:
        raise ValueError("the Teams activity has no serviceUrl or conversation")
    return {
        REPLY_MODE: "bot",
        REPLY_SERVICE_URL: service_url,
        REPLY_CONVERSATION: conversation,
        REPLY_ACTIVITY: activity_id,
    }


def _command(
    instance: str,
    activity: Mapping[str, Any],
    request: WebhookRequest,
    *,
    key: str,
    text: str,
    source: Literal["command", "action"],
    reply_to: dict[str, str] | None = None,
    **extra: Any,
) -> InboundCommand:
    channel_id, channel_name = _channel(activity)
    return InboundCommand(
        key=f"{PLATFORM}:{instance}:{key}",
        instance=instance,
        platform=PLATFORM,
        text=text,
        user=_actor(activity),
        channel_id=channel_id,
        channel_name=channel_name,
        received_at=_received(request),
        source=source,
        reply_to=reply_to if reply_to is not None else _bot_reply_to(activity, key),
        **extra,
    )


def _webhook_command(
    instance: str,
    settings: TeamsSettings,
    activity: Mapping[str, Any],
    request: WebhookRequest,
    text: str,
    mentioned: list[Person],
) -> Inbound:
    digest = hashlib.sha256(request.body).hexdigest()
    key = _str(activity.get("id")) or digest
    conversation = _str(_obj(activity.get("conversation")).get("id"))
    if conversation is None:
        raise ValueError("the Teams activity has no conversation")
    command = _command(
        instance,
        activity,
        request,
        key=key,
        text=text,
        source="command",
        reply_to={REPLY_MODE: "webhook", REPLY_CONVERSATION: conversation},
        mentioned=mentioned,
        answer_key=f"{instance}:{key}",
    )
    return Inbound(
        kind=InboundKind.COMMAND,
        status=200,
        body=received_answer(settings),
        content_type=JSON_TYPE,
        command=command,
        dedupe_key=f"{PLATFORM}:{instance}:body:{digest}",
    )


def _click(instance: str, activity: Mapping[str, Any], request: WebhookRequest, value: Any) -> Inbound:
    """A click on one of the bot's ``Action.Submit`` buttons; anything else with a ``value``
    (another app's card, a form the bot never sent) is acknowledged and dropped."""
    data = _obj(value)
    if data.get(SUBMIT_MARK) != SUBMIT_VERSION:
        return _ignored()
    action = data.get("action")
    incident = data.get("incident")
    if action not in CARD_ACTIONS or not isinstance(incident, str) or parse_incident_ref(incident) is None:
        raise ValueError("the Teams card action names no known action and incident")
    version = data.get("version")
    card_version = (
        version if isinstance(version, int) and not isinstance(version, bool) and version >= 1 else None
    )
    activity_id = _required_id(activity)
    command = _command(
        instance,
        activity,
        request,
        key=activity_id,
        text=f"{action} {incident}",
        source="action",
        card_version=card_version,
        message_id=_str(activity.get("replyToId")),
    )
    return Inbound(
        kind=InboundKind.COMMAND,
        status=200,
        body=b"",
        command=command,
        dedupe_key=f"{PLATFORM}:{instance}:activity:{activity_id}",
    )


__all__ = ["PLATFORM", "WORKING_ON_IT", "command_text", "html_text", "parse", "read", "received_answer"]
