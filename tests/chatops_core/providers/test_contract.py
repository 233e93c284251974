"""Every provider type runs the one contract suite (``contract.py``), each on its local fake.

A harness per type knows its platform: Slack signs with ``v0`` HMAC signatures
(:func:`tests.fakes.slack_server.signed_headers`) and answers on ``response_url``; Mattermost
sends its slash command's token and answers on its own ``response_url``. Each fake can be told
to answer 429, 5xx or an authentication refusal.
"""

from __future__ import annotations

import abc
import json
import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import pytest
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from chatops_core.providers.base import Provider, WebhookRequest
from tests.chatops_core.providers.contract import Harness, ProviderContract
from tests.fakes.mattermost_server import FakeMattermost

if TYPE_CHECKING:
    from tests.fakes.slack_server import FakeSlack

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# How a harness's command request is signed (or tokened): as the instance expects, with a
# signature or token that is not the instance's, or not at all.
Signing = Literal["signed", "forged", "unsigned"]


class _Harness(Harness):
    """What the harnesses share: their three command requests are one request signed three
    ways, and they close every provider they made."""

    #: a bot token the fake does not accept
    BAD_TOKEN: str

    def __init__(self) -> None:
        self._made: list[Provider] = []

    @abc.abstractmethod
    def _provider(self, token: str) -> Provider:
        """This provider type configured against the fake with bot token ``token``."""

    @abc.abstractmethod
    def _request(self, text: str, signing: Signing) -> WebhookRequest:
        """The request of command ``text``, signed as ``signing`` says."""

    def _kept_provider(self, token: str) -> Provider:
        provider = self._provider(token)
        self._made.append(provider)
        return provider

    def command_request(self, text: str) -> WebhookRequest:
        return self._request(text, "signed")

    def forged_request(self, text: str) -> WebhookRequest:
        return self._request(text, "forged")

    def unsigned_request(self, text: str) -> WebhookRequest:
        return self._request(text, "unsigned")

    def provider_with_bad_token(self) -> Provider:
        return self._kept_provider(self.BAD_TOKEN)

    def close(self) -> None:
        for provider in self._made:
            close = getattr(provider, "close", None)
            if close is not None:
                close()


def _without(headers: dict[str, str], prefix: str) -> dict[str, str]:
    """``headers`` without those whose name starts with ``prefix`` (lower case)."""
    return {k: v for k, v in headers.items() if not k.lower().startswith(prefix)}


# -- Slack ------------------------------------------------------------------------------------


class SlackHarness(_Harness):
    """Slack on :class:`FakeSlack`: signed slash commands, Web API posts, ``response_url`` answers."""

    SECRET = "contract-signing-secret-0123456789"
    RESPONSES = "contract"
    BAD_TOKEN = "xoxb-not-the-token"

    def __init__(self, fake: FakeSlack) -> None:
        from chatops_core.providers.slack import SlackProvider

        super().__init__()
        self.fake = fake
        self.provider_class = SlackProvider
        self.provider = self._kept_provider(fake.token)
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

    def _request(self, text: str, signing: Signing) -> WebhookRequest:
        from tests.fakes.slack_server import signed_headers

        body = self._body(text)
        if signing == "unsigned":
            headers = {"Content-Type": FORM}
        else:
            headers = signed_headers(body, self.SECRET if signing == "signed" else "not-the-secret")
        return WebhookRequest(body=body, headers=headers, content_type=FORM)

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


# -- Mattermost -------------------------------------------------------------------------------


