"""Turn a verified Slack request into an :class:`Inbound`, without any I/O.

Slack may send three kinds of request to one Request URL, told apart by their content:

- slash commands, form-encoded with a ``command`` field
  (https://docs.slack.dev/interactivity/implementing-slash-commands/);
- interactions, form-encoded with one ``payload`` field holding JSON
  (https://docs.slack.dev/interactivity/handling-user-interaction/): clicks on an incident
  card (``block_actions``) and submitted forms (``view_submission``);
- Events API callbacks as JSON (https://docs.slack.dev/apis/events-api/), including the
  ``url_verification`` handshake
  (https://docs.slack.dev/reference/events/url_verification/): mentions of the bot
  (``app_mention``), direct messages to it (``message.im``) and the timeline reaction
  (``reaction_added``).

Slack also probes the URL with ``ssl_check=1`` and expects a plain 200.

Every kind becomes the same :class:`~chatops_core.models.InboundCommand`, its ``source``
telling where it came from, and its ``text`` written in the command language (a click on
Acknowledge is ``ack INC-12``), so the worker runs them all alike.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

from chatops_core.commands.grammar import DEFAULT_SEVERITY, SEVERITY_WORDS, severity_word, title_problem
from chatops_core.errors import InvalidWebhook
from chatops_core.models import Actor, InboundCommand, Person
from chatops_core.providers.base import FormName, Inbound, InboundKind, WebhookRequest
from chatops_core.providers.slack import actions

PLATFORM = "slack"
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
_MAX_FORM_FIELDS = 200

# A user mention as Slack writes it in message text: <@U123> or <@U123|name>.
_MENTION = r"<@([A-Z0-9]+)(?:\|[^<>]*)?>"
_MENTION_RE = re.compile(_MENTION + r"[ \t]*")
_LEADING_MENTION_RE = re.compile(r"^\s*" + _MENTION + r"\s*")
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
# A user mention anywhere in command text, with the name Slack may add after "|".
_PERSON_RE = re.compile(r"<@([A-Z0-9]+)(?:\|([^<>]*))?>")
# What may stand for an incident in command text: one word.
_INCIDENT_ID_RE = re.compile(r"^\S{1,64}$")
# Message subtypes that are still someone writing to us; any other (edits, joins, bots...) is not.
# https://docs.slack.dev/reference/events/message/#subtypes
_WRITTEN_SUBTYPES = frozenset({"thread_broadcast"})


@dataclass(frozen=True)
class _Context:
    """What parsing needs besides the request: the instance and the settings it reads."""

    instance: str
    received_at: datetime
    bot_user_id: str | None
    timeline_reaction: str


def _bad(reason: str) -> InvalidWebhook:
    return InvalidWebhook(f"unreadable Slack request: {reason}", http_status=400, reason=reason)


def _media_type(request: WebhookRequest) -> str:
    content_type = request.content_type or request.headers.get("Content-Type") or ""
    return content_type.split(";", 1)[0].strip().lower()


def _unescape(text: str) -> str:
    """Undo Slack's escaping of ``&``, ``<`` and ``>`` in message text, leaving ``<@U123>``
    style references as Slack wrote them.

    https://docs.slack.dev/messaging/formatting-message-text/#escaping
    """
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _mentioned(text: str, instance: str) -> list[Person]:
    """The people ``text`` mentions, as Slack writes them (``<@U123|bob>`` or ``<@U123>``).

    A mention without a name is shown by its user id wherever the name is needed.
    https://docs.slack.dev/messaging/formatting-message-text/#mentioning-users
    """
    people: dict[str, Person] = {}
    for match in _PERSON_RE.finditer(text):
        user_id, name = match.group(1), (match.group(2) or "").strip()
        if user_id not in people or name:
            people[user_id] = Person(instance=instance, user_id=user_id, display=name or user_id)
    return list(people.values())


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("body is not UTF-8") from None


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(_text(body), keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except ValueError:
        raise _bad("malformed form body") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)  # first value wins, as Slack sends each field once
    return fields


def _json(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise _bad(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise _bad(f"{what} is not a JSON object")
    return data


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (Slack sends ``null`` for some)."""
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def reply_to(*, response_url: str | None, trigger_id: str | None, team_id: str | None) -> dict[str, str]:
    """The command's way back as only this provider reads it: where to answer
    (``response_url``), the trigger that may open a form (``trigger_id``) and the workspace."""
    fields = {"response_url": response_url, "trigger_id": trigger_id, "team_id": team_id}
    return {key: value for key, value in fields.items() if value}


