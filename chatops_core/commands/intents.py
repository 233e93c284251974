"""Plain phrasings addressed to the bot, turned into the command language.

When someone mentions the bot (``@incident-bot what's open?``) or writes to it directly, the
text after the mention is either the command language itself (``ack INC-4``) or a plain
sentence. :func:`understand` turns the sentences it is sure about into command-language text
and returns None for everything else, so the caller can answer "I did not understand" instead
of doing something nobody asked for. It is pure: no I/O, no platform knowledge.

The principle is **never guess a change**. Commands that change an incident (``declare``,
``ack``, ``mitigate``, ``resolve``, ``close``, ``reopen``, ``escalate``, ``assign``, ``note``)
are produced only from an explicit imperative or statement that matches one of the rules
below from its first word to its last. Read-only commands (``list``, ``status``, ``help``) may
be found anywhere in a question, because a wrong guess there costs nothing but an answer.

How a text is read, in order:

1. **Cleaning.** Width variants and curly apostrophes are folded (NFKC, ``’`` to ``'``),
   control characters dropped, whitespace collapsed. Greetings and politeness at the start
   (``hey``, ``ok``, ``please``, ``bot``, ``go ahead and``) and at the end (``please``,
   ``thanks``, emoji, ``?``/``!``/``.``) are set aside. ``can/could/would/will you ...`` is a
   polite request and is unwrapped; ``can we ...``/``should we ...`` are questions and are not.
2. **The command language.** If what remains parses with
   :func:`~chatops_core.commands.grammar.parse_command`, it is returned as typed (rule
   ``command``; a ``declare`` title loses trailing politeness, a note keeps its own ending),
   with two exceptions: a changing command other than ``note`` that ends in ``?`` (``ack 4?``
   asks whether to, it does not order), and ``resolve``/``mitigate`` whose note is just
   another id (``resolve 3 4``). When the words after the command read like a sentence
   (``declare a sev2: checkout is down``, ``note 4: cache flushed``, ``resolve it``) the
   phrasing rules get the first try, so the ``a`` and the ``:`` do not end up in the title or
   hide the id; if none fits, the grammar's reading stands (``note to self: ...``), except
   for ``declare`` and for an invalid id (``note 0: ...``), which give None.
3. **Phrasing rules**, an ordered list of compiled patterns, each with a small builder.
   Changing rules must match the whole text. Then a match is refused when its head (the text
   before any free text such as a title or a note) contains a negation (``not``, ``don't``,
   ``never``...), starts like a question (``should``, ``is``, ``can``, ``what``...), reports
   or supposes (``said``, ``think``, ``if``, ``maybe``, quotes), contains a ``?``, or when
   the sentence ends in ``?`` (except for a polite ``can you ...?`` request, and except for
   notes, whose text may itself be a question). Read-only rules search the text.
4. Every builder refuses ambiguity: two different incident ids, an id that is not one
   (``INC-0``), two severities for a ``list``, a person that is a pronoun or ``@here``, a
   title or note that would not survive the trip through ``parse_command`` unchanged (a
   title starting with ``critical`` would become a severity). Finally every produced text is
   parsed again and must give the rule's command.

Ids in the output are plain numbers (``status 12``), severities ``sev1``..``sev4``, mentions
normalised as the grammar does (``<@U123|alice>`` becomes ``<@U123>``, ``alice`` ``@alice``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from chatops_core.commands.grammar import (
    BROADCAST_NAMES,
    NOTE_MAX_LENGTH,
    PLATFORM_MENTION_RE,
    CommandName,
    ParsedCommand,
    parse_command,
    parse_severity,
    severity_word,
)
from chatops_core.errors import CommandError
from chatops_core.models import Severity

__all__ = ["CHANGING_COMMANDS", "Understood", "understand"]

CHANGING_COMMANDS: frozenset[CommandName] = frozenset(
    {
        CommandName.DECLARE,
        CommandName.ACK,
        CommandName.MITIGATE,
        CommandName.RESOLVE,
        CommandName.CLOSE,
        CommandName.REOPEN,
        CommandName.ESCALATE,
        CommandName.ASSIGN,
        CommandName.NOTE,
    }
)
"""Commands that change an incident: never produced from a question or a negated sentence."""

_MAX_LENGTH = NOTE_MAX_LENGTH + 500  # longer texts are not chat sentences; nothing is guessed


@dataclass(frozen=True)
class Understood:
    """What a plain sentence asks for, as command-language text."""

    command: str
    """Command-language text, e.g. ``list``, ``status 12``, ``declare sev1 payments``."""
    phrasing: str
    """The rule that matched (for logs and tests), e.g. ``whats_open``; ``command`` when the
    text was the command language already."""


# --- cleaning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Said:
    text: str
    """Politeness, greetings and the closing punctuation removed; whitespace collapsed."""
    core: str
    """Like ``text`` but with its end as written (``text`` is always a prefix of it)."""
    asked: bool
    """The sentence ended in a question mark."""
    polite: bool
    """It was a ``can you ...`` request."""


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'"})
_LEAD_RE = re.compile(
    r"^(?:(?:hey|hi|hello|yo|ok|okay|alright|so|um+|uh+|hmm+|well|yes|yeah|yep|sure|please|pls|plz"
    r"|kindly|just|bot|incident[- ]bot|team|folks|go ahead and)\b[\s,.;:!\-–—]*|[\s,.;:!\-–—]+)+",
    re.IGNORECASE,
)
_POLITE_RE = re.compile(r"^(?:can|could|would|will) (?:you|u|ya)\b(?: (?:please|pls|plz|kindly|just)\b)*,? ?")
_TAIL_WORD_RE = re.compile(
    r"(?:^|(?<=[\s,.;!?]))(?:please|pls|plz|thanks|thank you|thank u|thx|ty|cheers|bot"
    r"|:[a-z0-9_+'-]+:|[:;]-?[()dp])$",
    re.IGNORECASE,
)
_TAIL_CHARS = frozenset(",.;:!?")


def _strip_tail(text: str) -> str:
    """``text`` without closing punctuation, emoji and trailing politeness."""
    while True:
        before = text
        match = _TAIL_WORD_RE.search(text, max(0, len(text) - 40))  # the tail words are short
        if match is not None:
            text = text[: match.start()]
        text = text.rstrip()
        if text and (text[-1] in _TAIL_CHARS or unicodedata.category(text[-1]) in ("So", "Sk")):
            text = text[:-1].rstrip()  # one at a time: ":pray:" is a word, not two colons
        if text == before:
            return text


def _clean(raw: str) -> _Said | None:
    text = unicodedata.normalize("NFKC", raw).translate(_APOSTROPHES)
    text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    polite = False
    while True:
        before = text
        text = _LEAD_RE.sub("", text, count=1)
        request = _POLITE_RE.match(text.lower())
        if request is not None:
            polite = True
            text = text[request.end() :]
        if text == before:
            break
    core = text
    text = _strip_tail(core)
    if not text:
        return None
    return _Said(text=text, core=core, asked="?" in core[len(text) :], polite=polite)


# --- the guards of every changing rule ------------------------------------------------------

_NEGATION_RE = re.compile(
    r"\b(?:not|no|never|nope|nothing|nobody|neither|nor|cannot|\w+n't|dont|doesnt|didnt|isnt|arent"
    r"|wasnt|werent|wont|cant|couldnt|shouldnt|wouldnt|havent|hasnt|hadnt|aint)\b",
    re.IGNORECASE,
)
_QUESTION_START_RE = re.compile(
    r"(?:should|shall|do|does|did|is|are|am|was|were|can|could|would|will|may|might|must|has|have"
    r"|had|why|when|how|what|which|who|whom|where|whether|if|maybe|perhaps|probably|possibly)\b",
    re.IGNORECASE,
)
_HEARSAY_RE = re.compile(
    r"[\"“”`]|\b(?:said|says|say|told|tells|asked|asks|wants?|wanted|suggests?|suggested|think|thinks"
    r"|thought|mentioned|claims?|claimed|according|apparently|supposedly|if|whether|maybe|perhaps"
    r"|should|would|could|might|wonder|wondering)\b",
    re.IGNORECASE,
)


# --- pieces of the patterns -----------------------------------------------------------------

_REF = r"(?:inc[- ]?|#)?[0-9]{1,9}"
_TARGET = rf"(?:(?P<ref>{_REF})|it|this(?: one| incident)?|that(?: one)?|the incident)"
_SEV = r"(?:sev[- ]?[1-4]|p[1-4]|critical)"
_SEV_CODE_RE = re.compile(r"(?:sev-?|p)[1-4]", re.IGNORECASE)
_USER = r"(?P<user><@!?[A-Za-z0-9]+(?:\|[^<>]*)?>|@?[A-Za-z][A-Za-z0-9._-]{0,79})"
_ROLE = r"(?:the )?(?:new )?(?:incident commander|commander|ic|incident lead|lead|owner)"
_GLUE = r"(?:(?: ?[:,\-–—](?= |$)| (?:for|about|re|regarding|on)(?= |$))*)"
_IS = r"(?:'?s| is| has been|'?s been)"  # "it's", "its", "it is", "it has been"
_ON_REF2 = rf"(?: (?:on|for|in) (?P<ref2>{_REF}))?"

_ID_RE = re.compile(  # not in "v2", "10:40", "1.5", "12,13", "<@U123>"
    r"(?<![\w#@<|:/.,-])(?:inc[- ]?|#)?([0-9]{1,9})(?![\w]|[:/.,][0-9]|-[0-9])", re.IGNORECASE
)
_SEV_IN_TEXT_RE = re.compile(r"\b(?:sev[- ]?([1-4])|p([1-4]))s?\b|\bcritical\b", re.IGNORECASE)
_NOT_A_PERSON = BROADCAST_NAMES | {
    "i", "me", "you", "u", "we", "us", "he", "she", "they", "them", "him", "her", "it", "this", "that",
    "who", "whom", "whoever", "someone", "somebody", "anyone", "anybody", "nobody", "noone", "everybody",
    "the", "a", "an", "my", "our", "your", "their", "there", "what", "which", "ic", "commander", "lead",
    "owner", "not", "no",
}  # fmt: skip
_ID_ATTEMPT_RE = re.compile(r"(?:inc-?|#)?[0-9]+", re.IGNORECASE)
_CONNECTIVES = frozenset({"a", "an", "to", "on", "for", "about", "re", "regarding", "of", "with"})


# --- small helpers ------------------------------------------------------------------------


def _parse(text: str) -> ParsedCommand | None:
    try:
        return parse_command(text)
    except (CommandError, ValueError):
        return None


def _number(token: str) -> int | None:
    """The incident number in ``INC-12``, ``inc 12``, ``#12`` or ``12``; None for 0."""
    number = int(re.sub(r"[^0-9]", "", token))
    return number if number >= 1 else None


