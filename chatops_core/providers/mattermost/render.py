"""Mattermost messages: replies in Markdown, and the incident card as a message attachment
with buttons and menus.

Attachments (https://developers.mattermost.com/integrate/reference/message-attachments/)
carry the card: a colour bar for the severity, a title linking to the incident, short
fields (severity, status, commander, declared), the summary, and while the incident is
active, buttons and two message menus
(https://developers.mattermost.com/integrate/plugins/interactive-messages/): the severities
the card offers, showing the current one, and the team's users to pick a commander from
(``data_source: "users"``). Every one has an ``integration`` pointing at the instance's
webhook URL with a signed context.

A commander is mentioned by username. One chosen in the menu is known by id only until the
worker looks the name up: the renderers take those names (``usernames``: user id to username).

Mattermost has no escaping for its Markdown, so text from users (titles, notes,
summaries) is written so it cannot do more than read as text: ``@channel``, ``@all`` and
``@here`` are broken with a zero-width space so they notify nobody, and the characters that
open Markdown markup are backslash-escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from chatops_core.cards import IncidentCard, age
from chatops_core.commands.grammar import severity_word
from chatops_core.models import Incident, Reply, Severity
from chatops_core.providers.mattermost import actions as card_actions
from chatops_core.providers.render import AnswerStyle, answer_markdown

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


class SignContext(Protocol):
    """The signed context of one button or menu of a card; ``options``: what a static menu
    offers, signed with it."""

    def __call__(
        self, action: str, incident_id: str, version: int | None, options: Sequence[str] = ()
    ) -> dict[str, Any]: ...


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


def commander(
    card: IncidentCard | Incident, instance: str, usernames: Mapping[str, str] | None = None
) -> str:
    """The commander: ``@username`` (a mention) on the instance they came from, their name
    elsewhere; ``_unassigned_`` when there is none.

    A commander of ``instance`` stored by user id only (chosen in the commander menu) is
    mentioned by the username ``usernames`` gives for the id; without one, the stored text is
    shown as it is, never as a mention.
    """
    name = card.commander
    if not name:
        return "_unassigned_"
    user_id = card.commander_user_id
    if card.commander_instance == instance and user_id:
        known = (usernames or {}).get(user_id) or (name if name != user_id else None)
        if known and _USERNAME.match(known):
            return f"@{known}"
    return plain(name)


def needs_username(card: IncidentCard | Incident, instance: str) -> str | None:
    """The user id of a commander of ``instance`` known by id only, whose username the
    card needs to mention them; None otherwise."""
    user_id = card.commander_user_id
    if card.commander_instance == instance and user_id and card.commander == user_id:
        return user_id
    return None


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
    usernames: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The incident card as one attachment; with buttons and menus when the card has actions
    and a URL to send their clicks to."""
    fields = [
        {
            "short": True,
            "title": "Severity",
            "value": f"{SEVERITY_EMOJI[card.severity]} {card.severity.value}",
        },
        {"short": True, "title": "Status", "value": card.status.value.capitalize()},
        {"short": True, "title": "Commander", "value": commander(card, instance, usernames)},
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
        ] + card_menus(card, action_url, sign)
    elif card.actions:
        # No way back for clicks: say what to type instead.
        typed = ", ".join(f"`/im {line}`" for line in card.typed_commands())
        attachment["text"] += f"\n\nType {typed}."
    return attachment


def card_menus(card: IncidentCard, action_url: str, sign: SignContext) -> list[dict[str, Any]]:
    """The card's menus: the severities it offers (showing the current one), whose context
    signs the values offered, then the team's users to choose a commander from."""
    menus: list[dict[str, Any]] = []
    if card.severities:
        offered = [severity_word(severity) for severity in card.severities]
        menu: dict[str, Any] = {
            "id": card_actions.SEVERITY_MENU,
            "name": "Severity",
            "type": "select",
            "options": [
                {"text": severity.value, "value": word}
                for severity, word in zip(card.severities, offered, strict=True)
            ],
            "integration": {
                "url": action_url,
                "context": sign(card_actions.SEVERITY_MENU, card.incident_id, card.version, offered),
            },
        }
        if card.severity in card.severities:
            menu["default_option"] = severity_word(card.severity)
        menus.append(menu)
    menus.append(
        {
            "id": card_actions.COMMANDER_MENU,
            "name": "Commander",
            "type": "select",
            "data_source": "users",
            "integration": {
                "url": action_url,
                "context": sign(card_actions.COMMANDER_MENU, card.incident_id, card.version),
            },
        }
    )
    return menus


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


ANSWER_STYLE = AnswerStyle(
    plain=plain,
    max_timeline_entries=MAX_TIMELINE_ENTRIES,
    max_listed_incidents=MAX_LISTED_INCIDENTS,
    severity_marks=SEVERITY_EMOJI,
)


def reply_message(reply: Reply, instance: str, usernames: Mapping[str, str] | None = None) -> str:
    """An answer to a command in Markdown: the text, then the incident, its timeline or a list.

    The answer's own text is the service's (command help uses backticks), so it is only
    defused, not escaped.
    """

    def named(incident: Incident) -> str:
        return commander(incident, instance, usernames)

    return cut(answer_markdown(reply, defuse(reply.text), ANSWER_STYLE, named), MESSAGE_MAX)


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