def _ignore(dedupe_key: str | None = None) -> Inbound:
    """Acknowledge with an empty 200 and do nothing."""
    return Inbound(kind=InboundKind.IGNORE, status=200, body=b"", dedupe_key=dedupe_key)


def _enqueue(command: InboundCommand, dedupe_key: str | None = None) -> Inbound:
    # An empty 200 tells Slack the request was received; answers go out from the worker.
    return Inbound(kind=InboundKind.COMMAND, status=200, body=b"", command=command, dedupe_key=dedupe_key)


def parse_request(
    request: WebhookRequest,
    instance: str,
    *,
    bot_user_id: str | None = None,
    timeline_reaction: str = "pushpin",
) -> Inbound:
    """Classify ``request`` (already verified) for the instance named ``instance``.

    ``bot_user_id`` is the bot's own user id, whose messages are never commands (when None,
    each event's ``authorizations`` say who the bot is); ``timeline_reaction`` is the emoji
    that marks a message for an incident's timeline.
    """
    context = _Context(
        instance=instance,
        received_at=datetime.fromtimestamp(request.received_at, tz=UTC),
        bot_user_id=bot_user_id,
        timeline_reaction=timeline_reaction.strip().strip(":"),
    )
    media = _media_type(request)
    if not media:
        # No Content-Type: decide by the first byte, as JSON always opens with "{".
        media = JSON_TYPE if request.body.lstrip()[:1] == b"{" else FORM_TYPE
    if media == FORM_TYPE:
        return _parse_form(request, context)
    if media == JSON_TYPE:
        return _parse_event(request, context)
    raise _bad(f"unsupported content type {media!r}")


def _parse_form(request: WebhookRequest, context: _Context) -> Inbound:
    fields = _form(request.body)
    if fields.get("ssl_check") == "1":
        return Inbound(kind=InboundKind.ANSWER, status=200, body=b"")
    if "command" in fields:
        return _enqueue(_slash_command(fields, request, context))
    if "payload" in fields:
        payload = _json(fields["payload"], "interaction payload")
        kind = payload.get("type")
        if kind == "block_actions":
            return _block_actions(payload, request, context)
        if kind == "view_submission":
            return _view_submission(payload, request, context)
        # view_closed, shortcuts, message actions...: acknowledged, nothing to do.
        return _ignore()
    raise _bad("form body is neither a slash command nor an interaction")


def _slash_command(fields: dict[str, str], request: WebhookRequest, context: _Context) -> InboundCommand:
    command = fields.get("command", "").strip()
    user_id = fields.get("user_id", "").strip()
    if not command:
        raise _bad("slash command without a command")
    if not user_id:
        raise _bad("slash command without a user_id")
    trigger_id = fields.get("trigger_id") or None
    request_id = trigger_id or hashlib.sha256(request.body).hexdigest()
    text = _unescape(fields.get("text", "")).strip()
    return InboundCommand(
        key=f"{PLATFORM}:{context.instance}:{request_id}",
        instance=context.instance,
        platform=PLATFORM,
        command=command,
        text=text,
        mentioned=_mentioned(text, context.instance),
        user=Actor(user_id=user_id, user_name=fields.get("user_name") or None),
        channel_id=fields.get("channel_id") or None,
        channel_name=fields.get("channel_name") or None,
        reply_to=reply_to(
            response_url=fields.get("response_url") or None,
            trigger_id=trigger_id,
            team_id=fields.get("team_id") or None,
        ),
        received_at=context.received_at,
    )


# -- interactions ------------------------------------------------------------------------


def _payload_user(payload: Mapping[str, Any]) -> Actor:
    user = _obj(payload.get("user"))
    user_id = _str(user.get("id"))
    if user_id is None:
        raise _bad(f"{payload.get('type')} payload without a user id")
    return Actor(user_id=user_id, user_name=_str(user.get("username")) or _str(user.get("name")))


