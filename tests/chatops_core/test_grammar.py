"""The command language: ``chatops_core.commands.grammar``."""

from __future__ import annotations

import random
import re

import pytest
from pydantic import ValidationError

from chatops_core.commands import grammar
from chatops_core.commands.grammar import (
    USAGE,
    CommandName,
    ParsedCommand,
    help_text,
    parse_command,
    parse_incident_ref,
    parse_severity,
)
from chatops_core.errors import CommandError, InvalidArguments, UnknownCommand
from chatops_core.models import Severity

ALL_COMMANDS = [name.value for name in CommandName]
ID_COMMANDS = ["ack", "close", "reopen", "status", "join", "leave"]

# Every way the contract lets a user write incident 12.
ID_FORMS = ["INC-12", "inc-12", "Inc-12", "#12", "12"]

# Every severity spelling, with the severity it names.
SEVERITY_FORMS: list[tuple[str, Severity]] = [
    ("sev1", Severity.SEV1),
    ("SEV1", Severity.SEV1),
    ("sev-1", Severity.SEV1),
    ("SEV-1", Severity.SEV1),
    ("Sev-1", Severity.SEV1),
    ("p1", Severity.SEV1),
    ("P1", Severity.SEV1),
    ("critical", Severity.SEV1),
    ("CRITICAL", Severity.SEV1),
    ("sev2", Severity.SEV2),
    ("SEV-2", Severity.SEV2),
    ("p2", Severity.SEV2),
    ("sev3", Severity.SEV3),
    ("sev-3", Severity.SEV3),
    ("P3", Severity.SEV3),
    ("sev4", Severity.SEV4),
    ("SEV-4", Severity.SEV4),
    ("p4", Severity.SEV4),
]


def cmd(name: str, **fields: object) -> ParsedCommand:
    return ParsedCommand(name=CommandName(name), **fields)


def error_of(text: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        parse_command(text)
    return caught.value


# --- incident ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "number"),
    [
        ("INC-12", 12),
        ("inc-12", 12),
        ("Inc-12", 12),
        ("#12", 12),
        ("12", 12),
        ("1", 1),
        ("INC-1", 1),
        ("#007", 7),
        ("INC-123456789", 123456789),
        (" INC-12 ", 12),
        ("ＩＮＣ－１２", 12),  # fullwidth, as typed with a CJK input method
        ("＃12", 12),
    ],
)
def test_parse_incident_ref_accepts_every_id_form(token: str, number: int) -> None:
    assert parse_incident_ref(token) == number


@pytest.mark.parametrize(
    "token",
    [
        "",
        " ",
        "0",
        "INC-0",
        "#0",
        "INC-000",
        "INC-abc",
        "INC-",
        "#",
        "INC12",
        "INC 12",
        "INC--12",
        "-12",
        "+12",
        "12a",
        "1.5",
        "1e3",
        "PRJ-12",
        "#INC-12",
        "1234567890",  # ten digits: beyond any incident number
        "١٢",  # Arabic-Indic digits
        "sev1",
    ],
)
def test_parse_incident_ref_rejects_everything_else(token: str) -> None:
    assert parse_incident_ref(token) is None


# --- severities ----------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "severity"), SEVERITY_FORMS)
def test_parse_severity_accepts_every_form(token: str, severity: Severity) -> None:
    assert parse_severity(token) is severity


def test_parse_severity_accepts_fullwidth_forms() -> None:
    assert parse_severity("ＳＥＶ１") is Severity.SEV1


@pytest.mark.parametrize(
    "token",
    [
        "",
        "sev",
        "sev0",
        "sev5",
        "sev-0",
        "sev-5",
        "sev10",
        "sev--1",
        "sev_1",
        "sev 1",
        "p0",
        "p5",
        "p",
        "1",
        "s1",
        "SEV-1.",
        "crit",
        "criticall",
        "urgent",
        "INC-1",
        "sev١",
    ],
)
def test_parse_severity_rejects_everything_else(token: str) -> None:
    assert parse_severity(token) is None


# --- empty input and command words ---------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "   \t\n ", "\u00a0\u3000", "\x00"])
def test_empty_text_asks_for_help(text: str) -> None:
    assert parse_command(text) == cmd("help")


