"""Plain phrasings to the bot: ``chatops_core.commands.intents``."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest

from chatops_core.commands.grammar import CommandName, parse_command
from chatops_core.commands.intents import CHANGING_COMMANDS, Understood, understand

# (what someone writes after the mention, the command text expected or None)
PHRASINGS: list[tuple[str, str | None]] = [
    # --- already the command language: returned as typed, politeness aside --------------------
    ("ack INC-4", "ack INC-4"),
    ("ACK inc-4", "ACK inc-4"),
    ("declare sev2 DB down", "declare sev2 DB down"),
    ("please ack INC-4", "ack INC-4"),
    ("can you ack 4", "ack 4"),
    ("could you please close INC-3?", "close INC-3"),
    ("status 12?", "status 12"),
    ("list all sev1", "list all sev1"),
    ("help declare", "help declare"),
    ("hey bot, list", "list"),
    ("note 4 is the DB back?", "note 4 is the DB back?"),
    ("resolve INC-3 thanks", "resolve INC-3"),
    ("escalate", "escalate"),
    ("join INC-7", "join INC-7"),
    ("can you declare sev1 payments?", "declare sev1 payments"),
    # --- list ---------------------------------------------------------------------------------
    ("what is open", "list"),
    ("what's open?", "list"),
    ("whats open", "list"),
    ("What\u2019s open right now?", "list"),
    ("any open incidents?", "list"),
    ("list incidents", "list"),
    ("show me all incidents", "list all"),
    ("list all incidents including resolved", "list all"),
    ("what's going on?", "list"),
    ("anything on fire?", "list"),
    ("any sev1s open?", "list sev1"),
    ("open p2 incidents", "list sev2"),
    ("any critical incidents?", "list sev1"),
    ("what are the open incidents?", "list"),
    ("how many incidents are open", "list"),
    # --- status -------------------------------------------------------------------------------
    ("status of 12", "status 12"),
    ("hey, status of 12?", "status 12"),
    ("what's the status of INC-12?", "status 12"),
    ("how is #12 going?", "status 12"),
    ("tell me about inc-12", "status 12"),
    ("details on 12", "status 12"),
    ("where are we with INC-7?", "status 7"),
    ("what\u2019s going on with INC-7", "status 7"),
    ("any updates on INC-9?", "status 9"),
    ("what's the status?", "status"),
    ("who is on INC-4?", "status 4"),
    ("who's handling 4?", "status 4"),
    ("who is the commander of #4?", "status 4"),
    ("who owns INC-4?", "status 4"),
    ("who is IC for 4?", "status 4"),
    ("who's the IC?", "status"),
    # --- ack ----------------------------------------------------------------------------------
    ("ack", "ack"),
    ("ack it", "ack"),
    ("acknowledge", "ack"),
    ("acknowledge INC-4", "ack 4"),
    ("I'm on it", "ack"),
    ("I\u2019m on it!", "ack"),
    ("im on it", "ack"),
    ("on it", "ack"),
    ("I've got it", "ack"),
    ("I'll take it", "ack"),
    ("I'm on 4", "ack 4"),
    ("ok, I'll take INC-4", "ack 4"),
    ("ack 4, thanks :pray: !", "ack 4"),
    ("on it 👍", "ack"),
    # --- resolve / mitigate -------------------------------------------------------------------
    ("resolved", "resolve"),
    ("it's fixed", "resolve"),
    ("fixed!", "resolve"),
    ("we're good now", "resolve"),
    ("all clear on INC-3", "resolve 3"),
    ("mark 3 resolved", "resolve 3"),
    ("INC-3 is resolved", "resolve 3"),
    ("resolve it", "resolve"),
    ("resolve 3: rolled back the deploy", "resolve 3 rolled back the deploy"),
    ("mitigated", "mitigate"),
    ("it's mitigated", "mitigate"),
    ("mitigating done", "mitigate"),
    ("mitigation in place on INC-8", "mitigate 8"),
    ("mark 8 as mitigated", "mitigate 8"),
    # --- close / reopen -----------------------------------------------------------------------
    ("close INC-3", "close INC-3"),
    ("we can close 3", "close 3"),
    ("close it", "close"),
    ("let's close out INC-3", "close 3"),
    ("reopen", "reopen"),
    ("reopen it", "reopen"),
    ("it's back", "reopen"),
    ("it is happening again on 5", "reopen 5"),
    ("INC-5 came back", "reopen 5"),
    # --- declare ------------------------------------------------------------------------------
    ("we're declaring a sev1 for payments", "declare sev1 payments"),
    ("declare a sev2: checkout is down", "declare sev2 checkout is down"),
    ("open an incident for login errors", "declare login errors"),
    ("start a p1 incident, search is down", "declare sev1 search is down"),
    ("new incident: DB timeouts", "declare DB timeouts"),
    ("declare sev2 for DB down", "declare sev2 DB down"),
    ("let's declare a critical incident for payments", "declare sev1 payments"),
    ("new incident: p2 checkout slow", "declare sev2 checkout slow"),
    ("declare an outage - login broken", "declare login broken"),
    ("Declaring SEV-2 for the search cluster", "declare sev2 the search cluster"),
    # --- escalate -----------------------------------------------------------------------------
    ("bump INC-4 to sev1", "escalate 4 sev1"),
    ("make 4 a sev2", "escalate 4 sev2"),
    ("INC-4 is a sev1 now", "escalate 4 sev1"),
    ("escalate INC-4 to p1", "escalate 4 sev1"),
    ("escalate it", "escalate"),
    ("bump 4 up", "escalate 4"),
    # --- assign -------------------------------------------------------------------------------
    ("make @alice the commander of 4", "assign 4 @alice"),
    ("assign INC-4 to <@U123>", "assign 4 <@U123>"),
    ("alice is IC for 4", "assign 4 @alice"),
    ("assign 4 to <@U123|bob>", "assign 4 <@U123>"),
    ("hand INC-4 over to @carol", "assign 4 @carol"),
    ("make bob IC", "assign @bob"),
    # --- note ---------------------------------------------------------------------------------
    ("note 4: cache flushed", "note 4 cache flushed"),
    ("add a note to 4: cache flushed", "note 4 cache flushed"),
    ("FYI on INC-4: rollback started", "note 4 rollback started"),
    ("fyi: DNS change reverted", "note DNS change reverted"),
    ("note INC-4 rollback done", "note INC-4 rollback done"),
    ("add a note to INC-4: is the replica lagging?", "note 4 is the replica lagging?"),
    # --- help ---------------------------------------------------------------------------------
    ("help", "help"),
    ("help me", "help"),
    ("what can you do?", "help"),
    ("how do I use you?", "help"),
    ("commands?", "help"),
    ("how do I declare an incident?", "help declare"),
    # --- must not act -------------------------------------------------------------------------
    ("", None),
    ("   ", None),
    ("thanks", None),
    ("thank you!", None),
    ("good morning", None),
    ("lol", None),
    ("hey bot", None),
    ("thanks for the help", None),
    ("is the build green?", None),
    ("what time is it", None),
    ("who is on call tonight", None),
    ("how is it going?", None),
    ("what's the status of the build?", None),
    ("don't ack INC-4", None),
    ("do not resolve INC-3", None),
    ("should we declare a sev1?", None),
    ("not resolved yet", None),
    ("is it resolved?", None),
    ("is 4 mitigated?", None),
    ("I'm not on it", None),
    ("he said we should close 3", None),
    ("she told me to escalate 4", None),
    ('"ack 4" is how you ack', None),
    ("I think it's fixed", None),
    ("maybe resolve it", None),
    ("we should close 3", None),
    ("can we close 3?", None),
    ("ack INC-4?", None),
    ("is INC-5 back?", None),
    ("if it's back we reopen 5", None),
    ("don't declare a sev1 for payments", None),
    ("status of 12 and 13", None),
    ("ack 4 5", None),
    ("resolve 3 4", None),
    ("reopen 4 and 5", None),
    ("declare a sev1", None),
    ("we're declaring a sev1", None),
    ("got it", None),
    ("acknowledged", None),
    ("close call!", None),
    ("this is a sev1 now", None),
    ("INC-0 is back", None),
    ("assign 4 to @here", None),
    ("make me the commander of 4", None),
    ("nobody is IC for 4", None),
    ("fyi the build is green", None),
    ("new incident: critical path broken", None),
    ("declare sev1 payments?", None),
    ("declaring victory lol", None),
    ("note 0: cache flushed", None),
]

POSITIVE = [(text, expected) for text, expected in PHRASINGS if expected is not None]
NEGATIVE = [text for text, expected in PHRASINGS if expected is None]


def test_the_table_is_big_enough() -> None:
    assert len(PHRASINGS) >= 80
    assert len(NEGATIVE) >= 25
    assert len({text for text, _ in PHRASINGS}) == len(PHRASINGS), "a phrasing is listed twice"


@pytest.mark.parametrize(("text", "expected"), PHRASINGS, ids=[repr(t) for t, _ in PHRASINGS])
def test_phrasing(text: str, expected: str | None) -> None:
    understood = understand(text)
    if expected is None:
        assert understood is None, f"{text!r} should not be understood, got {understood}"
    else:
        assert understood is not None, f"{text!r} was not understood"
        assert understood.command == expected


@pytest.mark.parametrize(("text", "expected"), POSITIVE, ids=[repr(t) for t, _ in POSITIVE])
def test_every_answer_is_the_command_language(text: str, expected: str) -> None:
    understood = understand(text)
    assert understood is not None
    parsed = parse_command(understood.command)
    assert parsed.name is CommandName(expected.split()[0].lower())


@pytest.mark.parametrize(
    ("text", "phrasing"),
    [
        ("ack INC-4", "command"),
        ("what's open", "whats_open"),
        ("I'm on it", "im_on_it"),
        ("declare a sev2: checkout is down", "declare"),
        ("who owns INC-4", "who_is_on"),
        ("note to self: rotate the keys", "command"),  # no phrasing fits: the grammar's reading
    ],
)
def test_phrasing_names_the_rule(text: str, phrasing: str) -> None:
    understood = understand(text)
    assert understood is not None
    assert understood.phrasing == phrasing


def test_understood_is_frozen() -> None:
    understood = Understood(command="list", phrasing="whats_open")
    with pytest.raises(dataclasses.FrozenInstanceError):
        understood.command = "ack"  # type: ignore[misc]


def test_mentions_and_severities_are_normalised() -> None:
    assert understand("assign INC-4 to <@!123456>") == Understood("assign 4 <@123456>", "assign_to")
    assert understand("escalate #4 to SEV-1") == Understood("escalate 4 sev1", "escalate")
    assert understand("ＩＮＣ－７ is back") == Understood("reopen 7", "its_back")


def test_a_polite_question_is_a_request_but_a_plain_one_is_not() -> None:
    assert understand("can you close INC-3?") == Understood("close INC-3", "command")
    assert understand("would you resolve it?") == Understood("resolve", "resolve")
    assert understand("close INC-3?") is None
    assert understand("resolve it?") is None


def test_a_note_keeps_its_words() -> None:
    assert understand("note 4 customer said thanks") == Understood("note 4 customer said thanks", "command")
    assert understand("fyi: 5 pods restarted") is None  # would read as "note on INC-5"
    assert understand("fyi on 4: 5 pods restarted") == Understood("note 4 5 pods restarted", "fyi")


def test_overlong_text_is_not_read() -> None:
    assert understand("ack " + "x" * 10_000) is None
    assert understand("status 12" + " " * 10_000) is None


# --- random junk ----------------------------------------------------------------------------

# The words that may lead a rule to each changing command: it must never appear without one.
TRIGGERS: dict[CommandName, frozenset[str]] = {
    CommandName.DECLARE: frozenset({"declare", "declaring", "incident", "outage"}),
    CommandName.ACK: frozenset(
        {"ack", "acknowledge", "on", "got", "take", "taking", "handle", "handling", "grab", "grabbing", "own"}
    ),
    CommandName.MITIGATE: frozenset({"mitigate", "mitigated", "mitigating", "mitigation"}),
    CommandName.RESOLVE: frozenset(
        {"resolve", "resolved", "fixed", "solved", "sorted", "clear", "good", "fine", "ok", "okay", "normal"}
    ),
    CommandName.CLOSE: frozenset({"close", "closed"}),
    CommandName.REOPEN: frozenset({"reopen", "re-open", "back", "again"}),
    CommandName.ESCALATE: frozenset({"escalate", "bump", "raise", "upgrade", "move", "make", "now"}),
    CommandName.ASSIGN: frozenset({"assign", "commander", "ic", "lead", "owner", "hand", "make"}),
    CommandName.NOTE: frozenset({"note", "fyi", "log"}),
}
NEGATIONS = frozenset({"not", "no", "never", "don't", "dont", "isn't", "can't", "nobody", "nothing"})

VOCABULARY = (
    "ack acknowledge resolve resolved mitigate mitigated close closed reopen declare declaring escalate "
    "assign note fyi log help status list open all it this that the a an to of on for about is it's "
    "I'm I've I'll we're we can should is are do don't not never no maybe if he she said think "
    "INC-4 inc-12 #7 4 12 0 INC-0 sev1 sev-2 SEV-3 p1 p4 critical incident incidents outage back again "
    "happening fixed good now clear make bump up commander IC owner lead @alice <@U123> <@U9|bob> "
    "@here me who what what's how where any anything fire going on got take mine thanks please hey "
    "bot lol ? ! : , - . payments checkout DB down is slow 10:40 2pm v2 and or"
).split()


def _words_of(text: str) -> set[str]:
    folded = text.lower().replace("\u2019", "'")
    return set(re.findall(r"[a-z]+(?:['-][a-z]+)?", folded)) | set(re.findall(r"[a-z]+", folded))


def test_random_junk_never_crashes_or_guesses_a_change() -> None:
    rng = random.Random(20240607)
    changed = 0
    for _ in range(4000):
        words = [rng.choice(VOCABULARY) for _ in range(rng.randint(1, 8))]
        text = " ".join(words) if rng.random() < 0.8 else "".join(words)
        understood = understand(text)
        if understood is None:
            continue
        parsed = parse_command(understood.command)  # always the command language
        if parsed.name not in CHANGING_COMMANDS:
            continue
        changed += 1
        said = _words_of(text)
        assert said & TRIGGERS[parsed.name], f"{text!r} gave {understood} without a trigger word"
        if parsed.name is not CommandName.NOTE:
            assert not text.rstrip().endswith("?") or "you" in said, f"{text!r} asks but gave {understood}"
        if understood.phrasing != "command" and parsed.name not in (CommandName.NOTE, CommandName.DECLARE):
            assert not said & NEGATIONS, f"{text!r} is negated but gave {understood}"
    assert changed > 0  # the vocabulary does reach the changing rules


@pytest.mark.parametrize("seed", range(3))
def test_random_characters_never_crash(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "ack INC-4 sev1 ?!:,.'\u2019\"<>@#|-\u2014 \t\n\x00\u200b\uff03\u0663é😀"
    for _ in range(1000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        understood = understand(text)
        if understood is not None:
            parse_command(understood.command)
