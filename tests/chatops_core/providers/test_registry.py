"""The provider packages are found by themselves, and each instance gets its platform's provider."""

from __future__ import annotations

import pytest

from chatops_core.errors import ProviderNotFound
from chatops_core.providers import build_providers, default_registry, provider_packages, provider_types
from chatops_core.providers.config import ProviderSettingsBase
from chatops_core.providers.mattermost.config import MattermostSettings
from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.config import SlackSettings


def test_each_platform_package_is_found_with_its_provider_and_settings() -> None:
    found = provider_packages()
    assert {"slack", "mattermost"} <= set(found)
    assert provider_types() == sorted(found)
    assert found["slack"].package == "chatops_core.providers.slack"
    assert found["slack"].provider is SlackProvider and found["slack"].settings_model is SlackSettings
    assert found["mattermost"].settings_model is MattermostSettings
    for kind, package in found.items():
        assert package.provider.type == kind
        assert issubclass(package.settings_model, ProviderSettingsBase)


def test_each_instance_gets_the_provider_of_its_type() -> None:
    providers = build_providers({"acme": SlackSettings(bot_token="xoxb-1", signing_secret="s")})
    assert isinstance(providers["acme"], SlackProvider) and providers["acme"].name == "acme"
    assert set(default_registry().types()) == set(provider_types())


def test_a_type_no_package_provides_is_refused() -> None:
    class Elsewhere(ProviderSettingsBase):
        type: str = "elsewhere"

    with pytest.raises(ProviderNotFound) as info:
        build_providers({"x": Elsewhere()})
    assert "no provider of type 'elsewhere' for instance 'x'" in str(info.value)


def test_each_instance_learns_where_the_platform_reaches_it() -> None:
    # Mattermost's buttons carry the address their clicks go to: with nothing but
    # public_url configured, cards still get buttons aimed at this instance's webhook.
    from chatops_core.settings import Settings

    settings = Settings(
        public_url="https://chatops.example.com",
        providers={
            "mm": MattermostSettings(
                url="https://mattermost.example.com",
                bot_token="b" * 26,
                command_token="c" * 26,
                actions_secret="a" * 32,
                team_id="t" * 26,
            )
        },
    )
    (provider,) = build_providers(settings.providers, webhook_url=settings.webhook_url).values()
    assert provider.public_webhook_url == "https://chatops.example.com/webhooks/mm"
    from chatops_core.providers.mattermost import MattermostProvider

    assert isinstance(provider, MattermostProvider)
    assert provider.webhook_url == "https://chatops.example.com/webhooks/mm"


def test_a_mattermost_card_gets_buttons_aimed_at_the_public_url_alone() -> None:
    from datetime import UTC, datetime

    from chatops_core.models import Severity, Status
    from chatops_core.notifications import Announcement, IncidentSnapshot, Notification
    from chatops_core.settings import Settings
    from tests.fakes.mattermost_server import FakeMattermost

    with FakeMattermost() as mm:
        settings = Settings(
            public_url="https://chatops.example.com",
            providers={
                "mm": MattermostSettings(
                    url=mm.url,
                    bot_token=mm.token,
                    command_token=mm.command_token,
                    actions_secret="a" * 32,
                    team_id=mm.team_id,
                )
            },
        )
        (provider,) = build_providers(settings.providers, webhook_url=settings.webhook_url).values()
        snapshot = IncidentSnapshot(
            id="INC-7",
            title="Database timeouts",
            severity=Severity.SEV2,
            status=Status.OPEN,
            created_at=datetime(2026, 12, 6, tzinfo=UTC),
            version=1,
            origin="chat",
        )
        provider.announce(
            "incidents", Announcement.of(Notification(type="incident.created", incident=snapshot))
        )
        (post,) = mm.posts("incidents")
        actions = [a for att in post["props"]["attachments"] for a in att.get("actions", [])]
        assert [a["name"] for a in actions][:4] == ["Acknowledge", "Mitigate", "Resolve", "Escalate"]
        assert {a["integration"]["url"] for a in actions} == {"https://chatops.example.com/webhooks/mm"}


def test_without_a_public_url_no_button_aims_at_this_hosts_loopback() -> None:
    from chatops_core.providers.mattermost import MattermostProvider
    from chatops_core.settings import Settings

    conf = MattermostSettings(
        url="https://mattermost.example.com",
        bot_token="b" * 26,
        command_token="c" * 26,
        actions_secret="a" * 32,
        team_id="t" * 26,
    )
    settings = Settings(providers={"mm": conf})
    (provider,) = build_providers(settings.providers, webhook_url=settings.public_webhook_url).values()
    assert isinstance(provider, MattermostProvider) and provider.webhook_url is None