@pytest.mark.parametrize("word", ["ACK", "Ack", "aCk", "ａｃｋ"])
def test_command_words_are_case_insensitive(word: str) -> None:
    assert parse_command(f"{word} INC-3") == cmd("ack", incident=3)


def test_unicode_whitespace_separates_words() -> None:
    assert parse_command("ack\u00a0#4") == cmd("ack", incident=4)
    assert parse_command("\u3000declare\u3000sev2\u3000DB\u3000down") == cmd(
        "declare", severity=Severity.SEV2, text="DB down"
    )


def test_control_characters_are_dropped() -> None:
    assert parse_command("\x00ack\x1b 5") == cmd("ack", incident=5)
    assert parse_command("declare Disk\x07 full") == cmd("declare", text="Disk full")


# --- declare -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("declare Database timeouts", cmd("declare", text="Database timeouts")),
        ("declare sev2 Database timeouts", cmd("declare", severity=Severity.SEV2, text="Database timeouts")),
        ("DECLARE SEV-1 Checkout down", cmd("declare", severity=Severity.SEV1, text="Checkout down")),
        (
            "declare   p4   Slow   dashboards  ",
            cmd("declare", severity=Severity.SEV4, text="Slow dashboards"),
        ),
        ("declare sev2\nDB\tdown", cmd("declare", severity=Severity.SEV2, text="DB down")),
        # Only the first word can be the severity; a later one belongs to the title.
        ("declare API errors sev1", cmd("declare", text="API errors sev1")),
        ("declare sev2 sev1 in the title", cmd("declare", severity=Severity.SEV2, text="sev1 in the title")),
        # "SEV 1" is two words, so neither is a severity.
        ("declare SEV 1 outage", cmd("declare", text="SEV 1 outage")),
        ("declare INC-4 looks like an id", cmd("declare", text="INC-4 looks like an id")),
        ("declare 🔥 Paiements refusés 支付", cmd("declare", text="🔥 Paiements refusés 支付")),
    ],
)
def test_declare(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(("form", "severity"), SEVERITY_FORMS)
def test_declare_takes_every_severity_form(form: str, severity: Severity) -> None:
    assert parse_command(f"declare {form} Queue backlog") == cmd(
        "declare", severity=severity, text="Queue backlog"
    )


@pytest.mark.parametrize(
    "text", ["declare", "declare   ", "declare sev2", "declare critical  ", "declare \x00"]
)
def test_declare_needs_a_title(text: str) -> None:
    error = error_of(text)
    assert isinstance(error, InvalidArguments)
    assert str(error) == "Give the incident a title: `/im declare sev2 Database timeouts`."


def test_declare_title_limit_counts_the_collapsed_title() -> None:
    title = "x" * 200
    assert parse_command(f"declare sev1 {title}").text == title
    spaced = "  ".join(["abcd"] * 40)  # 198 characters once collapsed, 238 as typed
    assert parse_command(f"declare {spaced}").text == " ".join(["abcd"] * 40)


def test_declare_refuses_a_title_over_200_characters() -> None:
    error = error_of("declare sev2 " + "y" * 201)
    assert isinstance(error, InvalidArguments)
    assert "201 characters" in str(error)
    assert "200 or fewer" in str(error)
    assert "`/im declare [sev1..sev4] <title>`" in str(error)


def test_declare_survives_very_long_input() -> None:
    error = error_of("declare " + "word " * 20_000)
    assert str(error).startswith("The title is 99999 characters long; keep it to 200 or fewer.")


# --- commands with an optional id ----------------------------------------------------------


@pytest.mark.parametrize("name", ID_COMMANDS)
@pytest.mark.parametrize("form", ID_FORMS)
def test_id_commands_take_every_id_form(name: str, form: str) -> None:
    assert parse_command(f"{name} {form}") == cmd(name, incident=12)


@pytest.mark.parametrize("name", ID_COMMANDS)
def test_id_commands_may_leave_the_id_out(name: str) -> None:
    assert parse_command(name) == cmd(name)
    assert parse_command(f"  {name.upper()}  ") == cmd(name)


@pytest.mark.parametrize("name", ID_COMMANDS)
@pytest.mark.parametrize("junk", ["INC-0", "INC-abc", "0", "#", "INC12", "foo", "@alice", "١٢"])
def test_id_commands_refuse_what_is_not_an_id(name: str, junk: str) -> None:
    error = error_of(f"{name} {junk}")
    assert isinstance(error, InvalidArguments)
    message = str(error)
    assert message.startswith(f"`{junk}` is not a valid incident id.")
    assert "`INC-12`, `inc-12`, `#12` or `12`" in message
    assert f"`/im {name} INC-12`" in message


@pytest.mark.parametrize("name", ID_COMMANDS)
@pytest.mark.parametrize("args", ["INC-1 INC-2", "12 please", "#3 now now"])
def test_id_commands_refuse_extra_words(name: str, args: str) -> None:
    error = error_of(f"{name} {args}")
    assert isinstance(error, InvalidArguments)
    assert str(error) == (
        f"`{name}` takes at most an incident id. Usage: `/im {name} [id]`, e.g. `/im {name} INC-12`."
    )


# --- mitigate / resolve: optional id, optional note ----------------------------------------


@pytest.mark.parametrize("name", ["mitigate", "resolve"])
@pytest.mark.parametrize(
    ("args", "incident", "note"),
    [
        ("", None, None),
        ("   ", None, None),
        ("INC-12", 12, None),
        ("#12", 12, None),
        ("12", 12, None),
        ("inc-12 Rolled back", 12, "Rolled back"),
        ("Rolled back the deploy", None, "Rolled back the deploy"),
        # Not an id form, so part of the note.
        ("INC-0 was a false alarm", None, "INC-0 was a false alarm"),
        ("INC-abc rollback", None, "INC-abc rollback"),
        ("#x rollback", None, "#x rollback"),
        # A bare number first is the id: the language says so.
        ("3 replicas added", 3, "replicas added"),
        # Only the first word is ever the id.
        ("Pool raised for INC-9", None, "Pool raised for INC-9"),
        # The note keeps its inner layout; only its ends are trimmed.
        ("#4   Step 1: drain\n  Step 2: restart  ", 4, "Step 1: drain\n  Step 2: restart"),
        ("INC-5 ✅ réglé", 5, "✅ réglé"),
    ],
)
def test_mitigate_and_resolve(name: str, args: str, incident: int | None, note: str | None) -> None:
    assert parse_command(f"{name} {args}") == cmd(name, incident=incident, text=note)


def test_resolve_note_length_is_limited() -> None:
    limit = grammar.NOTE_MAX_LENGTH
    assert parse_command("resolve INC-1 " + "n" * limit).text == "n" * limit
    error = error_of("resolve INC-1 " + "n" * (limit + 1))
    assert isinstance(error, InvalidArguments)
    assert f"{limit + 1} characters" in str(error)
    assert "`/im resolve [id] [note]`" in str(error)


# --- note -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("note INC-12 Rolled back", cmd("note", incident=12, text="Rolled back")),
        ("note #12 Rolled back", cmd("note", incident=12, text="Rolled back")),
        ("note 12 Rolled back", cmd("note", incident=12, text="Rolled back")),
        ("NOTE inc-12 Rolled back", cmd("note", incident=12, text="Rolled back")),
        ("note Customer support informed", cmd("note", text="Customer support informed")),
        ("note INC-0 is not an id", cmd("note", text="INC-0 is not an id")),
        ("note   spaced    out  ", cmd("note", text="spaced    out")),
    ],
)
def test_note(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "example"),
    [
        ("note", "`/im note INC-12 Rolled back the 10:40 deploy`"),
        ("note    ", "`/im note INC-12 Rolled back the 10:40 deploy`"),
        ("note INC-7", "`/im note INC-7 Rolled back the 10:40 deploy`"),
        ("note #7   ", "`/im note INC-7 Rolled back the 10:40 deploy`"),
    ],
)
def test_note_needs_text(text: str, example: str) -> None:
    error = error_of(text)
    assert isinstance(error, InvalidArguments)
    assert example in str(error)


