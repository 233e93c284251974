"""What the platforms' renderers share: a command's answer written as Markdown.

Mattermost, Discord and Teams answer a command in Markdown message text: the answer's own
text, then the incident it speaks of, that incident's timeline or a list of incidents. The
lines are built here once; a platform says how it writes them (:class:`AnswerStyle`: how user
text is escaped, how long each part may be, whether a severity shows its emoji, how a time
reads) and how the commander is named, and cuts the whole to its own message limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chatops_core.models import Incident, Reply, Severity, TimelineEntry


def utc_minute(moment: datetime) -> str:
    """A moment as ``2026-01-31 14:05 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class AnswerStyle:
    """How one platform writes an answer's Markdown lines.

    ``plain(text, limit)`` is user text as typed (escaped for the platform, cut at ``limit``
    characters when one is given). The ``*_max`` values are those limits: None leaves a part
    uncut. ``severity_marks`` puts a mark (an emoji) before each severity; ``when`` writes a
    timeline entry's time; ``line_break`` joins the lines of one part of the answer.
    """

    plain: Callable[[str, int | None], str]
    max_timeline_entries: int
    max_listed_incidents: int
    title_max: int | None = None
    description_max: int = 1000
    actor_max: int | None = None
    entry_max: int = 500
    listed_title_max: int = 200
    severity_marks: Mapping[Severity, str] = field(default_factory=dict)
    when: Callable[[datetime], str] = utc_minute
    line_break: str = "\n"

    def mark(self, severity: Severity) -> str:
        """The severity's mark and a space, or nothing."""
        found = self.severity_marks.get(severity)
        return f"{found} " if found else ""


Commander = Callable[[Incident], str]


def incident_lines(incident: Incident, style: AnswerStyle, commander: Commander) -> list[str]:
    """The incident: id and title, severity, status and commander, description, resolution."""
    plain = style.plain
    lines = [
        f"**{plain(incident.id, None)}: {plain(incident.title, style.title_max)}**",
        f"{style.mark(incident.severity)}{incident.severity.value} · "
        f"{incident.status.value.capitalize()} · Commander: {commander(incident)}",
    ]
    if incident.description:
        lines.append(plain(incident.description, style.description_max))
    if incident.resolution:
        lines.append(f"**Resolution:** {plain(incident.resolution, style.description_max)}")
    return lines


def timeline_lines(entries: list[TimelineEntry], style: AnswerStyle) -> list[str]:
    """The latest timeline entries, one line each, saying how many more there were."""
    plain = style.plain
    shown = entries[-style.max_timeline_entries :]
    lines = ["**Timeline**"]
    if len(entries) > len(shown):
        lines.append(f"_{len(entries) - len(shown)} earlier entries not shown_")
    for entry in shown:
        lines.append(
            f"- {style.when(entry.at)} **{entry.kind.value.replace('_', ' ')}** "
            f"{plain(entry.actor, style.actor_max)}: {plain(entry.text, style.entry_max)}"
        )
    return lines


def list_lines(incidents: list[Incident], style: AnswerStyle, commander: Commander) -> list[str]:
    """The first incidents of a list, one line each, saying how many more there were."""
    plain = style.plain
    shown = incidents[: style.max_listed_incidents]
    lines = [
        f"- {style.mark(inc.severity)}**{plain(inc.id, None)}** {inc.severity.value} · "
        f"{inc.status.value.capitalize()} · {plain(inc.title, style.listed_title_max)} · {commander(inc)}"
        for inc in shown
    ]
    if len(incidents) > len(shown):
        lines.append(f"_and {len(incidents) - len(shown)} more_")
    return lines


def answer_markdown(reply: Reply, text: str, style: AnswerStyle, commander: Commander) -> str:
    """The whole answer, uncut: ``text`` (the answer's own text as the platform makes it
    safe), then the incident, its timeline or the list, each part a paragraph."""
    parts = [text]
    if reply.incident is not None:
        parts.append(style.line_break.join(incident_lines(reply.incident, style, commander)))
    if reply.timeline:
        parts.append(style.line_break.join(timeline_lines(reply.timeline, style)))
    if reply.incidents:
        parts.append(style.line_break.join(list_lines(reply.incidents, style, commander)))
    return "\n\n".join(parts)
