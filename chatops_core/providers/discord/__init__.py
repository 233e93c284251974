"""The Discord provider: one application and its bot in one server (guild), through Discord's
HTTP interactions endpoint (no Gateway connection).

The package is split by concern: :mod:`.config` (the instance's settings), :mod:`.verify`
(Ed25519 signatures), :mod:`.commands` (the ``/im`` command's definition and its options as
command text), :mod:`.inbound` (interactions into neutral commands), :mod:`.render`
(answers, the card as an embed with buttons, modals), :mod:`.client` (REST and interaction
webhook calls), :mod:`.errors` (Discord failures mapped onto :mod:`chatops_core.errors`),
:mod:`.channels` (names and permissions), :mod:`.pacing`, :mod:`.cli` (``chatops discord
register``) and :mod:`.devtools`. Nothing outside this package knows a Discord path, field
or header.

What it cannot do: bot mentions and message text reach a bot only through the Gateway, and
message content needs the privileged MESSAGE_CONTENT intent, so :attr:`Capability.MENTIONS`
(mentions, the timeline reaction) is not offered. Answers travel on the interaction's token,
which lives 15 minutes; an answer later than that is given up.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Callable
from typing import Any, ClassVar

from chatops_core.cards import IncidentCard
from chatops_core.errors import (
    ChannelNotFound,
    ChatOpsError,
    ConfigError,
    MessageNotFound,
    NotFound,
    ProviderError,
    TriggerExpired,
)
from chatops_core.models import ChannelRef, InboundCommand, MessageRef, Reply
from chatops_core.notifications import Announcement
from chatops_core.pacing import PacingPolicy
from chatops_core.providers.base import Capability, FormName, Inbound, Provider, WebhookRequest
from chatops_core.providers.discord import channels, inbound, render
from chatops_core.providers.discord.client import DiscordClient
from chatops_core.providers.discord.config import SNOWFLAKE, DiscordSettings
from chatops_core.providers.discord.errors import InteractionExpired
from chatops_core.providers.discord.pacing import PACING
from chatops_core.providers.discord.verify import verify_interaction, verify_key

__all__ = ["PROVIDER", "DiscordProvider"]

# An answer is not tried this close to the end of the token's life.
EXPIRY_MARGIN_SECONDS = 10
OFFER_FORM_TEXT = {
    "declare": "The form to declare an incident opens from here:",
    "resolve": "The form to resolve {incident} opens from here:",
}


class DiscordProvider(Provider):
    """A Discord guild: ``/im`` interactions, clicks and modals in; answers on the
    interaction webhook, cards with buttons, and private incident channels out.

    ``client`` replaces the REST client (tests); ``clock`` gives Unix seconds.
    """

    type: ClassVar[str] = "discord"
    settings_model: ClassVar[builtins.type[DiscordSettings]] = DiscordSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PRIVATE_REPLY,
            Capability.THREADS,
            Capability.ALERT_IN_THREAD,
            Capability.UPDATE_MESSAGE,
            Capability.FORMS,
            Capability.BUTTONS,
            Capability.PIN,
            Capability.CHANNELS,
            Capability.FIND_POSTED,
        }
    )
    settings: DiscordSettings

    def __init__(
        self,
        name: str,
        settings: DiscordSettings,
        *,
        client: DiscordClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, settings)
        if not isinstance(settings, DiscordSettings):
            raise ConfigError(f"Discord instance {name!r}: settings of type {type(settings).__name__}")
        self._key = verify_key(settings.public_key)
        self._clock = clock
        self._client = client or DiscordClient(settings.api_url, settings.bot_token, timeout=settings.timeout)
        self._channel_ids: dict[str, str] = {}

    @property
    def pacing(self) -> PacingPolicy:
        return PACING

    @property
    def client(self) -> DiscordClient:
        return self._client

    # -- ingress side: no I/O ---------------------------------------------------------------
    def verify(self, request: WebhookRequest) -> None:
        """Ed25519 over ``X-Signature-Timestamp`` + body with the public key, fresh; else 401."""
        verify_interaction(self._key, request)

    def refusal_response(self, command: InboundCommand, text: str) -> Inbound | None:
        """Every interaction can be answered at once with a message only its user sees."""
        return inbound.private_answer(text)

    def parse(self, request: WebhookRequest) -> Inbound:
        data = inbound.read(request)
        application = data.get("application_id")
        if application is not None and application != self.settings.application_id:
            return inbound.private_answer("This interaction is for another application.")
        return inbound.parse(data, request, self.name)

    # -- worker side ---------------------------------------------------------------------------
    def health(self) -> str:
        me = self._client.me()
        return f"{me.get('username')} ({me.get('id')}) in guild {self.settings.guild_id}"

    def _token(self, command: InboundCommand) -> tuple[str, str]:
        token = command.reply_to.get(inbound.REPLY_TOKEN)
        application = command.reply_to.get(inbound.REPLY_APPLICATION) or self.settings.application_id
        if not token:
            raise ProviderError("Discord reply: the command carries no interaction token")
        age = self._clock() - command.received_at.timestamp()
        if age > self.settings.interaction_ttl_seconds - EXPIRY_MARGIN_SECONDS:
            raise InteractionExpired(
                f"Discord reply: the interaction is {age:.0f}s old; its token has expired"
            )
        return application, token

    def _send(self, command: InboundCommand, body: dict[str, Any], *, private: bool) -> None:
        """Answer ``command`` with ``body``: the deferred response is edited when it already
        has the right visibility; a click gets a follow-up (its original is the card); a
        private answer to a public deferral replaces it with a private follow-up."""
        application, token = self._token(command)
        deferred = command.reply_to.get(inbound.REPLY_DEFERRED)
        if deferred == "update":
            self._client.followup(application, token, body)
        elif deferred == "private" or not private:
            body = {k: v for k, v in body.items() if k != "flags"}
            self._client.edit_original(application, token, body)
        else:
            with contextlib.suppress(MessageNotFound):
                self._client.delete_original(application, token)
            self._client.followup(application, token, {**body, "flags": render.EPHEMERAL})

    def reply(self, command: InboundCommand, reply: Reply) -> None:
        """Answer on the interaction's webhook (``@original``, or a follow-up)."""
        body = render.reply_message(reply, self.name, ephemeral=reply.ephemeral)
        self._send(command, body, private=reply.ephemeral)

    def open_form(
        self, command: InboundCommand, form: FormName, *, incident_id: str | None, context: dict[str, str]
    ) -> None:
        """A modal can only be an interaction's first response, which the ingress gave:
        always :class:`TriggerExpired`, so the person is offered a button that opens it."""
        raise TriggerExpired("Discord open_form: a modal opens only as the interaction's first answer")

    def offer_form(self, command: InboundCommand, form: FormName, incident_id: str | None) -> None:
        """A private message with a button that opens ``form`` (its click answers the modal)."""
        if form not in OFFER_FORM_TEXT:
            raise ProviderError(f"Discord offer_form: no {form!r} form")
        text = OFFER_FORM_TEXT[form].format(incident=incident_id or "the incident")
        self._send(command, render.offer_form_message(text, form, incident_id), private=True)

    def display_name(self, user_id: str) -> str | None:
        """The name Discord shows for ``user_id`` (its display name, else its user name)."""
        if not SNOWFLAKE.match(user_id):
            return None
        try:
            user = self._client.user(user_id)
        except ChatOpsError:
            return None
        name = user.get("global_name") or user.get("username")
        return name if isinstance(name, str) and name else None

    def resolve_channel(self, channel: str) -> str:
        """The id of ``channel``: an id passes; a name is looked up in the guild once."""
        name = channel.strip().lstrip("#")
        if SNOWFLAKE.match(name):
            return name
        name = name.lower()
        found = self._channel_ids.get(name)
        if found is None:
            for item in self._client.guild_channels(self.settings.guild_id):
                if item.get("name") == name and item.get("type") == channels.GUILD_TEXT:
                    found = str(item["id"])
                    break
            if found is None:
                raise ChannelNotFound(f"Discord {self.name}: no text channel {name!r} in the guild")
            self._channel_ids[name] = found
        return found

    def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
        """Post the card; with ``key``, its digest goes in the footer (found again by
        :meth:`find_announcement`) and in the message's ``nonce`` (Discord keeps a repeat
        of the same nonce within minutes from posting twice)."""
        channel_id = self.resolve_channel(channel)
        ref = render.delivery_ref(key) if key else None
        body = render.card_message(IncidentCard.of(announcement), instance=self.name, ref=ref)
        if ref:
            body.update(nonce=ref, enforce_nonce=True)
        message = self._client.create_message(channel_id, body)
        return MessageRef(channel_id=str(message.get("channel_id") or channel_id), message_id=message["id"])

    def alert(
        self,
        channel: str,
        announcement: Announcement,
        *,
        thread: MessageRef | None = None,
        key: str | None = None,
        card: MessageRef | None = None,
    ) -> MessageRef:
        """An alert as a message of its own, a reply to the card when ``thread`` is given
        (it shows in the channel and notifies, with a link back to the card)."""
        incident = IncidentCard.of(announcement)
        channel_id = thread.channel_id if thread is not None else self.resolve_channel(channel)
        body = render.alert_message(incident, None, ref=render.delivery_ref(key) if key else None)
        if thread is not None:
            body["message_reference"] = {"message_id": thread.message_id, "fail_if_not_exists": False}
        if key:
            body.update(nonce=render.delivery_ref(key), enforce_nonce=True)
        message = self._client.create_message(channel_id, body)
        return MessageRef(channel_id=str(message.get("channel_id") or channel_id), message_id=message["id"])

    def find_announcement(
        self, channel: str, key: str, since: float, *, thread: MessageRef | None = None
    ) -> MessageRef | None:
        """The message posted with ``key``, among the channel's latest 50."""
        channel_id = thread.channel_id if thread is not None else self.resolve_channel(channel)
        wanted = render.delivery_ref(key)
        for message in self._client.channel_messages(channel_id, limit=50):
            if render.ref_in(message) == wanted and isinstance(message.get("id"), str):
                return MessageRef(
                    channel_id=str(message.get("channel_id") or channel_id), message_id=message["id"]
                )
        return None

    def update_announcement(self, ref: MessageRef, announcement: Announcement) -> None:
        """Edit the card in place (``PATCH /channels/{id}/messages/{id}``), keeping its key."""
        current = self._client.get_message(ref.channel_id, ref.message_id)
        body = render.card_message(
            IncidentCard.of(announcement), instance=self.name, ref=render.ref_in(current)
        )
        self._client.edit_message(ref.channel_id, ref.message_id, body)

    def pin(self, channel_id: str, message_id: str) -> None:
        self._client.pin_message(channel_id, message_id)

    def channel_name_for(self, incident_id: str, title: str) -> str:
        return channels.channel_name_for(incident_id, title)

    def create_channel(self, name: str, topic: str | None = None) -> ChannelRef:
        """A private text channel in the guild: ``@everyone`` cannot see it, the bot can;
        people are let in by :meth:`invite`."""
        body: dict[str, Any] = {
            "name": name,
            "type": channels.GUILD_TEXT,
            "permission_overwrites": [
                {
                    "id": self.settings.guild_id,
                    "type": channels.ROLE,
                    "allow": "0",
                    "deny": str(channels.VIEW_CHANNEL),
                },
                {
                    "id": self.settings.bot_id,
                    "type": channels.MEMBER,
                    "allow": str(channels.BOT_ALLOW),
                    "deny": "0",
                },
            ],
        }
        if topic:
            body["topic"] = render.cut(render.defuse(topic), 1024)
        created = self._client.create_channel(self.settings.guild_id, body)
        self._channel_ids[str(created.get("name") or name)] = created["id"]
        return ChannelRef(channel_id=created["id"], name=str(created.get("name") or name))

    def invite(self, channel_id: str, user_ids: list[str]) -> None:
        """Give each user access with a member permission overwrite; again is fine."""
        for user_id in dict.fromkeys(user_ids):
            if user_id:
                self._client.put_permission(
                    channel_id,
                    user_id,
                    {"type": channels.MEMBER, "allow": str(channels.MEMBER_ALLOW), "deny": "0"},
                )

    def kick(self, channel_id: str, user_id: str) -> None:
        """Take a user's overwrite away; one who had none is not an error."""
        with contextlib.suppress(NotFound):
            self._client.delete_permission(channel_id, user_id)

    def archive(self, channel_id: str) -> None:
        """Lock the channel (nobody but the bot may send; members keep reading) and, with
        ``archive_category_id``, move it into that category. Doing it again is fine."""
        current = self._client.get_channel(channel_id)
        overwrites = []
        for item in current.get("permission_overwrites") or []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            allow, deny = int(item.get("allow") or 0), int(item.get("deny") or 0)
            if item["id"] != self.settings.bot_id:
                allow &= ~channels.LOCKED_DENY
                deny |= channels.LOCKED_DENY
            overwrites.append(
                {"id": item["id"], "type": item.get("type", 1), "allow": str(allow), "deny": str(deny)}
            )
        if not any(o["id"] == self.settings.guild_id for o in overwrites):
            overwrites.append(
                {
                    "id": self.settings.guild_id,
                    "type": channels.ROLE,
                    "allow": "0",
                    "deny": str(channels.LOCKED_DENY),
                }
            )
        body: dict[str, Any] = {"permission_overwrites": overwrites}
        if self.settings.archive_category_id:
            body["parent_id"] = self.settings.archive_category_id
        self._client.modify_channel(channel_id, body)

    def close(self) -> None:
        self._client.close()


PROVIDER = DiscordProvider
