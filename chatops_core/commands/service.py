"""Carrying out a parsed command against the incident store.

The service changes the store and says what must happen next (answer, announce, create
the incident's channel, invite someone). It calls no chat platform: the worker carries out
those effects through the provider, so each step can be retried on its own.

Every command, typed, clicked, submitted in a form or asked in a mention, first passes the
access policy (:func:`authorize`): the caller is a person in the store, and a command their
role does not allow raises :class:`~chatops_core.access.NotAllowed` before anything changes,
its message saying the role it needs and who can grant it (answered only to them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatops_core.access import NotAllowed, Role, decide
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
from chatops_core.store.people import KnownPerson

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

# Commands that act on no incident; every other one names one (or is typed in its channel).
_NO_INCIDENT = frozenset({CommandName.HELP, CommandName.DECLARE, CommandName.LIST, CommandName.ROLE})
# Admins named in a refusal, at most.
_ADMINS_NAMED = 5


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
    # What the audit record says beyond the command word (a grant: to whom, which role).
    audit_reason: str | None = None


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
        incident = None if name in _NO_INCIDENT else self._target(command, parsed)
        person = authorize(self.store, command, name.value, incident, granting=parsed.role)
        if name is CommandName.HELP:
            return Outcome(reply=Reply(text=help_text(parsed.topic, root=command.command)))
        if name is CommandName.DECLARE:
            return self._declare(command, parsed, actor, at, create_channels, description)
        if name is CommandName.LIST:
            return self._list(parsed)
        if name is CommandName.ROLE:
            return self._role(command, parsed, person, at)
        assert incident is not None
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

    def _role(
        self, command: InboundCommand, parsed: ParsedCommand, granter: KnownPerson, at: datetime
    ) -> Outcome:
        """``role <@user> <role>``: grant the role (it overrides ``[access.roles]``)."""
        assert parsed.role is not None and parsed.user is not None
        target = self._someone(command, parsed.user)
        if target.id == granter.id:
            raise CommandError(
                "You cannot change your own role in chat: ask another admin, or an operator "
                "(`chatops users grant`)."
            )
        by = f"{granter.display_name} ({command.instance}:{command.user.user_id})"
        before = self.store.role_of(target)
        self.store.grant(target.id, parsed.role, granted_by=by, at=at)
        return Outcome(
            reply=Reply(text=f"{target.display_name} is now {parsed.role.article}."),
            audit_reason=(
                f"granted {target.display_name} (person {target.id}) the {parsed.role.value} role "
                f"(was {before.value})"
            ),
        )

    def _someone(self, command: InboundCommand, user: str) -> KnownPerson:
        """The person ``user`` (a platform mention, or a plain ``@name``) names on the
        command's platform; a plain name must belong to someone seen there already."""
        found = _person(command, user)
        if found is not None and found.user_id is not None:
            name = found.display if found.display != found.user_id else None
            return self.store.person_for(found.instance or command.instance, found.user_id, name)
        known = self.store.person_named(command.instance, user)
        if known is None:
            raise CommandError(
                f"I do not know {user} on this platform yet: they need to have used "
                f"`{command.command}` here once (or an operator can use `chatops users grant`)."
            )
        return known

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


def authorize(
    store: IncidentStore,
    command: InboundCommand,
    word: str,
    incident: Incident | None,
    *,
    granting: Role | None = None,
) -> KnownPerson:
    """The person behind ``command``, when the policy lets them run ``word`` (on ``incident``);
    :class:`~chatops_core.access.NotAllowed` otherwise, saying the role it needs and who can
    grant it. Changes nothing but making the person known (on first use)."""
    user = command.user
    person = store.person_for(command.instance, user.user_id, user.user_name, user.email)
    role = store.role_of(person)
    commands = incident is not None and person.is_identity(
        incident.commander_instance, incident.commander_user_id
    )
    decision = decide(role, word, commands, store.access.command_roles(), granting=granting)
    if decision.allowed:
        return person
    admins = [p.display_name for p in store.admins() if p.id != person.id]
    if len(admins) > _ADMINS_NAMED:
        admins = [*admins[:_ADMINS_NAMED], "…"]
    who = f": {', '.join(admins)}" if admins else ""
    raise NotAllowed(
        f"{decision.reason} An admin can grant it{who} with "
        f"`{command.command} role @you {decision.needed_role.value}`.",
        needed=decision.needed_role.value,
        role=role.value,
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
