"""Mattermost messages: replies in Markdown, and the incident card as a message attachment
with buttons.

Attachments (https://developers.mattermost.com/integrate/reference/message-attachments/)
carry the card: a colour bar for the severity, a title linking to the incident, short
fields (severity, status, commander, declared), the summary, and while the incident is
active, buttons (https://developers.mattermost.com/integrate/plugins/interactive-messages/)
whose ``integration`` points at the instance's webhook URL with a signed context.

Mattermost has no escaping for its Markdown, so text from users (titles, notes,
summaries) is written so it cannot do more than read as text: ``@channel``, ``@all`` and
``@here`` are broken with a zero-width space so they notify nobody, and the characters that
open Markdown markup are backslash-escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chatops_core.cards import IncidentCard, age
from chatops_core.models import Incident, Reply, Severity, TimelineEntry

# A post's message is at most 16383 characters; attachment text is kept well under it.
MESSAGE_MAX = 16000
TEXT_MAX = 3000
TITLE_MAX = 250
FIELD_MAX = 500
MAX_TIMELINE_ENTRIES = 40
MAX_LISTED_INCIDENTS = 40

SEVERITY_COLOURS = {
    Severity.SEV1: "#d32f2f",
    Severity.SEV2: "#f57c00",
    Severity.SEV3: "#fbc02d",
    Severity.SEV4: "#1976d2",
}
SEVERITY_EMOJI = {
    Severity.SEV1: ":red_circle:",
    Severity.SEV2: ":large_orange_circle:",
    Severity.SEV3: ":large_yellow_circle:",
    Severity.SEV4: ":large_blue_circle:",
}
ALERT_EMOJI = ":rotating_light:"
# Mentions that notify a whole channel or team.
_MASS_MENTION = re.compile(r"@(channel|all|here)\b", re.IGNORECASE)
_MARKDOWN = re.compile(r"([\\`*_~\[\]<>#|])")
# A Mattermost username: lowercase letters, digits, '.', '-', '_', starting with a letter.
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")

# The signed context of one button: (action, incident id, version) -> context.
SignContext = Callable[[str, str, int | None], dict[str, Any]]


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def defuse(text: str) -> str:
    """``text`` with channel-wide mentions broken, so a title cannot notify everyone."""
    return _MASS_MENTION.sub(lambda m: "@\u200b" + m.group(1), text)


def plain(text: str, limit: int | None = None) -> str:
    """User text shown as it was typed: Markdown escaped, mass mentions defused."""
    escaped = defuse(_MARKDOWN.sub(r"\\\1", text))
    return cut(escaped, limit) if limit else escaped


def commander(card: IncidentCard | Incident, instance: str) -> str:
    """The commander: ``@username`` (a mention) on the instance they came from, their name
    elsewhere; ``_unassigned_`` when there is none."""
    name = card.commander
    if not name:
        return "_unassigned_"
    if card.commander_instance == instance and card.commander_user_id and _USERNAME.match(name):
        return f"@{name}"
    return plain(name)


def _link(url: str | None) -> str | None:
    return url if url and url.startswith(("http://", "https://")) else None


def card_text(card: IncidentCard) -> str:
    """One line for notifications and clients that do not draw attachments."""
    return cut(
        f"{card.headline}: [{card.severity.value}] {card.incident_id} {defuse(card.title)} "
        f"({card.status.value}) — {defuse(card.summary)}",
        TEXT_MAX,
    )


def card_attachment(
    card: IncidentCard,
    *,
    instance: str,
    now: datetime,
    action_url: str | None,
    sign: SignContext | None,
) -> dict[str, Any]:
    """The incident card as one attachment; with buttons when the card has actions and a
    URL to send their clicks to."""
    fields = [
        {
            "short": True,
            "title": "Severity",
            "value": f"{SEVERITY_EMOJI[card.severity]} {card.severity.value}",
        },
        {"short": True, "title": "Status", "value": card.status.value.capitalize()},
        {"short": True, "title": "Commander", "value": commander(card, instance)},
        {"short": True, "title": "Declared", "value": age(card.created_at, now)},
    ]
    footer = [card.incident_id]
    if card.actor:
        footer.append(f"by {cut(card.actor, 100)}")
    attachment: dict[str, Any] = {
        "fallback": card_text(card),
        "color": SEVERITY_COLOURS[card.severity],
        "pretext": f"**{card.headline}**",
        "title": cut(f"{card.incident_id}: {card.title}", TITLE_MAX),
        "text": plain(card.summary, TEXT_MAX),
        "fields": fields,
        "footer": " · ".join(footer),
    }
    link = _link(card.url)
    if link:
        attachment["title_link"] = link
    if card.actions and action_url and sign is not None:
        attachment["actions"] = [
            {
                "id": action.name,
                "name": action.label,
                "type": "button",
                "style": action.style or "default",
                "integration": {
                    "url": action_url,
                    "context": sign(action.name, card.incident_id, card.version),
                },
            }
            for action in card.actions
        ]
    elif card.actions:
        # No way back for clicks: say what to type instead.
        typed = ", ".join(f"`/im {line}`" for line in card.typed_commands())
        attachment["text"] += f"\n\nType {typed}."
    return attachment


def alert_message(card: IncidentCard, card_link: str | None) -> str:
    """An alert (an SLA breach, an escalation) as a message of its own, linking the card."""
    lines = [
        f"{ALERT_EMOJI} **{card.headline}** · {SEVERITY_EMOJI[card.severity]} {card.severity.value}",
        f"**{plain(card.incident_id)}: {plain(card.title, 600)}**",
        plain(card.summary, 2000),
    ]
    extra = []
    link = _link(card.url)
    if link:
        extra.append(f"[Open {plain(card.incident_id)}]({link})")
    if card_link:
        extra.append(f"[Incident card]({card_link})")
    if card.actor:
        extra.append(f"by {plain(card.actor, 100)}")
    if extra:
        lines.append(" · ".join(extra))
    return "\n".join(lines)


def _incident_lines(incident: Incident, instance: str) -> list[str]:
    lines = [
        f"**{plain(incident.id)}: {plain(incident.title)}**",
        f"{SEVERITY_EMOJI[incident.severity]} {incident.severity.value} · "
        f"{incident.status.value.capitalize()} · Commander: {commander(incident, instance)}",
    ]
    if incident.description:
        lines.append(plain(incident.description, 1000))
    if incident.resolution:
        lines.append(f"**Resolution:** {plain(incident.resolution, 1000)}")
    return lines


def _timeline_lines(entries: list[TimelineEntry]) -> list[str]:
    shown = entries[-MAX_TIMELINE_ENTRIES:]
    lines = ["**Timeline**"]
    if len(entries) > len(shown):
        lines.append(f"_{len(entries) - len(shown)} earlier entries not shown_")
    for entry in shown:
        at = entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f"- {at} **{entry.kind.value.replace('_', ' ')}** {plain(entry.actor)}: {plain(entry.text, 500)}"
        )
    return lines


def _list_lines(incidents: list[Incident], instance: str) -> list[str]:
    shown = incidents[:MAX_LISTED_INCIDENTS]
    lines = [
        f"- {SEVERITY_EMOJI[inc.severity]} **{plain(inc.id)}** {inc.severity.value} · "
        f"{inc.status.value.capitalize()} · {plain(inc.title, 200)} · {commander(inc, instance)}"
        for inc in shown
    ]
    if len(incidents) > len(shown):
        lines.append(f"_and {len(incidents) - len(shown)} more_")
    return lines


def reply_message(reply: Reply, instance: str) -> str:
    """An answer to a command in Markdown: the text, then the incident, its timeline or a list.

    The answer's own text is the service's (command help uses backticks), so it is only
    defused, not escaped.
    """
    parts = [defuse(reply.text)]
    if reply.incident is not None:
        parts.append("\n".join(_incident_lines(reply.incident, instance)))
    if reply.timeline:
        parts.append("\n".join(_timeline_lines(reply.timeline)))
    if reply.incidents:
        parts.append("\n".join(_list_lines(reply.incidents, instance)))
    return cut("\n\n".join(parts), MESSAGE_MAX)


def offer_form_attachment(text: str, action_url: str | None, context: dict[str, Any]) -> dict[str, Any]:
    """A line of text and an "Open the form" button."""
    attachment: dict[str, Any] = {"fallback": text, "text": text}
    if action_url:
        attachment["actions"] = [
            {
                "id": "openform",
                "name": "Open the form",
                "type": "button",
                "style": "primary",
                "integration": {"url": action_url, "context": context},
            }
        ]
    return attachment