def _one_incident(match: re.Match[str]) -> tuple[bool, int | None]:
    """The incident the ``ref`` groups name: ``(True, None)`` for none, ``(False, None)`` when
    they name two different ones or one that is not an id."""
    numbers: set[int] = set()
    for group in ("ref", "ref2", "ref3"):
        token = match.groupdict().get(group)
        if token:
            number = _number(token)
            if number is None:
                return False, None
            numbers.add(number)
    if len(numbers) > 1:
        return False, None
    return True, next(iter(numbers), None)


def _ids_in(text: str) -> list[int] | None:
    """Every distinct incident id in a sentence (severities and times are not ids); None when
    one of them is not a valid id."""
    masked = _SEV_IN_TEXT_RE.sub(" ", text)
    numbers: list[int] = []
    for found in _ID_RE.finditer(masked):
        number = _number(found.group(1))
        if number is None:
            return None
        if number not in numbers:
            numbers.append(number)
    return numbers


def _severity(token: str | None) -> Severity | None:
    return parse_severity(token.replace(" ", "")) if token else None


def _sev_word(severity: Severity | None) -> str | None:
    return severity_word(severity) if severity is not None else None


def _words(*parts: object) -> str:
    return " ".join(str(part) for part in parts if part is not None and part != "")


def _checked(command: str, **expected: object) -> str | None:
    """``command`` if it parses back to the fields intended, else None (never a surprise)."""
    parsed = _parse(command)
    if parsed is None:
        return None
    if any(getattr(parsed, field) != value for field, value in expected.items()):
        return None
    return command


