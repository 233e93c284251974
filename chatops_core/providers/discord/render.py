"""Discord messages: answers as Markdown content, the incident card as an embed with buttons,
and the modals (forms).

The card (https://discord.com/developers/docs/resources/message#embed-object) carries the
severity as the embed's colour, the status, the commander (``<@id>`` on the instance they
came from, their name elsewhere), the age as a Discord timestamp (``<t:…:R>``, which every
client shows as "5 minutes ago" and keeps current), and the link. Buttons
(https://discord.com/developers/docs/components/reference#button) sit in one action row;
each ``custom_id`` holds the action, the incident and the card's version (at most 100
characters). Limits kept here: content 2000 characters, embed title 256, description 4096,
field value 1024, footer 2048, at most 25 fields and 6000 characters per embed.

Every message is sent with ``allowed_mentions: {"parse": []}``, so nothing in it pings
anyone; text from users is escaped so it reads as typed.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from chatops_core.cards import IncidentCard
from chatops_core.commands.grammar import DEFAULT_SEVERITY, TITLE_MAX_LENGTH, severity_word
from chatops_core.models import Incident, Reply, Severity
from chatops_core.providers.render import AnswerStyle, answer_markdown

CONTENT_MAX = 2000
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
CUSTOM_ID_MAX = 100
MODAL_TITLE_MAX = 45
MAX_TIMELINE_ENTRIES = 15
MAX_LISTED_INCIDENTS = 20
EPHEMERAL = 1 << 6
NO_MENTIONS: dict[str, Any] = {"parse": []}

# Component types and button styles.
ACTION_ROW = 1
BUTTON = 2
STRING_SELECT = 3
TEXT_INPUT = 4
USER_SELECT = 5
LABEL = 18
PRIMARY, SECONDARY, SUCCESS, DANGER, LINK = 1, 2, 3, 4, 5
SHORT, PARAGRAPH = 1, 2

SEVERITY_COLOURS = {
    Severity.SEV1: 0xD32F2F,
    Severity.SEV2: 0xF57C00,
    Severity.SEV3: 0xFBC02D,
    Severity.SEV4: 0x1976D2,
}
SEVERITY_EMOJI = {Severity.SEV1: "🔴", Severity.SEV2: "🟠", Severity.SEV3: "🟡", Severity.SEV4: "🔵"}
_STYLES = {"primary": PRIMARY, "danger": DANGER}

# custom_id: "im|<what>|<incident>|<version>".
PREFIX = "im"
FORM = "form"  # a button that opens a form afresh: im|form|declare or im|form|resolve|INC-7
MODAL_DECLARE = "im|modal|declare"
MODAL_RESOLVE = "im|modal|resolve"
TITLE_FIELD, SEVERITY_FIELD, DESCRIPTION_FIELD, NOTE_FIELD = "title", "severity", "description", "note"
REF_MARK = "ref "
# The card's menus: a severity (runs ``escalate <id> <sevN>``) and a commander (``assign``).
SEVERITY_MENU, COMMANDER_MENU = "severity", "commander"

_MARKDOWN = re.compile(r"([\\`*_~|>\[\]()<])")
# Markup that counts only at the start of a line: headings, lists, block quotes.
_LINE_START = re.compile(r"^([#>-])", re.MULTILINE)
_MASS_MENTION = re.compile(r"@(everyone|here)\b", re.IGNORECASE)
_SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def defuse(text: str) -> str:
    """``@everyone``/``@here`` broken with a zero-width space (they ping nobody anyway)."""
    return _MASS_MENTION.sub(lambda m: "@\u200b" + m.group(1), text)


def plain(text: str, limit: int | None = None) -> str:
    """User text shown as typed: Markdown escaped, mass mentions defused."""
    escaped = defuse(_LINE_START.sub(r"\\\1", _MARKDOWN.sub(r"\\\1", text)))
    return cut(escaped, limit) if limit else escaped


def delivery_ref(key: str) -> str:
    """A short digest of a delivery key, kept in the card's footer to find the post again."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def ref_in(message: dict[str, Any]) -> str | None:
    """The delivery digest a posted card's footer carries, if any."""
    for embed in message.get("embeds") or []:
        footer = (embed.get("footer") or {}).get("text") if isinstance(embed, dict) else None
        if isinstance(footer, str) and REF_MARK in footer:
            return footer.rsplit(REF_MARK, 1)[1].strip()
    return None


# -- custom ids --------------------------------------------------------------------------
def action_id(action: str, incident_id: str, version: int | None) -> str:
    """The ``custom_id`` of a card button: action, incident and the card's version."""
    value = f"{PREFIX}|{action}|{incident_id}|{version or 0}"
    if len(value) > CUSTOM_ID_MAX:
        raise ValueError("custom_id over 100 characters")
    return value


