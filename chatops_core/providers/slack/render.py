"""Block Kit messages for replies and incident announcements.

Built with :mod:`slack_sdk.models.blocks` (https://docs.slack.dev/reference/block-kit/blocks)
and returned as plain dicts ready for ``chat.postMessage`` or a ``response_url``. Every
message also has a ``text`` fallback, shown in notifications and by clients that cannot
draw blocks.

Text from users (titles, summaries, notes) is escaped as Slack asks, so a title such as
``<!channel>`` cannot ping a whole channel
(https://docs.slack.dev/messaging/formatting-message-text/#escaping-text). Lengths are
kept under Block Kit's limits: 150 characters for a header, 3000 for a section, 2000 for
a field, 50 blocks a message.

An incident's card is rendered from the neutral :class:`~chatops_core.cards.IncidentCard`:
its buttons are the actions the card says the incident's state allows, with a severity menu
and a commander menu beside them. Each names the incident (button ``value``, block
``block_id``; see :mod:`.actions`), so a click needs nothing else to find it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from chatops_core.cards import IncidentCard, age
from chatops_core.models import Incident, Reply, Severity, TimelineEntry
from chatops_core.notifications import Announcement, IncidentSnapshot
from chatops_core.providers.slack import actions
from chatops_core.providers.slack.forms import severity_option

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FALLBACK_MAX = 3000
# The summary's share of its section, beside the headline.
SUMMARY_MAX = SECTION_MAX - 200
MAX_BLOCKS = 50
MAX_TIMELINE_ENTRIES = 40
MAX_LISTED_INCIDENTS = 40

_SEVERITY_EMOJI = {
    Severity.SEV1: ":red_circle:",
    Severity.SEV2: ":large_orange_circle:",
    Severity.SEV3: ":large_yellow_circle:",
    Severity.SEV4: ":large_blue_circle:",
}
# The card's actions, by the name the neutral card gives them.
_ACTION_IDS = {
    "ack": actions.ACK,
    "mitigate": actions.MITIGATE,
    "resolve": actions.RESOLVE,
    "escalate": actions.ESCALATE,
}
_USER_ID_RE = re.compile(r"^([UW][A-Z0-9]{2,})$")
_CHANNEL_ID_RE = re.compile(r"^[CG][A-Z0-9]{2,}$")
_ALERT_EMOJI = ":rotating_light:"
# The severity menu's options as JSON, made once from the forms' own options.
_SEVERITY_OPTIONS: dict[Severity, dict[str, Any]] = {
    severity: severity_option(severity).to_dict() for severity in Severity
}
_USER_MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^<>]*)?>$")


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives a meaning (``&`` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_within(text: str, limit: int) -> str:
    """``text`` escaped (:func:`escape`) in at most ``limit`` characters, cut with an ellipsis
    between characters, never inside an escaped one."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    kept: list[str] = []
    size = 0
    for char in text:
        piece = escape(char)
        if size + len(piece) > limit - 1:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "…"


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def link(url: str, label: str) -> str:
    """A mrkdwn link, or just the label when ``url`` is not http(s)."""
    if not url.startswith(("http://", "https://")):
        return escape(label)
    safe_url = escape(url).replace("|", "%7C")
    return f"<{safe_url}|{escape(label).replace('|', '/')}>"


def user_id(who: str | None) -> str | None:
    """The Slack user id in ``U123``, ``<@U123>`` or ``<@U123|name>``; None for anything else."""
    if not who:
        return None
    match = _USER_ID_RE.match(who) or _USER_MENTION_RE.match(who)
    return match.group(1) if match else None


def person(who: str | None) -> str:
    """A Slack mention for a user id (or a mention of one), the escaped name otherwise."""
    if not who:
        return "_unassigned_"
    found = user_id(who)
    return f"<@{found}>" if found else escape(who)


