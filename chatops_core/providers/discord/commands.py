"""The ``/im`` application command: its definition, and its options back into command text.

Discord shows a command's subcommands and typed options with autocomplete, so ``/im`` is one
CHAT_INPUT command with a subcommand per word of the command language, each with the options
that word takes (https://discord.com/developers/docs/interactions/application-commands).
An invocation arrives as ``data.options[0] = {type: 1, name, options: [...]}`` and
:func:`command_text` writes it back as the text the grammar reads: ``declare`` with
``severity: sev2`` and ``title: Database timeouts`` is ``declare sev2 Database timeouts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatops_core.access.roles import Role
from chatops_core.commands.grammar import TITLE_MAX_LENGTH, CommandName

COMMAND_NAME = "im"
# Option types (application command option type).
SUB_COMMAND = 1
STRING = 3
INTEGER = 4
USER = 6
# Command types and contexts.
CHAT_INPUT = 1
GUILD_CONTEXT = 0
DESCRIPTION_MAX = 100
NOTE_MAX = 4000

_SEVERITY_CHOICES = [{"name": f"SEV-{n}", "value": f"sev{n}"} for n in range(1, 5)]
_INCIDENT = {
    "type": STRING,
    "name": "incident",
    "description": "Incident id, e.g. INC-12 (left out inside the incident's own channel)",
    "required": False,
    "max_length": 40,
}


def _note(description: str, required: bool = False) -> dict[str, Any]:
    return {
        "type": STRING,
        "name": "note",
        "description": description,
        "required": required,
        "max_length": NOTE_MAX,
    }


def _severity(description: str, required: bool = False) -> dict[str, Any]:
    return {
        "type": STRING,
        "name": "severity",
        "description": description,
        "required": required,
        "choices": _SEVERITY_CHOICES,
    }


# Each subcommand: description and options, in the order their values are written.
SUBCOMMANDS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    CommandName.DECLARE: (
        "Declare a new incident (a form opens without a title)",
        [
            {
                "type": STRING,
                "name": "title",
                "description": "What is wrong, e.g. Database timeouts",
                "required": False,
                "max_length": TITLE_MAX_LENGTH,
            },
            _severity("SEV-3 unless you choose"),
        ],
    ),
    CommandName.ACK: ("Acknowledge an incident; you become commander if it has none", [_INCIDENT]),
    CommandName.MITIGATE: ("Mark an incident mitigated", [_INCIDENT, _note("What was done")]),
    CommandName.RESOLVE: ("Mark an incident resolved", [_INCIDENT, _note("The resolution")]),
    CommandName.CLOSE: ("Close a resolved incident", [_INCIDENT]),
    CommandName.REOPEN: ("Reopen a resolved or closed incident", [_INCIDENT]),
    CommandName.STATUS: ("Show an incident and its timeline (only to you)", [_INCIDENT]),
    CommandName.LIST: (
        "List incidents, newest first (only to you)",
        [
            {
                "type": STRING,
                "name": "filter",
                "description": "Open incidents (default) or all",
                "required": False,
                "choices": [{"name": "open", "value": "open"}, {"name": "all", "value": "all"}],
            },
            _severity("Only this severity"),
        ],
    ),
    CommandName.ESCALATE: (
        "Raise an incident's severity (one step unless you choose)",
        [_INCIDENT, _severity("The new severity")],
    ),
    CommandName.ASSIGN: (
        "Make someone the incident commander",
        [
            {"type": USER, "name": "user", "description": "The new commander", "required": True},
            _INCIDENT,
        ],
    ),
    CommandName.NOTE: ("Add a note to an incident's timeline", [_note("The note", required=True), _INCIDENT]),
    CommandName.JOIN: ("Join an incident's channel", [_INCIDENT]),
    CommandName.LEAVE: ("Leave an incident's channel", [_INCIDENT]),
    CommandName.ROLE: (
        "Give someone a role, which says what they may do (admins only)",
        [
            {"type": USER, "name": "user", "description": "Who gets the role", "required": True},
            {
                "type": STRING,
                "name": "role",
                "description": "viewer < responder < manager < admin",
                "required": True,
                "choices": [{"name": role.value, "value": role.value} for role in Role],
            },
        ],
    ),
    CommandName.HELP: (
        "How to use every command, or one of them",
        [
            {
                "type": STRING,
                "name": "command",
                "description": "The command to explain",
                "required": False,
                "choices": [{"name": word.value, "value": word.value} for word in CommandName],
            }
        ],
    ),
}

# The order option values are written in the command text (the grammar's order).
_TEXT_ORDER: dict[str, tuple[str, ...]] = {
    CommandName.DECLARE: ("severity", "title"),
    CommandName.LIST: ("filter", "severity"),
    CommandName.ESCALATE: ("incident", "severity"),
    CommandName.ASSIGN: ("incident", "user"),
    CommandName.NOTE: ("incident", "note"),
    CommandName.MITIGATE: ("incident", "note"),
    CommandName.RESOLVE: ("incident", "note"),
    CommandName.ROLE: ("user", "role"),
    CommandName.HELP: ("command",),
}
PRIVATE_WORDS = frozenset(
    {CommandName.STATUS.value, CommandName.LIST.value, CommandName.HELP.value, CommandName.ROLE.value}
)


def definition() -> dict[str, Any]:
    """The ``/im`` command as registered (one entry of a bulk overwrite)."""
    options = []
    for word, (description, opts) in SUBCOMMANDS.items():
        # Required options first, as Discord requires.
        ordered = sorted(opts, key=lambda o: not o.get("required", False))
        options.append(
            {
                "type": SUB_COMMAND,
                "name": str(word),
                "description": description[:DESCRIPTION_MAX],
                "options": ordered,
            }
        )
    return {
        "name": COMMAND_NAME,
        "type": CHAT_INPUT,
        "description": "Run incidents: declare, ack, resolve, status, list...",
        "contexts": [GUILD_CONTEXT],
        "options": options,
    }


def subcommand(data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The subcommand of an invocation and its options by name (values as sent)."""
    options = data.get("options")
    if not isinstance(options, list) or not options or not isinstance(options[0], Mapping):
        return "", {}
    first = options[0]
    if first.get("type") != SUB_COMMAND or not isinstance(first.get("name"), str):
        return "", {}
    values: dict[str, Any] = {}
    for option in first.get("options") or []:
        if isinstance(option, Mapping) and isinstance(option.get("name"), str):
            values[option["name"]] = option.get("value")
    return str(first["name"]), values


def _word(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return " ".join(value.split()) if isinstance(value, str) else ""


def command_text(word: str, values: Mapping[str, Any]) -> str:
    """The command-language text of subcommand ``word`` with option ``values``.

    A USER option becomes the mention form the grammar reads (``<@id>``).
    """
    order = _TEXT_ORDER.get(word, ("incident",))
    parts = [word]
    for name in order:
        value = values.get(name)
        if name == "user":
            text = f"<@{value}>" if isinstance(value, str) and value.isdigit() else _word(value)
        elif name == "incident" and word == CommandName.NOTE and values.get("incident") is None:
            text = ""
        else:
            text = _word(value)
        if text:
            parts.append(text)
    return " ".join(parts)