def _payload_team(payload: Mapping[str, Any]) -> str | None:
    return _str(_obj(payload.get("team")).get("id")) or _str(_obj(payload.get("user")).get("team_id"))


def _incident_word(value: str | None) -> str | None:
    """``value`` if it can stand for an incident in command text (one word), else None."""
    return value if value and _INCIDENT_ID_RE.match(value) else None


def _action_command(action: Mapping[str, Any]) -> tuple[str, FormName | None] | None:
    """The command text (and form to open) for one clicked element; None if it is not ours.

    https://docs.slack.dev/reference/interaction-payloads/block_actions-payload : a button
    sends its ``value``, a static menu its ``selected_option``, a users menu its
    ``selected_user``; every element sends the ``block_id`` of its block.
    """
    action_id = action.get("action_id")
    from_block = _incident_word(actions.incident_from_block_id(_str(action.get("block_id"))))
    if action_id in (actions.ACK, actions.MITIGATE, actions.RESOLVE, actions.ESCALATE):
        incident = _incident_word(_str(action.get("value"))) or from_block
        if incident is None:
            return None
        verb = str(action_id).removeprefix(actions.PREFIX)
        return f"{verb} {incident}", ("resolve" if action_id == actions.RESOLVE else None)
    if action_id == actions.SEVERITY:
        # Choosing nothing (clearing the menu) sends a null option.
        value = _str(_obj(action.get("selected_option")).get("value"))
        if from_block is None or value not in SEVERITY_WORDS:
            return None
        return f"escalate {from_block} {value}", None
    if action_id == actions.ASSIGN:
        user = _str(action.get("selected_user"))
        if from_block is None or user is None or not _USER_ID_RE.match(user):
            return None
        return f"assign {from_block} <@{user}>", None
    if action_id == actions.OPEN_FORM:
        form = action.get("value")
        if form == "declare":
            return "declare", "declare"
        if form == "resolve" and from_block is not None:
            return f"resolve {from_block}", "resolve"
    return None


def _block_actions(payload: dict[str, Any], request: WebhookRequest, context: _Context) -> Inbound:
    """One command per click, from the first action of the payload."""
    clicked = payload.get("actions")
    if not isinstance(clicked, list) or not clicked or not isinstance(clicked[0], dict):
        return _ignore()
    action = clicked[0]
    found = _action_command(action)
    if found is None:
        return _ignore()
    text, form = found
    channel = _obj(payload.get("channel"))
    container = _obj(payload.get("container"))
    trigger_id = _str(payload.get("trigger_id"))
    request_id = _str(action.get("action_ts")) or trigger_id or hashlib.sha256(request.body).hexdigest()
    command = InboundCommand(
        key=f"{PLATFORM}:{context.instance}:action:{request_id}",
        instance=context.instance,
        platform=PLATFORM,
        text=text,
        user=_payload_user(payload),
        channel_id=_str(channel.get("id")) or _str(container.get("channel_id")),
        channel_name=_str(channel.get("name")),
        reply_to=reply_to(
            response_url=_str(payload.get("response_url")),
            trigger_id=trigger_id,
            team_id=_payload_team(payload),
        ),
        received_at=context.received_at,
        source="action",
        message_id=_str(_obj(payload.get("message")).get("ts")) or _str(container.get("message_ts")),
        form=form,
        # The card's version travels in the block_id of every element on it.
        card_version=actions.version_from_block_id(_str(action.get("block_id"))),
        mentioned=_mentioned(text, context.instance),
    )
    return _enqueue(command)


def _input_value(values: Mapping[str, Any], field: str) -> str:
    """The text typed into the input whose block and action are both ``field`` ("" if none)."""
    return _str(_obj(_obj(values.get(field)).get(field)).get("value")) or ""


def _selected_value(values: Mapping[str, Any], field: str) -> str | None:
    return _str(_obj(_obj(_obj(values.get(field)).get(field)).get("selected_option")).get("value"))


def _view_errors(errors: Mapping[str, str]) -> Inbound:
    """Keep the form open and show ``errors`` (block id -> message) under its fields.

    https://docs.slack.dev/surfaces/modals/#displaying_errors
    """
    body = json.dumps({"response_action": "errors", "errors": dict(errors)}).encode("utf-8")
    return Inbound(kind=InboundKind.ANSWER, status=200, body=body, content_type="application/json")