# --- list -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("list", cmd("list")),
        ("list open", cmd("list", scope="open")),
        ("list all", cmd("list", scope="all")),
        ("LIST ALL", cmd("list", scope="all")),
        ("list sev1", cmd("list", severity=Severity.SEV1)),
        ("list all sev2", cmd("list", scope="all", severity=Severity.SEV2)),
        ("list sev2 all", cmd("list", scope="all", severity=Severity.SEV2)),
        ("list open critical", cmd("list", severity=Severity.SEV1)),
        ("list   p3   open ", cmd("list", severity=Severity.SEV3)),
    ],
)
def test_list(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(("form", "severity"), SEVERITY_FORMS)
def test_list_takes_every_severity_form(form: str, severity: Severity) -> None:
    assert parse_command(f"list all {form}") == cmd("list", scope="all", severity=severity)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("list closed", "`list` does not understand `closed`"),
        ("list all INC-3", "`list` does not understand `INC-3`"),
        ("list sev5", "`list` does not understand `sev5`"),
        ("list open all", "Give `open` or `all`, not both."),
        ("list all all", "Give `open` or `all`, not both."),
        ("list sev1 sev2", "Give one severity at most."),
    ],
)
def test_list_refuses_junk(text: str, start: str) -> None:
    error = error_of(text)
    assert isinstance(error, InvalidArguments)
    assert str(error).startswith(start)
    assert "`/im list [open|all] [sev1..sev4]`" in str(error)


