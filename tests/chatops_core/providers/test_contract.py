"""Every provider type runs the one contract suite (``contract.py``), each on its local fake.

A harness per type knows its platform: Slack signs with ``v0`` HMAC signatures
(:func:`tests.fakes.slack_server.signed_headers`) and answers on ``response_url``; Mattermost
sends its slash command's token and answers on its own ``response_url``. Each fake can be told
to answer 429, 5xx or an authentication refusal.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from chatops_core.providers.base import Provider, WebhookRequest
from tests.chatops_core.providers.contract import Harness, ProviderContract
from tests.fakes.mattermost_server import FakeMattermost

if TYPE_CHECKING:
    from tests.fakes.slack_server import FakeSlack

FORM = "application/x-www-form-urlencoded"


# -- Slack ------------------------------------------------------------------------------------


class SlackHarness(Harness):
    """Slack on :class:`FakeSlack`: signed slash commands, Web API posts, ``response_url`` answers."""

    SECRET = "contract-signing-secret-0123456789"
    RESPONSES = "contract"

    def __init__(self, fake: FakeSlack) -> None:
        from chatops_core.providers.slack import SlackProvider

        self.fake = fake
        self.provider_class = SlackProvider
        self.provider = self._provider(fake.token)
        self.channel = "#incidents"
        self.unknown_channel = "#no-such-channel"
        self.user_id = "U100ALICE"
        self.channel_id = fake.channel_id("general")

    def _provider(self, token: str) -> Provider:
        model: Any = self.provider_class.settings_model
        settings = model(bot_token=token, signing_secret=self.SECRET, api_url=self.fake.api_url, timeout=2.0)
        # Short pauses between the client's own retries of a 5xx keep the test fast.
        return self.provider_class("acme", settings, retry_interval=FixedValueRetryIntervalCalculator(0.01))

    def _body(self, text: str) -> bytes:
        fields = {
            "token": "unused-verification-token",
            "team_id": "T0001",
            "team_domain": "acme",
            "channel_id": self.channel_id,
            "channel_name": "general",
            "user_id": self.user_id,
            "user_name": "alice",
            "command": "/im",
            "text": text,
            "response_url": self.fake.response_url(self.RESPONSES),
            "trigger_id": f"{int(time.time())}.4744562912.{secrets.token_hex(16)}",
        }
        return urlencode(fields).encode()

    def command_request(self, text: str) -> WebhookRequest:
        from tests.fakes.slack_server import signed_headers

        body = self._body(text)
        return WebhookRequest(body=body, headers=signed_headers(body, self.SECRET), content_type=FORM)

    def forged_request(self, text: str) -> WebhookRequest:
        from tests.fakes.slack_server import signed_headers

        body = self._body(text)
        return WebhookRequest(body=body, headers=signed_headers(body, "not-the-secret"), content_type=FORM)

    def unsigned_request(self, text: str) -> WebhookRequest:
        return WebhookRequest(body=self._body(text), headers={"Content-Type": FORM}, content_type=FORM)

    def answers(self) -> list[str]:
        seen = [
            str(r.get("text", "")) + json.dumps(r.get("blocks")) for r in self.fake.responses(self.RESPONSES)
        ]
        seen += [
            str(m.get("text", "")) for m in self.fake.ephemeral_messages() if m.get("user") == self.user_id
        ]
        return seen

    def posts(self, channel: str) -> list[str]:
        return [
            str(m.get("text", "")) + "\n" + json.dumps(m.get("blocks")) for m in self.fake.messages(channel)
        ]

    def post_attempts(self) -> int:
        return len(self.fake.calls("chat.postMessage"))

    def fail_posts(self, status: int, *, times: int = 1, wait: int | None = None) -> None:
        if status == 401:
            # Slack refuses a revoked or wrong token with HTTP 200 and ``invalid_auth``.
            self.fake.fail("chat.postMessage", times=times, status=200, error="invalid_auth")
        else:
            self.fake.fail("chat.postMessage", times=times, status=status, retry_after=wait)

    def provider_with_bad_token(self) -> Provider:
        return self._provider("xoxb-not-the-token")

    def close(self) -> None:
        return None


# -- Mattermost -------------------------------------------------------------------------------


class MattermostHarness(Harness):
    """Mattermost on :class:`FakeMattermost`: tokened slash commands, REST v4 posts,
    ``response_url`` answers."""

    ACTIONS_SECRET = "contract-actions-secret-0123456789"

    def __init__(self, fake: FakeMattermost) -> None:
        from chatops_core.providers.mattermost import MattermostProvider

        self.fake = fake
        self.provider_class = MattermostProvider
        self.provider = self._provider(fake.token)
        self.channel = "incidents"
        self.unknown_channel = "no-such-channel"
        self.user_id = fake.user_id("alice")
        self.channel_id = fake.channel_id("town-square")
        self._response_urls: list[str] = []
        self._made = [self.provider]

    def _provider(self, token: str) -> Provider:
        model: Any = self.provider_class.settings_model
        settings = model(
            url=self.fake.url,
            bot_token=token,
            command_token=self.fake.command_token,
            actions_secret=self.ACTIONS_SECRET,
            team_id=self.fake.team_id,
            timeout=2.0,
        )
        return self.provider_class("mm", settings)

    def _request(self, text: str, token: str | None) -> WebhookRequest:
        outgoing = self.fake.slash_command(text, user="alice", channel="town-square", token=token)
        self._response_urls.append(outgoing.response_url)
        return WebhookRequest(body=outgoing.body, headers=dict(outgoing.headers), content_type=FORM)

    def command_request(self, text: str) -> WebhookRequest:
        return self._request(text, None)

    def forged_request(self, text: str) -> WebhookRequest:
        return self._request(text, "wrongtoken0000000000000000")

    def unsigned_request(self, text: str) -> WebhookRequest:
        request = self._request(text, "")
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        return WebhookRequest(body=request.body, headers=headers, content_type=FORM)

    def answers(self) -> list[str]:
        seen = [_flatten(r) for url in self._response_urls for r in self.fake.responses(url)]
        seen += [_flatten(e["post"]) for e in self.fake.ephemeral_posts() if e.get("user_id") == self.user_id]
        return seen

    def posts(self, channel: str) -> list[str]:
        return [_flatten(p) for p in self.fake.posts(channel)]

    def post_attempts(self) -> int:
        return len(self.fake.calls("create_post"))

    def fail_posts(self, status: int, *, times: int = 1, wait: int | None = None) -> None:
        if status == 429:
            self.fake.fail("create_post", times=times, status=429, reset=wait or 1)
        else:
            self.fake.fail("create_post", times=times, status=status)

    def provider_with_bad_token(self) -> Provider:
        provider = self._provider("badtoken000000000000000000")
        self._made.append(provider)
        return provider

    def close(self) -> None:
        for provider in self._made:
            close = getattr(provider, "close", None)
            if close is not None:
                close()


def _flatten(post: dict[str, Any]) -> str:
    """A post's text with its attachments (the card) as one string."""
    props = post.get("props") or {}
    return "\n".join(
        [str(post.get("message") or post.get("text") or ""), json.dumps(post.get("attachments") or props)]
    )


