"""Secrets out of everything the service says: chat messages, answers, cards and log lines.

People paste things into incidents: a connection string with its password, a token that
"stopped working", a private key. A :class:`Redactor` replaces each secret it finds by a
marker that names what it was (``[redacted aws-access-key]``), leaving the text around it as
it was written, so ``https://deploy:hunter2@db.internal`` reads
``https://deploy:[redacted url-password]@db.internal`` and ``password=hunter2`` reads
``password=[redacted password]``.

It is built once, from ``[redaction]`` in the settings: the built-in detectors
(:data:`BUILT_IN`) and then the operator's ``patterns``, each one a regular expression whose
whole match (or its group named ``secret``, when it has one) is a secret.

Where it runs:

- text people write enters the service (a command's title or note, a form's description, a
  message marked for the timeline; the incident system's title and summary): stored redacted
  unless ``keep_original_in_timeline`` says to keep what people wrote (:func:`for_storage`);
- text leaves for chat (an answer, a card, a channel's name and topic): always redacted, with
  :func:`active`, the process's redactor;
- every log record (see :mod:`chatops_core.logging_setup`).

The built-in patterns are written so that no input makes them backtrack without bound: every
repetition is either bounded or over a character class that the next part of the pattern
cannot also match. Most text carries no secret at all, and most detectors have a few words one
of which a text must contain for the detector to be tried (``xox`` for a Slack token), so the
common case costs a lowercase copy of the text and a few substring checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from chatops_core.errors import ConfigError
from chatops_core.models import Incident, Reply, TimelineEntry

if TYPE_CHECKING:
    from chatops_core.settings import RedactionSettings

__all__ = [
    "BUILT_IN",
    "Detector",
    "Redactor",
    "active",
    "compile_patterns",
    "for_storage",
    "install",
    "luhn_valid",
    "marker",
    "redactor_for",
]

_MARKER_PREFIX = "[redacted"


def marker(name: str) -> str:
    """What a secret found by detector ``name`` is replaced by."""
    return f"{_MARKER_PREFIX} {name}]"


@dataclass(frozen=True)
class Detector:
    """One kind of secret.

    ``pattern`` finds it; the part of a match that is the secret is the first of ``groups``
    that took part in the match (the whole match when ``groups`` is empty), the rest of the
    match stays as written (a key's name, a URL's user and host). ``triggers``: lowercase
    words one of which the text must contain for the pattern to be tried at all (none: always
    tried). ``accept``: a last check of a match (a card number's checksum); a match it refuses
    stays as written.
    """

    name: str
    pattern: re.Pattern[str]
    groups: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    accept: Callable[[re.Match[str]], bool] | None = None
    # Where in a match the secret is (a span of the text), None when the match holds none;
    # instead of ``groups`` and ``accept``, for a secret that is only part of what matched.
    locate: Callable[[re.Match[str]], tuple[int, int] | None] | None = None

    def applies(self, lowered: str) -> bool:
        return not self.triggers or any(word in lowered for word in self.triggers)

    def redact(self, text: str) -> str:
        return self.pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        whole = match.group(0)
        span = self._secret(match) if whole else None
        if span is None or span[0] == span[1]:
            return whole
        base = match.start()
        return whole[: span[0] - base] + marker(self.name) + whole[span[1] - base :]

    def _secret(self, match: re.Match[str]) -> tuple[int, int] | None:
        if self.locate is not None:
            return self.locate(match)
        if self.accept is not None and not self.accept(match):
            return None
        for group in self.groups:
            if match.start(group) != -1:
                return match.span(group)
        return match.span()


# --- the built-in detectors ------------------------------------------------------------------

# Characters of a token (base64url and friends); the lookarounds keep a match to whole tokens.
_TOKEN = r"A-Za-z0-9_\-"
# Not a secret already replaced: a second pass over redacted text changes nothing.
_NOT_DONE = r"(?!\[redacted)"


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` pass the Luhn checksum that every payment card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_number(match: re.Match[str]) -> tuple[int, int] | None:
    """A card number as people write one: 13 to 19 digits that pass Luhn, whole or in groups
    of three digits or more split by one kind of separator (``4111 1111 1111 1111``). What
    follows a grouped number (``... 1111 123``, its security code) is not part of it: the
    longest run of whole groups that is a card number is."""
    written = match.group(0)
    separators = {char for char in written if char in " -"}
    if not separators:
        return match.span() if luhn_valid(written) else None
    if len(separators) > 1:
        return None
    groups = written.split(separators.pop())
    if min(len(group) for group in groups) < 3:
        return None
    for count in range(len(groups), 1, -1):
        digits = "".join(groups[:count])
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            length = sum(len(group) for group in groups[:count]) + count - 1
            return match.start(), match.start() + length
    return None


def _looks_secret(value: str) -> bool:
    """A value that reads as a credential rather than a word: long, with a digit in it."""
    return len(value) >= 8 and any(char.isdigit() for char in value)


def _bearer(match: re.Match[str]) -> bool:
    """``Bearer <token>``: any token in an ``Authorization`` header; elsewhere only one that
    reads as a credential, so "the bearer token expired" stays as written."""
    before = match.string[max(0, match.start() - 32) : match.start()].lower()
    return "authorization" in before or _looks_secret(match.group("secret"))


def _authorization(match: re.Match[str]) -> bool:
    return match.group("scheme") is not None or len(match.group("secret")) >= 20


def _pair_check(min_length: int, bare_colon: bool) -> Callable[[re.Match[str]], bool]:
    """When ``key=value`` / ``"key": "value"`` / ``key: value`` carries a secret.

    ``=`` or quotes say the text is a setting: its value is the secret. ``key: value`` in
    plain prose ("secret: the deploy is late") is a secret only for the password words
    (``bare_colon``) or when the value reads as a credential.
    """

    def check(match: re.Match[str]) -> bool:
        value = match.group("dq") or match.group("sq") or match.group("bare") or ""
        if len(value) < min_length:
            return False
        if match.group("key").lower() == "pwd" and value[:1] in "/~":
            return False  # the shell's working directory, PWD=/home/alice
        quoted = bool(match.group("q")) or match.group("bare") is None
        if match.group("sep") == ":" and not quoted and not bare_colon:
            return _looks_secret(value)
        return True

    return check


def _pair(
    name: str, keywords: str, triggers: tuple[str, ...], *, min_length: int, bare_colon: bool
) -> Detector:
    """A detector of a secret named by a key (``password=...``, ``"api_key": "..."``).

    The key is one of ``keywords``, possibly with more name after a separator
    (``secret_access_key``, ``token.value``), possibly after more name before it
    (``db_password``, which is left as written). A value is quoted (JSON) or runs to the next
    space, quote, ``&``, ``,`` or ``;``.
    """
    pattern = re.compile(
        rf"(?P<key>(?:{keywords})(?:[_.\-][A-Za-z0-9_.\-]{{0,30}})?)(?P<q>[\"']?)[ \t]*(?P<sep>[:=])[ \t]*"
        + rf"""(?:"{_NOT_DONE}(?P<dq>(?:[^"\\\n]|\\.){{1,4000}})"|'{_NOT_DONE}(?P<sq>[^'\n]{{1,4000}})'"""
        + rf"""|{_NOT_DONE}(?P<bare>[^\s"'&,;<>()\[\]{{}}]+))""",
        re.IGNORECASE,
    )
    return Detector(
        name,
        pattern,
        groups=("dq", "sq", "bare"),
        triggers=triggers,
        accept=_pair_check(min_length, bare_colon),
    )


