"""The command language: the text that follows the root command, parsed.

``/im declare sev2 Database timeouts`` reaches :func:`parse_command` as
``declare sev2 Database timeouts`` and comes back as a :class:`ParsedCommand`. Parsing is
pure: no I/O, no knowledge of any platform beyond the mention forms users type. Wrong input
raises :class:`~chatops_core.errors.UnknownCommand` or
:class:`~chatops_core.errors.InvalidArguments` whose message is shown to the user as is and
always says what to type instead.

The spec is the section "The command language" of the external contract.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chatops_core.access.roles import ROLE_NAMES, Role
from chatops_core.errors import InvalidArguments, UnknownCommand
from chatops_core.models import INCIDENT_ID_RE, Severity

DEFAULT_ROOT = "/im"
TITLE_MAX_LENGTH = 200
NOTE_MAX_LENGTH = 4000
_ECHO_MAX_LENGTH = 40  # how much of a bad token an error message quotes back


class CommandName(StrEnum):
    """The words that may follow the root command."""

    DECLARE = "declare"
    ACK = "ack"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    STATUS = "status"
    LIST = "list"
    ESCALATE = "escalate"
    ASSIGN = "assign"
    NOTE = "note"
    JOIN = "join"
    LEAVE = "leave"
    ROLE = "role"
    HELP = "help"


class ParsedCommand(BaseModel):
    """A command as typed, checked for form but not against any incident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: CommandName
    incident: int | None = Field(default=None, ge=1)
    """Incident number (``INC-12`` gives 12); None when left out."""
    severity: Severity | None = None
    """``declare`` and ``escalate`` target, ``list`` filter; None when left out."""
    text: str | None = None
    """``declare`` title, ``mitigate``/``resolve`` note, ``note`` text."""
    user: str | None = None
    """``assign`` and ``role`` target: ``<@U123ABC>`` for a platform mention, ``@alice`` for a plain one."""
    role: Role | None = None
    """``role``: the role to give."""
    scope: Literal["open", "all"] = "open"
    """``list``: open incidents only, or all of them."""
    topic: str | None = None
    """``help``: the command asked about (a :class:`CommandName` value), or None."""


USAGE: dict[CommandName, str] = {
    CommandName.DECLARE: "declare [sev1..sev4] <title>",
    CommandName.ACK: "ack [id]",
    CommandName.MITIGATE: "mitigate [id] [note]",
    CommandName.RESOLVE: "resolve [id] [note]",
    CommandName.CLOSE: "close [id]",
    CommandName.REOPEN: "reopen [id]",
    CommandName.STATUS: "status [id]",
    CommandName.LIST: "list [open|all] [sev1..sev4]",
    CommandName.ESCALATE: "escalate [id] [sev1..sev4]",
    CommandName.ASSIGN: "assign [id] <@user>",
    CommandName.NOTE: "note [id] <text>",
    CommandName.JOIN: "join [id]",
    CommandName.LEAVE: "leave [id]",
    CommandName.ROLE: "role <@user> <viewer|responder|manager|admin>",
    CommandName.HELP: "help [command]",
}

_SUMMARY: dict[CommandName, str] = {
    CommandName.DECLARE: "declare a new incident (SEV-3 unless you give a severity)",
    CommandName.ACK: "acknowledge an open incident; you become its commander if it has none",
    CommandName.MITIGATE: "mark an incident mitigated, with an optional note",
    CommandName.RESOLVE: "mark an incident resolved; the note becomes its resolution",
    CommandName.CLOSE: "close a resolved incident",
    CommandName.REOPEN: "reopen a resolved or closed incident",
    CommandName.STATUS: "show an incident and its latest timeline entries (only to you)",
    CommandName.LIST: "list incidents, newest first (only to you); open ones unless you say `all`",
    CommandName.ESCALATE: "raise an incident's severity, one step unless you give one",
    CommandName.ASSIGN: "make someone the incident commander",
    CommandName.NOTE: "add a note to an incident's timeline",
    CommandName.JOIN: "join an incident's channel",
    CommandName.LEAVE: "leave an incident's channel",
    CommandName.ROLE: "give someone a role, which says what they may do (admins only)",
    CommandName.HELP: "show how to use every command, or one of them",
}