# -- Discord ----------------------------------------------------------------------------------


class DiscordHarness(Harness):
    """Discord on :class:`FakeDiscord`: signed interactions, REST v10 messages, answers by
    editing the interaction's ``@original``."""

    def __init__(self, fake: Any) -> None:
        from chatops_core.providers.discord import DiscordProvider

        self.fake = fake
        self.provider_class = DiscordProvider
        self.provider = self._provider(fake.token)
        self.channel = "incidents"
        self.unknown_channel = "no-such-channel"
        self.user_id = fake.user_id("alice")
        self.channel_id = fake.channel_id("general")
        self._tokens: list[str] = []
        self._made = [self.provider]
        from chatops_core.providers.discord.commands import definition

        # The /im command as `chatops discord register` puts it, so options arrive typed.
        self.provider.client.bulk_overwrite_commands(fake.application_id, [definition()], fake.guild_id)  # type: ignore[attr-defined]

    def _provider(self, token: str) -> Provider:
        from pydantic import SecretStr

        from chatops_core.providers.discord.config import DiscordSettings

        settings = DiscordSettings(
            application_id=self.fake.application_id,
            public_key=self.fake.public_key_hex,
            bot_token=SecretStr(token),
            api_url=self.fake.api_url,
            guild_id=self.fake.guild_id,
            timeout=2.0,
        )
        return self.provider_class("discord", settings)

    def _outgoing(self, text: str) -> Any:
        from chatops_core.providers.discord.commands import PRIVATE_WORDS
        from chatops_core.providers.discord.devtools import command_options

        word, options = command_options(text)
        outgoing = self.fake.command(word, options, user="alice", channel="general")
        # The ingress answers a command "deferred" (type 5); Discord then shows the loading
        # message that the provider's answer edits.
        private = word in PRIVATE_WORDS
        callback = {"type": 5, "data": {"flags": 64}} if private else {"type": 5}
        url = f"{self.fake.api_url}/interactions/{outgoing.id}/{outgoing.token}/callback"
        request = urllib.request.Request(
            url,
            data=json.dumps(callback).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass
        self._tokens.append(outgoing.token)
        return outgoing

    def command_request(self, text: str) -> WebhookRequest:
        outgoing = self._outgoing(text)
        return WebhookRequest(
            body=outgoing.body, headers=dict(outgoing.headers), content_type="application/json"
        )

    def forged_request(self, text: str) -> WebhookRequest:
        from tests.fakes.discord_server import Ed25519Keys, sign_request

        outgoing = self._outgoing(text)
        headers = dict(outgoing.headers)
        other = Ed25519Keys(bytes(32))
        headers["X-Signature-Ed25519"] = sign_request(other, headers["X-Signature-Timestamp"], outgoing.body)
        return WebhookRequest(body=outgoing.body, headers=headers, content_type="application/json")

    def unsigned_request(self, text: str) -> WebhookRequest:
        outgoing = self._outgoing(text)
        headers = {k: v for k, v in outgoing.headers.items() if not k.lower().startswith("x-signature")}
        return WebhookRequest(body=outgoing.body, headers=headers, content_type="application/json")

    def answers(self) -> list[str]:
        seen = []
        for token in self._tokens:
            for message in [self.fake.original(token), *self.fake.followups(token)]:
                if message:
                    seen.append(str(message.get("content") or "") + json.dumps(message.get("embeds")))
        return seen

    def posts(self, channel: str) -> list[str]:
        return [
            str(m.get("content") or "") + "\n" + json.dumps(m.get("embeds"))
            for m in self.fake.messages(channel)
        ]

    def post_attempts(self) -> int:
        return len(self.fake.calls("create_message"))

    def fail_posts(self, status: int, *, times: int = 1, wait: int | None = None) -> None:
        if status == 429:
            self.fake.fail("create_message", times=times, status=429, retry_after=float(wait or 1))
        else:
            self.fake.fail("create_message", times=times, status=status)

    def provider_with_bad_token(self) -> Provider:
        provider = self._provider("not-the-bot-token")
        self._made.append(provider)
        return provider

    def close(self) -> None:
        for provider in self._made:
            close = getattr(provider, "close", None)
            if close is not None:
                close()


# -- the suite, once per provider type ---------------------------------------------------------


@pytest.fixture(params=["slack", "mattermost", "discord", "teams-webhook", "teams-bot"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    made: Harness
    if request.param.startswith("teams-"):
        from tests.chatops_core.providers.teams_harness import TeamsBotHarness, TeamsWebhookHarness
        from tests.fakes.teams_server import FakeTeams

        with FakeTeams() as teams:
            made = TeamsWebhookHarness(teams) if request.param == "teams-webhook" else TeamsBotHarness(teams)
            yield made
            made.close()
        return
    if request.param == "slack":
        # Imported here, so one platform's fake that fails to import does not hide the others.
        from tests.fakes.slack_server import FakeSlack

        with FakeSlack() as slack:
            made = SlackHarness(slack)
            yield made
            made.close()
        return
    if request.param == "discord":
        from tests.fakes.discord_server import FakeDiscord

        with FakeDiscord() as discord:
            made = DiscordHarness(discord)
            yield made
            made.close()
        return
    with FakeMattermost() as mm:
        made = MattermostHarness(mm)
        yield made
        made.close()


class TestProviderContract(ProviderContract):
    """The contract on every provider type (see ``contract.py``)."""
