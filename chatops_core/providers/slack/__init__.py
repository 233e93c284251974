"""The Slack provider: one Slack workspace (an installed app) behind the common interface.

The package is split by concern: :mod:`.verify` (request signatures), :mod:`.inbound`
(webhook parsing: slash commands, clicks, forms, mentions, reactions), :mod:`.render`
(Block Kit messages and the incident card), :mod:`.forms` (modals), :mod:`.actions` (the
ids shared by what we send and what comes back), :mod:`.client` (Web API and
``response_url`` calls), :mod:`.errors` (Slack failures mapped onto
:mod:`chatops_core.errors`) and :mod:`.channels` (channel names). Nothing outside this
package needs to know a Slack field name.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from slack_sdk.http_retry import RetryIntervalCalculator

from chatops_core.cards import IncidentCard
from chatops_core.errors import ChannelNotFound, ConfigError, Permanent, ProviderError, TriggerExpired
from chatops_core.models import ChannelRef, InboundCommand, MessageRef, Person, PostedText, Reply, utcnow
from chatops_core.notifications import Announcement
from chatops_core.pacing import PacingPolicy
from chatops_core.providers.base import Capability, FormName, Inbound, InboundKind, Provider, WebhookRequest
from chatops_core.providers.config import ProviderSettingsModel
from chatops_core.providers.slack.channels import channel_name
from chatops_core.providers.slack.client import SlackApi
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.errors import map_slack_error
from chatops_core.providers.slack.forms import declare_view, resolve_view
from chatops_core.providers.slack.inbound import parse_request
from chatops_core.providers.slack.pacing import PACING
from chatops_core.providers.slack.render import (
    alert_blocks,
    alert_text,
    card_blocks,
    card_text,
    escape,
    offer_form_blocks,
    reply_blocks,
    reply_text,
)
from chatops_core.providers.slack.verify import verify_request

__all__ = ["PROVIDER", "SlackProvider", "SlackSettings", "map_slack_error"]

# Slack channel ids: C… (public), G… (private), D… (direct message).
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
DELIVERY_EVENT = "chatops_delivery"
# A trigger_id lives 3 s (https://docs.slack.dev/interactivity/handling-user-interaction/);
# past this age there is no point in trying views.open.
TRIGGER_MAX_AGE = timedelta(seconds=2.5)
OFFER_FORM_TEXT = {
    "declare": "The form to declare an incident could not open in time. Open it from here:",
    "resolve": "The form to resolve {incident} could not open in time. Open it from here:",
}


class SlackProvider(Provider):
    """A Slack workspace: slash commands, clicks, forms, mentions and reactions in; Block Kit
    messages, forms and channels out.

    ``retry_interval`` sets the pause between the client's in-process retries of
    connection errors and 500/503 answers (tests make it short).
    """

    type: ClassVar[str] = "slack"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PRIVATE_REPLY,
            Capability.THREADS,
            Capability.UPDATE_MESSAGE,
            Capability.FORMS,
            Capability.BUTTONS,
            Capability.PIN,
            Capability.CHANNELS,
            Capability.FIND_POSTED,
            Capability.MENTIONS,
            Capability.ALERT_IN_THREAD,
        }
    )
    settings_model: ClassVar[ProviderSettingsModel] = SlackSettings
    settings: SlackSettings

    def __init__(
        self,
        name: str,
        settings: SlackSettings,
        *,
        retry_interval: RetryIntervalCalculator | None = None,
    ) -> None:
        super().__init__(name, settings)
        self._signing_secret = settings.signing_secret.get_secret_value()
        if not self._signing_secret.strip():
            raise ConfigError(f"Slack instance {name!r}: signing_secret is empty")
        self._api = SlackApi(settings, retry_interval=retry_interval)
        self._channel_ids: dict[str, str] = {}

    @property
    def pacing(self) -> PacingPolicy:
        """About one post a second per channel; card updates paced per workspace."""
        return PACING

    # -- ingress side: no I/O -----------------------------------------------------------
    def verify(self, request: WebhookRequest) -> None:
        """Check the request's signature and timestamp; raise ``InvalidWebhook`` (401) if not."""
        verify_request(request, self._signing_secret)

    def parse(self, request: WebhookRequest) -> Inbound:
        """Classify a verified request: command, in-place answer, or nothing to do."""
        return parse_request(
            request,
            self.name,
            bot_user_id=self.settings.bot_user_id,
            timeline_reaction=self.settings.timeline_reaction,
        )

    def refusal_response(self, command: InboundCommand, text: str) -> Inbound | None:
        """A slash command's response shows an ephemeral message to the person alone; clicks,
        forms and events are answered through a worker."""
        if command.source != "command":
            return None
        body = json.dumps({"response_type": "ephemeral", "text": text}).encode()
        return Inbound(kind=InboundKind.ANSWER, body=body, content_type="application/json")

    # -- worker side ---------------------------------------------------------------------
    def health(self) -> str:
        return self._api.auth_test()

    def reply(self, command: InboundCommand, reply: Reply) -> None:
        """Answer through the command's ``response_url`` (ephemeral unless asked otherwise).

        A command without a ``response_url`` is answered in its channel instead. The answer to
        a click or a form never replaces the message clicked (the incident card is updated by
        its notification instead).
        """
        text = reply_text(reply)
        blocks = reply_blocks(reply, self.name)
        response_url = command.reply_to.get("response_url")
        if response_url:
            body: dict[str, Any] = {
                "response_type": "ephemeral" if reply.ephemeral else "in_channel",
                "text": text,
                "blocks": blocks,
            }
            if command.source in ("action", "form"):
                # https://docs.slack.dev/interactivity/handling-user-interaction/#message_responses
                body["replace_original"] = False
            self._api.respond(response_url, body)
            return
        if not command.channel_id:
            raise ProviderError(
                "Slack reply: the command has neither a response_url nor a channel", method="reply"
            )
        if reply.ephemeral:
            self._api.post_ephemeral(command.channel_id, command.user.user_id, text, blocks)
        else:
            self._api.post_message(command.channel_id, text, blocks)

    def reply_in_thread(self, channel: str, thread_id: str | None, reply: Reply) -> MessageRef:
        """Post ``reply`` in the thread of ``thread_id`` (a mention; a message's ``ts``), or at
        the top level of ``channel`` when ``thread_id`` is None (a direct message).
        """
        return self._api.post_message(
            channel, reply_text(reply), reply_blocks(reply, self.name), thread_ts=thread_id
        )

    def open_form(
        self, command: InboundCommand, form: FormName, *, incident_id: str | None, context: dict[str, str]
    ) -> None:
        """Open the declare or resolve form (``views.open``) for the person who clicked or typed.

        ``context`` (say ``channel_id``, ``channel_name``), the command's ``response_url`` and
        ``incident_id`` travel in the form's ``private_metadata`` and come back with the
        submission. Raises :class:`~chatops_core.errors.TriggerExpired` when the command has no
        trigger, when it is older than :data:`TRIGGER_MAX_AGE`, or when Slack says it is stale
        or used.
        """
        trigger_id = command.reply_to.get("trigger_id")
        if not trigger_id:
            raise TriggerExpired("Slack open_form: the command has no trigger_id", method="views.open")
        if utcnow() - command.received_at >= TRIGGER_MAX_AGE:
            raise TriggerExpired(
                "Slack open_form: the trigger_id is too old to open a form", method="views.open"
            )
        context = {**context, "response_url": command.reply_to.get("response_url", "")}
        if form == "declare":
            view = declare_view(context)
        elif form == "resolve" and incident_id:
            view = resolve_view(incident_id, context)
        else:
            raise ProviderError(
                f"Slack open_form: no {form!r} form (resolve needs an incident)", method="views.open"
            )
        self._api.open_view(trigger_id, view)

    def offer_form(self, command: InboundCommand, form: FormName, incident_id: str | None) -> None:
        """Show only the person who ran ``command`` a button that opens ``form`` afresh.

        For when the trigger was too old to open the form: a click on the button brings a new
        one. Sent through the command's ``response_url`` when it has one, else with
        ``chat.postEphemeral``.
        """
        if form not in OFFER_FORM_TEXT:
            raise ProviderError(f"Slack offer_form: no {form!r} form", method="offer_form")
        text = OFFER_FORM_TEXT[form].format(incident=incident_id or "the incident")
        blocks = offer_form_blocks(text, form, incident_id)
        response_url = command.reply_to.get("response_url")
        if response_url:
            body = {"response_type": "ephemeral", "replace_original": False, "text": text, "blocks": blocks}
            self._api.respond(response_url, body)
            return
        if not command.channel_id:
            raise ProviderError(
                "Slack offer_form: the command has neither a response_url nor a channel", method="offer_form"
            )
        self._api.post_ephemeral(command.channel_id, command.user.user_id, text, blocks)

    def message_text(self, channel_id: str, message_id: str) -> PostedText:
        """Who wrote a message (None for one without a user: an app, a webhook), its text and
        when it was posted (its ``ts``).

        The author is named as the workspace shows them (``users.info``); one the bot may not
        look up keeps their user id as the name. Raises
        :class:`~chatops_core.errors.MessageNotFound` when the message is not there.
        """
        message = self._api.message(channel_id, message_id)
        user_id = str(message.get("user") or "")
        author = None
        if user_id:
            author = Person(instance=self.name, user_id=user_id, display=self._user_name(user_id) or user_id)
        try:
            at: datetime | None = datetime.fromtimestamp(float(str(message.get("ts") or message_id)), tz=UTC)
        except ValueError:
            at = None
        return PostedText(author=author, text=str(message.get("text") or ""), at=at)

    def display_name(self, user_id: str) -> str | None:
        return self._user_name(user_id)

    def _user_name(self, user_id: str) -> str | None:
        """The name the workspace shows for ``user_id``; None when Slack will not say."""
        try:
            return self._api.user_name(user_id)
        except Permanent:
            return None

    def pin(self, channel_id: str, message_id: str) -> None:
        """Pin a message (``pins.add``); one already pinned is not an error."""
        self._api.pin(channel_id, message_id)

    def archive(self, channel_id: str) -> None:
        """Archive a channel (``conversations.archive``); one already archived is not an error."""
        self._api.archive(channel_id)

    def resolve_channel(self, channel: str) -> str:
        """The id of ``channel`` (an id, ``#name`` or ``name``); ids pass through.

        Names are looked up once with ``conversations.list`` and remembered; an unknown name
        refreshes the list once before it is :class:`ChannelNotFound`.
        """
        if _CHANNEL_ID.match(channel):
            return channel
        name = channel.removeprefix("#")
        if name not in self._channel_ids:
            self._channel_ids = self._api.channel_ids()
        try:
            return self._channel_ids[name]
        except KeyError:
            raise ChannelNotFound(f"Slack {self.name}: no channel #{name} visible to the app") from None

    def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
        """Post an announcement into ``channel`` (an id, ``#name`` or ``name``).

        With ``key``, the message carries it as metadata, so :meth:`find_announcement` can
        tell later whether this post already happened. A channel the bot is not in is joined
        once (``not_in_channel``), then the post is tried again.
        """
        card = IncidentCard.of(announcement)
        return self._post_keyed(channel, card_text(card), card_blocks(card, instance=self.name), key)

    def alert(
        self,
        channel: str,
        announcement: Announcement,
        *,
        thread: MessageRef | None = None,
        key: str | None = None,
        card: MessageRef | None = None,
    ) -> MessageRef:
        """Post an alert (an SLA breach, an escalation): with ``thread`` (the incident's
        card), a reply in the card's thread that is also sent to the channel
        (``reply_broadcast``), so it notifies as a new message does; without, a message in
        ``channel``. ``key`` works as for :meth:`announce`.

        https://docs.slack.dev/reference/methods/chat.postMessage#arg_reply_broadcast
        """
        text, blocks = alert_text(announcement), alert_blocks(announcement)
        if thread is None:
            return self._post_keyed(channel, text, blocks, key)
        return self._post_keyed(thread.channel_id, text, blocks, key, thread_ts=thread.message_id)

    def _post_keyed(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        key: str | None,
        *,
        thread_ts: str | None = None,
    ) -> MessageRef:
        """Post with ``key`` as metadata (in ``thread_ts``'s thread and to the channel when
        given); a channel the bot is not in is joined once (``not_in_channel``), then the post
        is tried again."""
        metadata = {"event_type": DELIVERY_EVENT, "event_payload": {"key": key}} if key else None
        broadcast = thread_ts is not None
        try:
            return self._api.post_message(
                channel, text, blocks, metadata, thread_ts=thread_ts, broadcast=broadcast
            )
        except ProviderError as exc:
            if exc.details.get("slack_error") != "not_in_channel":
                raise
        # A thread's channel is given by its id already.
        self._api.join(channel if thread_ts is not None else self.resolve_channel(channel))
        return self._api.post_message(
            channel, text, blocks, metadata, thread_ts=thread_ts, broadcast=broadcast
        )

    def find_announcement(
        self, channel: str, key: str, since: float, *, thread: MessageRef | None = None
    ) -> MessageRef | None:
        """The message posted with ``key`` in ``channel`` since ``since`` (epoch seconds), if any.

        With ``thread``, the replies in that message's thread are searched
        (``conversations.replies``), else the channel's history. A bot that may not read the
        channel (``missing_scope``, ``not_in_channel``) gets a
        :class:`~chatops_core.errors.Permanent` error.
        """
        if thread is not None:
            channel_id = thread.channel_id
            messages = self._api.thread(channel_id, thread.message_id, since)
        else:
            channel_id = self.resolve_channel(channel)
            messages = self._api.history(channel_id, oldest=since)
        for message in messages:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == key:
                return MessageRef(channel_id=channel_id, message_id=str(message["ts"]))
        return None

    def update_announcement(self, ref: MessageRef, announcement: Announcement) -> None:
        """Rewrite a posted announcement in place (``chat.update``)."""
        card = IncidentCard.of(announcement)
        self._api.update_message(
            ref.channel_id, ref.message_id, card_text(card), card_blocks(card, instance=self.name)
        )

    def create_channel(self, name: str, topic: str | None = None) -> ChannelRef:
        """Create a public channel, adding ``-2``, ``-3``... while the name is taken.

        The topic is shown as mrkdwn, so user text in it is escaped: a title such as
        ``<!channel>`` must not ping anyone
        (https://docs.slack.dev/messaging/formatting-message-text/#escaping).
        """
        return self._api.create_channel(name, escape(topic) if topic else None)

    def invite(self, channel_id: str, user_ids: list[str]) -> None:
        """Invite users; users already in the channel (or the bot) are skipped."""
        self._api.invite(channel_id, user_ids)

    def kick(self, channel_id: str, user_id: str) -> None:
        """Remove a user; one who is not in the channel is not an error."""
        self._api.kick(channel_id, user_id)

    def channel_name_for(self, incident_id: str, title: str) -> str:
        """A valid Slack channel name, e.g. ``inc-12-database-timeouts``."""
        return channel_name(incident_id, title)


PROVIDER = SlackProvider