def _person(token: str | None) -> str | None:
    """A mention in the grammar's normal form, or None for pronouns and broadcasts."""
    if not token:
        return None
    platform = PLATFORM_MENTION_RE.fullmatch(token)
    if platform is not None:
        return f"<@{platform.group(1)}>"
    name = token.removeprefix("@")
    if name.lower() in _NOT_A_PERSON:
        return None
    return f"@{name}"


_ANOTHER_ID_RE = re.compile(
    rf"(?:(?:and|or|&|\+|,) ?{_REF}\b.*|{_REF}(?:(?: ?,| and| or| &| \+)? {_REF})*)", re.IGNORECASE
)


# --- builders -------------------------------------------------------------------------------

Builder = Callable[[re.Match[str], _Said], str | None]


def _with_id(word: str) -> Builder:
    """``ack``, ``close``, ``reopen``... with the one id the sentence gives, if any."""

    def build(match: re.Match[str], said: _Said) -> str | None:
        ok, number = _one_incident(match)
        return _words(word, number) if ok else None

    return build


def _with_note(word: str) -> Builder:
    """``resolve``/``mitigate`` with an optional id and an optional note after a ``:``."""

    def build(match: re.Match[str], said: _Said) -> str | None:
        ok, number = _one_incident(match)
        note = match.groupdict().get("text")
        if not ok or (note and _ANOTHER_ID_RE.fullmatch(note)):
            return None
        return _checked(_words(word, number, note), incident=number, text=note or None)

    return build


