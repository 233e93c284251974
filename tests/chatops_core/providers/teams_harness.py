"""Microsoft Teams in the provider contract, once per mode, on :class:`FakeTeams`.

- :class:`TeamsWebhookHarness`: commands come from an outgoing webhook (HMAC-signed mentions),
  cards go to Workflows incoming webhooks, and an answer travels in the webhook's response,
  or, when late, as a card in the instance's ``default_channel``.
- :class:`TeamsBotHarness`: commands come to the bot with a Bot Framework JWT, cards go
  through the Bot Connector (edited in place), answers are posted in the conversation.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import SecretStr

from chatops_core.providers.base import Provider, WebhookRequest
from chatops_core.providers.teams import TeamsProvider
from chatops_core.providers.teams.config import TeamsSettings
from tests.chatops_core.providers.contract import Harness
from tests.fakes.teams_server import FakeTeams

# Where the harnesses' commands are typed; cards go to "incidents".
COMMAND_CHANNEL = "general"


def _request(outgoing: Any) -> WebhookRequest:
    return WebhookRequest(body=outgoing.body, headers=dict(outgoing.headers), content_type="application/json")


def card_text(card: Any) -> str:
    """Everything a card or activity shows, as one text (JSON, so nested text is kept)."""
    return json.dumps(card, ensure_ascii=False)


class _TeamsHarness(Harness):
    def __init__(self, fake: FakeTeams) -> None:
        self.fake = fake
        self.channel = "incidents"
        self.unknown_channel = "no-such-channel"
        self.user_id = fake.user("alice")["aadObjectId"]
        self.channel_id = fake.conversation_id(COMMAND_CHANNEL)
        self._made: list[TeamsProvider] = []
        self.provider = self._provider()

    def _provider(self, **changes: Any) -> TeamsProvider:
        provider = TeamsProvider("teams", self._settings(**changes))
        self._made.append(provider)
        return provider

    def _settings(self, **changes: Any) -> TeamsSettings:
        raise NotImplementedError

    def close(self) -> None:
        for provider in self._made:
            provider.close()


class TeamsWebhookHarness(_TeamsHarness):
    """Webhook mode: an outgoing webhook in, Workflows incoming webhooks out."""

    def _settings(self, **changes: Any) -> TeamsSettings:
        fake = self.fake
        values: dict[str, Any] = {
            "outgoing_webhook_secret": SecretStr(fake.outgoing_secret),
            "default_channel": COMMAND_CHANNEL,
            "channels": {
                "incidents": {"webhook_url": changes.get("incidents_url") or fake.workflow_url("incidents")},
                COMMAND_CHANNEL: {"webhook_url": fake.workflow_url(COMMAND_CHANNEL)},
            },
            "timeout": 2.0,
        }
        return TeamsSettings(**values)

    def command_request(self, text: str) -> WebhookRequest:
        return _request(self.fake.outgoing_activity(text, channel=COMMAND_CHANNEL))

    def forged_request(self, text: str) -> WebhookRequest:
        other = base64.b64encode(b"not-the-outgoing-webhook-secret!").decode()
        return _request(self.fake.outgoing_activity(text, channel=COMMAND_CHANNEL, secret=other))

    def unsigned_request(self, text: str) -> WebhookRequest:
        return _request(self.fake.outgoing_activity(text, channel=COMMAND_CHANNEL, signature=""))

    def answers(self) -> list[str]:
        # A late answer is a card in the routed channel (the first goes in the response,
        # which the contract reads from answer_body).
        return [card_text(c["card"]) for c in self.fake.cards(COMMAND_CHANNEL)]

    def posts(self, channel: str) -> list[str]:
        return [card_text(c["card"]) for c in self.fake.cards(channel)]

    def post_attempts(self) -> int:
        return len(self.fake.calls("workflow_post"))

    def fail_posts(self, status: int, *, times: int = 1, wait: int | None = None) -> None:
        self.fake.fail("workflow_post", times=times, status=status, retry_after=float(wait or 1))

    def provider_with_bad_token(self) -> Provider:
        # A webhook URL whose signature is not the flow's: the trigger refuses it (401).
        url = self.fake.workflow_url("incidents")
        head, _, _sig = url.rpartition("sig=")
        return self._provider(incidents_url=head + "sig=" + "A" * 43)


class TeamsBotHarness(_TeamsHarness):
    """Bot mode: JWT-authenticated activities in, the Bot Connector out."""

    def _settings(self, **changes: Any) -> TeamsSettings:
        fake = self.fake
        return TeamsSettings(
            app_id=fake.app_id,
            app_password=SecretStr(changes.get("app_password") or fake.app_password),
            openid_metadata_url=fake.openid_metadata_url,
            token_url=fake.token_url,
            default_channel="incidents",
            channels={
                "incidents": {
                    "conversation_id": fake.conversation_id("incidents"),
                    "service_url": fake.service_url,
                }
            },
            timeout=2.0,
        )

    def command_request(self, text: str) -> WebhookRequest:
        return _request(self.fake.bot_activity(text, conversation=COMMAND_CHANNEL))

    def forged_request(self, text: str) -> WebhookRequest:
        return _request(self.fake.bot_activity(text, conversation=COMMAND_CHANNEL, foreign_key=True))

    def unsigned_request(self, text: str) -> WebhookRequest:
        return _request(self.fake.bot_activity(text, conversation=COMMAND_CHANNEL, token=""))

    def answers(self) -> list[str]:
        return [card_text(a) for a in self.fake.activities(COMMAND_CHANNEL)]

    def posts(self, channel: str) -> list[str]:
        return [
            card_text(a.get("attachments") or a.get("text"))
            for a in self.fake.activities(channel, replies=False)
        ]

    def post_attempts(self) -> int:
        return len(self.fake.calls("send_activity"))

    def fail_posts(self, status: int, *, times: int = 1, wait: int | None = None) -> None:
        self.fake.fail("send_activity", times=times, status=status, retry_after=float(wait or 1))

    def provider_with_bad_token(self) -> Provider:
        return self._provider(app_password="not-the-app-password")
