"""Names of incident channels on Mattermost.

A channel has a *name*, its handle in URLs, and a *display name*, what people read.
The docs do not state the rule for names; the server's (``model.IsValidChannelIdentifier``,
``ChannelNameMaxLength``) takes lowercase letters, digits, ``-`` and ``_``, starting with a
letter or digit, at most 64 characters; servers up to v10 want at least 2 characters, and
older ones also a letter or digit at the end. Names made here meet the strictest of these.
A display name is at most 64 characters (``ChannelDisplayNameMaxRunes``, counted in code
points) and not blank.
Names stay unique in a team even once a channel is archived, so a taken name gets a suffix
(:func:`next_name`).
API reference: https://api.mattermost.com/#tag/channels/operation/CreateChannel
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_LENGTH = 64
MIN_NAME_LENGTH = 2
MAX_DISPLAY_NAME_LENGTH = 64
FALLBACK_NAME = "incident"
FALLBACK_DISPLAY_NAME = "Incident"
ELLIPSIS = "\u2026"

# A name made here: starts and ends with a letter or digit.
VALID_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")

# Latin letters that NFKD does not take apart into ASCII.
_LATIN = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "TH",
        "ð": "d",
        "Ð": "D",
        "ı": "i",
    }
)
_NOT_NAME = re.compile(r"[^a-z0-9_]+")
# A run of separators holding a dash is one dash; a run of underscores is one underscore.
_DASH_RUN = re.compile(r"[-_]*-[-_]*")
_UNDERSCORE_RUN = re.compile(r"_{2,}")
_SEPARATORS = "-_"
_SPACE_RUN = re.compile(r"\s+")


def _ascii(text: str) -> str:
    """``text`` with accents dropped and common Latin letters spelled in ASCII.

    Letters, marks and digits of other scripts are dropped; anything else that is not ASCII
    (punctuation, symbols such as emoji, spaces) becomes a space, so it still separates words.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", text.translate(_LATIN)):
        if char.isascii():
            out.append(char)
        elif unicodedata.category(char)[0] not in "LMN":
            out.append(" ")
    return "".join(out)


def slugify(text: str) -> str:
    """``text`` as a channel-name fragment: may be empty and is not length-limited."""
    slug = _NOT_NAME.sub("-", _ascii(text).lower())
    slug = _UNDERSCORE_RUN.sub("_", _DASH_RUN.sub("-", slug))
    return slug.strip(_SEPARATORS)


def _cut(slug: str, limit: int, keep: int = 0) -> str:
    """``slug`` in at most ``limit`` characters, cut between words where one ends in reach.

    The first ``keep`` characters (the incident id) are never cut into.
    """
    if len(slug) <= limit:
        return slug
    cut = slug[:limit]
    if slug[limit] not in _SEPARATORS:
        boundary = max(cut.rfind("-"), cut.rfind("_"))
        if boundary > keep:
            cut = cut[:boundary]
    return cut.rstrip(_SEPARATORS)


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a channel name every supported server accepts."""
    return len(name) >= MIN_NAME_LENGTH and bool(VALID_NAME.match(name))


def channel_name_for(incident_id: str, title: str) -> str:
    """A valid channel name for an incident: its id, then as much of the title as fits.

    ``("INC-12", "Database timeouts!")`` gives ``"inc-12-database-timeouts"``. Accents are
    dropped (``"Überlast"`` gives ``"uberlast"``), other scripts and emoji left out; a title
    with nothing left gives the id alone.
    """
    prefix = _cut(slugify(incident_id), MAX_NAME_LENGTH) or FALLBACK_NAME
    if len(prefix) < MIN_NAME_LENGTH:
        prefix = f"{FALLBACK_NAME}-{prefix}"
    rest = slugify(title)
    if not rest:
        return prefix
    return _cut(f"{prefix}-{rest}", MAX_NAME_LENGTH, keep=len(prefix))


def next_name(name: str, n: int) -> str:
    """The ``n``-th try (2, 3, ...) at a name when ``name`` is taken: ``name-<n>``.

    ``name`` is shortened so the result stays within 64 characters. Pass the first name each
    time (``next_name(first, 3)``), not the previous try.
    """
    if isinstance(n, bool) or n < 2:
        raise ValueError("n counts tries from 2")
    suffix = f"-{n}"
    # Cut mid-word rather than back to a word boundary: dropping whole words could leave
    # "inc-12" + "-10", which reads as another name.
    base = slugify(name)[: MAX_NAME_LENGTH - len(suffix)].rstrip(_SEPARATORS) or FALLBACK_NAME
    return base + suffix


def _text(value: str) -> str:
    """``value`` on one line: control characters dropped, whitespace runs as one space."""
    kept = "".join(
        " " if char.isspace() else char
        for char in unicodedata.normalize("NFC", value)
        if char.isspace() or unicodedata.category(char) != "Cc"
    )
    return _SPACE_RUN.sub(" ", kept).strip()


def display_name_for(incident_id: str, title: str) -> str:
    """What people read as the channel's name: ``"INC-12 Database timeouts"``.

    At most 64 characters (a long title is cut between words and ends with an ellipsis);
    never blank.
    """
    prefix = _text(incident_id)[:MAX_DISPLAY_NAME_LENGTH] or FALLBACK_DISPLAY_NAME
    rest = _text(title)
    if not rest:
        return prefix
    full = f"{prefix} {rest}"
    if len(full) <= MAX_DISPLAY_NAME_LENGTH:
        return full
    room = MAX_DISPLAY_NAME_LENGTH - len(ELLIPSIS)
    cut = full[:room]
    if full[room] != " ":
        boundary = cut.rfind(" ")
        if boundary > len(prefix):
            cut = cut[:boundary]
    return cut.rstrip() + ELLIPSIS