def _declare(match: re.Match[str], said: _Said) -> str | None:
    title = match.group("title")
    if not title:
        return None
    severity = _severity(match.group("sev"))
    first, _, rest = title.partition(" ")
    if severity is None and rest and _SEV_CODE_RE.fullmatch(first):  # "new incident: p1 checkout down"
        severity, title = parse_severity(first), rest
    return _checked(_words("declare", _sev_word(severity), title), severity=severity, text=title)


def _note(match: re.Match[str], said: _Said) -> str | None:
    ok, number = _one_incident(match)
    if not ok or (number is None and match.group("sep") is None):
        return None  # "fyi the build is green": only "fyi: ..." or "fyi on 4 ..." is a note
    text = said.core[match.start("text") :].strip()  # as written, with its own "?" or "!"
    return _checked(_words("note", number, text), incident=number, text=text)


def _escalate(match: re.Match[str], said: _Said) -> str | None:
    ok, number = _one_incident(match)
    groups = match.groupdict()
    severity = _severity(groups.get("sev"))
    if not ok:
        return None
    if "now1" in groups and (number is None or not (groups["now1"] or groups["now2"])):
        return None  # "INC-4 is a sev1" may describe; "INC-4 is a sev1 now" decides
    return _checked(_words("escalate", number, _sev_word(severity)), incident=number, severity=severity)


def _assign(match: re.Match[str], said: _Said) -> str | None:
    ok, number = _one_incident(match)
    user = _person(match.group("user"))
    if not ok or user is None:
        return None
    groups = match.groupdict()
    if "now1" in groups and number is None and not (groups["now1"] or groups["now2"]):
        return None  # "alice is the lead" describes; "alice is IC for 4" / "... now" decides
    return _checked(_words("assign", number, user), incident=number, user=user)


_STATUS_WITHOUT_ID_RE = re.compile(
    r"(?:.* )?(?:(?:the |this )incident|this one)\b.*"
    r"|(?:what(?:'?s| is) the )?(?:current |latest )?status(?: update)?(?: (?:of|on|for|here) (?:it|this))?"
    r"|any updates?|where are we(?: at)?"
    r"|who(?:'?s| is)(?: the)? (?:incident )?(?:commander|ic|lead|owner)(?: here)?",
    re.IGNORECASE,
)


def _status(match: re.Match[str], said: _Said) -> str | None:
    """``status`` with the one id in the question; without one only if it is about this incident."""
    ids = _ids_in(said.text)
    if ids is None or len(ids) > 1:
        return None
    if ids:
        return f"status {ids[0]}"
    return "status" if _STATUS_WITHOUT_ID_RE.fullmatch(said.text) else None


_ALL_RE = re.compile(
    r"\b(?:every|everything|ever|including|closed|resolved|past|history|historical|old)\b", re.IGNORECASE
)


def _list(match: re.Match[str], said: _Said) -> str | None:
    ids = _ids_in(said.text)
    if ids is None or ids:
        return None  # "list 4"? a number in a listing question is not understood
    severities = {_severity(found.group(0).rstrip("sS")) for found in _SEV_IN_TEXT_RE.finditer(said.text)}
    if len(severities) > 1:
        return None
    says_all = re.search(r"\ball\b", said.text, re.IGNORECASE) and not re.search(
        r"\bopen\b", said.text, re.IGNORECASE
    )  # "all open incidents" are the open ones
    scope = "all" if says_all or _ALL_RE.search(said.text) else None
    return _words("list", scope, _sev_word(next(iter(severities), None)))


def _help(match: re.Match[str], said: _Said) -> str | None:
    return "help"


_HELP_TOPICS = {"acknowledge": "ack", "add a note": "note"}


def _help_topic(match: re.Match[str], said: _Said) -> str | None:
    verb = match.group("verb").lower()
    return f"help {_HELP_TOPICS.get(verb, verb)}"


