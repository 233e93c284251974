"""Slack mrkdwn and Block Kit as the terminal text `chatops simulate` and the playground print."""

from __future__ import annotations

import pytest

from chatops_core.providers.slack.plaintext import block_lines, mrkdwn_text

NAMES = {"U024BE7LH": "alice", "C0INCIDENT": "incidents"}


@pytest.mark.parametrize(
    ("mrkdwn", "shown"),
    [
        ("<@U024BE7LH> took *INC-7*", "@alice took INC-7"),
        ("<@U999999> and <@U999998|bob>", "@U999999 and @bob"),
        ("see <#C0INCIDENT> or <#C0OTHER01|war-room>", "see #incidents or #war-room"),
        ("<!date^1796522755^{date_short_pretty}|2026-12-06 02:05 UTC>", "2026-12-06 02:05 UTC"),
        ("<!here> <!subteam^S123|@oncall>", "@here @oncall"),
        (
            "<https://x.example/7|Open INC-7> <https://y.example>",
            "Open INC-7 (https://x.example/7) https://y.example",
        ),
        ("a &lt;b&gt; &amp;amp; _c_ ~d~ snake_case_name", "a <b> &amp; c d snake_case_name"),
        (":red_circle: SEV-1 :unknown_emoji:", "🔴 SEV-1 :unknown_emoji:"),
    ],
)
def test_mrkdwn_as_text(mrkdwn: str, shown: str) -> None:
    assert mrkdwn_text(mrkdwn, NAMES.get) == shown


def test_blocks_as_lines() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "INC-7: DB *down*"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Resolve INC-7*"},
            "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Resolve"}},
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "by <@U024BE7LH>"},
                {"type": "image", "alt_text": "logo"},
            ],
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "static_select",
                    "placeholder": {"type": "plain_text", "text": "Severity"},
                    "initial_option": {"text": {"type": "plain_text", "text": "SEV-1"}, "value": "sev1"},
                },
                {"type": "overflow"},
            ],
        },
        {"type": "video"},
    ]
    assert block_lines(blocks, NAMES.get) == [
        "INC-7: DB *down*",
        "Resolve INC-7",
        "[Resolve]",
        "by @alice  logo",
        "[Severity: SEV-1 ▾] [⋯]",
        "[video block]",
    ]
