"""Slack messages as terminal text: what ``chatops simulate`` and the local playground print.

mrkdwn (https://docs.slack.dev/messaging/formatting-message-text/) loses its markup: user and
channel mentions become ``@name`` and ``#name`` where a name is known, dates their fallback
text, links ``label (url)``, and the three escaped characters come back. Block Kit
(https://docs.slack.dev/reference/block-kit/blocks) becomes a few lines per block: a section's
text and its fields (``Label: value · ...``), a context line, a rule for a divider, and the
buttons and menus of an actions block in brackets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Looks up a name by id (a user ``U123`` or a channel ``C123``); None when unknown.
NameLookup = Callable[[str], str | None]

RULE = "-" * 40

# The emoji the bot's messages use, as the characters a terminal can show.
_EMOJI = {
    "red_circle": "🔴",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "large_blue_circle": "🔵",
    "white_check_mark": "✅",
    "warning": "⚠️",
    "pushpin": "📌",
    "rotating_light": "🚨",
}
_ANGLE = re.compile(r"<([^<>]*)>")
_EMOJI_RE = re.compile(r":([a-z0-9_+-]+):")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")


def _none(_: str) -> str | None:
    return None


def mrkdwn_text(text: str, names: NameLookup = _none) -> str:
    """``text`` (Slack mrkdwn) as plain text, with names for the ids ``names`` knows."""

    def angle(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            found = names(target[1:])
            return "@" + (found or label or target[1:])
        if target.startswith("#"):
            found = names(target[1:])
            return "#" + (found or label or target[1:])
        if target.startswith("!"):
            if label:  # dates, user groups: the fallback Slack shows without the client's help
                return label
            word = target[1:].split("^", 1)[0]
            return f"@{word}"
        if label:
            return f"{label} ({target})"
        return target

    plain = _ANGLE.sub(angle, text)
    plain = _BOLD.sub(r"\1", plain)
    plain = _ITALIC.sub(r"\1", plain)
    plain = _STRIKE.sub(r"\1", plain)
    plain = _EMOJI_RE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), plain)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any, names: NameLookup) -> str:
    """A text object (``plain_text`` or ``mrkdwn``) as plain text."""
    if not isinstance(obj, Mapping):
        return ""
    raw = str(obj.get("text") or "")
    return mrkdwn_text(raw, names) if obj.get("type") == "mrkdwn" else raw


def _field(obj: Any, names: NameLookup) -> str:
    """A section field, ``*Label*\\nvalue`` as ``Label: value``."""
    label, sep, value = _text(obj, names).partition("\n")
    return f"{label}: {' '.join(value.split())}" if sep else label


def _element(element: Any, names: NameLookup) -> str:
    """An interactive element as it looks: ``[Resolve]``, ``[Severity: SEV-2 ▾]``."""
    if not isinstance(element, Mapping):
        return ""
    kind = element.get("type")
    if kind == "button":
        return f"[{_text(element.get('text'), names)}]"
    if kind == "overflow":
        return "[⋯]"
    placeholder = _text(element.get("placeholder"), names)
    chosen = ""
    initial = element.get("initial_option")
    if isinstance(initial, Mapping):
        chosen = _text(initial.get("text"), names)
    elif element.get("initial_user"):
        chosen = "@" + (names(str(element["initial_user"])) or str(element["initial_user"]))
    elif element.get("initial_channel") or element.get("initial_conversation"):
        ref = str(element.get("initial_channel") or element.get("initial_conversation"))
        chosen = "#" + (names(ref) or ref)
    label = f"{placeholder}: {chosen}" if placeholder and chosen else placeholder or chosen or "choose"
    return f"[{label} ▾]"


def _input(block: Mapping[str, Any], names: NameLookup) -> str:
    label = _text(block.get("label"), names) or "input"
    return f"{label}{'' if block.get('optional') else ' *'}: ____"


def block_lines(blocks: Iterable[Any], names: NameLookup = _none) -> list[str]:
    """Block Kit blocks as the lines of text a person reads, in order."""
    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind in ("section", "header"):
            if block.get("text"):
                lines += _text(block["text"], names).splitlines()
            fields = [_field(f, names) for f in block.get("fields") or []]
            if fields:
                lines.append(" · ".join(f for f in fields if f))
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping) and accessory.get("type") != "image":
                lines.append(_element(accessory, names))
        elif kind == "context":
            parts = [
                _text(e, names) if e.get("type") != "image" else str(e.get("alt_text") or "")
                for e in block.get("elements") or []
                if isinstance(e, Mapping)
            ]
            lines.append("  ".join(p for p in parts if p))
        elif kind == "divider":
            lines.append(RULE)
        elif kind == "actions":
            lines.append(" ".join(_element(e, names) for e in block.get("elements") or []))
        elif kind == "input":
            lines.append(_input(block, names))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text') or ''}]")
        elif kind == "rich_text":
            lines.append(_rich_text(block))
        else:
            lines.append(f"[{kind} block]")
    return lines


def _rich_text(block: Mapping[str, Any]) -> str:
    """The words of a rich text block, without its styling."""
    words: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if node.get("type") == "text":
                words.append(str(node.get("text") or ""))
            for child in node.get("elements") or []:
                walk(child)

    walk(block)
    return "".join(words)


def message_lines(message: Mapping[str, Any], names: NameLookup = _none) -> list[str]:
    """A message (``text`` and ``blocks``) as a person sees it: the blocks when there are
    any (Slack shows them instead of the text), else the text."""
    blocks = message.get("blocks")
    if isinstance(blocks, list) and blocks:
        return block_lines(blocks, names)
    return mrkdwn_text(str(message.get("text") or ""), names).splitlines()


def view_lines(view: Mapping[str, Any], names: NameLookup = _none) -> list[str]:
    """A modal as text: its title, its inputs and its submit button."""
    lines = [_text(view.get("title"), names)]
    lines += block_lines(view.get("blocks") or [], names)
    submit = _text(view.get("submit"), names)
    if submit:
        lines.append(f"[{submit}]")
    return lines
