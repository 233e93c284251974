"""Nothing outside a provider's own package knows a platform's field names.

The core, the ingress and the workers speak of commands, replies, threads and messages in
neutral terms (``thread_id``, ``message_id``, an opaque ``reply_to``); how Slack names them
(``response_url``, ``trigger_id``, ``thread_ts``, ``blocks``...) is known only under
``chatops_core/providers/slack/``, and so on for every platform. This test reads every line of
the shared code, comments included, and names each line that breaks the rule.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("chatops_core", "ingress", "workers")
PROVIDERS = ROOT / "chatops_core" / "providers"

# Slack's names for how to answer, where a thread or message is, which workspace, and what a
# message is made of; a message's ``ts`` and every ``*_ts`` name derived from it.
PLATFORM_NAMES = re.compile(
    r"\b(?:response_url|trigger_id|thread_ts|message_ts|team_id|blocks|ts|[a-z]+_ts|"
    r"private_metadata|action_id|block_id|reply_broadcast|response_action)\b"
)


def _shared_files() -> list[Path]:
    files: list[Path] = []
    for top in SHARED:
        for path in sorted((ROOT / top).rglob("*.py")):
            inside_provider = path.is_relative_to(PROVIDERS) and path.parent != PROVIDERS
            if not inside_provider:
                files.append(path)
    return files


def offending_lines() -> list[str]:
    """``path:line: text`` for each line of shared code that names a platform field."""
    found: list[str] = []
    for path in _shared_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if PLATFORM_NAMES.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_the_scan_sees_the_shared_code_and_skips_the_provider_packages() -> None:
    scanned = {str(p.relative_to(ROOT)) for p in _shared_files()}
    assert {"chatops_core/models.py", "chatops_core/providers/base.py", "workers/tasks.py"} <= scanned
    assert "ingress/app.py" in scanned
    assert not any(name.startswith("chatops_core/providers/slack/") for name in scanned)


def test_the_pattern_catches_slack_names_and_spares_neutral_ones() -> None:
    for line in ("url = command.response_url", "thread_ts=ref", '{"ts": x}', "last_ts = 1", "blocks = []"):
        assert PLATFORM_NAMES.search(line), line
    for line in ("thread_id=ref", "message_id", "reply_to", "attempts = 3", "starts", "ts_total"):
        assert not PLATFORM_NAMES.search(line), line


def test_no_platform_field_names_outside_the_provider_packages() -> None:
    lines = offending_lines()
    assert not lines, "platform field names outside chatops_core/providers/<type>/:\n" + "\n".join(lines)