BUILT_IN: tuple[Detector, ...] = (
    # A whole PEM private key block; one cut short (a paste that lost its end) runs to the end.
    Detector(
        "private-key",
        re.compile(
            r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----|.*)",
            re.DOTALL,
        ),
        triggers=("private key",),
    ),
    # Webhook URLs are credentials as a whole: anyone holding one can post.
    Detector(
        "slack-webhook",
        re.compile(r"https?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+\-]+"),
        triggers=("hooks.slack",),
    ),
    Detector(
        "discord-webhook",
        re.compile(
            r"https?://(?:(?:canary|ptb)\.)?discord(?:app)?\.com/api(?:/v\d{1,2})?/webhooks/\d+/[A-Za-z0-9_\-]+"
        ),
        triggers=("discord",),
    ),
    Detector(
        "teams-webhook",
        re.compile(r"https://[A-Za-z0-9.\-]{0,100}webhook\.office\.com/webhookb?2?/[^\s<>\"'`]+"),
        triggers=("webhook.office.com",),
    ),
    # A Workflows (Power Automate, Logic Apps) webhook URL or an Azure SAS URL: the signature
    # is the credential; the rest of the URL says where it points.
    Detector(
        "url-signature",
        re.compile(r"[?&]sig=" + _NOT_DONE + r"(?P<secret>[^\s&#\"'<>`]+)"),
        groups=("secret",),
        triggers=("sig=",),
    ),
    # Slack: bot, user, workspace, refresh (xoxe-1-...) and rotating (xoxe.xoxp-1-...) tokens,
    # app-level tokens; all carry a number right after the prefix.
    Detector(
        "slack-token",
        re.compile(r"(?<![A-Za-z0-9])(?:xox[a-z](?:\.xox[a-z])?|xapp)-\d[A-Za-z0-9\-]{8,}"),
        triggers=("xox", "xapp-"),
    ),
    # GitHub: ghp_ (personal), gho_ (OAuth), ghu_/ghs_ (app), ghr_ (refresh), fine-grained.
    Detector(
        "github-token",
        re.compile(
            r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,242})(?![A-Za-z0-9_])"
        ),
        triggers=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Detector(
        "aws-access-key",
        re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
        triggers=("akia", "asia"),
    ),
    Detector(
        "aws-secret-key",
        re.compile(
            r"aws_?secret_?access_?key[\"']?[ \t]*[:=][ \t]*[\"']?"
            + _NOT_DONE
            + r"(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
            re.IGNORECASE,
        ),
        groups=("secret",),
        triggers=("aws_secret", "awssecret"),
    ),
    # A JSON Web Token: three base64url parts, the first a JSON object ("eyJ" is '{"').
    Detector(
        "jwt",
        re.compile(rf"(?<![{_TOKEN}])eyJ[{_TOKEN}]{{8,}}\.[{_TOKEN}]{{8,}}\.[{_TOKEN}]*"),
        triggers=("eyj",),
    ),
    # A Discord bot token: the bot's id in base64, a timestamp, an HMAC.
    Detector(
        "discord-token",
        re.compile(
            rf"(?<![{_TOKEN}.])(?=[{_TOKEN}]{{0,27}}\d)[MNO][{_TOKEN}]{{23,27}}\.[{_TOKEN}]{{6}}\.[{_TOKEN}]{{27,40}}"
            rf"(?![{_TOKEN}])"
        ),
        triggers=(".",),
    ),
    Detector(
        "bearer-token",
        re.compile(r"\bbearer[ \t]+" + _NOT_DONE + r"(?P<secret>[A-Za-z0-9._~+/\-]+=*)", re.IGNORECASE),
        groups=("secret",),
        triggers=("bearer",),
        accept=_bearer,
    ),
    Detector(
        "authorization",
        re.compile(
            r"\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?"
            r"(?:(?P<scheme>basic|token|bot|hmac|digest|negotiate|apikey|sharedaccesssignature)[ \t]+)?"
            + _NOT_DONE
            + r"(?P<secret>[^\s\"',;]+)",
            re.IGNORECASE,
        ),
        groups=("secret",),
        triggers=("authorization",),
        accept=_authorization,
    ),
    # A password in a URL's user information: scheme://user:password@host.
    Detector(
        "url-password",
        re.compile(
            r"\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s:/?#@\[\]]{0,200}:"
            + _NOT_DONE
            + r"(?P<secret>[^\s/?#\[\]]{1,200})@"
        ),
        groups=("secret",),
        triggers=("://",),
    ),
    _pair("password", r"password|passwd|passphrase|pwd", ("pass", "pwd"), min_length=1, bare_colon=True),
    _pair("secret", r"secret", ("secret",), min_length=6, bare_colon=False),
    _pair("token", r"token", ("token",), min_length=6, bare_colon=False),
    _pair("api-key", r"api[_\-]?key|access[_\-]?key", ("key",), min_length=6, bare_colon=False),
    # Payment card numbers: 13-19 digits (2-6 is every major network's first digit), checked
    # by Luhn; an IP address, a version, a phone number with its "+" or a longer run of
    # digits is none.
    Detector(
        "card-number",
        re.compile(r"(?<![\w.+/:\-])[2-6]\d(?:[ \-]?\d){11,17}(?![\w/]|[.,:\-]\d)"),
        triggers=tuple("0123456789"),
        locate=_card_number,
    ),
)