# --- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    phrasing: str
    name: CommandName
    pattern: re.Pattern[str]
    build: Builder
    text_may_ask: bool = False
    """A closing ``?`` belongs to the free text (a note), not to the sentence."""

    @property
    def changes(self) -> bool:
        return self.name in CHANGING_COMMANDS


def _rule(
    phrasing: str, name: CommandName, pattern: str, build: Builder, *, text_may_ask: bool = False
) -> _Rule:
    return _Rule(phrasing, name, re.compile(pattern, re.IGNORECASE), build, text_may_ask)


_C = CommandName
_NOW = r"(?: now)?"

_RULES: tuple[_Rule, ...] = (
    # declare: "we're declaring a sev1 for payments", "declare a sev2: checkout is down"
    _rule(
        "declare",
        _C.DECLARE,
        rf"(?:(?:we(?:'?re| are)|i(?:'?m| am)) declaring|declaring(?= (?:an? |new |{_SEV}|incident|outage))"
        rf"|(?:let(?:'?s| us) )?declare)"
        rf"(?: an?(?= (?:new |{_SEV}|incident|outage)))?(?: new)?(?: (?P<sev>{_SEV}))?"
        rf"(?: (?:incident|outage)\b)?{_GLUE}(?: (?P<title>\S.*))?",
        _declare,
    ),
    # "open an incident for login errors", "start a p1 incident, search is down", "new incident: ..."
    _rule(
        "open_incident",
        _C.DECLARE,
        rf"(?:(?:we(?:'?re| are)|i(?:'?m| am)) (?:opening|starting|raising|filing)"
        rf"|(?:let(?:'?s| us) )?(?:open|start|create|raise|file|kick off|spin up)|new)"
        rf"(?: an?(?= (?:new |{_SEV}|incident|outage)))?(?: new)?(?: (?P<sev>{_SEV}))?"
        rf" (?:incident|outage)\b{_GLUE}(?: (?P<title>\S.*))?",
        _declare,
    ),
    # note: "add a note to 4: cache flushed", "note on INC-4 - paged the DBA"
    _rule(
        "add_note",
        _C.NOTE,
        rf"(?:add (?:a |another )?(?:timeline )?note|note|log)"
        rf"(?: (?:to|on|for|in|re|about)(?: the (?:timeline|incident)(?: (?:of|for))?)?)?(?: {_TARGET})?"
        rf"(?P<sep> ?[:\-–—,]| saying)? (?P<text>\S.*)",
        _note,
        text_may_ask=True,
    ),
    # "FYI on INC-4: rollback started", "fyi: DNS change reverted"
    _rule(
        "fyi",
        _C.NOTE,
        rf"fyi(?: (?:on|for|re|about|to) {_TARGET})?(?P<sep> ?[:\-–—,])? (?P<text>\S.*)",
        _note,
        text_may_ask=True,
    ),
    # ack: "ack it", "acknowledge INC-4", "I'm on 4", "I've got it", "I'll take it", "on it"
    _rule("ack", _C.ACK, rf"ack(?:nowledge)?(?: {_TARGET})?{_NOW}", _with_id("ack")),
    _rule(
        "im_on_it",
        _C.ACK,
        rf"i(?:'?m| am) (?:on|taking|handling|grabbing) {_TARGET}{_NOW}",
        _with_id("ack"),
    ),
    _rule("ive_got_it", _C.ACK, rf"i(?:'?ve| have) got {_TARGET}{_NOW}", _with_id("ack")),
    _rule("ill_take_it", _C.ACK, rf"i(?:'?ll| will) (?:take|handle|grab|own) {_TARGET}", _with_id("ack")),
    _rule("on_it", _C.ACK, rf"on (?:it|this){_NOW}", _with_id("ack")),
    # resolve: "resolved", "resolve it: rolled back", "it's fixed", "all clear on INC-3", ...
    _rule(
        "resolve",
        _C.RESOLVE,
        rf"resolved?(?: (?:on|for))?(?: {_TARGET})?{_NOW}(?: ?[:\-–—,] (?P<text>\S.*))?",
        _with_note("resolve"),
    ),
    _rule(
        "mark_resolved",
        _C.RESOLVE,
        rf"(?:mark|set|flag) {_TARGET} (?:as )?(?:resolved|fixed){_NOW}",
        _with_id("resolve"),
    ),
    _rule(
        "its_fixed",
        _C.RESOLVE,
        rf"(?:{_TARGET}{_IS} )?(?:now )?(?:fixed|solved|sorted|resolved){_NOW}{_ON_REF2}",
        _with_id("resolve"),
    ),
    _rule(
        "all_clear",
        _C.RESOLVE,
        rf"(?:(?:it|we)(?:'?s|'?re| is| are) )?all clear{_NOW}(?: (?:on|for) {_TARGET})?{_NOW}",
        _with_id("resolve"),
    ),
    _rule(
        "were_good",
        _C.RESOLVE,
        rf"we(?:'?re| are) (?:all )?(?:good|fine|ok|okay|clear|back to normal) now(?: (?:on|for) {_TARGET})?",
        _with_id("resolve"),
    ),
    # mitigate: "mitigated", "it's mitigated", "mitigation done on 4", "mark 4 mitigated"
    _rule(
        "mitigate",
        _C.MITIGATE,
        rf"mitigated?(?: (?:on|for))?(?: {_TARGET})?{_NOW}(?: ?[:\-–—,] (?P<text>\S.*))?",
        _with_note("mitigate"),
    ),
    _rule(
        "mark_mitigated",
        _C.MITIGATE,
        rf"(?:mark|set|flag) {_TARGET} (?:as )?mitigated{_NOW}",
        _with_id("mitigate"),
    ),
    _rule(
        "its_mitigated",
        _C.MITIGATE,
        rf"{_TARGET}{_IS} (?:now )?mitigated{_NOW}{_ON_REF2}",
        _with_id("mitigate"),
    ),
    _rule(
        "mitigation_done",
        _C.MITIGATE,
        rf"mitigati(?:ng|on)(?: is| has been)? (?:done|complete|completed|finished|in place)"
        rf"(?: (?:on|for) {_TARGET})?{_NOW}",
        _with_id("mitigate"),
    ),
    # close: "close it", "close out 3", "we can close 3", "let's close INC-3"
    _rule("close", _C.CLOSE, rf"close(?: out)?(?: {_TARGET})?(?: out)?{_NOW}", _with_id("close")),
    _rule(
        "we_can_close",
        _C.CLOSE,
        rf"(?:we|you) can (?:now )?close(?: out)? {_TARGET}(?: out)?{_NOW}",
        _with_id("close"),
    ),
    _rule(
        "lets_close",
        _C.CLOSE,
        rf"let(?:'?s| us) close(?: out)? {_TARGET}(?: out)?{_NOW}",
        _with_id("close"),
    ),
    _rule("mark_closed", _C.CLOSE, rf"(?:mark|set) {_TARGET} (?:as )?closed", _with_id("close")),
    # reopen: "reopen it", "it's back", "it is happening again on 5", "INC-5 came back"
    _rule("reopen", _C.REOPEN, rf"re-?open(?: {_TARGET})?(?: again)?{_NOW}", _with_id("reopen")),
    _rule("its_back", _C.REOPEN, rf"{_TARGET}(?:'?s| is) back(?: again)?{_ON_REF2}", _with_id("reopen")),
    _rule(
        "happening_again",
        _C.REOPEN,
        rf"(?:{_TARGET}(?:'?s| is) )?(?:happening|recurring|failing) again{_ON_REF2}",
        _with_id("reopen"),
    ),
    _rule(
        "came_back",
        _C.REOPEN,
        rf"{_TARGET} (?:came|has come|is coming) back(?: again)?{_ON_REF2}",
        _with_id("reopen"),
    ),
    # escalate: "escalate", "escalate INC-4 to sev1", "bump 4 to p1", "make 4 a sev2",
    # "INC-4 is a sev1 now"
    _rule(
        "escalate",
        _C.ESCALATE,
        rf"escalate(?: {_TARGET})?(?: (?:to )?(?P<sev>{_SEV}))?{_NOW}",
        _escalate,
    ),
    _rule(
        "bump_to",
        _C.ESCALATE,
        rf"(?:bump|raise|upgrade|move)(?: up)? {_TARGET}(?: up)? to (?P<sev>{_SEV}){_NOW}",
        _escalate,
    ),
    _rule("bump_up", _C.ESCALATE, rf"bump {_TARGET} up{_NOW}", _escalate),
    _rule("make_sev", _C.ESCALATE, rf"make {_TARGET} (?:an? )?(?P<sev>{_SEV}){_NOW}", _escalate),
    _rule(
        "is_sev_now",
        _C.ESCALATE,
        rf"(?:(?P<ref3>{_REF}) ?[:,\-–—] )?{_TARGET}(?:'?s| is) (?P<now1>now )?(?:an? )?(?P<sev>{_SEV})"
        rf"(?P<now2> now)?{_ON_REF2}",
        _escalate,
    ),
    # assign: "make @alice the commander of 4", "assign INC-4 to <@U123>", "alice is IC for 4"
    _rule(
        "make_commander",
        _C.ASSIGN,
        rf"make {_USER} {_ROLE}(?: (?:of|for|on) {_TARGET})?{_NOW}",
        _assign,
    ),
    _rule("assign_to", _C.ASSIGN, rf"assign(?: {_TARGET})? to {_USER}{_NOW}", _assign),
    _rule("hand_over", _C.ASSIGN, rf"hand(?: over)? {_TARGET}(?: over)? to {_USER}", _assign),
    _rule(
        "is_commander",
        _C.ASSIGN,
        rf"{_USER} (?:is|will be) (?P<now1>now )?{_ROLE}(?P<now2> now)?(?: (?:of|for|on) {_TARGET})?",
        _assign,
    ),
    # help: "help me", "what can you do", "how do I use you", "commands", "how do I declare?"
    _rule(
        "help",
        _C.HELP,
        r"^(?:(?:i )?(?:need|want) (?:some )?help|help(?: me)?|usage|commands|(?:list|show)(?: me)?"
        r"(?: the| your| all)? commands|what (?:else )?(?:can|do) you do|what (?:commands|can i (?:say|ask"
        r"|type|do))(?: are there| do you (?:know|have|understand|support)| can i use)?|how (?:do|can|should)"
        r" (?:i|we) (?:use|talk to|work with) (?:you|this(?: bot)?|the bot)|how does this(?: bot)? work"
        r"|what are (?:the|your) commands)$",
        _help,
    ),
    _rule(
        "help_topic",
        _C.HELP,
        r"^(?:help (?:with|on|for)|how (?:do|can|should) (?:i|we|you)) (?P<verb>declare|acknowledge|ack"
        r"|resolve|mitigate|close|reopen|escalate|assign|add a note|note|list|join|leave)\b",
        _help_topic,
    ),
    # status: "status of 12", "how is #12 going", "details on 12", "who is on INC-4"
    _rule("status_word", _C.STATUS, r"\bstatus\b", _status),
    _rule(
        "how_is_it_going",
        _C.STATUS,
        r"\bhow(?:'?s| is| are)\b.*\b(?:going|doing|looking|progressing|coming along)\b",
        _status,
    ),
    _rule(
        "tell_me_about",
        _C.STATUS,
        r"\b(?:tell me (?:more )?about|details (?:on|of|for|about)|info (?:on|about|for)"
        r"|updates? (?:on|for|about)|news (?:on|about)|summary (?:of|for)|any updates?$)",
        _status,
    ),
    _rule("where_are_we", _C.STATUS, r"\bwhere (?:are|r) (?:we|things)\b(?: (?:with|on|at)\b|$)", _status),
    _rule(
        "whats_up_with",
        _C.STATUS,
        r"\bwhat(?:'?s| is) (?:happening|going on|new|up|the latest) (?:with|on|in)\b",
        _status,
    ),
    _rule(
        "who_is_on",
        _C.STATUS,
        r"\bwho(?:'?s| is)? (?:on|handling|running|leading|commanding|owns|has|working on|in charge of"
        r"|(?:the )?(?:incident )?(?:commander|ic|lead|owner))\b",
        _status,
    ),
    # list: "what's open", "anything on fire", "any sev1s open", "show me all incidents"
    _rule(
        "whats_open",
        _C.LIST,
        r"\bwhat(?:'?s| is| are)(?: (?:currently|still|all|else))? (?:open|going on|happening|on fire"
        r"|burning|ongoing|active|down)(?: (?:right now|now|today|at the moment|currently|atm))?$",
        _list,
    ),
    _rule(
        "anything_on_fire",
        _C.LIST,
        r"\b(?:is )?(?:any|anything|something) (?:still )?(?:open|on fire|burning|going on|ongoing|active)"
        r"(?: (?:right now|now|today|at the moment|currently|atm))?$",
        _list,
    ),
    _rule(
        "any_sev_open",
        _C.LIST,
        rf"\bany (?:open |active |ongoing )?{_SEV}s?(?: incidents?)?"
        r"(?: (?:open|active|ongoing|going on|right now|now|today))?$",
        _list,
    ),
    _rule(
        "incidents",
        _C.LIST,
        r"\b(?:list|show|see|get|give me|open|active|ongoing|current|live|all|every|recent|what|which"
        r"|how many)\b.*\bincidents\b|\bany\b.*\bincidents?\b"
        r"|\bincidents\b.*\b(?:open|active|ongoing|going on|right now)\b"
        rf"|^(?:list|show)(?: me)?(?: the| all| open)*(?: {_SEV}s?)?$|^incidents$",
        _list,
    ),
)