# --- escalate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("escalate", cmd("escalate")),
        ("escalate INC-12", cmd("escalate", incident=12)),
        ("escalate sev1", cmd("escalate", severity=Severity.SEV1)),
        ("escalate INC-12 sev1", cmd("escalate", incident=12, severity=Severity.SEV1)),
        ("escalate sev1 INC-12", cmd("escalate", incident=12, severity=Severity.SEV1)),
        ("escalate #12 critical", cmd("escalate", incident=12, severity=Severity.SEV1)),
        ("ESCALATE 12 P2", cmd("escalate", incident=12, severity=Severity.SEV2)),
    ],
)
def test_escalate(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("form", ID_FORMS)
def test_escalate_takes_every_id_form(form: str) -> None:
    assert parse_command(f"escalate {form}") == cmd("escalate", incident=12)


@pytest.mark.parametrize(("form", "severity"), SEVERITY_FORMS)
def test_escalate_takes_every_severity_form(form: str, severity: Severity) -> None:
    assert parse_command(f"escalate INC-2 {form}") == cmd("escalate", incident=2, severity=severity)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("escalate INC-0", "`INC-0` is not a valid incident id."),
        ("escalate INC-x sev1", "`INC-x` is not a valid incident id."),
        ("escalate to sev1", "`to` is neither an incident id"),
        ("escalate sev5", "`sev5` is neither an incident id"),
        ("escalate INC-1 INC-2", "Escalate one incident at a time."),
        ("escalate sev1 sev2", "Give one severity at most."),
        ("escalate INC-1 sev1 now", "`escalate` takes an incident id and a severity at most."),
    ],
)
def test_escalate_refuses_junk(text: str, start: str) -> None:
    error = error_of(text)
    assert isinstance(error, InvalidArguments)
    assert str(error).startswith(start)
    assert "`/im escalate" in str(error)