def parse_custom_id(custom_id: str) -> tuple[str, str | None, int | None]:
    """``(what, incident, version)`` of a ``custom_id`` made here; ``("", None, None)`` else."""
    parts = custom_id.split("|")
    if len(parts) < 2 or parts[0] != PREFIX:
        return "", None, None
    incident = parts[2] if len(parts) > 2 and parts[2] else None
    version: int | None = None
    if len(parts) > 3 and parts[3].isdigit() and int(parts[3]) >= 1:
        version = int(parts[3])
    return parts[1], incident, version


def commander(card: IncidentCard | Incident, instance: str) -> str:
    name = card.commander
    if not name:
        return "_unassigned_"
    user_id = card.commander_user_id
    if card.commander_instance == instance and user_id and _SNOWFLAKE.match(user_id):
        return f"<@{user_id}>"
    return plain(name, 200)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(moment: datetime) -> str:
    """A Discord timestamp that each client shows as the time since (``<t:…:R>``)."""
    return f"<t:{int(_aware(moment).timestamp())}:R>"


def _link(url: str | None) -> str | None:
    return url if url and url.startswith(("http://", "https://")) and len(url) <= 512 else None


def card_text(card: IncidentCard) -> str:
    """The card's one line: the message content, shown in notifications."""
    return cut(
        f"{SEVERITY_EMOJI[card.severity]} **{card.headline}**: {plain(card.incident_id)} "
        f"{plain(card.title, 300)} ({card.status.value})",
        CONTENT_MAX,
    )


def card_embed(card: IncidentCard, *, instance: str, ref: str | None = None) -> dict[str, Any]:
    footer = [card.incident_id]
    if card.actor:
        footer.append(f"by {cut(card.actor, 100)}")
    if ref:
        footer.append(f"{REF_MARK}{ref}")
    embed: dict[str, Any] = {
        "author": {"name": cut(card.headline, 256)},
        "title": cut(f"{card.incident_id}: {card.title}", EMBED_TITLE_MAX),
        "description": plain(card.summary, 2000) if card.summary else "",
        "color": SEVERITY_COLOURS[card.severity],
        "fields": [
            {
                "name": "Severity",
                "value": f"{SEVERITY_EMOJI[card.severity]} {card.severity.value}",
                "inline": True,
            },
            {"name": "Status", "value": card.status.value.capitalize(), "inline": True},
            {"name": "Commander", "value": cut(commander(card, instance), FIELD_VALUE_MAX), "inline": True},
            {"name": "Declared", "value": age(card.created_at), "inline": True},
        ],
        "footer": {"text": cut(" · ".join(footer), FOOTER_MAX)},
        "timestamp": _aware(card.created_at).astimezone(UTC).isoformat(),
    }
    link = _link(card.url)
    if link:
        embed["url"] = link
    if not card.actions and not card.external and card.status.is_active:
        embed["description"] = (
            embed["description"] + "\n\nType " + ", ".join(f"`/im {line}`" for line in card.typed_commands())
        ).strip()
    return embed


def card_components(card: IncidentCard) -> list[dict[str, Any]]:
    """An action row with a button per action the card offers and the incident's link; while
    the card can act, a severity menu and a commander menu (a user select) below it."""
    buttons: list[dict[str, Any]] = [
        {
            "type": BUTTON,
            "style": _STYLES.get(action.style or "", SECONDARY),
            "label": action.label,
            "custom_id": action_id(action.name, card.incident_id, card.version),
        }
        for action in card.actions
    ]
    link = _link(card.url)
    if link and buttons:
        buttons.append(
            {"type": BUTTON, "style": LINK, "label": f"Open {cut(card.incident_id, 70)}", "url": link}
        )
    if not buttons:
        return []
    rows: list[dict[str, Any]] = [{"type": ACTION_ROW, "components": buttons[:5]}]
    if card.severities:
        severity_menu = {
            "type": STRING_SELECT,
            "custom_id": action_id(SEVERITY_MENU, card.incident_id, card.version),
            "placeholder": f"Severity: {card.severity.value}",
            "options": [
                {"label": sev.value, "value": severity_word(sev), "default": sev == card.severity}
                for sev in card.severities
            ],
        }
        commander_menu = {
            "type": USER_SELECT,
            "custom_id": action_id(COMMANDER_MENU, card.incident_id, card.version),
            "placeholder": "Commander",
        }
        rows += [
            {"type": ACTION_ROW, "components": [severity_menu]},
            {"type": ACTION_ROW, "components": [commander_menu]},
        ]
    return rows


def card_message(card: IncidentCard, *, instance: str, ref: str | None = None) -> dict[str, Any]:
    """The whole message body of a card (content, embed, buttons, no pings)."""
    return {
        "content": card_text(card),
        "embeds": [card_embed(card, instance=instance, ref=ref)],
        "components": card_components(card),
        "allowed_mentions": NO_MENTIONS,
    }


