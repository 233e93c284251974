"""What the service shows in Microsoft Teams: Adaptive Cards, MessageCards and message text.

- The incident card is an **Adaptive Card** (schema 1.4, which Teams renders on desktop, web
  and mobile), built with Microsoft's own typed builder ``microsoft-teams-cards`` (pydantic
  models of every element, kept in step with what Teams supports) rather than hand-written
  dicts. On a bot channel it carries ``Action.Submit`` buttons whose ``data`` names the action,
  the incident and the card's version (:func:`submit_data`); anywhere else (incoming webhooks,
  the answer to an outgoing webhook) only ``Action.OpenUrl`` works, so the card lists the
  commands to type instead
  (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-outgoing-webhook).
- A legacy connector (``format = "messagecard"``) takes a **MessageCard**, built with
  ``pymsteams``, which builds the payload without sending it (its ``payload`` dict; the service
  sends through its own client). pymsteams leaves out the ``@type``/``@context`` the
  MessageCard reference requires, so they are added here
  (https://learn.microsoft.com/en-us/outlook/actionable-messages/message-card-reference).
- Answers are message **text** in Teams' Markdown.

Incoming webhooks (Workflows) take the card in the message envelope ``{"type": "message",
"attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl":
null, "content": <card>}]}``; a bare card fails the flow run
(https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).

Text people typed (titles, notes, names) is shown as typed: in message text its Markdown and
HTML are escaped (Teams renders both, and ``<at>`` would be a mention); in a card, link syntax
is broken (Adaptive Cards render no HTML, only a little Markdown). A Teams message must stay
under about 28 KB, so every text is cut to fit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pymsteams
from microsoft_teams.cards import (
    ActionStyle,
    AdaptiveCard,
    CardElement,
    Fact,
    FactSet,
    OpenUrlAction,
    SubmitAction,
    TextBlock,
    TextColor,
    Version,
)

from chatops_core.cards import IncidentCard, age
from chatops_core.models import InboundCommand, Incident, Reply, Severity
from chatops_core.providers.render import AnswerStyle, answer_markdown

ADAPTIVE_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION: Version = "1.4"
MESSAGECARD_CONTEXT = "http://schema.org/extensions"
# Teams refuses a message over about 28 KB: text is kept well under it.
MESSAGE_TEXT_MAX = 12000
TITLE_MAX = 300
SUMMARY_MAX = 2000
FIELD_MAX = 200
MAX_TIMELINE_ENTRIES = 30
MAX_LISTED_INCIDENTS = 30
# What a button's data carries, so the ingress knows a click of ours.
SUBMIT_MARKER = "chatops"

SEVERITY_COLOR: dict[Severity, TextColor] = {
    Severity.SEV1: "Attention",
    Severity.SEV2: "Warning",
    Severity.SEV3: "Accent",
    Severity.SEV4: "Default",
}
SEVERITY_THEME: dict[Severity, str] = {
    Severity.SEV1: "D13438",
    Severity.SEV2: "CA5010",
    Severity.SEV3: "0078D4",
    Severity.SEV4: "8A8886",
}
BUTTON_STYLE: dict[str, ActionStyle] = {"primary": "positive", "danger": "destructive"}

_MARKDOWN = re.compile(r"([\\`*_\[\]~#|>])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int | None = None) -> str:
    """User text for Teams message Markdown, shown as typed: control characters dropped,
    HTML and Markdown escaped (so ``<at>`` is no mention and ``**`` no bold)."""
    text = _CONTROL.sub("", cut(text, limit) if limit else text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text)


def card_safe(text: str, limit: int | None = None) -> str:
    """User text for an Adaptive Card TextBlock: links broken, control characters dropped.
    (Cards render no HTML; their Markdown is bold, italics, lists and links.)"""
    text = _CONTROL.sub("", cut(text, limit) if limit else text)
    return text.replace("](", "]\u200b(")


def _link(url: str | None) -> str | None:
    return url if url and url.startswith(("http://", "https://")) else None


def submit_data(action: str, incident_id: str, version: int | None) -> dict[str, Any]:
    """The ``data`` of a card button: what the click sends back as the activity's ``value``."""
    data: dict[str, Any] = {SUBMIT_MARKER: 1, "action": action, "incident": incident_id}
    if version is not None:
        data["version"] = version
    return data