# --- reading --------------------------------------------------------------------------------


def _may_change(rule: _Rule, match: re.Match[str], said: _Said) -> bool:
    """The guards of "never guess a change": no question, negation, hearsay or supposition."""
    free = next((g for g in ("title", "text") if g in match.re.groupindex and match.group(g)), None)
    head = said.text[: match.start(free)] if free is not None else said.text
    if said.asked and not said.polite and not rule.text_may_ask:
        return False
    return not (
        "?" in head or _NEGATION_RE.search(head) or _QUESTION_START_RE.match(head) or _HEARSAY_RE.search(head)
    )


def _apply(rule: _Rule, said: _Said) -> str | None:
    match = rule.pattern.fullmatch(said.text) if rule.changes else rule.pattern.search(said.text)
    if match is None or (rule.changes and not _may_change(rule, match, said)):
        return None
    command = rule.build(match, said)
    if command is None:
        return None
    parsed = _parse(command)
    return command if parsed is not None and parsed.name is rule.name else None


def _reads_like_a_sentence(name: CommandName, text: str) -> bool:
    """``declare a sev2: ...``, ``note 4: ...``, ``declare sev1 for ...``: the command word
    starts a sentence whose glue the phrasing rules take apart better than the grammar."""
    words = text.split()[1:]
    if not words:
        return False
    first = words[0].lower()
    if first in _CONNECTIVES or first in ("-", "–", "—", ":", ",") or first[-1] in ":,":
        return True
    if name in (CommandName.RESOLVE, CommandName.MITIGATE) and first in ("it", "this", "that"):
        return True  # "resolve it" is not a resolution note "it"
    if name is CommandName.DECLARE and parse_severity(first) is not None and len(words) > 1:
        second = words[1].lower()
        return second in _CONNECTIVES or second in ("-", "–", "—", ":", ",")
    return False


