"""Settings: file + environment, ${VAR} references, clear start-up errors, secrets hidden."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from chatops_core.errors import ConfigError
from chatops_core.models import Severity
from chatops_core.providers.config import ProviderSettingsBase
from chatops_core.providers.mattermost.config import MattermostSettings
from chatops_core.providers.registry import provider_types, settings_models
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.settings import Settings, load_settings

FULL = """
[chatops]
public_url = "https://chatops.example.com"
incident_url = "https://incidents.example.com/incidents/{id}"
api_token = "${CHATOPS_API_TOKEN}"

[providers.slack]
type = "slack"
bot_token = "${SLACK_BOT_TOKEN}"
signing_secret = "${SLACK_SIGNING_SECRET}"
api_url = "http://127.0.0.1:9999/api"
bot_name = "incident-bot"
default_channel = "#incidents"
enable_notifications = true
create_incident_channels = true
[providers.slack.notification_channels]
"SEV-1" = "#critical-incidents"
"SEV-2" = "#major-incidents"
"SEV-3" = "#incidents"
"""

ENV = {
    "CHATOPS_API_TOKEN": "api-secret-token",
    "SLACK_BOT_TOKEN": "xoxb-secret-bot-token",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chatops.toml"
    path.write_text(text)
    return path


def test_the_contract_example_loads(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), ENV)
    slack = settings.providers["slack"]
    assert slack.bot_token.get_secret_value() == "xoxb-secret-bot-token"
    assert slack.api_url == "http://127.0.0.1:9999/api/"
    assert slack.notification_channels[Severity.SEV2] == "#major-incidents"
    assert settings.webhook_url("slack") == "https://chatops.example.com/webhooks/slack"
    assert settings.incident_link("INC-7") == "https://incidents.example.com/incidents/INC-7"
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "api-secret-token"


def test_secrets_never_show_in_repr(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), ENV)
    shown = repr(settings) + str(settings) + repr(settings.providers)
    for secret in ENV.values():
        assert secret not in shown


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    text = FULL.replace("[chatops]\n", '[chatops]\nport = 9000\nlog_level = "DEBUG"\n')
    settings = load_settings(write(tmp_path, text), {**ENV, "CHATOPS_PORT": "9100"})
    assert settings.port == 9100
    assert settings.log_level == "DEBUG"


def test_a_missing_reference_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k != "SLACK_SIGNING_SECRET"}
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, FULL), env)
    assert "SLACK_SIGNING_SECRET" in str(info.value)
    assert "providers.slack.signing_secret" in str(info.value)


def test_the_environment_alone_configures_one_slack_instance() -> None:
    settings = load_settings(
        None,
        {
            "CHATOPS_SLACK_BOT_TOKEN": "xoxb-1",
            "CHATOPS_SLACK_SIGNING_SECRET": "s",
            "CHATOPS_SLACK_API_URL": "http://127.0.0.1:1/api/",
        },
    )
    assert list(settings.providers) == ["slack"]
    assert settings.providers["slack"].api_url == "http://127.0.0.1:1/api/"


def test_half_a_slack_instance_from_the_environment_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"CHATOPS_SLACK_BOT_TOKEN": "xoxb-1"})
    assert "CHATOPS_SLACK_SIGNING_SECRET" in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[chatops\n", "not valid TOML"),
        ('[chatops]\nport = "eighty"\n', "port"),
        ("[chatops]\nport = 70000\n", "port"),
        ("[chatops]\nno_such_key = 1\n", "no_such_key"),
        ('[slack]\nbot_token = "x"\n', "unknown table"),
        ('[providers.slack]\ntype = "slack"\nbot_token = "x"\n', "signing_secret"),
        ('[providers.irc]\ntype = "irc"\n', "has type 'irc'; supported types: "),
        ('[providers.irc]\nbot_token = "x"\n', "'irc' has no type; set type to one of: "),
        ('[providers."Bad Name"]\ntype = "slack"\nbot_token = "x"\nsigning_secret = "y"\n', "instance name"),
        (
            '[providers.slack]\ntype = "slack"\nbot_token = "x"\nsigning_secret = "y"\n'
            '[providers.slack.notification_channels]\n"SEV-9" = "#x"\n',
            "notification_channels",
        ),
    ],
)
def test_invalid_configuration_says_what_to_fix(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), {})
    assert fragment in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml", {})
    assert "nope.toml" in str(info.value)


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[chatops]\nport = 8181\n")
    assert load_settings(None, {"CHATOPS_CONFIG": str(path)}).port == 8181


def test_database_url_defaults_to_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(None, {"CHATOPS_DATA_DIR": str(tmp_path)})
    assert settings.effective_database_url() == f"sqlite:///{tmp_path / 'chatops.db'}"
    with pytest.raises(ConfigError):
        settings.effective_broker_url()


def test_sla_defaults_and_table(tmp_path: Path) -> None:
    defaults = load_settings(None, {}).sla
    assert defaults.ack_minutes == {
        Severity.SEV1: 5,
        Severity.SEV2: 15,
        Severity.SEV3: 60,
        Severity.SEV4: 240,
    }
    assert defaults.check_interval_seconds == 30

    text = '[sla]\ncheck_interval_seconds = 10\n[sla.ack_minutes]\n"SEV-1" = 2.5\n"SEV-2" = 10\n'
    sla = load_settings(write(tmp_path, text), {}).sla
    # The table replaces the defaults: SEV-3 and SEV-4 have no SLA now.
    assert sla.ack_minutes == {Severity.SEV1: 2.5, Severity.SEV2: 10}
    assert sla.check_interval_seconds == 10

    for bad, fragment in [
        ("[sla]\ncheck_interval_seconds = 0\n", "check_interval_seconds"),
        ('[sla.ack_minutes]\n"SEV-1" = -1\n', "ack_minutes"),
        ('[sla.ack_minutes]\n"SEV-9" = 5\n', "ack_minutes"),
        ("[sla]\nno_such_key = 1\n", "no_such_key"),
    ]:
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, bad), {})
        assert fragment in str(info.value)


MATTERMOST = """
[providers.mm]
type = "mattermost"
url = "https://mattermost.example.com"
bot_token = "m8rb5i3yh7nwxgfpz9u1t4kdoa"
command_token = "qzgakf1nx3yt9dr4n8585ihbxy"
actions_secret = "5b0f3c1e9a7d4e2f8c6b1a0d9e8f7a6b"
team_id = "5xxzt146eax4tul69409opqjlf"
[providers.mm.notification_channels]
"SEV-1" = "critical-incidents"
"""


def test_each_table_is_read_by_the_model_of_its_type(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL + MATTERMOST), ENV)
    slack, mm = settings.providers["slack"], settings.providers["mm"]
    assert isinstance(slack, SlackSettings) and isinstance(mm, MattermostSettings)
    assert list(settings.providers) == ["slack", "mm"]
    # The keys every type shares read the same on both.
    assert slack.notification_channel(Severity.SEV1) == "#critical-incidents"
    assert mm.notification_channel(Severity.SEV1) == "critical-incidents"
    assert mm.notification_channel(Severity.SEV3) == "incidents"
    assert mm.api_base_url == "https://mattermost.example.com/api/v4"
    shown = repr(settings) + str(settings.model_dump())
    for secret in ("m8rb5i3yh7nwxgfpz9u1t4kdoa", "5b0f3c1e9a7d4e2f8c6b1a0d9e8f7a6b", *ENV.values()):
        assert secret not in shown


def test_an_unknown_type_lists_every_supported_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, '[providers.chat]\ntype = "irc"\n'), {})
    message = str(info.value)
    assert message.startswith("invalid configuration: providers: provider instance 'chat' has type 'irc'")
    assert message.endswith("supported types: " + ", ".join(provider_types()))
    assert {"slack", "mattermost"} <= set(provider_types())


def test_errors_name_the_instance_and_key_once(tmp_path: Path) -> None:
    text = MATTERMOST.replace('team_id = "5xxzt146eax4tul69409opqjlf"\n', 'team_id = "incidents"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text + '[providers.slack]\ntype = "slack"\nbot_token = "x"\n'), {})
    message = str(info.value)
    assert "providers.mm.team_id: team_id must be the team's 26-character id" in message
    assert "providers.slack.signing_secret: Field required" in message
    assert "Value error" not in message and "m8rb5i3yh7nwxgfpz9u1t4kdoa" not in message


def test_every_provider_package_has_a_settings_model_with_the_shared_keys() -> None:
    shared = set(ProviderSettingsBase.model_fields)
    for kind, model in settings_models().items():
        assert issubclass(model, ProviderSettingsBase)
        assert model.model_fields["type"].default == kind
        assert shared <= set(model.model_fields)


def test_a_settings_model_given_as_it_is_stays_as_it_is() -> None:
    class Elsewhere(ProviderSettingsBase):
        type: str = "elsewhere"

    slack = SlackSettings(bot_token="xoxb-1", signing_secret="s")
    mm = tomllib.loads(MATTERMOST)["providers"]["mm"]
    settings = Settings(providers={"slack": slack, "other": Elsewhere(), "mm": mm})
    assert settings.providers["slack"] is slack
    assert isinstance(settings.providers["other"], Elsewhere)
    assert isinstance(settings.providers["mm"], MattermostSettings)


def test_the_environment_instance_does_not_replace_a_configured_one(tmp_path: Path) -> None:
    env = {**ENV, "CHATOPS_SLACK_BOT_TOKEN": "xoxb-from-env", "CHATOPS_SLACK_SIGNING_SECRET": "env"}
    slack = load_settings(write(tmp_path, FULL), env).providers["slack"]
    assert isinstance(slack, SlackSettings)
    assert slack.bot_token.get_secret_value() == "xoxb-secret-bot-token"
    # Beside other instances, the environment adds its own.
    both = load_settings(write(tmp_path, MATTERMOST), env)
    assert list(both.providers) == ["mm", "slack"]
    assert isinstance(both.providers["slack"], SlackSettings)


def test_slack_from_env() -> None:
    assert SlackSettings.from_env({}) is None
    made = SlackSettings.from_env({"CHATOPS_SLACK_BOT_TOKEN": "xoxb-1", "CHATOPS_SLACK_SIGNING_SECRET": "s"})
    assert made is not None and made.api_url == "https://slack.com/api/"
    with pytest.raises(ConfigError) as info:
        SlackSettings.from_env({"CHATOPS_SLACK_SIGNING_SECRET": "s"})
    assert "CHATOPS_SLACK_BOT_TOKEN is not set" in str(info.value)


def test_every_provider_type_takes_the_same_spellings_of_a_severity() -> None:
    from chatops_core.models import Severity
    from chatops_core.providers.slack.config import SlackSettings

    slack = SlackSettings(
        bot_token="xoxb-x", signing_secret="s", notification_channels={"sev1": "#a", "Sev-2": "#b"}
    )
    assert slack.notification_channels == {Severity.SEV1: "#a", Severity.SEV2: "#b"}
    with pytest.raises(ValueError, match="given twice"):
        SlackSettings(
            bot_token="xoxb-x", signing_secret="s", notification_channels={"sev1": "#a", "SEV-1": "#b"}
        )
    with pytest.raises(ValueError, match="unknown severity"):
        SlackSettings(bot_token="xoxb-x", signing_secret="s", notification_channels={"sev5": "#a"})