# --- assign ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("assign @alice", cmd("assign", user="@alice")),
        ("assign INC-12 @alice", cmd("assign", incident=12, user="@alice")),
        ("assign @alice INC-12", cmd("assign", incident=12, user="@alice")),
        ("assign #12 @alice.smith", cmd("assign", incident=12, user="@alice.smith")),
        ("assign 12 @a-b_c9", cmd("assign", incident=12, user="@a-b_c9")),
        ("ASSIGN inc-12 @Alice", cmd("assign", incident=12, user="@Alice")),
        # Slack's escaped mentions, with and without the name, normalised to the id form.
        ("assign INC-12 <@U123ABC>", cmd("assign", incident=12, user="<@U123ABC>")),
        ("assign INC-12 <@U123ABC|alice>", cmd("assign", incident=12, user="<@U123ABC>")),
        ("assign <@W0AB12|alice smith> 12", cmd("assign", incident=12, user="<@W0AB12>")),
        ("assign <@U123ABC|>", cmd("assign", user="<@U123ABC>")),
        # Discord writes mentions the same way, with an optional "!".
        ("assign 12 <@80351110224678912>", cmd("assign", incident=12, user="<@80351110224678912>")),
        ("assign 12 <@!80351110224678912>", cmd("assign", incident=12, user="<@80351110224678912>")),
    ],
)
def test_assign(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("form", ID_FORMS)
def test_assign_takes_every_id_form(form: str) -> None:
    assert parse_command(f"assign {form} @bob") == cmd("assign", incident=12, user="@bob")


@pytest.mark.parametrize(
    "user",
    [
        "alice",
        "@",
        "@@alice",
        "@-alice",
        "@alice!",
        "@élodie",
        "@here",
        "@channel",
        "@everyone",
        "<!here>",
        "<#C123|incidents>",
        "<@>",
        "<@U12 3>",
        "<@U123",
        "U123ABC",
        "@" + "a" * 81,
    ],
)
def test_assign_refuses_what_is_not_a_person(user: str) -> None:
    error = error_of(f"assign INC-3 {user}")
    assert isinstance(error, InvalidArguments)
    assert "is not a person" in str(error)
    assert "`/im assign INC-12 @alice`" in str(error)


def test_assign_accepts_the_longest_plain_name() -> None:
    name = "@" + "a" * 80
    assert parse_command(f"assign 3 {name}").user == name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("assign", "Say who should command the incident: `/im assign INC-12 @alice`."),
        ("assign INC-4", "Say who should command the incident: `/im assign INC-4 @alice`."),
        ("assign #4   ", "Say who should command the incident: `/im assign INC-4 @alice`."),
    ],
)
def test_assign_needs_a_person(text: str, message: str) -> None:
    error = error_of(text)
    assert isinstance(error, InvalidArguments)
    assert str(error) == message


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("assign INC-0 @alice", "`INC-0` is not a valid incident id."),
        ("assign 1 2", "Assign one incident at a time."),
        ("assign @alice @bob", "An incident has one commander; mention one person."),
        ("assign 1 @alice @bob", "`assign` takes an incident id and one person."),
    ],
)
def test_assign_refuses_junk(text: str, start: str) -> None:
    error = error_of(text)
    assert isinstance(error, InvalidArguments)
    assert str(error).startswith(start)
    assert "`/im assign" in str(error)


# --- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", cmd("help")),
        ("HELP", cmd("help")),
        ("help declare", cmd("help", topic="declare")),
        ("help ESCALATE", cmd("help", topic="escalate")),
        ("help help", cmd("help", topic="help")),
    ],
)
def test_help(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("name", ALL_COMMANDS)
def test_help_takes_every_command_as_topic(name: str) -> None:
    assert parse_command(f"help {name}") == cmd("help", topic=name)


def test_help_refuses_an_unknown_topic_and_lists_the_commands() -> None:
    error = error_of("help deploy")
    assert isinstance(error, InvalidArguments)
    message = str(error)
    assert message.startswith("There is no command `deploy` to explain.")
    assert all(f"`{name}`" in message for name in ALL_COMMANDS)
    assert "`/im help`" in message


def test_help_suggests_the_topic_meant() -> None:
    assert "Did you mean `escalate`?" in str(error_of("help escalte"))


def test_help_takes_one_topic() -> None:
    error = error_of("help declare ack")
    assert isinstance(error, InvalidArguments)
    assert "`/im help [command]`" in str(error)


# --- unknown commands -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "word",
    ["deploy", "foo", "x", "page", "🔥", "支付", "/im"],
)
def test_unknown_command_lists_the_commands(word: str) -> None:
    error = error_of(f"{word} something")
    assert isinstance(error, UnknownCommand)
    message = str(error)
    assert message.startswith(f"`{word}` is not a command.")
    assert "Did you mean" not in message
    assert all(f"`{name}`" in message for name in ALL_COMMANDS)
    assert message.endswith("Type `/im help` for how to use them.")


