"""Slack's dev tools: a slash command as Slack sends it, and the local playground.

``chatops simulate`` signs each request exactly as Slack does (``v0:{timestamp}:{body}``,
HMAC-SHA256 with the signing secret,
https://docs.slack.dev/authentication/verifying-requests-from-slack) and shows an answer
posted to its ``response_url`` as the person would see it: who sees it, then the message, its
Block Kit blocks as lines of text. :class:`~.playground.Playground` answers the Web API calls
the bot makes when ``chatops run`` starts with nothing configured. The interface is
:mod:`chatops_core.providers.devtools`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from chatops_core.models import Actor
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.plaintext import message_lines, view_lines
from chatops_core.providers.slack.playground import Playground

__all__ = [
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_USER_ID",
    "INSTANCE",
    "ORDER",
    "Playground",
    "answer_lines",
    "new_trigger",
    "sign_slack",
    "simulated_request",
    "slash_command_body",
]

# The playground's instance: its webhook URL is /webhooks/slack.
INSTANCE = "slack"
# First among the playgrounds: `chatops simulate` with no --provider types in Slack.
ORDER = 0
# Who types when `chatops simulate` is given no --user.
DEFAULT_USER_ID = "U0SIMULATE"
# The channel typed in when simulate is given no --channel and no playground names one.
DEFAULT_CHANNEL_ID = "C0SIMULATE"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def sign_slack(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Slack sends with a request: its timestamp and v0 signature."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def new_trigger() -> str:
    """A trigger id shaped as Slack's: ``<digits>.<digits>.<hex>``."""
    return f"{time.time_ns() // 1000}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def slash_command_body(
    *,
    command: str,
    text: str,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    response_url: str,
    team_id: str = "T0SIMULATE",
    trigger_id: str | None = None,
) -> bytes:
    """A form-encoded slash command, with the fields Slack sends."""
    fields = {
        "token": "simulated",
        "team_id": team_id,
        "team_domain": "simulated",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": "A0SIMULATE",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger(),
    }
    return urlencode(fields).encode()


def simulated_request(
    settings: SlackSettings,
    text: str,
    *,
    user: Actor,
    channel_id: str | None,
    channel_name: str,
    reply_url: str,
    trigger: str,
    command: str = "/im",
) -> tuple[bytes, dict[str, str], str]:
    """The slash command ``command text`` (``/im declare ...``) as Slack sends it, signed now."""
    body = slash_command_body(
        command=command,
        text=text.strip(),
        user_id=user.user_id,
        user_name=user.user_name or user.user_id,
        channel_id=channel_id or DEFAULT_CHANNEL_ID,
        channel_name=channel_name,
        response_url=reply_url,
        trigger_id=trigger,
    )
    headers = sign_slack(settings.signing_secret.get_secret_value(), body, int(time.time()))
    return body, headers, FORM_CONTENT_TYPE


def answer_lines(answer: dict[str, Any], channel_name: str, names: Mapping[str, str]) -> list[str]:
    """What the person sees of an answer: who sees it, then the message as text."""
    view = answer.get("view")
    if isinstance(view, dict):
        return ["bot opened a form for you:", *view_lines(view, names.get)]
    if answer.get("response_type") == "in_channel":
        heading = f"bot (in #{channel_name}, everyone sees this):"
    else:
        heading = "bot (only you see this):"
    return [heading, *message_lines(answer, names.get)]