def commander(incident: Incident | IncidentSnapshot | IncidentCard, instance: str | None) -> str:
    """The incident's commander: a mention on the workspace ``instance`` they came from, their
    escaped name anywhere else.

    A commander known only by text (from the incident system, or stored before people were
    kept with their instance) is shown as :func:`person` shows any name.
    """
    if incident.commander_user_id:
        if instance is not None and incident.commander_instance == instance:
            return f"<@{incident.commander_user_id}>"
        return escape(incident.commander or incident.commander_user_id)
    return person(incident.commander)


def commander_user_id(
    incident: Incident | IncidentSnapshot | IncidentCard, instance: str | None
) -> str | None:
    """The commander's user id on the workspace ``instance``, if they are one of its users."""
    if incident.commander_user_id:
        return incident.commander_user_id if incident.commander_instance == instance else None
    return user_id(incident.commander)


def when(moment: datetime) -> str:
    """A date Slack shows in the reader's own time zone, with a UTC fallback."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    fallback = aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def since(moment: datetime, now: datetime) -> str:
    """A relative date Slack keeps current in the reader's client (``{ago}``), with the age
    at rendering time as its fallback.

    https://docs.slack.dev/messaging/formatting-message-text/#date-formatting
    """
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"<!date^{int(aware.timestamp())}^{{ago}}|{age(aware, now)}>"


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_mrkdwn(truncate(text, SECTION_MAX)))


def _fields(pairs: Iterable[tuple[str, str]]) -> SectionBlock:
    return SectionBlock(
        fields=[_mrkdwn(truncate(f"*{label}*\n{value}", FIELD_MAX)) for label, value in pairs]
    )


def _chunked_sections(lines: list[str]) -> list[Block]:
    """Pack lines into as few sections as the 3000-character limit allows."""
    blocks: list[Block] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = truncate(line, SECTION_MAX)
        if current and size + len(line) + 1 > SECTION_MAX:
            blocks.append(_section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        blocks.append(_section("\n".join(current)))
    return blocks


def _status(incident: Incident) -> str:
    return incident.status.value.capitalize()


def _incident_fields(incident: Incident, instance: str | None = None) -> SectionBlock:
    pairs = [
        ("Severity", f"{_SEVERITY_EMOJI[incident.severity]} {incident.severity.value}"),
        ("Status", incident.status.value.capitalize()),
        ("Commander", commander(incident, instance)),
        ("ID", escape(incident.id)),
    ]
    if incident.channel_id and incident.platform in (None, "slack"):
        pairs.append(("Channel", channel_mention(incident.channel_id)))
    return _fields(pairs)


def _card_fields(card: IncidentCard, instance: str | None = None) -> dict[str, Any]:
    pairs = [
        ("Severity", f"{_SEVERITY_EMOJI[card.severity]} {card.severity.value}"),
        ("Status", card.status.value.capitalize()),
        ("Commander", commander(card, instance)),
        ("ID", escape(card.incident_id)),
    ]
    if card.channel_id:
        pairs.append(("Channel", channel_mention(card.channel_id)))
    return {
        "type": "section",
        "fields": [_mrkdwn_json(truncate(f"*{label}*\n{value}", FIELD_MAX)) for label, value in pairs],
    }


def channel_mention(channel_id: str) -> str:
    """A channel link for a Slack channel id; any other text is shown escaped, never as markup."""
    return f"<#{channel_id}>" if _CHANNEL_ID_RE.match(channel_id) else escape(channel_id)


def incident_blocks(incident: Incident, instance: str | None = None) -> list[Block]:
    """A summary of one incident: title, the key facts, description and resolution.

    ``instance`` is the workspace shown to (its users are mentioned, others named).
    """
    blocks: list[Block] = [
        _section(f"*{escape(incident.id)}: {escape(incident.title)}*"),
        _incident_fields(incident, instance),
    ]
    if incident.description:
        blocks.append(_section(escape(incident.description)))
    if incident.resolution:
        blocks.append(_section(f"*Resolution:* {escape(incident.resolution)}"))
    facts = [f"Declared {when(incident.created_at)}"]
    if incident.declared_by:
        facts[0] += f" by {person(incident.declared_by)}"
    facts.append(f"updated {when(incident.updated_at)}")
    blocks.append(ContextBlock(elements=[_mrkdwn(", ".join(facts))]))
    return blocks


def timeline_blocks(entries: list[TimelineEntry]) -> list[Block]:
    """The most recent timeline entries, one line each."""
    shown = entries[-MAX_TIMELINE_ENTRIES:]
    lines = [
        f"{when(entry.at)} *{escape(entry.kind.value.replace('_', ' '))}* "
        f"{person(entry.actor)}: {escape(entry.text)}"
        for entry in shown
    ]
    if len(entries) > len(shown):
        lines.insert(0, f"_{len(entries) - len(shown)} earlier entries not shown_")
    return [_section("*Timeline*"), *_chunked_sections(lines)]


def incident_list_blocks(incidents: list[Incident], instance: str | None = None) -> list[Block]:
    """One line per incident."""
    shown = incidents[:MAX_LISTED_INCIDENTS]
    lines = [
        f"{_SEVERITY_EMOJI[inc.severity]} *{escape(inc.id)}* {inc.severity.value} · {_status(inc)} · "
        f"{escape(inc.title)} · {commander(inc, instance)}"
        for inc in shown
    ]
    if len(incidents) > len(shown):
        lines.append(f"_and {len(incidents) - len(shown)} more_")
    return _chunked_sections(lines)


def reply_text(reply: Reply) -> str:
    """The fallback text of a reply."""
    return truncate(escape(reply.text), FALLBACK_MAX)


def reply_blocks(reply: Reply, instance: str | None = None) -> list[dict[str, Any]]:
    """Blocks for an answer to a command, shown on the workspace ``instance``."""
    blocks: list[Block] = [_section(escape(reply.text))]
    if reply.incident is not None:
        blocks += [DividerBlock(), *incident_blocks(reply.incident, instance)]
    if reply.timeline:
        blocks += [DividerBlock(), *timeline_blocks(reply.timeline)]
    if reply.incidents:
        blocks += [DividerBlock(), *incident_list_blocks(reply.incidents, instance)]
    return _finish(blocks)


def card_text(card: IncidentCard) -> str:
    """The fallback text of an incident card (also what notifications show)."""
    text = (
        f"{card.headline}: [{card.severity.value}] {card.incident_id} {card.title} ({card.status.value})"
        f" — {card.summary}"
    )
    return escape_within(text, FALLBACK_MAX)


def card_blocks(
    card: IncidentCard, *, now: datetime | None = None, instance: str | None = None
) -> list[dict[str, Any]]:
    """An incident card in Block Kit: title, severity, status, commander, id, link, summary,
    the incident's age and the card's controls (:func:`card_controls`).

    ``now`` is the moment the age is measured from (the current time by default);
    ``instance`` is the workspace the card is posted on (its users are mentioned, others named).

    Every notification renders one, so it is built as the JSON Block Kit documents rather
    than through :mod:`slack_sdk.models` (whose validation of each object costs more than
    the rest of the card): the same JSON, with the same limits kept by :func:`truncate` and
    :func:`escape_within`. The tests hold every card shape to the models' validation.
    """
    summary = escape_within(card.summary, SUMMARY_MAX)
    header = truncate(f"{card.incident_id}: {card.title}", HEADER_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        _section_json(f"{_SEVERITY_EMOJI[card.severity]} *{card.headline}* · {summary}"),
        _card_fields(card, instance),
    ]
    context: list[str] = []
    if card.url:
        context.append(link(card.url, f"Open {card.incident_id}"))
    if card.actor:
        context.append(f"by {_actor(card)}")
    context.append(f"declared {since(card.created_at, now or datetime.now(UTC))}")
    blocks.append({"type": "context", "elements": [_mrkdwn_json(" · ".join(context))]})
    controls = card_controls(card, instance)
    if controls is not None:
        blocks.append(controls)
    return blocks


def _mrkdwn_json(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section_json(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn_json(truncate(text, SECTION_MAX))}


def _plain_json(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _actor(card: IncidentCard) -> str:
    """Who made the change: a person in chat as :func:`person` shows them (a mention for a
    user id); a name the incident system sent, escaped, never a mention."""
    who = card.actor or ""
    return escape(who) if card.external else person(who)


def actor(announcement: Announcement) -> str:
    """Who made the change in ``announcement``, as :func:`_actor` shows it."""
    return _actor(IncidentCard.of(announcement))


def alert_text(announcement: Announcement) -> str:
    """The text of an alert (an SLA breach, an escalation): what notifications show."""
    card = IncidentCard.of(announcement)
    return escape_within(
        f"{card.headline}: [{card.severity.value}] {card.incident_id} {card.title} — {card.summary}",
        FALLBACK_MAX,
    )


def alert_blocks(announcement: Announcement) -> list[dict[str, Any]]:
    """Blocks for an alert posted beside the incident's card: what happened, to which incident,
    the link and who did it; no controls (those stay on the card)."""
    card = IncidentCard.of(announcement)
    lines = [
        f"{_ALERT_EMOJI} *{card.headline}* · {_SEVERITY_EMOJI[card.severity]} {card.severity.value}",
        f"*{escape_within(card.incident_id, 200)}: {escape_within(card.title, 600)}*",
        escape_within(card.summary, 2000),
    ]
    context: list[str] = []
    if card.url:
        context.append(link(card.url, f"Open {card.incident_id}"))
    if card.actor:
        context.append(f"by {_actor(card)}")
    blocks: list[Block] = [_section("\n".join(lines))]
    if context:
        blocks.append(ContextBlock(elements=[_mrkdwn(" · ".join(context))]))
    return _finish(blocks)


def card_controls(card: IncidentCard, instance: str | None = None) -> dict[str, Any] | None:
    """The card's buttons and menus (an ``actions`` block), or None when the card offers no action.

    One button per action of the card (which the incident's state allows), then a severity
    menu showing the current severity, and a commander menu. Buttons carry the incident id as
    their ``value``; the block's ``block_id`` carries it for the menus
    (https://docs.slack.dev/reference/block-kit/blocks/actions-block).
    """
    if not card.actions:
        return None
    elements: list[dict[str, Any]] = []
    for action in card.actions:
        button = {
            "type": "button",
            "text": _plain_json(action.label),
            "action_id": _ACTION_IDS[action.name],
            "value": card.incident_id,
        }
        if action.style is not None:
            button["style"] = action.style
        elements.append(button)
    if card.severities:
        elements.append(
            {
                "type": "static_select",
                "action_id": actions.SEVERITY,
                "placeholder": _plain_json("Severity"),
                "options": [_severity_option_json(severity) for severity in card.severities],
                "initial_option": _severity_option_json(card.severity),
            }
        )
    assign: dict[str, Any] = {
        "type": "users_select",
        "action_id": actions.ASSIGN,
        "placeholder": _plain_json("Commander"),
    }
    chosen = commander_user_id(card, instance)
    if chosen:
        assign["initial_user"] = chosen
    elements.append(assign)
    return {
        "type": "actions",
        "block_id": actions.block_id(card.incident_id, card.version),
        "elements": elements,
    }


def _severity_option_json(severity: Severity) -> dict[str, Any]:
    # A copy: no two places in a message share an object a caller might change.
    option = _SEVERITY_OPTIONS[severity]
    return {**option, "text": {**option["text"]}}


def offer_form_blocks(text: str, form: str, incident_id: str | None) -> list[dict[str, Any]]:
    """A line of text and an "Open the form" button (``im:open_form``, value: the form's name).

    The block's ``block_id`` names the incident, when there is one, as on the card.
    """
    button = ButtonElement(
        text=PlainTextObject(text="Open the form"), action_id=actions.OPEN_FORM, value=form, style="primary"
    )
    block_id = actions.block_id(incident_id) if incident_id else None
    return _finish([_section(escape(text)), ActionsBlock(block_id=block_id, elements=[button])])


def _finish(blocks: list[Block]) -> list[dict[str, Any]]:
    # to_dict() validates each block against Block Kit's limits.
    return [block.to_dict() for block in blocks[:MAX_BLOCKS]]
