"""Settings of a Mattermost instance: the contract's example, its shared keys, what is refused."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from chatops_core.models import Severity
from chatops_core.providers.mattermost.config import DEFAULT_ACTION_TTL_SECONDS, MattermostSettings
from chatops_core.providers.slack.config import SlackSettings

BOT_TOKEN = "m8rb5i3yh7nwxgfpz9u1t4kdoa"
COMMAND_TOKEN = "qzgakf1nx3yt9dr4n8585ihbxy"
ACTIONS_SECRET = "5b0f3c1e9a7d4e2f8c6b1a0d9e8f7a6b"
TEAM_ID = "5xxzt146eax4tul69409opqjlf"

# The contract's [providers.mm] table, its "${...}" references already read from the
# environment and its team id filled in.
CONTRACT_EXAMPLE = f"""
[providers.mm]                       # Mattermost; URL /webhooks/mm
type = "mattermost"
url = "https://mattermost.example.com"          # REST API v4 under {{url}}/api/v4
bot_token = "{BOT_TOKEN}"                       # the bot account's access token
command_token = "{COMMAND_TOKEN}"               # token of the /im slash command
actions_secret = "{ACTIONS_SECRET}"             # authenticates the buttons we post
team_id = "{TEAM_ID}"                           # where incident channels are created
default_channel = "incidents"                   # channel name in the team, or a channel id
"""


def _values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "type": "mattermost",
        "url": "https://mattermost.example.com",
        "bot_token": BOT_TOKEN,
        "command_token": COMMAND_TOKEN,
        "actions_secret": ACTIONS_SECRET,
        "team_id": TEAM_ID,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def _error(**changes: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        MattermostSettings(**_values(**changes))
    return str(caught.value)


def test_contract_example() -> None:
    table = tomllib.loads(CONTRACT_EXAMPLE)["providers"]["mm"]
    settings = MattermostSettings(**table)
    assert settings.type == "mattermost"
    assert settings.url == "https://mattermost.example.com"
    assert settings.api_base_url == "https://mattermost.example.com/api/v4"
    assert settings.bot_token.get_secret_value() == BOT_TOKEN
    assert settings.command_token.get_secret_value() == COMMAND_TOKEN
    assert settings.actions_secret.get_secret_value() == ACTIONS_SECRET
    assert settings.team_id == TEAM_ID
    assert settings.default_channel == "incidents"


def test_defaults() -> None:
    settings = MattermostSettings(**_values(type=None))
    assert settings.type == "mattermost"
    assert settings.bot_name == "incident-bot"
    assert settings.enable_notifications is True
    assert settings.create_incident_channels is False
    assert settings.archive_on_close is False
    assert settings.notification_channels == {}
    assert settings.action_ttl_seconds == DEFAULT_ACTION_TTL_SECONDS == 30 * 24 * 3600
    assert settings.bot_user_id is None
    assert settings.timeout == 10.0


def test_shared_keys_match_slack() -> None:
    """The keys every provider type shares have the same names and defaults as Slack's."""
    shared = {
        "bot_name",
        "enable_notifications",
        "create_incident_channels",
        "archive_on_close",
        "notification_channels",
        "timeout",
        "bot_user_id",
        "default_channel",
        "type",
    }
    slack, mattermost = SlackSettings.model_fields, MattermostSettings.model_fields
    assert shared <= set(slack) and shared <= set(mattermost)
    for name in shared - {"type", "default_channel"}:
        assert slack[name].get_default(call_default_factory=True) == mattermost[name].get_default(
            call_default_factory=True
        ), name
        assert slack[name].annotation == mattermost[name].annotation, name
    # Slack writes its default channel "#incidents"; the same channel on Mattermost is "incidents".
    assert str(slack["default_channel"].default).lstrip("#") == mattermost["default_channel"].default


def test_every_field_is_described() -> None:
    assert all(field.description for field in MattermostSettings.model_fields.values())


