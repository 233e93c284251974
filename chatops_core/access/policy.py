"""Who may run which command: one pure function, :func:`decide`.

The rules, in full:

- Each command word needs a least role: ``[access.commands]`` names it, else the default
  (``status``, ``list``, ``help``, ``join``, ``leave``: viewer; ``close``, ``reopen``:
  manager; ``role``: admin; every other word: responder).
- A person's role is what a grant says (``/im role``, ``chatops users grant``); without a
  grant, the highest role ``[access.roles]`` gives any of their platform users or their
  e-mail address; else ``default_role``. A grant overrides the configuration both ways: it
  can raise or lower someone the file names, until it is revoked. (The store works this out:
  :meth:`~chatops_core.store.people.PeopleRecords.role_of`.)
- An incident's commander counts as a manager on that incident.
- ``role`` cannot give anyone a role above the granter's own (it matters only when
  ``[access.commands]`` lets less than an admin run it).

Buttons, forms and mentions are the command words they stand for, under the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chatops_core.access.roles import Role
from chatops_core.access.settings import DEFAULT_COMMAND_ROLES, DEFAULT_ROLE_OF_A_WORD
from chatops_core.errors import CommandError


@dataclass(frozen=True)
class Decision:
    """Whether a person may run a command, the role it takes, and why (in words for them)."""

    allowed: bool
    needed_role: Role
    reason: str


class NotAllowed(CommandError):
    """A command refused by the policy; ``message`` is the answer shown (only) to the person."""

    code = "not_allowed"


def least_role(command_word: str, commands: Mapping[str, Role] = DEFAULT_COMMAND_ROLES) -> Role:
    """The least role ``command_word`` needs under ``commands`` (word -> role)."""
    return commands.get(command_word, DEFAULT_COMMAND_ROLES.get(command_word, DEFAULT_ROLE_OF_A_WORD))


def decide(
    person_role: Role,
    command_word: str,
    incident_commander_is_person: bool,
    commands: Mapping[str, Role] = DEFAULT_COMMAND_ROLES,
    *,
    granting: Role | None = None,
) -> Decision:
    """May someone holding ``person_role`` run ``command_word``?

    ``incident_commander_is_person``: the command acts on an incident this person commands
    (then they count as a manager there). ``commands`` maps words to their least role (the
    defaults for words it leaves out). ``granting``: for ``role``, the role being given.
    """
    needed = least_role(command_word, commands)
    acting = max(person_role, Role.MANAGER) if incident_commander_is_person else person_role
    if acting < needed:
        return Decision(
            allowed=False,
            needed_role=needed,
            reason=f"`{command_word}` needs the {needed.value} role (you are {person_role.article}).",
        )
    if granting is not None and granting > person_role:
        return Decision(
            allowed=False,
            needed_role=granting,
            reason=(
                f"You cannot give anyone a role above your own: `{granting.value}` needs the "
                f"{granting.value} role (you are {person_role.article})."
            ),
        )
    if acting > person_role and person_role < needed:
        reason = f"`{command_word}` needs the {needed.value} role; the incident's commander counts as one."
    else:
        reason = f"`{command_word}` needs the {needed.value} role (you are {person_role.article})."
    return Decision(allowed=True, needed_role=needed, reason=reason)