def summary_line(card: IncidentCard) -> str:
    """One line for notifications and clients that draw no card."""
    return cut(
        f"{card.headline}: [{card.severity.value}] {card.incident_id} {card.title} ({card.status.value})",
        FIELD_MAX * 2,
    )


def _dump(model: AdaptiveCard) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def incident_card(card: IncidentCard, *, buttons: bool) -> dict[str, Any]:
    """The incident as an Adaptive Card: headline, title, facts, summary, and either
    ``Action.Submit`` buttons (``buttons``: a bot channel) or the commands to type."""
    body: list[CardElement] = [
        TextBlock(
            text=f"{card.headline} · {card.severity.value}",
            weight="Bolder",
            color=SEVERITY_COLOR[card.severity],
            size="Small",
            wrap=True,
        ),
        TextBlock(
            text=card_safe(f"{card.incident_id}: {card.title}", TITLE_MAX),
            weight="Bolder",
            size="Medium",
            wrap=True,
        ),
        FactSet(
            facts=[
                Fact(title="Severity", value=card.severity.value),
                Fact(title="Status", value=card.status.value.capitalize()),
                Fact(title="Commander", value=card_safe(card.commander or "unassigned", FIELD_MAX)),
                Fact(title="Declared", value=age(card.created_at, datetime.now(UTC))),
            ]
        ),
    ]
    if card.summary:
        body.append(TextBlock(text=card_safe(card.summary, SUMMARY_MAX), wrap=True))
    if card.actor:
        body.append(
            TextBlock(text=f"by {card_safe(card.actor, FIELD_MAX)}", is_subtle=True, size="Small", wrap=True)
        )
    actions: list[Any] = []
    if buttons:
        for action in card.actions:
            submit = SubmitAction(
                title=action.label, data=submit_data(action.name, card.incident_id, card.version)
            )
            if action.style:
                submit.style = BUTTON_STYLE[action.style]
            actions.append(submit)
    elif card.actionable:
        typed = " · ".join(card.typed_commands())
        body.append(
            TextBlock(
                text=card_safe(f"Mention the bot to act: {typed}"), is_subtle=True, size="Small", wrap=True
            )
        )
    link = _link(card.url)
    if link:
        actions.append(OpenUrlAction(title=f"Open {card.incident_id}", url=link))
    model = AdaptiveCard(version=CARD_VERSION, body=body, fallback_text=summary_line(card))
    if actions:
        model.actions = actions
    return _dump(model)


def alert_card(card: IncidentCard) -> dict[str, Any]:
    """An alert (an SLA breach, an escalation) as a card of its own, with no buttons: the
    incident's card carries those."""
    body: list[CardElement] = [
        TextBlock(
            text=f"⚠ {card.headline} · {card.severity.value}",
            weight="Bolder",
            color="Attention",
            wrap=True,
        ),
        TextBlock(text=card_safe(f"{card.incident_id}: {card.title}", TITLE_MAX), weight="Bolder", wrap=True),
        TextBlock(text=card_safe(card.summary, SUMMARY_MAX), wrap=True),
    ]
    if card.actor:
        body.append(TextBlock(text=f"by {card_safe(card.actor, FIELD_MAX)}", is_subtle=True, wrap=True))
    model = AdaptiveCard(version=CARD_VERSION, body=body, fallback_text=summary_line(card))
    link = _link(card.url)
    if link:
        model.actions = [OpenUrlAction(title=f"Open {card.incident_id}", url=link)]
    return _dump(model)


def text_card(heading: str | None, text: str) -> dict[str, Any]:
    """A card carrying an answer's text (an answer posted to a channel's incoming webhook)."""
    body: list[CardElement] = []
    if heading:
        body.append(
            TextBlock(text=card_safe(heading, FIELD_MAX * 2), is_subtle=True, size="Small", wrap=True)
        )
    body.append(TextBlock(text=cut(text, MESSAGE_TEXT_MAX), wrap=True))
    return _dump(AdaptiveCard(version=CARD_VERSION, body=body, fallback_text=cut(text, FIELD_MAX)))


def envelope(content: dict[str, Any]) -> dict[str, Any]:
    """An Adaptive Card in the message envelope Workflows and the Bot Connector take."""
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CONTENT_TYPE, "contentUrl": None, "content": content}],
    }