def test_full_example() -> None:
    settings = MattermostSettings(
        **_values(
            url="http://127.0.0.1:8065/",
            bot_name="pager",
            default_channel="~incidents",
            enable_notifications=False,
            create_incident_channels=True,
            archive_on_close=True,
            notification_channels={"SEV-1": "critical-incidents", "sev2": "#major-incidents"},
            action_ttl_seconds=3600,
            bot_user_id="rd49ehbqyjytddasoownkuqrxe",
            timeout=2.5,
        )
    )
    assert settings.url == "http://127.0.0.1:8065"
    assert settings.api_base_url == "http://127.0.0.1:8065/api/v4"
    assert settings.default_channel == "incidents"
    assert settings.notification_channels == {
        Severity.SEV1: "critical-incidents",
        Severity.SEV2: "major-incidents",
    }
    assert (settings.bot_name, settings.action_ttl_seconds, settings.timeout) == ("pager", 3600, 2.5)
    assert settings.bot_user_id == "rd49ehbqyjytddasoownkuqrxe"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mattermost.example.com", "https://mattermost.example.com"),
        ("https://mattermost.example.com/", "https://mattermost.example.com"),
        ("https://example.com/chat/", "https://example.com/chat"),
        ("http://localhost:8065", "http://localhost:8065"),
        ("  https://mattermost.example.com  ", "https://mattermost.example.com"),
    ],
)
def test_url(url: str, expected: str) -> None:
    settings = MattermostSettings(**_values(url=url))
    assert settings.url == expected
    assert settings.api_base_url == expected + "/api/v4"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("mattermost.example.com", "http:// or https://", id="no-scheme"),
        pytest.param("ftp://mattermost.example.com", "http:// or https://", id="ftp"),
        pytest.param("https://", "http:// or https://", id="no-host"),
        pytest.param("", "http:// or https://", id="empty"),
        pytest.param("https://bot:hunter2@mattermost.example.com", "user name or password", id="credentials"),
        pytest.param("https://mattermost.example.com/?team=x", "query", id="query"),
        pytest.param("https://mattermost.example.com/#x", "fragment", id="fragment"),
        pytest.param("https://mattermost.example.com/api/v4", "without /api/v4", id="api-path"),
        pytest.param("https://mattermost.example.com:99999", "port", id="bad-port"),
    ],
)
def test_bad_url(url: str, says: str) -> None:
    message = _error(url=url)
    assert "url" in message and says in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("s3cr3t", id="short"),
        pytest.param("x" * 15, id="fifteen"),
        pytest.param("   padded-12345   ", id="short-once-stripped"),
    ],
)
def test_short_actions_secret(secret: str) -> None:
    message = _error(actions_secret=secret)
    assert "actions_secret must be at least 16 characters" in message
    assert "authenticates button clicks" in message
    assert secret.strip() not in message


def test_actions_secret_of_sixteen_characters() -> None:
    settings = MattermostSettings(**_values(actions_secret=" 0123456789abcdef\n"))
    assert settings.actions_secret.get_secret_value() == "0123456789abcdef"


@pytest.mark.parametrize("other", ["command_token", "bot_token"])
def test_actions_secret_is_not_another_token(other: str) -> None:
    shared = "same-value-for-both-0123456789"
    message = _error(**{"actions_secret": shared, other: shared})
    assert f"actions_secret must differ from {other}" in message
    assert shared not in message


@pytest.mark.parametrize("field", ["bot_token", "command_token", "actions_secret"])
def test_empty_secrets(field: str) -> None:
    assert f"{field} is empty" in _error(**{field: "  "})


@pytest.mark.parametrize("field", ["bot_token", "command_token", "actions_secret", "url", "team_id"])
def test_required(field: str) -> None:
    values = _values()
    del values[field]
    with pytest.raises(ValidationError) as caught:
        MattermostSettings(**values)
    assert field in str(caught.value)


def test_secrets_never_shown() -> None:
    settings = MattermostSettings(**_values())
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        for secret in (BOT_TOKEN, COMMAND_TOKEN, ACTIONS_SECRET):
            assert secret not in shown
    assert isinstance(settings.bot_token, SecretStr)
    assert "**********" in repr(settings)


