"""Turn a verified Mattermost request into an :class:`Inbound`, without any I/O.

Four kinds of request reach the instance's one URL, told apart by their content:

- slash commands, form-encoded with a ``command`` field
  (https://developers.mattermost.com/integrate/slash-commands/custom/);
- mentions of the bot, sent by an outgoing webhook whose trigger word is the mention
  (``@incident-bot``): form-encoded or JSON, with ``trigger_word`` and no ``command``
  (https://developers.mattermost.com/integrate/webhooks/outgoing/);
- button clicks and menu choices, JSON with ``context`` (and ``post_id``); a menu's choice
  is the context's ``selected_option``
  (https://developers.mattermost.com/integrate/plugins/interactive-messages/);
- dialog submissions, JSON with ``type: "dialog_submission"``
  (https://developers.mattermost.com/integrate/plugins/interactive-dialogs/).

Every kind becomes the same neutral :class:`~chatops_core.models.InboundCommand` with its
``text`` in the command language (a click on Acknowledge is ``ack INC-12``, SEV-1 chosen in
the severity menu ``escalate INC-12 sev1``, a user chosen in the commander menu
``assign INC-12 <@user id>`` with that user in ``mentioned``). How to answer
it (the ``response_url``, the ``trigger_id``) is kept in ``reply_to``, which only this
package reads. :func:`read_request` is shared by :mod:`.verify`'s caller and the parser, so
the body is decoded once per request in each.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

from chatops_core.commands.grammar import DEFAULT_SEVERITY, SEVERITY_WORDS, severity_word, title_problem
from chatops_core.errors import InvalidWebhook
from chatops_core.models import Actor, InboundCommand, Person
from chatops_core.providers.base import Inbound, InboundKind, WebhookRequest
from chatops_core.providers.mattermost import actions
from chatops_core.providers.mattermost.verify import Payload

PLATFORM = "mattermost"
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
_MAX_FORM_FIELDS = 100
# Reply-handle keys (``InboundCommand.reply_to``).
REPLY_RESPONSE_URL = "response_url"
REPLY_TRIGGER_ID = "trigger_id"
REPLY_TEAM_ID = "team_id"

Kind = Literal["command", "action", "dialog", "mention"]
# Punctuation a mention may be written with (``@incident-bot: what's open?``).
_AFTER_MENTION = ":,;"
# A Mattermost user id: 26 lowercase letters and digits.
_USER_ID = re.compile(r"^[a-z0-9]{26}$")
# What a menu choice that cannot be acted on is answered (only the chooser sees it).
NOT_OFFERED = "Choose one of the severities the menu offers."
NOT_A_USER = "Choose a user of the team as commander."


@dataclass(frozen=True)
class Request:
    """A request read once: its kind and its fields (form fields, or the JSON object)."""

    kind: Kind
    fields: Mapping[str, Any]


def _bad(reason: str) -> InvalidWebhook:
    return InvalidWebhook(f"unreadable Mattermost request: {reason}", http_status=400, reason=reason)


def _media_type(request: WebhookRequest) -> str:
    content_type = request.content_type or request.headers.get("Content-Type") or ""
    return content_type.split(";", 1)[0].strip().lower()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_request(request: WebhookRequest) -> Request:
    """Decode ``request`` and say which kind it is; 400 (:class:`InvalidWebhook`) if neither."""
    media = _media_type(request) or (JSON_TYPE if request.body.lstrip()[:1] == b"{" else FORM_TYPE)
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("body is not UTF-8") from None
    if media == FORM_TYPE:
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
        except ValueError:
            raise _bad("malformed form body") from None
        form: dict[str, str] = {}
        for key, value in pairs:
            form.setdefault(key, value)
        if "command" in form:
            return Request("command", form)
        if "trigger_word" in form:
            return Request("mention", form)
        raise _bad("form body is neither a slash command nor an outgoing webhook")
    if media == JSON_TYPE:
        try:
            data = json.loads(text)
        except ValueError:
            raise _bad("body is not JSON") from None
        if not isinstance(data, dict):
            raise _bad("body is not a JSON object")
        if data.get("type") == "dialog_submission":
            return Request("dialog", data)
        if "context" in data:
            return Request("action", data)
        if "trigger_word" in data and "command" not in data:
            return Request("mention", data)
        raise _bad("JSON body is neither a button click, a dialog submission nor an outgoing webhook")
    raise _bad(f"unsupported content type {media!r}")


def _enqueue(command: InboundCommand, body: bytes = b"", content_type: str = "application/json") -> Inbound:
    return Inbound(
        kind=InboundKind.COMMAND, status=200, body=body, content_type=content_type, command=command
    )


def _answer(body: Mapping[str, Any]) -> Inbound:
    return Inbound(
        kind=InboundKind.ANSWER,
        status=200,
        body=json.dumps(dict(body)).encode("utf-8"),
        content_type="application/json",
    )


def _received(request: WebhookRequest) -> datetime:
    return datetime.fromtimestamp(request.received_at, tz=UTC)


def _digest(request: WebhookRequest) -> str:
    return hashlib.sha256(request.body).hexdigest()[:32]


def slash_command(fields: Mapping[str, str], request: WebhookRequest, instance: str) -> Inbound:
    """``/im <text>``: answered later on its ``response_url``; an empty 200 now.

    An empty body is what Mattermost takes as "nothing to show yet"; the worker posts the
    answer to ``response_url``.
    """
    user_id = (fields.get("user_id") or "").strip()
    if not user_id:
        raise _bad("slash command without a user_id")
    trigger_id = fields.get("trigger_id") or ""
    reply_to = {
        REPLY_RESPONSE_URL: fields.get("response_url") or "",
        REPLY_TRIGGER_ID: trigger_id,
        REPLY_TEAM_ID: fields.get("team_id") or "",
    }
    request_id = hashlib.sha256(trigger_id.encode()).hexdigest()[:32] if trigger_id else _digest(request)
    command = InboundCommand(
        key=f"{PLATFORM}:{instance}:{request_id}",
        instance=instance,
        platform=PLATFORM,
        command=(fields.get("command") or "/im").strip(),
        text=(fields.get("text") or "").strip(),
        user=Actor(user_id=user_id, user_name=fields.get("user_name") or None),
        channel_id=fields.get("channel_id") or None,
        channel_name=fields.get("channel_name") or None,
        received_at=_received(request),
        source="command",
        reply_to={k: v for k, v in reply_to.items() if v},
    )
    return _enqueue(command, b"", "text/plain; charset=utf-8")


def button_click(
    data: Mapping[str, Any], context: Payload, request: WebhookRequest, instance: str
) -> Inbound:
    """A click on a card's button or a choice in one of its menus (``context`` verified): the
    command it stands for.

    Answered ``{}``: the post stays as it is, and the card is edited once the change is
    announced. A click on a button this version does not know, or a severity the menu did not
    offer, answers a note to the clicker.
    """
    user_id = _str(data.get("user_id"))
    if user_id is None:
        raise _bad("button click without a user_id")
    action = context.get(actions.ACTION)
    incident = context.get(actions.INCIDENT)
    version = context.get(actions.VERSION)
    form: Literal["declare", "resolve"] | None = None
    mentioned: list[Person] = []
    if action in actions.CARD_MENUS and isinstance(incident, str):
        chosen = _selected_option(data)
        if chosen is None:
            return _answer({})
        if action == actions.SEVERITY_MENU:
            if chosen not in actions.offered_options(context) or chosen not in SEVERITY_WORDS:
                return _answer({"ephemeral_text": NOT_OFFERED})
            # Any severity offered: one not above the incident's is refused by the worker,
            # which tells the person privately, as it does for a typed escalate.
            text = f"escalate {incident} {chosen}"
        else:
            if not _USER_ID.match(chosen):
                return _answer({"ephemeral_text": NOT_A_USER})
            # Only the id comes with the choice: the worker names them when it shows the card.
            text = f"assign {incident} <@{chosen}>"
            mentioned = [Person(instance=instance, user_id=chosen, display=chosen)]
    elif action in actions.CARD_ACTIONS and isinstance(incident, str):
        text = f"{action} {incident}"
        form = "resolve" if action == "resolve" else None
    elif action == actions.OPEN_FORM and context.get(actions.FORM) == "declare":
        text, form = "declare", "declare"
    elif action == actions.OPEN_FORM and context.get(actions.FORM) == "resolve" and isinstance(incident, str):
        text, form = f"resolve {incident}", "resolve"
    else:
        return _answer({"ephemeral_text": "This button does nothing any more."})
    trigger_id = _str(data.get("trigger_id")) or ""
    request_id = hashlib.sha256(trigger_id.encode()).hexdigest()[:32] if trigger_id else _digest(request)
    command = InboundCommand(
        key=f"{PLATFORM}:{instance}:action:{request_id}",
        instance=instance,
        platform=PLATFORM,
        text=text,
        user=Actor(user_id=user_id, user_name=_str(data.get("user_name"))),
        channel_id=_str(data.get("channel_id")),
        channel_name=_str(data.get("channel_name")),
        received_at=_received(request),
        source="action",
        message_id=_str(data.get("post_id")),
        form=form,
        card_version=version if isinstance(version, int) and version >= 1 else None,
        reply_to={k: v for k, v in {REPLY_TRIGGER_ID: trigger_id}.items() if v},
        mentioned=mentioned,
    )
    return _enqueue(command, b"{}")


def _selected_option(data: Mapping[str, Any]) -> str | None:
    """The option chosen in a menu: the ``selected_option`` Mattermost added to the context
    (no signature covers it); None when there is none."""
    context = data.get("context")
    if not isinstance(context, Mapping):
        return None
    chosen = context.get(actions.SELECTED_OPTION)
    return chosen.strip() if isinstance(chosen, str) and chosen.strip() else None


def _value(submission: Mapping[str, Any], name: str) -> str:
    value = submission.get(name)
    return value.strip() if isinstance(value, str) else ""


def dialog_submission(
    data: Mapping[str, Any], state: Payload, request: WebhookRequest, instance: str
) -> Inbound:
    """A submitted dialog (``state`` verified): field errors at once, else the command.

    ``{"errors": {field: message}}`` keeps the dialog open with the messages under its
    fields; ``{}`` closes it. A cancelled dialog is acknowledged and does nothing.
    """
    if data.get("cancelled") is True:
        return _answer({})
    user_id = _str(data.get("user_id"))
    if user_id is None:
        raise _bad("dialog submission without a user_id")
    submission = data.get("submission")
    if not isinstance(submission, Mapping):
        submission = {}
    callback_id = data.get("callback_id")
    form = state.get(actions.FORM)
    description: str | None = None
    if form == actions.DECLARE_FORM and callback_id == actions.DECLARE_FORM:
        title = " ".join(_value(submission, actions.TITLE_FIELD).split())
        problem = title_problem(title)
        if problem:
            return _answer({"errors": {actions.TITLE_FIELD: problem}})
        severity = _value(submission, actions.SEVERITY_FIELD)
        if severity not in SEVERITY_WORDS:
            severity = severity_word(DEFAULT_SEVERITY)
        # The severity first, so a title such as "P1 checkout" stays a title.
        text = f"declare {severity} {title}"
        description = _value(submission, actions.DESCRIPTION_FIELD) or None
    elif form == actions.RESOLVE_FORM and callback_id == actions.RESOLVE_FORM:
        incident = state.get(actions.INCIDENT)
        if not isinstance(incident, str) or not incident:
            return _answer(
                {"errors": {actions.NOTE_FIELD: "This form has lost its incident; use /im resolve."}}
            )
        text = f"resolve {incident} {_value(submission, actions.NOTE_FIELD)}".strip()
    else:
        return _answer({})
    # The dialog's opener is who the state names; Mattermost sends only the submitter's id.
    opener = state.get(actions.USER_ID)
    user_name = state.get(actions.USER_NAME) if opener == user_id else None
    response_url = state.get(actions.RESPONSE_URL)
    channel_id = state.get(actions.CHANNEL_ID)
    channel_name = state.get(actions.CHANNEL_NAME)
    command = InboundCommand(
        key=f"{PLATFORM}:{instance}:form:{_digest(request)}",
        instance=instance,
        platform=PLATFORM,
        text=text,
        user=Actor(user_id=user_id, user_name=user_name if isinstance(user_name, str) else None),
        channel_id=(channel_id if isinstance(channel_id, str) else None) or _str(data.get("channel_id")),
        channel_name=channel_name if isinstance(channel_name, str) else None,
        received_at=_received(request),
        source="form",
        description=description,
        reply_to={REPLY_RESPONSE_URL: response_url} if isinstance(response_url, str) and response_url else {},
    )
    return _enqueue(command, b"{}")


def _after_trigger(text: str, trigger_word: str) -> str:
    """``text`` without its first word, the one that matched ``trigger_word``.

    Mattermost triggers on the message's first word when it equals a trigger word, or (as
    the webhook is set) starts with one, and sends the whole message; that word is the
    mention, including any punctuation typed with it (``@incident-bot:``).
    """
    stripped = text.strip()
    parts = stripped.split(None, 1)
    first = parts[0] if parts else ""
    rest = parts[1] if len(parts) > 1 else ""
    if not first.lower().startswith(trigger_word.lower()):
        return stripped
    return rest.lstrip(_AFTER_MENTION).strip()


def mention(
    fields: Mapping[str, Any],
    request: WebhookRequest,
    instance: str,
    *,
    bot_user_id: str | None,
    bot_name: str | None,
) -> Inbound:
    """A message that starts with the bot's mention (``@incident-bot what's open?``).

    It becomes a ``source="mention"`` command whose text is what follows the mention, to be
    answered in the post's thread (``thread_id`` is the post's id; a post that is itself a
    reply is answered under its root). It is keyed by the post, so the same post delivered
    twice runs once. Mattermost is answered ``{}`` at once, which posts nothing; the answer
    goes out through the REST API. The bot's own posts, and a request not sent for a trigger
    word (a webhook set on a channel without one), are acknowledged and ignored.
    """
    user_id = _str(fields.get("user_id"))
    post_id = _str(fields.get("post_id"))
    channel_id = _str(fields.get("channel_id"))
    if user_id is None or post_id is None or channel_id is None:
        raise _bad("outgoing webhook without a user_id, post_id or channel_id")
    user_name = _str(fields.get("user_name"))
    own_name = (bot_name or "").strip().lstrip("@").lower()
    if user_id == bot_user_id or (own_name and user_name is not None and user_name.lower() == own_name):
        return Inbound(kind=InboundKind.IGNORE, status=200, body=b"{}", content_type=JSON_TYPE)
    trigger_word = (_str(fields.get("trigger_word")) or "").strip()
    if not trigger_word:
        return Inbound(kind=InboundKind.IGNORE, status=200, body=b"{}", content_type=JSON_TYPE)
    text = fields.get("text")
    key = f"{PLATFORM}:{instance}:mention:{post_id}"
    team_id = _str(fields.get("team_id"))
    command = InboundCommand(
        key=key,
        instance=instance,
        platform=PLATFORM,
        text=_after_trigger(text if isinstance(text, str) else "", trigger_word),
        user=Actor(user_id=user_id, user_name=user_name),
        channel_id=channel_id,
        channel_name=_str(fields.get("channel_name")),
        received_at=_received(request),
        source="mention",
        thread_id=post_id,
        reply_to={REPLY_TEAM_ID: team_id} if team_id else {},
    )
    return Inbound(
        kind=InboundKind.COMMAND,
        status=200,
        body=b"{}",
        content_type=JSON_TYPE,
        command=command,
        dedupe_key=key,
    )