def card_activity(content: dict[str, Any], summary: str) -> dict[str, Any]:
    """A Bot Connector message activity carrying an Adaptive Card; ``summary`` is what
    notifications show."""
    activity = envelope(content)
    activity["summary"] = cut(summary, FIELD_MAX * 2)
    return activity


def text_activity(text: str) -> dict[str, Any]:
    """A Bot Connector message activity of Markdown text."""
    return {"type": "message", "textFormat": "markdown", "text": cut(text, MESSAGE_TEXT_MAX)}


def message_card(card: IncidentCard) -> dict[str, Any]:
    """The incident as a MessageCard for a legacy connector (no buttons: connectors post only)."""
    built = pymsteams.connectorcard(None)
    built.summary(summary_line(card))
    built.title(plain(f"{card.incident_id}: {card.title}", TITLE_MAX))
    built.color(SEVERITY_THEME[card.severity])
    section = pymsteams.cardsection()
    section.activityTitle(f"{card.headline} · {card.severity.value}")
    section.addFact("Status", card.status.value.capitalize())
    section.addFact("Commander", plain(card.commander or "unassigned", FIELD_MAX))
    section.addFact("Declared", age(card.created_at, datetime.now(UTC)))
    if card.actor:
        section.addFact("By", plain(card.actor, FIELD_MAX))
    text = plain(card.summary, SUMMARY_MAX)
    if card.actionable:
        text += "\n\nMention the bot to act: " + " · ".join(plain(c) for c in card.typed_commands())
    section.text(text)
    built.addSection(section)
    link = _link(card.url)
    if link:
        action = pymsteams.potentialaction(f"Open {card.incident_id}", "OpenUri")
        action.addOpenURI(f"Open {card.incident_id}", [{"os": "default", "uri": link}])
        built.addPotentialAction(action)
    return {"@type": "MessageCard", "@context": MESSAGECARD_CONTEXT, **built.payload}


def text_message_card(heading: str | None, text: str) -> dict[str, Any]:
    """An answer's text as a MessageCard (a legacy connector)."""
    built = pymsteams.connectorcard(None)
    built.summary(cut(heading or text, FIELD_MAX))
    if heading:
        built.title(plain(heading, FIELD_MAX * 2))
    built.text(cut(text, MESSAGE_TEXT_MAX))
    return {"@type": "MessageCard", "@context": MESSAGECARD_CONTEXT, **built.payload}


# -- answers ---------------------------------------------------------------------------------


ANSWER_STYLE = AnswerStyle(
    plain=plain,
    max_timeline_entries=MAX_TIMELINE_ENTRIES,
    max_listed_incidents=MAX_LISTED_INCIDENTS,
    title_max=TITLE_MAX,
    actor_max=FIELD_MAX,
    entry_max=300,
    listed_title_max=FIELD_MAX,
    line_break="\n\n",
)


def _commander(incident: Incident) -> str:
    return plain(incident.commander or "unassigned", FIELD_MAX)


def reply_text(reply: Reply) -> str:
    """An answer in Teams Markdown: the text, then the incident, its timeline or a list.

    The answer's own text is the service's (command help uses backticks), so only its HTML is
    escaped (a name in it must not become an ``<at>`` mention); what people typed is escaped
    in full.
    """
    text = _CONTROL.sub("", reply.text).replace("<", "&lt;").replace(">", "&gt;")
    return cut(answer_markdown(reply, text, ANSWER_STYLE, _commander), MESSAGE_TEXT_MAX)


def answer_heading(command: InboundCommand) -> str:
    """Who asked what, above an answer posted to a channel instead of in reply."""
    return cut(f"{command.user.display} ran: {command.text}", FIELD_MAX * 2)


def answer_message(reply: Reply) -> dict[str, Any]:
    """The HTTP answer to an outgoing webhook: a message whose text Teams shows in reply."""
    return {"type": "message", "text": reply_text(reply)}


__all__ = [
    "ADAPTIVE_CONTENT_TYPE",
    "CARD_VERSION",
    "alert_card",
    "answer_heading",
    "answer_message",
    "card_activity",
    "card_safe",
    "envelope",
    "incident_card",
    "message_card",
    "plain",
    "reply_text",
    "submit_data",
    "text_activity",
    "text_card",
    "text_message_card",
]