def test_validation_errors_do_not_echo_input() -> None:
    """A token pasted into the wrong key is not printed back."""
    message = _error(team_id=BOT_TOKEN + "x", url=f"https://{COMMAND_TOKEN}:{ACTIONS_SECRET}@example.com")
    for secret in (BOT_TOKEN, COMMAND_TOKEN, ACTIONS_SECRET):
        assert secret not in message


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param({"SEV-1": "a1"}, {Severity.SEV1: "a1"}, id="SEV-1"),
        pytest.param({"sev1": "a1"}, {Severity.SEV1: "a1"}, id="sev1"),
        pytest.param({"sev-2": "a2"}, {Severity.SEV2: "a2"}, id="sev-2"),
        pytest.param({"Sev3": "a3"}, {Severity.SEV3: "a3"}, id="Sev3"),
        pytest.param({" SEV4 ": "a4"}, {Severity.SEV4: "a4"}, id="spaced"),
        pytest.param(
            {"SEV-1": "a1", "sev2": "a2", "SEV-3": "a3", "sev-4": "a4"},
            {Severity.SEV1: "a1", Severity.SEV2: "a2", Severity.SEV3: "a3", Severity.SEV4: "a4"},
            id="all",
        ),
    ],
)
def test_severity_keys(keys: dict[str, str], expected: dict[Severity, str]) -> None:
    assert MattermostSettings(**_values(notification_channels=keys)).notification_channels == expected


def test_severity_keys_as_enum() -> None:
    settings = MattermostSettings(**_values(notification_channels={Severity.SEV2: "major"}))
    assert settings.notification_channels == {Severity.SEV2: "major"}


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        pytest.param({"SEV-9": "x"}, "unknown severity 'SEV-9'", id="SEV-9"),
        pytest.param({"sev0": "x"}, "unknown severity 'sev0'", id="sev0"),
        pytest.param({"critical": "x"}, "unknown severity 'critical'", id="word"),
        pytest.param({"SEV-1": "a", "sev1": "b"}, "SEV-1 is given twice", id="twice"),
    ],
)
def test_bad_severity_keys(keys: dict[str, str], says: str) -> None:
    message = _error(notification_channels=keys)
    assert "notification_channels" in message and says in message


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("incidents", "incidents"),
        ("~incidents", "incidents"),
        ("#incidents", "incidents"),
        ("inc-12_db", "inc-12_db"),
        ("j6j53p28k6urx15fpcgsr20psq", "j6j53p28k6urx15fpcgsr20psq"),
        ("a" * 64, "a" * 64),
    ],
)
def test_channel_refs(channel: str, expected: str) -> None:
    settings = MattermostSettings(
        **_values(default_channel=channel, notification_channels={"SEV-1": channel})
    )
    assert settings.default_channel == expected
    assert settings.notification_channels[Severity.SEV1] == expected


@pytest.mark.parametrize(
    "channel", ["Incidents", "major incidents", "-incidents", "", "a" * 65, "~", "#général"]
)
def test_bad_channel_refs(channel: str) -> None:
    assert "default_channel must be a channel name" in _error(default_channel=channel)
    message = _error(notification_channels={"sev1": channel})
    assert "notification_channels['SEV-1'] must be a channel name" in message


def test_no_default_channel() -> None:
    assert (
        MattermostSettings(**_values()).model_copy(update={"default_channel": None}).default_channel is None
    )
    assert MattermostSettings(**{**_values(), "default_channel": None}).default_channel is None


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param({"team_id": "..."}, "team_id must be the team's 26-character id", id="placeholder"),
        pytest.param({"team_id": "example"}, "team_id must be the team's 26-character id", id="team-name"),
        pytest.param({"team_id": TEAM_ID.upper()}, "team_id", id="uppercase"),
        pytest.param({"bot_user_id": "incident-bot"}, "bot_user_id must be a 26-character", id="bot-name"),
        pytest.param({"type": "slack"}, "type", id="other-type"),
        pytest.param({"signing_secret": "x"}, "signing_secret", id="unknown-key"),
        pytest.param({"api_url": "https://x"}, "api_url", id="slack-key"),
        pytest.param({"action_ttl_seconds": 0}, "action_ttl_seconds", id="ttl-zero"),
        pytest.param({"timeout": 0}, "timeout", id="timeout-zero"),
    ],
)
def test_refused(changes: dict[str, Any], says: str) -> None:
    assert says in _error(**changes)