def _view_submission(payload: dict[str, Any], request: WebhookRequest, context: _Context) -> Inbound:
    """A submitted form: validated here, so a mistake is shown in the form before it closes.

    https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload
    """
    view = _obj(payload.get("view"))
    callback_id = view.get("callback_id")
    values = _obj(_obj(view.get("state")).get("values"))
    metadata = actions.decode_metadata(_str(view.get("private_metadata")))
    description: str | None = None
    if callback_id == actions.DECLARE_FORM:
        # Typed text in a form arrives as typed: no Slack escaping to undo.
        title = " ".join(_input_value(values, actions.TITLE_FIELD).split())
        problem = title_problem(title)
        if problem:
            return _view_errors({actions.TITLE_FIELD: problem})
        severity = _selected_value(values, actions.SEVERITY_FIELD)
        if severity not in SEVERITY_WORDS:
            severity = severity_word(DEFAULT_SEVERITY)
        # The severity always comes first, so a title such as "P1 checkout" stays a title.
        text = f"declare {severity} {title}"
        description = _input_value(values, actions.DESCRIPTION_FIELD).strip() or None
    elif callback_id == actions.RESOLVE_FORM:
        incident = _incident_word(metadata.get("incident_id"))
        if incident is None:
            return _view_errors({actions.NOTE_FIELD: "This form has lost its incident; resolve it with /im."})
        note = _input_value(values, actions.NOTE_FIELD).strip()
        text = f"resolve {incident} {note}".strip()
    else:
        return _ignore()
    trigger_id = _str(payload.get("trigger_id"))
    view_id = _str(view.get("id")) or "view"
    submission = _str(view.get("hash")) or trigger_id or hashlib.sha256(request.body).hexdigest()
    command = InboundCommand(
        key=f"{PLATFORM}:{context.instance}:view:{view_id}:{submission}",
        instance=context.instance,
        platform=PLATFORM,
        text=text,
        user=_payload_user(payload),
        channel_id=metadata.get("channel_id"),
        channel_name=metadata.get("channel_name"),
        reply_to=reply_to(
            response_url=metadata.get("response_url"),
            trigger_id=trigger_id,
            team_id=_payload_team(payload),
        ),
        received_at=context.received_at,
        source="form",
        description=description,
    )
    # An empty 200 closes the form.
    return _enqueue(command)


# -- Events API --------------------------------------------------------------------------


def _parse_event(request: WebhookRequest, context: _Context) -> Inbound:
    data = _json(_text(request.body), "event body")
    kind = data.get("type")
    if kind == "url_verification":
        challenge = data.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise _bad("url_verification without a challenge")
        body = json.dumps({"challenge": challenge}).encode("utf-8")
        return Inbound(kind=InboundKind.ANSWER, status=200, body=body, content_type="application/json")
    if kind == "event_callback":
        event_id = data.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise _bad("event_callback without an event_id")
        # Slack redelivers events it thinks were missed (X-Slack-Retry-Num); the event_id is
        # the same each time, so it is the de-duplication key
        # (https://docs.slack.dev/apis/events-api/#retries).
        return _event_callback(data, event_id, context)
    if kind == "app_rate_limited":
        # Slack's notice that it is dropping events for this app: acknowledge it
        # (https://docs.slack.dev/apis/events-api/#rate-limiting).
        return _ignore()
    raise _bad(f"unknown event type {kind!r}")


def _bot_user_ids(data: Mapping[str, Any], context: _Context) -> frozenset[str]:
    """The bot's own user id: from the settings, else from the event's ``authorizations``.

    ``authorizations`` names the installation the event was sent for
    (https://docs.slack.dev/apis/events-api/#authorizations); an entry marked
    ``is_bot: false`` is a person's installation, not the bot, and is not used.
    """
    if context.bot_user_id:
        return frozenset({context.bot_user_id})
    authorizations = data.get("authorizations")
    if isinstance(authorizations, list) and authorizations:
        first = _obj(authorizations[0])
        user_id = _str(first.get("user_id"))
        if user_id and first.get("is_bot") is not False:
            return frozenset({user_id})
    return frozenset()