@pytest.mark.parametrize(
    ("word", "meant"),
    [
        ("delcare", "declare"),
        ("declar", "declare"),
        ("decalre", "declare"),
        ("ackk", "ack"),
        ("acknowledge", "ack"),
        ("acked", "ack"),
        ("mitgate", "mitigate"),
        ("resolv", "resolve"),
        ("resolved", "resolve"),
        ("reslove", "resolve"),
        ("closed", "close"),
        ("reopne", "reopen"),
        ("stauts", "status"),
        ("stat", "status"),
        ("lst", "list"),
        ("escalte", "escalate"),
        ("asign", "assign"),
        ("notes", "note"),
        ("jion", "join"),
        ("leav", "leave"),
        ("hepl", "help"),
        ("Delcare", "declare"),
        ("declare:", "declare"),
        ("--help", "help"),
    ],
)
def test_unknown_command_suggests_the_command_meant(word: str, meant: str) -> None:
    error = error_of(f"{word} INC-1")
    assert isinstance(error, UnknownCommand)
    assert f"`{word}` is not a command. Did you mean `{meant}`?" in str(error)


@pytest.mark.parametrize("word", ["re", "info", "a", "zzz"])
def test_unknown_command_does_not_guess_when_unclear(word: str) -> None:
    assert "Did you mean" not in str(error_of(word))


@pytest.mark.parametrize("form", ID_FORMS)
def test_an_id_alone_points_to_status(form: str) -> None:
    error = error_of(form)
    assert isinstance(error, UnknownCommand)
    assert "To see that incident, type `/im status INC-12`." in str(error)


def test_a_severity_first_points_to_declare() -> None:
    error = error_of("SEV1 Database   down")
    assert isinstance(error, UnknownCommand)
    assert "To declare an incident, type `/im declare sev1 Database down`." in str(error)
    assert "`/im declare p2 <title>`" in str(error_of("p2"))


def test_unknown_command_quotes_a_long_word_shortened() -> None:
    message = str(error_of("x" * 10_000))
    assert message.startswith("`" + "x" * 39 + "…` is not a command.")
    assert len(message) < 400


def test_unknown_command_keeps_its_quote_intact() -> None:
    message = str(error_of("de`clare x"))
    assert message.startswith("`de'clare` is not a command.")


# --- every error says what to type ---------------------------------------------------------

ERROR_INPUTS = [
    "declare",
    "declare sev1",
    "declare " + "t" * 201,
    "ack foo",
    "ack 1 2",
    "close INC-0",
    "reopen #",
    "status 12 13",
    "join nowhere",
    "leave 1 2",
    "note",
    "note INC-3",
    "resolve 1 " + "n" * 5000,
    "list closed",
    "list open all",
    "escalate to sev1",
    "escalate INC-x",
    "assign",
    "assign 3 bob",
    "assign 1 2",
    "help deploy",
    "help a b",
    "delcare sev2 DB",
    "deploy now",
    "INC-4",
    "sev2 DB down",
]


@pytest.mark.parametrize("text", ERROR_INPUTS)
def test_every_error_shows_a_command_that_works(text: str) -> None:
    error = error_of(text)
    typed = re.findall(r"`/im ([^`]*)`", str(error))
    assert typed, f"no `/im ...` to type in: {error}"
    runnable = [example for example in typed if not re.search(r"[<\[]", example)]
    for example in runnable:
        parse_command(example)  # raises if the advice itself is wrong


@pytest.mark.parametrize("text", ERROR_INPUTS)
def test_every_error_is_a_command_error_with_its_code(text: str) -> None:
    error = error_of(text)
    assert isinstance(error, UnknownCommand | InvalidArguments)
    assert error.code in ("unknown_command", "invalid_arguments")


# --- usage and help text --------------------------------------------------------------------


def test_usage_covers_every_command_and_starts_with_its_word() -> None:
    assert set(USAGE) == set(CommandName)
    for name, usage in USAGE.items():
        assert usage.split()[0] == name.value


def test_general_help_lists_every_usage_and_the_forms() -> None:
    text = help_text()
    for usage in USAGE.values():
        assert f"`/im {usage}`" in text
    assert "`INC-12`, `inc-12`, `#12` or `12`" in text
    for form in ("`sev1`", "`SEV-1`", "`p1`", "`critical`"):
        assert form in text
    assert "`/im help <command>`" in text


def test_general_help_uses_the_configured_root() -> None:
    text = help_text(root="/incident")
    assert "`/incident declare [sev1..sev4] <title>`" in text
    assert "/im " not in text
    assert help_text(None, "/incident") == text


