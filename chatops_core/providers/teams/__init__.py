"""The Microsoft Teams provider: an outgoing webhook and incoming webhooks, a Bot Framework
bot, or both, on one instance.

The package is split by concern: :mod:`.config` (the instance's settings and channel
aliases), :mod:`.verify` (HMAC for outgoing webhooks, JWTs for the bot), :mod:`.inbound`
(activities into neutral commands), :mod:`.render` (Adaptive Cards, MessageCards, answers),
:mod:`.client` (webhook posts, Bot Connector calls, the bot's token), :mod:`.errors` (Teams
failures mapped onto :mod:`chatops_core.errors`), :mod:`.pacing`, :mod:`.cli` (``chatops
teams manifest``) and :mod:`.devtools`. Nothing outside this package knows a Teams path,
field or header.

What each mode can do, and so what :meth:`TeamsProvider.supports` says per instance:

- **Webhook mode** (no Azure registration): a command is the bot's mention in a channel, sent
  by an outgoing webhook that shows only what its HTTP response carries, within 5 s
  (:attr:`Capability.ANSWER_IN_RESPONSE`); a late or second answer is posted to
  ``default_channel`` instead. Cards go to incoming webhooks, which can only post: no buttons
  (a webhook's cards take only ``Action.OpenUrl``; the card lists the commands to type), no
  edits (each change is a new card), no threads.
- **Bot mode**: cards go through the Bot Connector with ``Action.Submit`` buttons, are edited
  in place, and alerts are posted in the card's thread (:attr:`Capability.BUTTONS`,
  :attr:`~Capability.UPDATE_MESSAGE`, :attr:`~Capability.THREADS`,
  :attr:`~Capability.ALERT_IN_THREAD`), when the instance has at least one bot channel (an
  alias with ``conversation_id``); a webhook channel on such an instance gets a new card where
  a bot channel's card is edited, and an alert as a card of its own.

Neither mode answers privately (an answer is seen by everyone where the command was typed),
opens forms (Resolve runs without a note), creates incident channels (that takes Microsoft
Graph and admin consent), pins, finds a lost post again, or reads bot mentions for the
timeline.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from chatops_core.cards import IncidentCard
from chatops_core.errors import ChannelNotFound, ConfigError, InvalidWebhook, MessageNotFound, ProviderError
from chatops_core.models import InboundCommand, MessageRef, Reply
from chatops_core.notifications import Announcement
from chatops_core.pacing import PacingPolicy
from chatops_core.providers.base import Capability, Inbound, InboundKind, Provider, WebhookRequest
from chatops_core.providers.teams import render
from chatops_core.providers.teams.client import THREAD_MARK, TeamsClient, shared_token_cache
from chatops_core.providers.teams.config import TeamsChannel, TeamsSettings
from chatops_core.providers.teams.pacing import PACING

__all__ = ["PROVIDER", "TeamsProvider"]

JSON_TYPE = "application/json"
# The keys of ``reply_to`` (written by :mod:`.inbound`).
REPLY_MODE = "mode"
REPLY_CONVERSATION = "conversation_id"
REPLY_SERVICE_URL = "service_url"
REPLY_ACTIVITY = "activity_id"
# A webhook post has no id Teams gives back: its MessageRef says so.
WEBHOOK_POST_PREFIX = "webhook:"

_BOT_CAPABILITIES = frozenset(
    {Capability.BUTTONS, Capability.UPDATE_MESSAGE, Capability.THREADS, Capability.ALERT_IN_THREAD}
)


class TeamsProvider(Provider):
    """A Teams tenant reached by an outgoing webhook and incoming webhooks, a bot, or both.

    ``client`` replaces the HTTP client (tests).
    """

    type: ClassVar[str] = "teams"
    settings_model: ClassVar[builtins.type[TeamsSettings]] = TeamsSettings
    # Everything an instance may offer; :meth:`supports` says what this one does.
    capabilities: ClassVar[frozenset[Capability]] = _BOT_CAPABILITIES | {Capability.ANSWER_IN_RESPONSE}
    settings: TeamsSettings

    def __init__(
        self,
        name: str,
        settings: TeamsSettings,
        *,
        client: TeamsClient | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, settings)
        if not isinstance(settings, TeamsSettings):
            raise ConfigError(f"Teams instance {name!r}: settings of type {type(settings).__name__}")
        if client is None:
            tokens = None
            if settings.bot_mode and settings.app_id and settings.app_password:
                extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
                tokens = shared_token_cache(
                    settings.token_url, settings.app_id, settings.app_password.get_secret_value(), **extra
                )
            client = TeamsClient(timeout=settings.timeout, tokens=tokens)
        self._client = client
        self._verifier: Any = None
        self._has_bot_channel = settings.bot_mode and any(c.bot for c in settings.channels.values())

    @property
    def pacing(self) -> PacingPolicy:
        return PACING

    @property
    def client(self) -> TeamsClient:
        return self._client

    def supports(self, capability: Capability) -> bool:
        """Per instance: answers in the response with webhook mode; buttons, edits, threads
        and alerts in threads with bot mode and a bot channel."""
        if capability is Capability.ANSWER_IN_RESPONSE:
            return self.settings.webhook_mode
        if capability in _BOT_CAPABILITIES:
            return self._has_bot_channel
        return False

    # -- ingress side ----------------------------------------------------------------------
    def _verifier_of(self) -> Any:
        if self._verifier is None:
            from chatops_core.providers.teams.verify import TeamsVerifier

            self._verifier = TeamsVerifier(self.settings)
        return self._verifier

    def verify(self, request: WebhookRequest) -> None:
        """HMAC (webhook mode) or a Bot Framework JWT (bot mode), by the ``Authorization``
        scheme; a mode the instance does not run, or no scheme, is 401."""
        self._verifier_of().verify(request)

    def refusal_response(self, command: InboundCommand, text: str) -> Inbound | None:
        """An outgoing webhook shows its response in the channel's reply chain (Teams has no
        private answer there); a bot's activity is answered through a worker."""
        if command.reply_to.get(REPLY_MODE) != "webhook":
            return None
        body = json.dumps({"type": "message", "text": text}).encode()
        return Inbound(kind=InboundKind.ANSWER, body=body, content_type=JSON_TYPE)

    def parse(self, request: WebhookRequest) -> Inbound:
        from chatops_core.providers.teams import inbound
        from chatops_core.providers.teams.verify import mode_of

        mode = mode_of(request)
        if mode is None:
            raise InvalidWebhook("the request is not authentic", http_status=401)
        try:
            result = inbound.parse(self.name, self.settings, request, mode)
        except ValueError as exc:
            raise InvalidWebhook(f"unreadable Teams activity: {exc}", http_status=400) from None
        if result.command is not None and result.command.answer_key is not None and not result.answer_wait:
            result.answer_wait = self.settings.answer_wait_seconds
        return result

    # -- channels --------------------------------------------------------------------------
    def resolve_channel(self, channel: str) -> str:
        """The alias ``channel`` names (written bare or with ``#``)."""
        return channel.strip().lstrip("#")

    def _channel(self, alias: str) -> TeamsChannel:
        name = self.resolve_channel(alias)
        found = self.settings.channels.get(name)
        if found is None:
            raise ChannelNotFound(
                f"Teams {self.name}: no channel alias {name!r}; define "
                f"[providers.{self.name}.channels.{name}] with its webhook_url or conversation_id"
            )
        return found

    def _bot_target(self, channel_id: str) -> tuple[str, str] | None:
        """``(service_url, conversation_id)`` of a bot channel named by its conversation id
        (what a bot post's MessageRef holds) or its alias; None for a webhook channel."""
        base = channel_id.split(THREAD_MARK)[0]
        for alias, channel in self.settings.channels.items():
            if channel.bot and (channel.conversation_id == base or alias == channel_id):
                assert channel.service_url is not None and channel.conversation_id is not None
                return channel.service_url, channel.conversation_id
        return None

    def names_channel(self, alias: str, channel_id: str | None, channel_name: str | None) -> bool:
        """An alias names the channel whose conversation id it holds, or its id or name."""
        if super().names_channel(alias, channel_id, channel_name):
            return True
        channel = self.settings.channels.get(alias)
        if channel is None or channel.conversation_id is None or not channel_id:
            return False
        return channel.conversation_id == channel_id.split(THREAD_MARK)[0]

    def _post(self, alias: str, card: IncidentCard, *, alert: bool = False) -> MessageRef:
        """Post ``card`` (or its alert) into channel ``alias``, as its channel takes it."""
        name = self.resolve_channel(alias)
        channel = self._channel(name)
        if channel.bot:
            assert channel.service_url is not None and channel.conversation_id is not None
            content = render.alert_card(card) if alert else render.incident_card(card, buttons=True)
            activity_id = self._client.send_activity(
                channel.service_url,
                channel.conversation_id,
                render.card_activity(content, render.summary_line(card)),
            )
            return MessageRef(channel_id=channel.conversation_id, message_id=activity_id)
        payload = (
            render.message_card(card)
            if channel.format == "messagecard"
            else render.envelope(
                render.alert_card(card) if alert else render.incident_card(card, buttons=False)
            )
        )
        return self._post_webhook(name, channel, payload)

    def _post_webhook(self, alias: str, channel: TeamsChannel, payload: dict[str, Any]) -> MessageRef:
        if channel.webhook_url is None:
            raise ConfigError(f"Teams {self.name}: channel {alias!r} has no webhook_url")
        run = self._client.post_webhook(
            alias,
            channel.webhook_url.get_secret_value(),
            payload,
            connector=channel.format == "messagecard",
        )
        # Webhooks give back no message id; the ref names the alias, never the URL.
        return MessageRef(channel_id=alias, message_id=WEBHOOK_POST_PREFIX + (run or uuid.uuid4().hex))

    # -- worker side -------------------------------------------------------------------------
    def health(self) -> str:
        """Bot mode: a token from the token endpoint (the app id and password work). Webhook
        mode: what is configured (an incoming webhook cannot be checked without posting)."""
        parts = []
        if self.settings.bot_mode:
            self._client.token()
            parts.append(f"bot {self.settings.app_id}: credentials accepted")
        if self.settings.webhook_mode:
            parts.append("outgoing webhook configured")
        hooks = sum(1 for c in self.settings.channels.values() if c.webhook_url is not None)
        bots = sum(1 for c in self.settings.channels.values() if c.bot)
        parts.append(f"{hooks} incoming webhook(s), {bots} bot conversation(s)")
        return "; ".join(parts)

    def answer_body(self, command: InboundCommand, reply: Reply) -> tuple[bytes, str]:
        """The outgoing webhook's answer: ``{"type": "message", "text": ...}``, which Teams
        shows in reply to the mention."""
        self.require(Capability.ANSWER_IN_RESPONSE)
        body = json.dumps(render.answer_message(reply), ensure_ascii=False).encode("utf-8")
        return body, JSON_TYPE

    def reply(self, command: InboundCommand, reply: Reply) -> None:
        """Bot mode: a message in the conversation, in the thread of the command's activity.
        Webhook mode (the answer was late, or is a second one): a card in ``default_channel``
        saying who ran what."""
        reply_to = command.reply_to
        mode = reply_to.get(REPLY_MODE)
        text = render.reply_text(reply)
        if mode == "bot":
            service_url = reply_to.get(REPLY_SERVICE_URL)
            conversation = reply_to.get(REPLY_CONVERSATION)
            if not service_url or not conversation:
                raise ProviderError("Teams reply: the command carries no conversation to answer in")
            activity = render.text_activity(text)
            base = conversation.split(THREAD_MARK)[0]
            if base == conversation:
                # A chat has no threads: the answer follows the command.
                if reply_to.get(REPLY_ACTIVITY):
                    activity["replyToId"] = reply_to[REPLY_ACTIVITY]
                self._client.send_activity(service_url, conversation, activity)
                return
            # A channel command's conversation id names its thread (";messageid=<root>"): the
            # answer is posted there. A thread whose first post is gone (deleted) takes no
            # replies; the answer then goes to the channel itself.
            try:
                self._client.send_activity(service_url, conversation, activity)
            except MessageNotFound:
                self._client.send_activity(service_url, base, activity)
            return
        if mode != "webhook":
            raise ProviderError("Teams reply: the command carries no way to answer")
        alias = self.settings.default_channel
        if not alias or alias not in self.settings.channels:
            raise ProviderError(
                f"Teams {self.name}: a late answer has nowhere to go; set default_channel to a channel alias"
            )
        channel = self.settings.channels[alias]
        heading = render.answer_heading(command)
        if channel.bot:
            assert channel.service_url is not None and channel.conversation_id is not None
            activity = render.text_activity(f"_{render.plain(heading)}_\n\n{text}")
            self._client.send_activity(channel.service_url, channel.conversation_id, activity)
            return
        payload = (
            render.text_message_card(heading, text)
            if channel.format == "messagecard"
            else render.envelope(render.text_card(heading, text))
        )
        self._post_webhook(alias, channel, payload)

    def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
        """Post the card: through the Bot Connector with buttons into a bot channel, else to
        the channel's incoming webhook (an Adaptive Card, or a MessageCard for a connector)."""
        return self._post(channel, IncidentCard.of(announcement))

    def alert(
        self,
        channel: str,
        announcement: Announcement,
        *,
        thread: MessageRef | None = None,
        key: str | None = None,
        card: MessageRef | None = None,
    ) -> MessageRef:
        """An alert as a card of its own: a reply in the card's thread on a bot channel
        (``thread``), else a new card in ``channel``."""
        incident = IncidentCard.of(announcement)
        target = self._bot_target(thread.channel_id) if thread is not None else None
        if thread is not None and target is not None:
            service_url, conversation = target
            content = render.alert_card(incident)
            activity_id = self._client.reply_activity(
                service_url,
                conversation,
                thread.message_id,
                render.card_activity(content, render.summary_line(incident)),
            )
            return MessageRef(channel_id=conversation, message_id=activity_id)
        return self._post(channel, incident, alert=True)

    def update_announcement(self, ref: MessageRef, announcement: Announcement) -> None:
        """A bot channel's card is replaced in place (``PUT .../activities/{id}``); a webhook
        channel, which cannot edit, gets a new card (the documented fallback)."""
        card = IncidentCard.of(announcement)
        target = self._bot_target(ref.channel_id)
        if target is None:
            self._post(ref.channel_id, card)
            return
        service_url, conversation = target
        content = render.incident_card(card, buttons=True)
        self._client.update_activity(
            service_url,
            conversation,
            ref.message_id,
            render.card_activity(content, render.summary_line(card)),
        )

    def close(self) -> None:
        self._client.close()


PROVIDER = TeamsProvider