def alert_message(card: IncidentCard, card_link: str | None, *, ref: str | None = None) -> dict[str, Any]:
    """An alert (an SLA breach, an escalation) as a message of its own; ``ref`` (a delivery
    digest) goes in its embed's footer, to find it again."""
    lines = [
        f"🚨 **{card.headline}** · {SEVERITY_EMOJI[card.severity]} {card.severity.value}",
        f"**{plain(card.incident_id)}: {plain(card.title, 600)}**",
    ]
    if card.summary:
        lines.append(plain(card.summary, 1000))
    extra = []
    link = _link(card.url)
    if link:
        extra.append(f"[Open {plain(card.incident_id)}]({link})")
    if card_link:
        extra.append(f"[Incident card]({card_link})")
    if extra:
        lines.append(" · ".join(extra))
    body: dict[str, Any] = {"content": cut("\n".join(lines), CONTENT_MAX), "allowed_mentions": NO_MENTIONS}
    if ref:
        footer = f"{card.incident_id} · {REF_MARK}{ref}"
        body["embeds"] = [
            {
                "title": cut(f"{card.incident_id}: {card.title}", EMBED_TITLE_MAX),
                "color": SEVERITY_COLOURS[card.severity],
                "footer": {"text": cut(footer, FOOTER_MAX)},
            }
        ]
    return body


# -- answers -----------------------------------------------------------------------------
ANSWER_STYLE = AnswerStyle(
    plain=plain,
    max_timeline_entries=MAX_TIMELINE_ENTRIES,
    max_listed_incidents=MAX_LISTED_INCIDENTS,
    description_max=500,
    actor_max=80,
    entry_max=200,
    listed_title_max=100,
    severity_marks=SEVERITY_EMOJI,
    when=age,
)


def reply_content(reply: Reply, instance: str) -> str:
    """An answer in Markdown (at most 2000 characters): the text, the incident, its
    timeline or a list. The answer's own text is the service's, so it is only defused."""

    def named(incident: Incident) -> str:
        return commander(incident, instance)

    return cut(answer_markdown(reply, defuse(reply.text), ANSWER_STYLE, named), CONTENT_MAX)


def reply_message(reply: Reply, instance: str, *, ephemeral: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"content": reply_content(reply, instance), "allowed_mentions": NO_MENTIONS}
    if ephemeral:
        body["flags"] = EPHEMERAL
    return body


def offer_form_message(text: str, form: str, incident_id: str | None) -> dict[str, Any]:
    """A private message with a button that opens ``form``."""
    custom_id = f"{PREFIX}|{FORM}|{form}" + (f"|{incident_id}" if incident_id else "")
    return {
        "content": text,
        "flags": EPHEMERAL,
        "allowed_mentions": NO_MENTIONS,
        "components": [
            {
                "type": ACTION_ROW,
                "components": [
                    {"type": BUTTON, "style": PRIMARY, "label": "Open the form", "custom_id": custom_id[:100]}
                ],
            }
        ],
    }


# -- modals ------------------------------------------------------------------------------
def _input(
    custom_id: str, label: str, style: int, *, required: bool, max_length: int, value: str = ""
) -> dict[str, Any]:
    field: dict[str, Any] = {
        "type": TEXT_INPUT,
        "custom_id": custom_id,
        "label": label,
        "style": style,
        "required": required,
        "max_length": max_length,
    }
    if value:
        field["value"] = value
    return {"type": ACTION_ROW, "components": [field]}


def declare_modal(severity: str | None = None, title: str = "") -> dict[str, Any]:
    """The declare form: title, severity (a word: sev1..sev4) and description."""
    return {
        "custom_id": MODAL_DECLARE,
        "title": "Declare an incident",
        "components": [
            _input(TITLE_FIELD, "Title", SHORT, required=True, max_length=TITLE_MAX_LENGTH + 50, value=title),
            _input(
                SEVERITY_FIELD,
                "Severity (sev1 to sev4)",
                SHORT,
                required=False,
                max_length=10,
                value=severity or severity_word(DEFAULT_SEVERITY),
            ),
            _input(DESCRIPTION_FIELD, "Description", PARAGRAPH, required=False, max_length=2000),
        ],
    }


def resolve_modal(incident_id: str, version: int | None) -> dict[str, Any]:
    """The resolve form: the resolution note."""
    custom_id = f"{MODAL_RESOLVE}|{incident_id}|{version or 0}"
    return {
        "custom_id": custom_id[:CUSTOM_ID_MAX],
        "title": cut(f"Resolve {incident_id}", MODAL_TITLE_MAX),
        "components": [_input(NOTE_FIELD, "Resolution", PARAGRAPH, required=False, max_length=2000)],
    }