def _as_command(said: _Said) -> tuple[str | None, bool]:
    """The text as the command language, and whether it also reads like a sentence (then the
    phrasing rules get the first try)."""
    parsed = _parse(said.text)
    if parsed is None:
        return None, False
    if said.asked and not said.polite and parsed.name in CHANGING_COMMANDS - {CommandName.NOTE}:
        return None, False  # "ack 4?", "declare sev1 payments?" ask whether to
    if parsed.name in (CommandName.RESOLVE, CommandName.MITIGATE) and (
        parsed.text and _ANOTHER_ID_RE.fullmatch(parsed.text)
    ):
        return None, False  # "resolve 3 4", "mitigate 3 and 4"
    command = said.text
    if parsed.text is not None and parsed.name is not CommandName.DECLARE:
        whole = _parse(said.core)  # a note keeps its own ending: "note 4 is the DB back?"
        if whole is not None and (whole.name, whole.incident) == (parsed.name, parsed.incident):
            command = said.core
    if not _reads_like_a_sentence(parsed.name, said.text):
        return command, False
    if parsed.name is CommandName.DECLARE:
        return None, False  # "declare a sev1": no title, and "a sev1" is not one
    if _ID_ATTEMPT_RE.fullmatch(said.text.split()[1].rstrip(":,")):
        return None, False  # "note 0: ...": meant as an id, and not a valid one
    return command, True  # "note to self: ...": the grammar's reading unless a phrasing fits better


def understand(text: str) -> Understood | None:
    """The command a sentence addressed to the bot asks for, or None when not sure.

    ``text`` is what follows the mention. See the module docstring for the rules; changing
    commands are never produced from a question, a negation, hearsay or an ambiguous id.
    """
    if len(text) > _MAX_LENGTH:
        return None
    said = _clean(text)
    if said is None:
        return None
    command, sentence = _as_command(said)
    if command is not None and not sentence:
        return Understood(command, "command")
    for rule in _RULES:
        found = _apply(rule, said)
        if found is not None:
            return Understood(found, rule.phrasing)
    if command is not None:
        return Understood(command, "command")
    return None
