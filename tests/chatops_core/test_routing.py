"""Routing reads each instance's typed settings and yields channel aliases, never secrets."""

from __future__ import annotations

from chatops_core.models import Severity
from chatops_core.providers.config import ProviderSettingsBase
from chatops_core.providers.mattermost.config import MattermostSettings
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.routing import Target, targets_for

MM = MattermostSettings(
    url="https://mattermost.example.com",
    bot_token="m8rb5i3yh7nwxgfpz9u1t4kdoa",
    command_token="qzgakf1nx3yt9dr4n8585ihbxy",
    actions_secret="5b0f3c1e9a7d4e2f8c6b1a0d9e8f7a6b",
    team_id="5xxzt146eax4tul69409opqjlf",
    notification_channels={"SEV-1": "critical-incidents"},
)
SLACK = SlackSettings(
    bot_token="xoxb-1",
    signing_secret="s",
    notification_channels={Severity.SEV1: "#critical-incidents", Severity.SEV2: "#major-incidents"},
)


def test_each_instance_gets_its_severitys_channel_or_its_default() -> None:
    providers: dict[str, ProviderSettingsBase] = {"slack": SLACK, "mm": MM}
    assert targets_for(Severity.SEV1, providers) == [
        Target("slack", "#critical-incidents"),
        Target("mm", "critical-incidents"),
    ]
    assert targets_for(Severity.SEV3, providers) == [Target("slack", "#incidents"), Target("mm", "incidents")]


def test_instances_without_notifications_or_channels_get_none_but_their_own_channel() -> None:
    quiet = SLACK.model_copy(update={"enable_notifications": False})
    nowhere = MM.model_copy(update={"default_channel": None})
    providers: dict[str, ProviderSettingsBase] = {"slack": quiet, "mm": nowhere}
    assert targets_for(Severity.SEV3, providers) == []
    assert targets_for(Severity.SEV3, providers, own_channel=("slack", "C0WARROOM")) == [
        Target("slack", "C0WARROOM")
    ]


def test_an_explicit_list_overrides_routing() -> None:
    providers: dict[str, ProviderSettingsBase] = {"slack": SLACK, "mm": MM}
    assert targets_for(Severity.SEV1, providers, channels={"mm": ["town-square", "town-square"]}) == [
        Target("mm", "town-square")
    ]
