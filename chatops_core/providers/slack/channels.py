"""Slack channel names.

Channel names may only contain lowercase letters, numbers, hyphens and underscores, and
must be 80 characters or less (https://docs.slack.dev/reference/methods/conversations.create).
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_LENGTH = 80
FALLBACK_NAME = "incident"
_INVALID = re.compile(r"[^a-z0-9_-]")
_DASHES = re.compile(r"-{2,}")
VALID_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


def _ascii(text: str) -> str:
    """Transliterate what NFKD turns into ASCII; drop other letters, marks and digits.

    Anything else that is not ASCII (punctuation, symbols such as emoji, separators)
    becomes a space, so it still separates words.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", text):
        if char.isascii():
            out.append(char)
        elif unicodedata.category(char)[0] not in "LMN":
            out.append(" ")
    return "".join(out)


def slugify(text: str) -> str:
    """``text`` as a channel-name fragment: may be empty and is not length-limited."""
    slug = _INVALID.sub("-", _ascii(text).lower())
    return _DASHES.sub("-", slug).strip("-")


def _cut(slug: str, limit: int, keep: int = 0) -> str:
    """``slug`` in at most ``limit`` characters, preferring to cut between words.

    The first ``keep`` characters (the incident id) are never cut into.
    """
    if len(slug) <= limit:
        return slug
    cut = slug[:limit]
    if slug[limit] != "-":
        boundary = cut.rfind("-")
        if boundary > keep:
            cut = cut[:boundary]
    return cut.rstrip("-")


def channel_name(incident_id: str, title: str) -> str:
    """A valid, never empty channel name: the incident id, then as much of the title as fits.

    ``("INC-12", "Database timeouts!")`` gives ``"inc-12-database-timeouts"``.
    """
    prefix = _cut(slugify(incident_id), MAX_NAME_LENGTH) or FALLBACK_NAME
    rest = slugify(title)
    if not rest:
        return prefix
    return _cut(f"{prefix}-{rest}", MAX_NAME_LENGTH, keep=len(prefix))


def normalize_name(name: str) -> str:
    """Any requested name made valid for Slack (``incident`` when nothing is left)."""
    return _cut(slugify(name.lstrip("#")), MAX_NAME_LENGTH) or FALLBACK_NAME


def with_suffix(name: str, number: int) -> str:
    """``name-<number>``, shortening ``name`` so the result stays within 80 characters."""
    suffix = f"-{number}"
    return name[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix
