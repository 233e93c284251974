"""Turn a verified Slack request into an :class:`Inbound`, without any I/O.

Slack may send three kinds of request to one Request URL, told apart by their content:

- slash commands, form-encoded with a ``command`` field
  (https://docs.slack.dev/interactivity/implementing-slash-commands/);
- interactions, form-encoded with one ``payload`` field holding JSON
  (https://docs.slack.dev/interactivity/handling-user-interaction/);
- Events API callbacks as JSON (https://docs.slack.dev/apis/events-api/), including the
  ``url_verification`` handshake
  (https://docs.slack.dev/reference/events/url_verification/).

Slack also probes the URL with ``ssl_check=1`` and expects a plain 200.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from chatops_core.errors import InvalidWebhook
from chatops_core.models import Actor, InboundCommand
from chatops_core.providers.base import Inbound, InboundKind, WebhookRequest

PLATFORM = "slack"
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
_MAX_FORM_FIELDS = 200


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


def parse_request(request: WebhookRequest, instance: str) -> Inbound:
    """Classify ``request`` (already verified) for the instance named ``instance``."""
    media = _media_type(request)
    if not media:
        # No Content-Type: decide by the first byte, as JSON always opens with "{".
        media = JSON_TYPE if request.body.lstrip()[:1] == b"{" else FORM_TYPE
    if media == FORM_TYPE:
        return _parse_form(request, instance)
    if media == JSON_TYPE:
        return _parse_event(request)
    raise _bad(f"unsupported content type {media!r}")


def _parse_form(request: WebhookRequest, instance: str) -> Inbound:
    fields = _form(request.body)
    if fields.get("ssl_check") == "1":
        return Inbound(kind=InboundKind.ANSWER, status=200, body=b"")
    if "command" in fields:
        command = _slash_command(fields, request, instance)
        # An empty 200 tells Slack the command was received; the answer goes to response_url.
        return Inbound(kind=InboundKind.COMMAND, status=200, body=b"", command=command)
    if "payload" in fields:
        _json(fields["payload"], "interaction payload")
        # Clicks on message components are acknowledged and not acted on yet.
        return Inbound(kind=InboundKind.IGNORE, status=200, body=b"")
    raise _bad("form body is neither a slash command nor an interaction")


def _slash_command(fields: dict[str, str], request: WebhookRequest, instance: str) -> InboundCommand:
    command = fields.get("command", "").strip()
    user_id = fields.get("user_id", "").strip()
    if not command:
        raise _bad("slash command without a command")
    if not user_id:
        raise _bad("slash command without a user_id")
    trigger_id = fields.get("trigger_id") or None
    request_id = trigger_id or hashlib.sha256(request.body).hexdigest()
    return InboundCommand(
        key=f"{PLATFORM}:{instance}:{request_id}",
        instance=instance,
        platform=PLATFORM,
        command=command,
        text=_unescape(fields.get("text", "")).strip(),
        user=Actor(user_id=user_id, user_name=fields.get("user_name") or None),
        channel_id=fields.get("channel_id") or None,
        channel_name=fields.get("channel_name") or None,
        team_id=fields.get("team_id") or None,
        response_url=fields.get("response_url") or None,
        trigger_id=trigger_id,
        received_at=datetime.fromtimestamp(request.received_at, tz=UTC),
    )


def _parse_event(request: WebhookRequest) -> Inbound:
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
        # Slack redelivers events it thinks were missed; event_id is the de-duplication key.
        return Inbound(kind=InboundKind.IGNORE, status=200, body=b"", dedupe_key=event_id)
    if kind == "app_rate_limited":
        # Slack's notice that it is dropping events for this app: acknowledge it
        # (https://docs.slack.dev/apis/events-api/#rate-limiting).
        return Inbound(kind=InboundKind.IGNORE, status=200, body=b"")
    raise _bad(f"unknown event type {kind!r}")