@pytest.mark.parametrize("name", list(CommandName))
def test_help_for_one_command(name: CommandName) -> None:
    text = help_text(name.value)
    assert text.startswith(f"`/im {USAGE[name]}`")
    assert "Example: `/im " in text
    for other in CommandName:
        if other is not name:
            assert f"`/im {USAGE[other]}`" not in text
    example = re.search(r"Example: `/im ([^`]*)`", text)
    assert example is not None
    assert parse_command(example.group(1)).name is name


def test_help_for_one_command_mentions_forms_where_they_apply() -> None:
    assert "`#12`" in help_text("ack")
    assert "`p1`" not in help_text("ack")
    assert "`p1`" in help_text("list")
    assert "`#12`" not in help_text("list")
    assert "`#12`" in help_text("escalate") and "`p1`" in help_text("escalate")


def test_help_text_topic_is_case_insensitive_and_rooted() -> None:
    assert help_text("DECLARE", root="/inc").startswith("`/inc declare [sev1..sev4] <title>`")


def test_help_text_refuses_an_unknown_topic() -> None:
    with pytest.raises(InvalidArguments, match="There is no command `deploy` to explain"):
        help_text("deploy")


# --- the parsed command itself --------------------------------------------------------------


def test_parsed_command_is_frozen() -> None:
    parsed = parse_command("ack 3")
    with pytest.raises(ValidationError):
        parsed.incident = 4  # type: ignore[misc]


def test_parsed_command_defaults() -> None:
    parsed = ParsedCommand(name=CommandName.STATUS)
    assert (parsed.incident, parsed.severity, parsed.text, parsed.user, parsed.scope, parsed.topic) == (
        None,
        None,
        None,
        None,
        "open",
        None,
    )


def test_parsed_command_refuses_incident_zero() -> None:
    with pytest.raises(ValidationError):
        ParsedCommand(name=CommandName.ACK, incident=0)


def test_package_reexports_the_grammar() -> None:
    from chatops_core import commands

    assert commands.parse_command is parse_command
    assert commands.CommandName is CommandName
    assert commands.help_text is help_text


def test_any_input_parses_or_gets_a_command_error() -> None:
    """Seeded junk built from real and broken pieces never escapes as another exception."""
    rng = random.Random(20261126)
    pieces = [
        *ALL_COMMANDS,
        *ID_FORMS,
        *(form for form, _ in SEVERITY_FORMS),
        "INC-0", "#", "@", "<@U1|a b>", "<@", ">", "`", "open", "all", "\u00a0", "\x00", "🔥", "é", "١",
        "  ", "\n", "-", "sev", "999999999999", "@alice", "<!here>",
    ]  # fmt: skip
    for _ in range(3000):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        try:
            parsed = parse_command(text)
        except CommandError as error:
            assert "/im" in str(error), text
        else:
            assert isinstance(parsed, ParsedCommand)


@pytest.mark.parametrize("word", ["high", "Major", "medium", "minor", "low"])
def test_everyday_words_are_title_not_severity(word: str) -> None:
    assert parse_severity(word) is None
    parsed = parse_command(f"declare {word} latency on checkout")
    assert parsed.severity is None
    assert parsed.text == f"{word} latency on checkout"


@pytest.mark.parametrize("word", ["sev5", "sev0", "p7", "P0", "SEV-9", "sev-10", "ＳＥＶ５"])
def test_declare_refuses_a_severity_that_does_not_exist(word: str) -> None:
    error = error_of(f"declare {word} Checkout down")
    assert isinstance(error, InvalidArguments)
    assert str(error).startswith(f"`{word}` is not a severity.")
    assert "`sev1`..`sev4`" in str(error) and "`/im declare sev2 Checkout down`" in str(error)


@pytest.mark.parametrize("word", ["sev5", "sev0", "p7", "SEV-9"])
def test_escalate_and_list_refuse_a_severity_that_does_not_exist(word: str) -> None:
    for text in (f"escalate INC-3 {word}", f"list all {word}"):
        error = error_of(text)
        assert isinstance(error, InvalidArguments)
        assert f"`{word}`" in str(error) and "`sev1`..`sev4`" in str(error)