_EXAMPLE: dict[CommandName, str] = {
    CommandName.DECLARE: "declare sev2 Database timeouts",
    CommandName.ACK: "ack INC-12",
    CommandName.MITIGATE: "mitigate INC-12 Failed over to the replica",
    CommandName.RESOLVE: "resolve INC-12 Connection pool size raised",
    CommandName.CLOSE: "close INC-12",
    CommandName.REOPEN: "reopen INC-12",
    CommandName.STATUS: "status INC-12",
    CommandName.LIST: "list all sev1",
    CommandName.ESCALATE: "escalate INC-12 sev1",
    CommandName.ASSIGN: "assign INC-12 @alice",
    CommandName.NOTE: "note INC-12 Rolled back the 10:40 deploy",
    CommandName.JOIN: "join INC-12",
    CommandName.LEAVE: "leave INC-12",
    CommandName.ROLE: "role @alice manager",
    CommandName.HELP: "help declare",
}

ID_FORMS = "`INC-12`, `inc-12`, `#12` or `12`"
SEVERITY_FORMS = "`sev1`..`sev4`, `SEV-1`, `p1`..`p4`, `critical`"

_SEVERITY_CODE_RE = re.compile(r"(?:sev-?|p)([1-4])", re.IGNORECASE)
# A word written like a severity, whether or not it names one: sev0, p7, SEV-9.
_SEVERITY_LIKE_RE = re.compile(r"(?:sev-?|p)[0-9]+", re.IGNORECASE)
# Only unambiguous words: "declare High latency on checkout" is a title, not a SEV-2.
_SEVERITY_WORDS: dict[str, Severity] = {
    "critical": Severity.SEV1,
}
# Something the user meant as an id even though it is not a valid one: INC-0, #x, inc12, 0.
_ID_ATTEMPT_RE = re.compile(r"(?:inc-|inc\d|#|\d).*", re.IGNORECASE)
# Platform mentions: Slack's escaped <@U123ABC> / <@U123ABC|alice>, Discord's <@123> / <@!123>.
PLATFORM_MENTION_RE = re.compile(r"<@!?([A-Za-z0-9]+)(?:\|[^<>]*)?>")
_PLAIN_MENTION_RE = re.compile(r"@[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
BROADCAST_NAMES = frozenset({"here", "channel", "everyone", "all"})
# A <...> group is one token even when a mention label holds spaces.
_TOKEN_RE = re.compile(r"<[^<>\s][^<>]*>|\S+")


def _normalise(token: str) -> str:
    """Fold width variants (fullwidth letters, digits, ``＃``) onto ASCII and strip."""
    return unicodedata.normalize("NFKC", token).strip()


def parse_incident_ref(token: str) -> int | None:
    """The incident number in ``INC-12``, ``inc-12``, ``#12`` or ``12``; None if not an id.

    Numbers start at 1, so ``INC-0`` is not an id.
    """
    token = _normalise(token)
    if not token.isascii():  # \d would also accept other scripts' digits
        return None
    match = INCIDENT_ID_RE.fullmatch(token)
    if match is None:
        return None
    number = int(match.group(1))
    return number if number >= 1 else None


DEFAULT_SEVERITY = Severity.SEV3


def severity_word(severity: Severity) -> str:
    """The command-language word for a severity: ``sev1`` ... ``sev4``."""
    return f"sev{severity.rank}"


SEVERITY_WORDS = frozenset(severity_word(severity) for severity in Severity)


def parse_severity(token: str) -> Severity | None:
    """The severity a token names, case-insensitively; None if it names none.

    ``sev1``, ``SEV-1``, ``p1`` and ``critical`` are SEV-1; ``sev2``/``SEV-2``/``p2`` SEV-2,
    and so on to 4.
    """
    token = _normalise(token)
    if not token.isascii():
        return None
    match = _SEVERITY_CODE_RE.fullmatch(token)
    if match is not None:
        return Severity(f"SEV-{match.group(1)}")
    return _SEVERITY_WORDS.get(token.lower())


def _parse_user(token: str) -> str | None:
    """A mention in normal form (``<@U123ABC>`` or ``@alice``), or None."""
    match = PLATFORM_MENTION_RE.fullmatch(token)
    if match is not None:
        return f"<@{match.group(1)}>"
    if _PLAIN_MENTION_RE.fullmatch(token) and token[1:].lower() not in BROADCAST_NAMES:
        return token
    return None


# --- messages ----------------------------------------------------------------------------


def _clip(text: str) -> str:
    """User text fit to quote inside backticks in an answer: no backticks, not too long."""
    text = text.replace("`", "'")
    if len(text) > _ECHO_MAX_LENGTH:
        text = text[: _ECHO_MAX_LENGTH - 1] + "…"
    return text


def _echo(token: str) -> str:
    return f"`{_clip(token)}`"


def _usage(name: CommandName) -> str:
    return f"Usage: `{DEFAULT_ROOT} {USAGE[name]}`, e.g. `{DEFAULT_ROOT} {_EXAMPLE[name]}`."


def _command_list() -> str:
    return ", ".join(f"`{name.value}`" for name in CommandName)


def _suggest(word: str) -> CommandName | None:
    """The command a mistyped word obviously stands for, if one does."""
    names = [name.value for name in CommandName]
    # "acknowledge", "resolved", "notes": a command word with something added.
    prefixed = [name for name in names if len(name) >= 3 and word.startswith(name)]
    if len(prefixed) == 1:
        return CommandName(prefixed[0])
    scored = sorted(
        ((difflib.SequenceMatcher(None, word, name).ratio(), name) for name in names), reverse=True
    )
    (best_score, best), (second_score, _) = scored[0], scored[1]
    if best_score >= 0.7 and best_score - second_score >= 0.15:
        return CommandName(best)
    return None


def _unknown_command(word: str, rest: str) -> UnknownCommand:
    folded = _normalise(word).casefold()
    number = parse_incident_ref(word)
    severity = parse_severity(word)
    if number is not None:
        hint = f" To see that incident, type `{DEFAULT_ROOT} status INC-{number}`."
    elif severity is not None:
        title = _clip(" ".join(rest.split())) or "<title>"
        hint = f" To declare an incident, type `{DEFAULT_ROOT} declare {folded} {title}`."
    elif (suggestion := _suggest(folded)) is not None:
        hint = f" Did you mean `{suggestion.value}`?"
    else:
        hint = ""
    return UnknownCommand(
        f"{_echo(word)} is not a command.{hint} Commands: {_command_list()}. "
        f"Type `{DEFAULT_ROOT} help` for how to use them.",
        word=word,
    )


def _bad_id(name: CommandName, token: str) -> InvalidArguments:
    return InvalidArguments(
        f"{_echo(token)} is not a valid incident id. Write the id as {ID_FORMS}, "
        f"e.g. `{DEFAULT_ROOT} {name.value} INC-12`.",
        token=token,
    )


def title_problem(title: str) -> str | None:
    """What is wrong with an incident title typed into a form, in words for the person; None
    when it will do (the form's answer on every platform)."""
    if not title:
        return "Give the incident a title."
    if len(title) > TITLE_MAX_LENGTH:
        return f"Keep the title to {TITLE_MAX_LENGTH} characters or fewer (this one has {len(title)})."
    return None


def _too_long(what: str, length: int, limit: int, name: CommandName) -> InvalidArguments:
    return InvalidArguments(
        f"The {what} is {length} characters long; keep it to {limit} or fewer. {_usage(name)}"
    )


# --- one parser per command --------------------------------------------------------------


def _not_a_severity(token: str, example: str) -> InvalidArguments:
    return InvalidArguments(
        f"{_echo(token)} is not a severity. Use {SEVERITY_FORMS} (SEV-1 the most severe), "
        f"e.g. `{DEFAULT_ROOT} {example}`.",
        token=token,
    )


def _parse_declare(name: CommandName, rest: str) -> ParsedCommand:
    words = rest.split()
    severity = parse_severity(words[0]) if words else None
    if severity is not None:
        words = words[1:]
    elif words and _SEVERITY_LIKE_RE.fullmatch(_normalise(words[0])):
        # "declare sev5 X" meant a severity; quietly making it a SEV-3 titled "sev5 X" is wrong.
        title = _clip(" ".join(words[1:])) or "Database timeouts"
        raise _not_a_severity(words[0], f"{name.value} sev2 {title}")
    title = " ".join(words)
    if not title:
        raise InvalidArguments(f"Give the incident a title: `{DEFAULT_ROOT} {_EXAMPLE[name]}`.")
    if len(title) > TITLE_MAX_LENGTH:
        raise _too_long("title", len(title), TITLE_MAX_LENGTH, name)
    return ParsedCommand(name=name, severity=severity, text=title)


def _parse_optional_id(name: CommandName, rest: str) -> ParsedCommand:
    tokens = rest.split()
    if not tokens:
        return ParsedCommand(name=name)
    if len(tokens) > 1:
        raise InvalidArguments(f"`{name.value}` takes at most an incident id. {_usage(name)}")
    number = parse_incident_ref(tokens[0])
    if number is None:
        raise _bad_id(name, tokens[0])
    return ParsedCommand(name=name, incident=number)


def _split_id(rest: str) -> tuple[int | None, str]:
    """The leading incident id, if the first word is one, and the text after it."""
    parts = rest.split(maxsplit=1)
    number = parse_incident_ref(parts[0]) if parts else None
    if number is None:
        return None, rest.strip()
    return number, parts[1].strip() if len(parts) > 1 else ""


def _parse_optional_note(name: CommandName, rest: str) -> ParsedCommand:
    number, note = _split_id(rest)
    if len(note) > NOTE_MAX_LENGTH:
        raise _too_long("note", len(note), NOTE_MAX_LENGTH, name)
    return ParsedCommand(name=name, incident=number, text=note or None)


def _parse_note(name: CommandName, rest: str) -> ParsedCommand:
    number, text = _split_id(rest)
    if not text:
        ref = f"INC-{number}" if number is not None else "INC-12"
        raise InvalidArguments(
            f"Write the note after the command: `{DEFAULT_ROOT} note {ref} Rolled back the 10:40 deploy` "
            f"(the id may be left out inside the incident's channel)."
        )
    if len(text) > NOTE_MAX_LENGTH:
        raise _too_long("note", len(text), NOTE_MAX_LENGTH, name)
    return ParsedCommand(name=name, incident=number, text=text)


def _parse_list(name: CommandName, rest: str) -> ParsedCommand:
    scope: Literal["open", "all"] | None = None
    severity: Severity | None = None
    for token in rest.split():
        word = _normalise(token).casefold()
        if word in ("open", "all"):
            if scope is not None:
                raise InvalidArguments(f"Give `open` or `all`, not both. {_usage(name)}")
            scope = "open" if word == "open" else "all"
        elif (found := parse_severity(token)) is not None:
            if severity is not None:
                raise InvalidArguments(f"Give one severity at most. {_usage(name)}")
            severity = found
        else:
            raise InvalidArguments(
                f"`list` does not understand {_echo(token)}: give `open` or `all` and a severity "
                f"({SEVERITY_FORMS}). {_usage(name)}",
                token=token,
            )
    return ParsedCommand(name=name, scope=scope or "open", severity=severity)


def _parse_escalate(name: CommandName, rest: str) -> ParsedCommand:
    number: int | None = None
    severity: Severity | None = None
    tokens = rest.split()
    if len(tokens) > 2:
        raise InvalidArguments(f"`escalate` takes an incident id and a severity at most. {_usage(name)}")
    for token in tokens:
        if (found_number := parse_incident_ref(token)) is not None:
            if number is not None:
                raise InvalidArguments(f"Escalate one incident at a time. {_usage(name)}")
            number = found_number
        elif (found_severity := parse_severity(token)) is not None:
            if severity is not None:
                raise InvalidArguments(f"Give one severity at most. {_usage(name)}")
            severity = found_severity
        elif _ID_ATTEMPT_RE.fullmatch(token):
            raise _bad_id(name, token)
        else:
            raise InvalidArguments(
                f"{_echo(token)} is neither an incident id ({ID_FORMS}) nor a severity "
                f"({SEVERITY_FORMS}). {_usage(name)}",
                token=token,
            )
    return ParsedCommand(name=name, incident=number, severity=severity)


def _parse_assign(name: CommandName, rest: str) -> ParsedCommand:
    tokens = _TOKEN_RE.findall(rest)
    if len(tokens) > 2:
        raise InvalidArguments(f"`assign` takes an incident id and one person. {_usage(name)}")
    number: int | None = None
    user: str | None = None
    for token in tokens:
        if (found_number := parse_incident_ref(token)) is not None:
            if number is not None:
                raise InvalidArguments(f"Assign one incident at a time. {_usage(name)}")
            number = found_number
        elif (found_user := _parse_user(token)) is not None:
            if user is not None:
                raise InvalidArguments(f"An incident has one commander; mention one person. {_usage(name)}")
            user = found_user
        elif _ID_ATTEMPT_RE.fullmatch(token):
            raise _bad_id(name, token)
        else:
            raise InvalidArguments(
                f"{_echo(token)} is not a person. Mention who should command the incident, "
                f"e.g. `{DEFAULT_ROOT} {_EXAMPLE[name]}`.",
                token=token,
            )
    if user is None:
        ref = f"INC-{number}" if number is not None else "INC-12"
        raise InvalidArguments(f"Say who should command the incident: `{DEFAULT_ROOT} assign {ref} @alice`.")
    return ParsedCommand(name=name, incident=number, user=user)


_ROLE_WORDS = frozenset(role.value for role in Role)


def _parse_role(name: CommandName, rest: str) -> ParsedCommand:
    tokens = _TOKEN_RE.findall(rest)
    user: str | None = None
    role: Role | None = None
    for token in tokens:
        word = _normalise(token).casefold()
        if word in _ROLE_WORDS:
            if role is not None:
                raise InvalidArguments(f"Give one role. {_usage(name)}")
            role = Role(word)
        elif (found_user := _parse_user(token)) is not None:
            if user is not None:
                raise InvalidArguments(f"Give a role to one person at a time. {_usage(name)}")
            user = found_user
        else:
            raise InvalidArguments(
                f"{_echo(token)} is neither a person nor a role. Mention the person and give one of "
                f"{ROLE_NAMES}, e.g. `{DEFAULT_ROOT} {_EXAMPLE[name]}`.",
                token=token,
            )
    if user is None or role is None:
        missing = "who gets the role" if user is None else f"which role: {ROLE_NAMES}"
        raise InvalidArguments(f"Say {missing}. {_usage(name)}")
    return ParsedCommand(name=name, user=user, role=role)


def _help_topic(token: str) -> CommandName:
    word = _normalise(token).casefold()
    try:
        return CommandName(word)
    except ValueError:
        suggestion = _suggest(word)
        hint = f" Did you mean `{suggestion.value}`?" if suggestion is not None else ""
        raise InvalidArguments(
            f"There is no command {_echo(token)} to explain.{hint} Commands: {_command_list()}. "
            f"Type `{DEFAULT_ROOT} help` for all of them.",
            token=token,
        ) from None


def _parse_help(name: CommandName, rest: str) -> ParsedCommand:
    tokens = rest.split()
    if not tokens:
        return ParsedCommand(name=name)
    if len(tokens) > 1:
        raise InvalidArguments(f"Ask about one command at a time. {_usage(name)}")
    return ParsedCommand(name=name, topic=_help_topic(tokens[0]).value)


_PARSERS: dict[CommandName, Callable[[CommandName, str], ParsedCommand]] = {
    CommandName.DECLARE: _parse_declare,
    CommandName.ACK: _parse_optional_id,
    CommandName.MITIGATE: _parse_optional_note,
    CommandName.RESOLVE: _parse_optional_note,
    CommandName.CLOSE: _parse_optional_id,
    CommandName.REOPEN: _parse_optional_id,
    CommandName.STATUS: _parse_optional_id,
    CommandName.LIST: _parse_list,
    CommandName.ESCALATE: _parse_escalate,
    CommandName.ASSIGN: _parse_assign,
    CommandName.NOTE: _parse_note,
    CommandName.JOIN: _parse_optional_id,
    CommandName.LEAVE: _parse_optional_id,
    CommandName.ROLE: _parse_role,
    CommandName.HELP: _parse_help,
}


def _strip_controls(text: str) -> str:
    """Drop control characters other than whitespace (NUL, escape sequences...)."""
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc")


def parse_command(text: str) -> ParsedCommand:
    """Parse what follows the root command, e.g. ``declare sev2 Database timeouts``.

    Empty text asks for help. Command words are case-insensitive.

    Raises:
        UnknownCommand: the first word is not a command.
        InvalidArguments: the command's arguments do not fit its usage.
    """
    parts = _strip_controls(text).split(maxsplit=1)
    if not parts:
        return ParsedCommand(name=CommandName.HELP)
    word, rest = parts[0], parts[1] if len(parts) > 1 else ""
    try:
        name = CommandName(_normalise(word).casefold())
    except ValueError:
        raise _unknown_command(word, rest) from None
    return _PARSERS[name](name, rest)


def _hints(name: CommandName) -> list[str]:
    lines = []
    if "[id]" in USAGE[name]:
        lines.append(
            f"The id may be written {ID_FORMS}; inside the incident's own channel you can leave it out."
        )
    if "sev" in USAGE[name]:
        lines.append(f"A severity may be written {SEVERITY_FORMS}.")
    return lines


def help_text(topic: str | None = None, root: str = DEFAULT_ROOT) -> str:
    """Usage of every command, or of the one named by ``topic``.

    Raises:
        InvalidArguments: ``topic`` names no command.
    """
    if topic is not None:
        name = _help_topic(topic)
        lines = [
            f"`{root} {USAGE[name]}`: {_SUMMARY[name]}.",
            f"Example: `{root} {_EXAMPLE[name]}`",
            *_hints(name),
        ]
        return "\n".join(lines)
    lines = [f"Run incidents with `{root} <command>`:"]
    lines += [f"• `{root} {USAGE[name]}`: {_SUMMARY[name]}" for name in CommandName]
    lines += [
        f"Incident ids: {ID_FORMS}; inside an incident's own channel you can leave the id out.",
        f"Severities: {SEVERITY_FORMS}.",
        f"Type `{root} help <command>` for more on one command, e.g. `{root} help declare`.",
    ]
    return "\n".join(lines)
