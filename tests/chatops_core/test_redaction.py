"""Redaction: real-looking secrets are replaced, harmless text is left exactly as written.

The secrets are put together from pieces so that no whole credential appears in the source.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chatops_core.errors import ConfigError
from chatops_core.redaction import BUILT_IN, Redactor, luhn_valid, marker
from chatops_core.settings import RedactionSettings, load_settings


def j(*parts: str) -> str:
    return "".join(parts)


SLACK_BOT = j("xo", "xb-", "17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy")
SLACK_USER = j("xo", "xp-", "4417396-5531942791-9385412537-8d3c3e2b1a7f6e5d4c3b2a19")
DISCORD_BOT = j("MTk4NjIyNDgzNDcxOTI1MjQ4", ".Cl2FMQ.", "ZnCjm1XVW7vRze4b7Cq4se7kKWs")
DISCORD_NEW = j("MTA5MjcxMDYxOTE2NzM0Njg0OQ", ".GqfToN.", "PP99xC9F-xjpLa1bvTFBKaWlQScozFRMY0F6hg")
GITHUB_PAT = j("gh", "p_", "R7tq2Vz8LmN4pXc1WbK9sD3fH6jY0aE5uGo2")
JWT = j(
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0",
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
)
AWS_SECRET = j("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY")
PEM_BODY = "MIIEowIBAAKCAQEA7v3Lb8vYkJz1\nq2Zt9XnP0aW4sR6dE3fG1hJ5kL8mN2oQ\n"

# (text, what must be gone, the detector that takes it)
SECRETS: list[tuple[str, str, str]] = [
    (f"bot token is {SLACK_BOT}", SLACK_BOT, "slack-token"),
    (f"try {SLACK_USER} instead", SLACK_USER, "slack-token"),
    (j("legacy ", "xo", "xa-2-", "1234567890-abcdefABCDEF12"), "1234567890-abcdefABCDEF12", "slack-token"),
    (j("refresh ", "xo", "xr-", "0987654321-zyxwvu987654"), "0987654321-zyxwvu987654", "slack-token"),
    (
        j("rotated ", "xo", "xe.xo", "xp-1-Mi0yLTE3NjUzNjcyNDgxLTE5ODc0Njk4"),
        "Mi0yLTE3NjUzNjcyNDgxLTE5ODc0Njk4",
        "slack-token",
    ),
    (j("refresh=", "xo", "xe-1-", "My0xLTQ0MTczOTYtNTU"), "My0xLTQ0MTczOTYtNTU", "slack-token"),
    (
        j("app token ", "xa", "pp-1-A0123BCDEF-4567890123-abcdef0123456789"),
        "A0123BCDEF-4567890123",
        "slack-token",
    ),
    (
        j("posting to https://hooks.slack.com/services/", "T024BE7LD/B01ABCDEF/", "aBcDeFgHiJkLmNoPqRsTuVwX"),
        "aBcDeFgHiJkLmNoPqRsTuVwX",
        "slack-webhook",
    ),
    (
        j("https://hooks.slack.com/triggers/", "T024BE7LD/5566778899/", "0a1b2c3d4e5f67890a1b2c3d4e5f6789"),
        "0a1b2c3d4e5f67890a1b2c3d4e5f6789",
        "slack-webhook",
    ),
    (f"DISCORD_TOKEN={DISCORD_BOT}", DISCORD_BOT, "discord-token"),
    (f"the bot uses {DISCORD_NEW} now", DISCORD_NEW, "discord-token"),
    (
        j(
            "https://discord.com/api/webhooks/",
            "112233445566778899/",
            "Xy_Z-0123456789abcdefGHIJKLmnopQRSTuvwx",
        ),
        "Xy_Z-0123456789abcdefGHIJKLmnopQRSTuvwx",
        "discord-webhook",
    ),
    (
        j(
            "https://prod-27.westus.logic.azure.com:443/workflows/0f1e2d3c/triggers/manual/paths/invoke",
            "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=",
            "Ab3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9d",
        ),
        "Ab3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9d",
        "url-signature",
    ),
    (
        j(
            "https://e1.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/86ffea/",
            "triggers/manual/paths/invoke?api-version=1&sig=",
            "Zq9Yx8Wv7Ut6Sr5Qp4On3Ml2Kj1",
        ),
        "Zq9Yx8Wv7Ut6Sr5Qp4On3Ml2Kj1",
        "url-signature",
    ),
    (
        j(
            "https://acme.webhook.office.com/webhookb2/1a2b3c4d-aaaa-bbbb-cccc-1234567890ab@",
            "9f8e7d6c-aaaa-bbbb-cccc-0987654321fe/IncomingWebhook/0123456789abcdef0123456789abcdef/",
            "5e6f7a8b-aaaa-bbbb-cccc-112233445566",
        ),
        "0123456789abcdef0123456789abcdef",
        "teams-webhook",
    ),
    (f"GITHUB_TOKEN {GITHUB_PAT}", GITHUB_PAT, "github-token"),
    (
        j("github_", "pat_", "11ABCDEFG0123456789abcd_EfGhIjKlMnOpQrStUvWxYz0123456789abcdefGHIJKLMNOP"),
        "EfGhIjKlMnOpQrStUvWxYz0123456789",
        "github-token",
    ),
    (
        j("oauth ", "gh", "o_", "16C7e42F292c6912E7710c838347Ae178B4a"),
        "16C7e42F292c6912E7710c838347Ae178B4a",
        "github-token",
    ),
    (j("key ", "AKIA", "IOSFODNN7EXAMPLE", " leaked"), j("AKIA", "IOSFODNN7EXAMPLE"), "aws-access-key"),
    (j("session ", "ASIA", "Y34FZKBOKMUTVV7A", "!"), j("ASIA", "Y34FZKBOKMUTVV7A"), "aws-access-key"),
    (f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET, "aws-secret-key"),
    (f'AWS_SECRET_ACCESS_KEY: "{AWS_SECRET}"', AWS_SECRET, "aws-secret-key"),
    ("curl -H 'Authorization: Bearer abc' https://api.internal/v1", "abc'", "bearer-token"),
    ("use bearer 9c1f2e7a55b04d4e8f3a in the header", "9c1f2e7a55b04d4e8f3a", "bearer-token"),
    ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy", "authorization"),
    (f"token {JWT} expired", JWT, "jwt"),
    (f"Authorization: Bearer {JWT}", JWT, "jwt"),
    (
        f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----\nthanks",
        "MIIEowIBAAKCAQEA",
        "private-key",
    ),
    (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}-----END OPENSSH PRIVATE KEY-----",
        "q2Zt9XnP0aW4sR6dE3fG1hJ5kL8mN2oQ",
        "private-key",
    ),
    (
        f"pasted half of it: -----BEGIN PRIVATE KEY-----\n{PEM_BODY}",
        "q2Zt9XnP0aW4sR6dE3fG1hJ5kL8mN2oQ",
        "private-key",
    ),
    ("DATABASE_URL=postgres://app:hunter2@db.internal:5432/prod", "hunter2", "url-password"),
    ("see https://deploy:p@ss-w0rd@git.internal/acme.git", "p@ss-w0rd", "url-password"),
    ("cache at redis://:s3cr3tpw@cache:6379/0", "s3cr3tpw", "url-password"),
    ("login with password=hunter2 then", "hunter2", "password"),
    ("passwd: Tr0ub4dor", "Tr0ub4dor", "password"),
    ("mysql -u root pwd=1234", "1234", "password"),
    ('{"user": "svc", "password": "correct horse battery"}', "correct horse battery", "password"),
    ("DB_PASSWORD='Sup3r$ecret!'", "Sup3r$ecret!", "password"),
    ("{'secret': 'abc123xyz789'}", "abc123xyz789", "secret"),
    ("client_secret=Qm9vTWFnaWNTZWNyZXQ", "Qm9vTWFnaWNTZWNyZXQ", "secret"),
    (
        "https://app.example.com/cb?token=a8f5f167f44f4964e6c998dee827110c&x=1",
        "a8f5f167f44f4964e6c998dee827110c",
        "token",
    ),
    ("access_token: ya29.a0AfH6SMBx3k9Qz7", "ya29.a0AfH6SMBx3k9Qz7", "token"),
    ("api_key=8f14e45fceea167a5a36dedd4bea2543", "8f14e45fceea167a5a36dedd4bea2543", "api-key"),
    ('headers {"X-API-Key": "k_live_51HxYz2eZvKYlo2C"}', "k_live_51HxYz2eZvKYlo2C", "api-key"),
    ("card 4111 1111 1111 1111 was charged", "4111 1111 1111 1111", "card-number"),
    ("mc 5500-0000-0000-0004 declined", "5500-0000-0000-0004", "card-number"),
    ("amex 378282246310005.", "378282246310005", "card-number"),
    ("4242 4242 4242 4242 123 (cvv)", "4242 4242 4242 4242", "card-number"),
]

HARMLESS: list[str] = [
    "Database timeouts on checkout",
    "INC-12",
    "ack INC-12",
    "resolve #12 pool resized from 20 to 40",
    "declare sev2 Payments API 5xx since 10:32 UTC",
    "2026-11-26T10:00:00Z",
    "10.0.12.7 returns 502 behind lb-3",
    "IPv6 fe80::1ff:fe23:4567:890a is flapping",
    "request 123e4567-e89b-12d3-a456-426614174000 failed",
    "reverted 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "deploy 3f2a9c1 rolled back",
    "upgrade to v2.14.3 then 1.26.0-rc.1",
    "https://status.example.com/incidents/42",
    "https://github.com/acme/api/pull/1234#issuecomment-99",
    "ssh://git@github.com/acme/api.git",
    "https://grafana.example.com:3000/d/abc?orgId=1&from=now-6h",
    "mail alice@example.com or bob@example.org",
    "short numbers 42, 1000, 65535 and 8080",
    "call +1 415 555 0132 for the bridge",
    "phone 4111 1111 1111 1112 fails the checksum",
    "order 5551234567891 fails too",
    "I reset my password yesterday",
    "password reset emails are delayed",
    "the bearer token expired at noon",
    "Authorization header missing on /api",
    "token bucket limiter drops requests",
    "max_tokens=4096",
    "Top secret: the migration is slow",
    "PWD=/home/alice",
    "timestamp 1700000000000 in the log",
    "Slack channel #inc-12-database",
    "xoxo from the whole team",
    "ASIAPACIFIC region latency",
    "eyJ is how base64 JSON starts",
    "api_key rotation is scheduled",
    "See RFC 6750 for bearer usage",
    "pi is 3.14159265358979",
    "pod api-7d9f8c6b5-x2x4z restarted",
    "latency p99=1200ms, p50=80ms",
    "-----BEGIN CERTIFICATE----- is public",
    "https://hooks.example.com/services/T000",
    "Sev2: checkout 5xx at 14:05, rollback to build 20231126.3",
    '{"status": "open", "severity": "SEV-2"}',
]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def test_the_tables_are_big_enough() -> None:
    assert len(SECRETS) >= 40 and len(HARMLESS) >= 40


@pytest.mark.parametrize(
    ("text", "secret", "name"), SECRETS, ids=[f"{n}-{i}" for i, (_, _, n) in enumerate(SECRETS)]
)
def test_a_secret_is_replaced_by_the_marker_of_its_kind(
    redactor: Redactor, text: str, secret: str, name: str
) -> None:
    redacted = redactor.redact(text)
    assert secret not in redacted, redacted
    assert marker(name) in redacted, redacted
    # Redacting again changes nothing.
    assert redactor.redact(redacted) == redacted


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_is_left_exactly_as_written(redactor: Redactor, text: str) -> None:
    assert redactor.redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pass@host/x", "https://user:[redacted url-password]@host/x"),
        ("note INC-3 password=hunter2 ok", "note INC-3 password=[redacted password] ok"),
        ('{"password": "x1", "user": "bob"}', '{"password": "[redacted password]", "user": "bob"}'),
        ("Authorization: Bearer abc", "Authorization: Bearer [redacted bearer-token]"),
        ("card 4111-1111-1111-1111, thanks", "card [redacted card-number], thanks"),
        (j("AKIA", "IOSFODNN7EXAMPLE"), "[redacted aws-access-key]"),
    ],
)
def test_only_the_secret_is_replaced(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.redact(text) == expected


def test_every_detector_has_a_name_of_its_own() -> None:
    names = [detector.name for detector in BUILT_IN]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("378282246310005", True),
        ("79927398713", True),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    "text",
    [
        "a" * 100_000,
        "password=" * 20_000,
        "https://" + "a:" * 50_000,
        "4 " * 50_000,
        "eyJ" + "a" * 100_000 + ".",
        "-----BEGIN RSA PRIVATE KEY-----" * 3_000,
        "xoxb-1" + "-" * 100_000,
        ("M" * 26 + ".") * 4_000,
        '"password": "' + "\\" * 100_000,
        "Authorization: " * 10_000,
        "bearer " * 20_000,
    ],
    ids=lambda text: text[:12],
)
def test_no_input_makes_the_built_in_detectors_backtrack(redactor: Redactor, text: str) -> None:
    started = time.perf_counter()
    redactor.redact(text)
    assert time.perf_counter() - started < 2.0


def test_an_operators_patterns_are_redacted_beside_the_built_in_ones() -> None:
    redactor = Redactor.from_settings(
        RedactionSettings(patterns=[r"CASE-\d{6}", r"employee_id=(?P<secret>\d+)"])
    )
    assert redactor.names[-2:] == ("pattern-0", "pattern-1")
    text = "CASE-123456 for employee_id=4711 password=x1"
    assert redactor.redact(text) == (
        "[redacted pattern-0] for employee_id=[redacted pattern-1] password=[redacted password]"
    )
    # Without them, the same text keeps what the built-in ones do not know.
    assert Redactor().redact("CASE-123456") == "CASE-123456"


@pytest.mark.parametrize(
    ("patterns", "index", "complaint"),
    [
        ([r"ok-\d+", r"(unclosed-hunter2"], 1, "not a valid regular expression"),
        ([r"[z-a]"], 0, "not a valid regular expression"),
        ([r"ok", r"x*"], 1, "matches the empty text"),
    ],
)
def test_a_bad_pattern_is_a_config_error_naming_its_index(
    tmp_path: Path, patterns: list[str], index: int, complaint: str
) -> None:
    config = tmp_path / "chatops.toml"
    listed = ", ".join("'" + p + "'" for p in patterns)
    config.write_text(f"[redaction]\npatterns = [{listed}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    message = str(caught.value)
    assert f"redaction.patterns: pattern [{index}]" in message and complaint in message, message
    # The pattern itself is not repeated: it may spell out what it hides.
    assert patterns[index] not in message
    with pytest.raises(ConfigError, match=rf"redaction\.patterns\[{index}\]"):
        Redactor.from_settings(RedactionSettings.model_construct(patterns=patterns))


def test_the_redaction_table_is_read_from_the_file_and_becomes_the_processs_redactor(tmp_path: Path) -> None:
    from chatops_core import redaction

    config = tmp_path / "chatops.toml"
    config.write_text(
        '[redaction]\npatterns = ["CASE-\\\\d{6}"]\nkeep_original_in_timeline = true\n', encoding="utf-8"
    )
    before = redaction.active()
    try:
        settings = load_settings(config, environ={})
        assert settings.redaction.patterns == [r"CASE-\d{6}"]
        assert settings.redaction.keep_original_in_timeline is True
        assert redaction.active().redact("CASE-123456") == "[redacted pattern-0]"
    finally:
        redaction.install(before)
    assert load_settings(environ={}).redaction == RedactionSettings()


def test_text_with_no_secret_costs_little(redactor: Redactor) -> None:
    text = "resolve INC-42 rolled back deploy 3f2a9c1; error rate back to 0.1% at 10:32 UTC"
    runs = 2_000
    started = time.perf_counter()
    for _ in range(runs):
        redactor.redact(text)
    per_call = (time.perf_counter() - started) / runs
    assert per_call < 0.001, f"{per_call * 1e6:.1f} µs per call"