def _is_own(event: Mapping[str, Any], data: Mapping[str, Any], bot_ids: Collection[str]) -> bool:
    """A message or reaction by a bot (ours above all), which must never run a command."""
    if _str(event.get("bot_id")):
        return True
    app_id = _str(event.get("app_id"))
    if app_id and app_id == _str(data.get("api_app_id")):
        return True
    return event.get("user") in bot_ids


def _without_mentions(text: str, bot_ids: Collection[str]) -> str:
    """``text`` with every mention of the bot removed and Slack's escaping undone.

    When the bot's id is unknown, or not mentioned, a leading mention is taken to be the bot's
    (an ``app_mention`` is a message that mentions the bot, usually first).
    """
    removed = False

    def drop(match: re.Match[str]) -> str:
        nonlocal removed
        if match.group(1) in bot_ids:
            removed = True
            return ""
        return match.group(0)

    cleaned = _MENTION_RE.sub(drop, text) if bot_ids else text
    if not removed:
        cleaned = _LEADING_MENTION_RE.sub("", cleaned, count=1)
    return _unescape(cleaned).strip()


def _event_command(
    data: Mapping[str, Any],
    event_id: str,
    context: _Context,
    *,
    source: Literal["mention", "reaction"],
    user_id: str,
    channel_id: str,
    text: str = "",
    thread_ts: str | None = None,
    message_ts: str | None = None,
) -> Inbound:
    command = InboundCommand(
        key=f"{PLATFORM}:{context.instance}:event:{event_id}",
        instance=context.instance,
        platform=PLATFORM,
        text=text,
        user=Actor(user_id=user_id),
        channel_id=channel_id,
        reply_to=reply_to(response_url=None, trigger_id=None, team_id=_str(data.get("team_id"))),
        received_at=context.received_at,
        source=source,
        thread_id=thread_ts,
        message_id=message_ts,
        mentioned=_mentioned(text, context.instance),
    )
    return _enqueue(command, dedupe_key=event_id)


def _event_callback(data: dict[str, Any], event_id: str, context: _Context) -> Inbound:
    event = _obj(data.get("event"))
    kind = event.get("type")
    bot_ids = _bot_user_ids(data, context)
    if _is_own(event, data, bot_ids):
        return _ignore(event_id)
    user_id = _str(event.get("user"))
    if kind in ("app_mention", "message"):
        # https://docs.slack.dev/reference/events/app_mention and
        # https://docs.slack.dev/reference/events/message.im : direct messages never arrive
        # as app_mention, and a message event counts only in a direct message.
        channel_id = _str(event.get("channel"))
        subtype = event.get("subtype")
        if user_id is None or channel_id is None or (subtype and subtype not in _WRITTEN_SUBTYPES):
            return _ignore(event_id)
        if kind == "message" and (event.get("channel_type") != "im" or subtype):
            return _ignore(event_id)
        text = _without_mentions(_str(event.get("text")) or "", bot_ids)
        # A mention is answered in its thread (a new one under it when it is top level);
        # a direct message is answered in the conversation itself.
        thread_ts = (_str(event.get("thread_ts")) or _str(event.get("ts"))) if kind == "app_mention" else None
        return _event_command(
            data,
            event_id,
            context,
            source="mention",
            user_id=user_id,
            channel_id=channel_id,
            text=text,
            thread_ts=thread_ts,
        )
    if kind == "reaction_added":
        # https://docs.slack.dev/reference/events/reaction_added : a skin tone comes as
        # "name::skin-tone-2".
        item = _obj(event.get("item"))
        reaction = (_str(event.get("reaction")) or "").split("::", 1)[0]
        channel_id = _str(item.get("channel"))
        message_ts = _str(item.get("ts"))
        if (
            reaction != context.timeline_reaction
            or item.get("type") != "message"
            or user_id is None
            or channel_id is None
            or message_ts is None
        ):
            return _ignore(event_id)
        return _event_command(
            data,
            event_id,
            context,
            source="reaction",
            user_id=user_id,
            channel_id=channel_id,
            message_ts=message_ts,
        )
    return _ignore(event_id)