class MattermostHarness(_Harness):
    """Mattermost on :class:`FakeMattermost`: tokened slash commands, REST v4 posts,
    ``response_url`` answers."""

    ACTIONS_SECRET = "contract-actions-secret-0123456789"
    BAD_TOKEN = "badtoken000000000000000000"
    # The command's token each signing sends (None: the fake's own).
    TOKENS: dict[Signing, str | None] = {
        "signed": None,
        "forged": "wrongtoken0000000000000000",
        "unsigned": "",
    }

    def __init__(self, fake: FakeMattermost) -> None:
        from chatops_core.providers.mattermost import MattermostProvider

        super().__init__()
        self.fake = fake
        self.provider_class = MattermostProvider
        self.provider = self._kept_provider(fake.token)
        self.channel = "incidents"
        self.unknown_channel = "no-such-channel"
        self.user_id = fake.user_id("alice")
        self.channel_id = fake.channel_id("town-square")
        self._response_urls: list[str] = []

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

    def _request(self, text: str, signing: Signing) -> WebhookRequest:
        token = self.TOKENS[signing]
        outgoing = self.fake.slash_command(text, user="alice", channel="town-square", token=token)
        self._response_urls.append(outgoing.response_url)
        headers = dict(outgoing.headers)
        if signing == "unsigned":
            headers = _without(headers, "authorization")
        return WebhookRequest(body=outgoing.body, headers=headers, content_type=FORM)

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


def _flatten(post: dict[str, Any]) -> str:
    """A post's text with its attachments (the card) as one string."""
    props = post.get("props") or {}
    return "\n".join(
        [str(post.get("message") or post.get("text") or ""), json.dumps(post.get("attachments") or props)]
    )


# -- Discord ----------------------------------------------------------------------------------


class DiscordHarness(_Harness):
    """Discord on :class:`FakeDiscord`: signed interactions, REST v10 messages, answers by
    editing the interaction's ``@original``."""

    BAD_TOKEN = "not-the-bot-token"

    def __init__(self, fake: Any) -> None:
        from chatops_core.providers.discord import DiscordProvider

        super().__init__()
        self.fake = fake
        self.provider_class = DiscordProvider
        self.provider = self._kept_provider(fake.token)
        self.channel = "incidents"
        self.unknown_channel = "no-such-channel"
        self.user_id = fake.user_id("alice")
        self.channel_id = fake.channel_id("general")
        self._tokens: list[str] = []
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
            headers={"Content-Type": JSON},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass
        self._tokens.append(outgoing.token)
        return outgoing

    def _request(self, text: str, signing: Signing) -> WebhookRequest:
        from tests.fakes.discord_server import Ed25519Keys, sign_request

        outgoing = self._outgoing(text)
        headers = dict(outgoing.headers)
        if signing == "forged":
            other = Ed25519Keys(bytes(32))
            headers["X-Signature-Ed25519"] = sign_request(
                other, headers["X-Signature-Timestamp"], outgoing.body
            )
        elif signing == "unsigned":
            headers = _without(headers, "x-signature")
        return WebhookRequest(body=outgoing.body, headers=headers, content_type=JSON)

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


# -- the suite, once per provider type ---------------------------------------------------------


def _slack() -> tuple[Any, Callable[[Any], Harness]]:
    from tests.fakes.slack_server import FakeSlack

    return FakeSlack, SlackHarness


def _mattermost() -> tuple[Any, Callable[[Any], Harness]]:
    return FakeMattermost, MattermostHarness


def _discord() -> tuple[Any, Callable[[Any], Harness]]:
    from tests.fakes.discord_server import FakeDiscord

    return FakeDiscord, DiscordHarness


def _teams_webhook() -> tuple[Any, Callable[[Any], Harness]]:
    from tests.chatops_core.providers.teams_harness import TeamsWebhookHarness
    from tests.fakes.teams_server import FakeTeams

    return FakeTeams, TeamsWebhookHarness


def _teams_bot() -> tuple[Any, Callable[[Any], Harness]]:
    from tests.chatops_core.providers.teams_harness import TeamsBotHarness
    from tests.fakes.teams_server import FakeTeams

    return FakeTeams, TeamsBotHarness


# Each provider type's fake and harness; imported when the type's tests run, so one
# platform's fake that fails to import does not hide the others.
HARNESSES: dict[str, Callable[[], tuple[Any, Callable[[Any], Harness]]]] = {
    "slack": _slack,
    "mattermost": _mattermost,
    "discord": _discord,
    "teams-webhook": _teams_webhook,
    "teams-bot": _teams_bot,
}


@pytest.fixture(params=list(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    fake_class, make = HARNESSES[request.param]()
    with fake_class() as fake:
        made = make(fake)
        yield made
        made.close()


class TestProviderContract(ProviderContract):
    """The contract on every provider type (see ``contract.py``)."""
