"""Turn a verified Discord interaction into an :class:`Inbound`, without any I/O.

Interaction types (https://discord.com/developers/docs/interactions/receiving-and-responding):

- ``1`` PING: answered ``{"type": 1}`` (PONG);
- ``2`` APPLICATION_COMMAND: ``/im <subcommand> [options]``, written back as command text
  (:mod:`.commands`) and deferred (``5``; flag 64 when only the caller sees the answer);
  ``declare`` without a title answers the declare modal (``9``) at once;
- ``3`` MESSAGE_COMPONENT: a click on a card's button, deferred as an update (``6``) and
  run as the clicker; Resolve answers the resolve modal (``9``) at once;
- ``5`` MODAL_SUBMIT: the form's fields, in either shape Discord sends (an ActionRow
  holding a TextInput, or a Label, type 18, holding one); field errors are answered in the
  submission's own response (``4``, ephemeral), else the command runs, deferred (``5``).

The interaction's token and the application's id go in ``reply_to``: only this package
reads them. The interaction id is the de-duplication key: Discord gives each interaction
its own, so the same id twice acts once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from chatops_core.commands.grammar import (
    DEFAULT_SEVERITY,
    parse_severity,
    severity_word,
    title_problem,
)
from chatops_core.errors import InvalidWebhook
from chatops_core.models import Actor, InboundCommand, Person
from chatops_core.providers.base import Inbound, InboundKind, WebhookRequest
from chatops_core.providers.discord import commands, render

PLATFORM = "discord"
# Interaction types.
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
# Interaction callback types.
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
AUTOCOMPLETE_RESULT = 8
MODAL = 9
# reply_to keys.
REPLY_TOKEN = "token"
REPLY_APPLICATION = "application_id"
REPLY_DEFERRED = "deferred"  # "private", "public" (a deferred message) or "update" (a click)
REPLY_GUILD = "guild_id"
MAX_BODY_DEPTH = 40

Deferred = Literal["private", "public", "update"]


def _bad(reason: str) -> InvalidWebhook:
    return InvalidWebhook(f"unreadable Discord interaction: {reason}", http_status=400, reason=reason)


def read(request: WebhookRequest) -> dict[str, Any]:
    """The interaction's JSON object; 400 when it is not one."""
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad("body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), int):
        raise _bad("body is not an interaction")
    return data


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _answer(body: Mapping[str, Any]) -> Inbound:
    return Inbound(
        kind=InboundKind.ANSWER,
        status=200,
        body=json.dumps(dict(body)).encode("utf-8"),
        content_type="application/json",
    )


def private_answer(text: str) -> Inbound:
    """An answer only the person sees, in the interaction's own response."""
    return _answer(
        {
            "type": CHANNEL_MESSAGE,
            "data": {"content": text, "flags": render.EPHEMERAL, "allowed_mentions": render.NO_MENTIONS},
        }
    )


def _user(data: Mapping[str, Any]) -> Actor:
    """Who acted: ``member.user`` in a guild, ``user`` in a direct message."""
    user = _obj(_obj(data.get("member")).get("user")) or _obj(data.get("user"))
    user_id = _str(user.get("id"))
    if user_id is None:
        raise _bad("interaction without a user")
    name = _str(user.get("global_name")) or _str(user.get("username"))
    return Actor(user_id=user_id, user_name=name)


def _received(request: WebhookRequest) -> datetime:
    return datetime.fromtimestamp(request.received_at, tz=UTC)


def _command(
    data: Mapping[str, Any],
    request: WebhookRequest,
    instance: str,
    *,
    text: str,
    source: Literal["command", "action", "form"],
    deferred: Deferred,
    **extra: Any,
) -> InboundCommand:
    interaction_id = _str(data.get("id"))
    token = _str(data.get("token"))
    application_id = _str(data.get("application_id"))
    if interaction_id is None or token is None or application_id is None:
        raise _bad("interaction without an id, token or application_id")
    channel = _obj(data.get("channel"))
    reply_to = {
        REPLY_TOKEN: token,
        REPLY_APPLICATION: application_id,
        REPLY_DEFERRED: deferred,
    }
    guild_id = _str(data.get("guild_id"))
    if guild_id:
        reply_to[REPLY_GUILD] = guild_id
    return InboundCommand(
        key=f"{PLATFORM}:{instance}:{interaction_id}",
        instance=instance,
        platform=PLATFORM,
        command="/im",
        text=text,
        user=_user(data),
        channel_id=_str(data.get("channel_id")) or _str(channel.get("id")),
        channel_name=_str(channel.get("name")),
        received_at=_received(request),
        source=source,
        reply_to=reply_to,
        **extra,
    )


def _enqueue(command: InboundCommand, response: Mapping[str, Any]) -> Inbound:
    return Inbound(
        kind=InboundKind.COMMAND,
        status=200,
        body=json.dumps(dict(response)).encode("utf-8"),
        content_type="application/json",
        command=command,
        dedupe_key=command.key,
    )


def _deferred_message(private: bool) -> dict[str, Any]:
    response: dict[str, Any] = {"type": DEFERRED_CHANNEL_MESSAGE}
    if private:
        response["data"] = {"flags": render.EPHEMERAL}
    return response


def parse(data: Mapping[str, Any], request: WebhookRequest, instance: str) -> Inbound:
    kind = data.get("type")
    if kind == PING:
        return _answer({"type": PONG})
    if kind == APPLICATION_COMMAND:
        return application_command(data, request, instance)
    if kind == MESSAGE_COMPONENT:
        return component(data, request, instance)
    if kind == MODAL_SUBMIT:
        return modal_submit(data, request, instance)
    if kind == AUTOCOMPLETE:
        return _answer({"type": AUTOCOMPLETE_RESULT, "data": {"choices": []}})
    raise _bad(f"unknown interaction type {kind!r}")


def application_command(data: Mapping[str, Any], request: WebhookRequest, instance: str) -> Inbound:
    """``/im <word> [options]``: deferred, or the declare modal when no title is given."""
    payload = _obj(data.get("data"))
    if payload.get("name") != commands.COMMAND_NAME:
        return private_answer("This command is not one of this bot's; try `/im help`.")
    word, values = commands.subcommand(payload)
    if not word:
        word = "help"
    if word == "declare" and not _str(values.get("title")):
        severity = values.get("severity")
        return _answer(
            {"type": MODAL, "data": render.declare_modal(severity if isinstance(severity, str) else None)}
        )
    mentioned: list[Person] = []
    user_value = values.get("user")
    if isinstance(user_value, str) and user_value:
        resolved = _obj(_obj(_obj(payload.get("resolved")).get("users")).get(user_value))
        member = _obj(_obj(_obj(payload.get("resolved")).get("members")).get(user_value))
        display = (
            _str(member.get("nick"))
            or _str(resolved.get("global_name"))
            or _str(resolved.get("username"))
            or user_value
        )
        mentioned.append(Person(instance=instance, user_id=user_value, display=display))
    private = word in commands.PRIVATE_WORDS
    command = _command(
        data,
        request,
        instance,
        text=commands.command_text(word, values),
        source="command",
        deferred="private" if private else "public",
        mentioned=mentioned,
    )
    return _enqueue(command, _deferred_message(private))


def component(data: Mapping[str, Any], request: WebhookRequest, instance: str) -> Inbound:
    """A click on a button of ours: the command it stands for, deferred as an update."""
    payload = _obj(data.get("data"))
    what, incident, version = render.parse_custom_id(_str(payload.get("custom_id")) or "")
    message_id = _str(_obj(data.get("message")).get("id"))
    if what == "resolve" and incident:
        return _answer({"type": MODAL, "data": render.resolve_modal(incident, version)})
    if what == render.FORM:
        if incident == "declare":
            return _answer({"type": MODAL, "data": render.declare_modal()})
        parts = (_str(payload.get("custom_id")) or "").split("|")
        if incident == "resolve" and len(parts) > 3 and parts[3]:
            return _answer({"type": MODAL, "data": render.resolve_modal(parts[3], None)})
    mentioned: list[Person] = []
    chosen = payload.get("values")
    value = chosen[0] if isinstance(chosen, list) and chosen and isinstance(chosen[0], str) else None
    if what in ("ack", "mitigate", "escalate") and incident:
        text = f"{what} {incident}"
    elif what == render.SEVERITY_MENU and incident and value and parse_severity(value) is not None:
        # Any severity offered: one not above the incident's is refused by the worker.
        text = f"escalate {incident} {value}"
    elif what == render.COMMANDER_MENU and incident and value and value.isdigit():
        resolved = _obj(_obj(_obj(payload.get("resolved")).get("users")).get(value))
        display = _str(resolved.get("global_name")) or _str(resolved.get("username")) or value
        mentioned.append(Person(instance=instance, user_id=value, display=display))
        text = f"assign {incident} <@{value}>"
    else:
        return private_answer("This button does nothing any more.")
    command = _command(
        data,
        request,
        instance,
        text=text,
        source="action",
        deferred="update",
        message_id=message_id,
        card_version=version,
        mentioned=mentioned,
    )
    return _enqueue(command, {"type": DEFERRED_UPDATE_MESSAGE})


def _fields(payload: Mapping[str, Any]) -> dict[str, str]:
    """The submitted values by ``custom_id``, from ActionRow → TextInput and Label → component."""
    found: dict[str, str] = {}

    def take(item: Any) -> None:
        item = _obj(item)
        custom_id = _str(item.get("custom_id"))
        value = item.get("value")
        if value is None and isinstance(item.get("values"), list) and item["values"]:
            value = item["values"][0]
        if custom_id and isinstance(value, str):
            found.setdefault(custom_id, value)

    for row in payload.get("components") or []:
        row = _obj(row)
        if row.get("type") == render.ACTION_ROW:
            for child in row.get("components") or []:
                take(child)
        elif row.get("type") == render.LABEL:
            take(row.get("component"))
        else:
            take(row)
    return found


def modal_submit(data: Mapping[str, Any], request: WebhookRequest, instance: str) -> Inbound:
    """A submitted form: field errors answered at once (privately), else the command."""
    payload = _obj(data.get("data"))
    custom_id = _str(payload.get("custom_id")) or ""
    fields = _fields(payload)
    if custom_id == render.MODAL_DECLARE:
        title = " ".join(fields.get(render.TITLE_FIELD, "").split())
        problem = title_problem(title)
        if problem:
            return private_answer(problem + " Run `/im declare` again to open the form.")
        severity = parse_severity(fields.get(render.SEVERITY_FIELD, "").strip()) or DEFAULT_SEVERITY
        # The severity first, so a title such as "P1 checkout" stays a title.
        command = _command(
            data,
            request,
            instance,
            text=f"declare {severity_word(severity)} {title}",
            source="form",
            deferred="public",
            description=fields.get(render.DESCRIPTION_FIELD, "").strip() or None,
        )
        return _enqueue(command, _deferred_message(False))
    if custom_id.startswith(render.MODAL_RESOLVE + "|"):
        parts = custom_id.split("|")
        incident = parts[3] if len(parts) > 3 else ""
        version = int(parts[4]) if len(parts) > 4 and parts[4].isdigit() and int(parts[4]) >= 1 else None
        if not incident:
            return private_answer("This form has lost its incident; use `/im resolve`.")
        note = " ".join(fields.get(render.NOTE_FIELD, "").split())
        command = _command(
            data,
            request,
            instance,
            text=f"resolve {incident} {note}".strip(),
            source="form",
            deferred="public",
            card_version=version,
        )
        return _enqueue(command, _deferred_message(False))
    return private_answer("This form is no longer in use.")