def compile_patterns(patterns: Iterable[str]) -> list[Detector]:
    """Detectors of the operator's ``[redaction] patterns``, named ``pattern-<index>``.

    A pattern that does not compile, or that matches the empty text (it would redact between
    every two characters), is a :class:`ConfigError` naming its index (the message quotes the
    regular expression's complaint, never the pattern: it may hold a secret itself).
    """
    detectors = []
    for index, pattern in enumerate(patterns):
        problem = pattern_problem(pattern)
        if problem:
            raise ConfigError(f"redaction.patterns[{index}] {problem}")
        compiled = re.compile(pattern)
        groups = ("secret",) if "secret" in compiled.groupindex else ()
        detectors.append(Detector(f"pattern-{index}", compiled, groups=groups))
    return detectors


def pattern_problem(pattern: str) -> str | None:
    """What is wrong with an operator's pattern, or None."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        return f"is not a valid regular expression: {exc.msg}{where}"
    if compiled.search("") is not None:
        return "matches the empty text; a pattern must match at least one character"
    return None


class Redactor:
    """Replaces the secrets in a text: the built-in detectors, then ``extra`` ones."""

    def __init__(self, extra: Sequence[Detector] = (), *, built_in: Sequence[Detector] = BUILT_IN) -> None:
        self.detectors: tuple[Detector, ...] = (*built_in, *extra)

    @classmethod
    def from_settings(cls, settings: RedactionSettings | None) -> Redactor:
        """The redactor ``[redaction]`` describes (:class:`ConfigError` for a bad pattern)."""
        return cls(compile_patterns(settings.patterns) if settings is not None else ())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(detector.name for detector in self.detectors)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by its marker; text with none comes back as is."""
        if not text:
            return text
        lowered = text.lower()
        for detector in self.detectors:
            # Detector.applies, inline: this loop runs for every text, most of which has no secret.
            for word in detector.triggers:
                if word in lowered:
                    break
            else:
                if detector.triggers:
                    continue
            text = detector.redact(text)
        return text

    def optional(self, text: str | None) -> str | None:
        return self.redact(text) if text else text

    def incident(self, incident: Incident) -> Incident:
        """``incident`` with the text people wrote redacted (title, description, resolution)."""
        return incident.model_copy(
            update={
                "title": self.redact(incident.title),
                "description": self.optional(incident.description),
                "resolution": self.optional(incident.resolution),
            }
        )

    def entry(self, entry: TimelineEntry) -> TimelineEntry:
        return entry.model_copy(update={"text": self.redact(entry.text)})

    def reply(self, reply: Reply) -> Reply:
        """An answer as it may be shown in chat: every text in it redacted."""
        return reply.model_copy(
            update={
                "text": self.redact(reply.text),
                "incident": self.incident(reply.incident) if reply.incident else None,
                "timeline": [self.entry(entry) for entry in reply.timeline],
                "incidents": [self.incident(incident) for incident in reply.incidents],
            }
        )


@lru_cache(maxsize=16)
def _cached(patterns: tuple[str, ...]) -> Redactor:
    return Redactor(compile_patterns(patterns))


def redactor_for(settings: RedactionSettings) -> Redactor:
    """The redactor of ``settings`` (built once per set of patterns)."""
    return _cached(tuple(settings.patterns))


def for_storage(settings: RedactionSettings, text: str | None) -> str | None:
    """What is stored of ``text`` people wrote: the text as written where
    ``keep_original_in_timeline`` says so, else its redacted form."""
    if text is None or settings.keep_original_in_timeline:
        return text
    return redactor_for(settings).redact(text)


_active = Redactor()


def active() -> Redactor:
    """The process's redactor: the one :func:`install` put in place (``load_settings`` does,
    from the process's settings), the built-in detectors alone until then."""
    return _active


def install(redactor: Redactor) -> Redactor:
    """Make ``redactor`` the process's redactor; returns the one it replaces."""
    global _active
    previous, _active = _active, redactor
    return previous
