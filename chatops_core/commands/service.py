"""Carrying out a parsed command against the incident store.

The service changes the store and says what must happen next (answer, announce, create
the incident's channel, invite someone). It calls no chat platform: the worker carries out
those effects through the provider, so each step can be retried on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatops_core.commands.grammar import (
    DEFAULT_SEVERITY,
    PLATFORM_MENTION_RE,
    CommandName,
    ParsedCommand,
    help_text,
)
from chatops_core.errors import CommandError, MissingIncidentId
from chatops_core.models import InboundCommand, Incident, NotificationType, Person, Reply, utcnow
from chatops_core.state import Action
from chatops_core.store import Applied, IncidentStore

_ACTIONS: dict[CommandName, Action] = {
    CommandName.ACK: Action.ACK,
    CommandName.MITIGATE: Action.MITIGATE,
    CommandName.RESOLVE: Action.RESOLVE,
    CommandName.CLOSE: Action.CLOSE,
    CommandName.REOPEN: Action.REOPEN,
    CommandName.ESCALATE: Action.ESCALATE,
    CommandName.ASSIGN: Action.ASSIGN,
    CommandName.NOTE: Action.NOTE,
}

STATUS_TIMELINE_ENTRIES = 10


@dataclass
class Outcome:
    """The result of a command and the effects still to carry out."""

    reply: Reply
    incident: Incident | None = None
    notification: NotificationType | None = None
    summary: str | None = None
    create_channel: bool = False
    invite: str | None = None
    kick: str | None = None
    archive: bool = False
    # A new commander (by user id) to bring into the incident's own channel.
    commander_to_invite: str | None = None
    replayed: bool = False


class CommandService:
    def __init__(self, store: IncidentStore) -> None:
        self.store = store

    def execute(
        self,
        command: InboundCommand,
        parsed: ParsedCommand,
        *,
        create_channels: bool = False,
        archive_on_close: bool = False,
        description: str | None = None,
        now: datetime | None = None,
    ) -> Outcome:
        """Run ``parsed`` for ``command``; raise :class:`CommandError` for wrong input."""
        at = now or utcnow()
        actor = command.user.display
        name = parsed.name
        if name is CommandName.HELP:
            return Outcome(reply=Reply(text=help_text(parsed.topic, root=command.command)))
        if name is CommandName.DECLARE:
            return self._declare(command, parsed, actor, at, create_channels, description)
        if name is CommandName.LIST:
            return self._list(parsed)
        incident = self._target(command, parsed)
        if name is CommandName.STATUS:
            entries = self.store.timeline(incident.number, limit=STATUS_TIMELINE_ENTRIES)
            return Outcome(
                reply=Reply(text=_describe(incident), incident=incident, timeline=entries), incident=incident
            )
        if name in (CommandName.JOIN, CommandName.LEAVE):
            if not incident.channel_id:
                raise CommandError(f"{incident.id} has no channel of its own to {name.value}.")
            if incident.instance and incident.instance != command.instance:
                # Only the platform that holds the channel can let someone in or out of it.
                raise CommandError(
                    f"{incident.id}'s channel #{incident.channel_name or incident.channel_id} is on "
                    f"{incident.instance}: {name.value} it there."
                )
            joining = name is CommandName.JOIN
            return Outcome(
                reply=Reply(text=f"You {name.value} {incident.id}'s channel."),
                incident=incident,
                invite=command.user.user_id if joining else None,
                kick=None if joining else command.user.user_id,
            )
        action = _ACTIONS[name]
        caller = Person(instance=command.instance, user_id=command.user.user_id, display=actor)
        applied = self.store.apply(
            incident.number,
            action,
            actor=actor,
            platform=command.platform,
            channel=command.channel_name or command.channel_id,
            at=at,
            note=parsed.text,
            severity=parsed.severity,
            commander=_person(command, parsed.user) if action is Action.ASSIGN else None,
            by=caller,
            key=command.key,
            seen_version=command.card_version,
        )
        outcome = _changed(applied, action)
        outcome.archive = action is Action.CLOSE and archive_on_close
        new = applied.incident
        if (
            new.channel_id
            and not applied.replayed
            and action in (Action.ACK, Action.ASSIGN)
            and new.commander_user_id
            and new.commander_instance == new.instance == command.instance
            and (action is Action.ASSIGN or new.commander_user_id == command.user.user_id)
        ):
            # Only a person of the channel's own platform instance can be brought into it.
            outcome.commander_to_invite = new.commander_user_id
        return outcome

    def _declare(
        self,
        command: InboundCommand,
        parsed: ParsedCommand,
        actor: str,
        at: datetime,
        create_channels: bool,
        description: str | None,
    ) -> Outcome:
        title = parsed.text or ""
        applied = self.store.declare(
            title=title,
            severity=parsed.severity or DEFAULT_SEVERITY,
            actor=actor,
            platform=command.platform,
            instance=command.instance,
            channel=command.channel_name or command.channel_id,
            at=at,
            description=description,
            key=command.key,
        )
        incident = applied.incident
        return Outcome(
            reply=Reply(
                text=f"{incident.id} declared by {actor}: {incident.title} ({incident.severity.value})",
                ephemeral=False,
                incident=incident,
            ),
            incident=incident,
            notification="incident.created",
            summary=f"Declared by {actor}",
            create_channel=create_channels,
            replayed=applied.replayed,
        )

    def _list(self, parsed: ParsedCommand) -> Outcome:
        active_only = parsed.scope == "open"
        incidents = self.store.list(active_only=active_only, severity=parsed.severity)
        sev = f" {parsed.severity.value}" if parsed.severity else ""
        if not incidents:
            text = f"No open{sev} incidents." if active_only else f"No{sev} incidents."
        else:
            count = len(incidents)
            scope = " open" if active_only else ""
            lines = [f"{count}{scope}{sev} incident{'' if count == 1 else 's'}:"]
            lines += [f"• {i.id} [{i.severity.value}] {i.status.value}: {i.title}" for i in incidents]
            text = "\n".join(lines)
        return Outcome(reply=Reply(text=text, incidents=incidents))

    def _target(self, command: InboundCommand, parsed: ParsedCommand) -> Incident:
        if parsed.incident is not None:
            return self.store.get(parsed.incident)
        if command.channel_id:
            found = self.store.find_by_channel(command.instance, command.channel_id)
            if found is not None:
                return found
        raise MissingIncidentId(
            f"Say which incident: `{command.command} {parsed.name.value} INC-12 ...`. "
            "Inside an incident's own channel you can leave the id out."
        )


def _person(command: InboundCommand, user: str | None) -> Person | None:
    """Who ``user`` (the grammar's ``<@U123>`` or ``@alice``) is, as the platform told us.

    A platform mention names a user of the instance the command came from; a plain ``@name``
    is only a name.
    """
    if not user:
        return None
    mention = PLATFORM_MENTION_RE.fullmatch(user)
    if mention is None:
        return Person(display=user)
    user_id = mention.group(1)
    for person in command.mentioned:
        if person.user_id == user_id:
            return person
    return Person(instance=command.instance, user_id=user_id, display=user_id)


def _describe(incident: Incident) -> str:
    commander = incident.commander or "nobody yet"
    return (
        f"{incident.id} [{incident.severity.value}] {incident.status.value}: {incident.title}\n"
        f"Commander: {commander}"
    )


def _changed(applied: Applied, action: Action) -> Outcome:
    incident = applied.incident
    effects = applied.effects
    text = effects.entry_text if effects else f"{incident.id} {action.value}"
    return Outcome(
        reply=Reply(text=f"{incident.id}: {text}", ephemeral=False, incident=incident),
        incident=incident,
        notification=effects.notification if effects else None,
        summary=text,
        replayed=applied.replayed,
    )
