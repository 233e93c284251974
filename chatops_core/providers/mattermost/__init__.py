"""The Mattermost provider: one Mattermost server and team behind the common interface.

The package is split by concern: :mod:`.config` (the instance's settings), :mod:`.verify`
(the slash command's and outgoing webhook's tokens; signed button and menu contexts and
dialog states), :mod:`.inbound` (slash commands, mentions, clicks, menu choices and dialog
submissions into neutral commands), :mod:`.render` (Markdown answers and the incident card
as an attachment with buttons and menus), :mod:`.forms` (dialogs), :mod:`.actions` (what
buttons, menus and dialogs carry), :mod:`.client` (REST API v4
and ``response_url`` calls), :mod:`.errors` (Mattermost failures mapped onto
:mod:`chatops_core.errors`), :mod:`.channels` (channel names), :mod:`.pacing` (how fast it
posts) and :mod:`.devtools` (simulated requests and the local playground). Nothing outside
this package knows a Mattermost path, field or header.

Mentions of the bot reach the service through an outgoing webhook (no plugin): its trigger
word is the mention (``@incident-bot``), its callback URL this instance's webhook URL, and its
token ``outgoing_webhook_token``. Mattermost sends them only for public channels, and only
when the message starts with the trigger word. The webhook is answered ``{}`` at once and the
worker answers in the post's thread through the REST API (:meth:`reply_in_thread`).
:attr:`Capability.MENTIONS` stays off all the same: it also stands for the timeline reaction,
and Mattermost tells an integration about reactions only through a plugin or a bot's
websocket. The worker answers a mention in its thread by the command's ``source`` and
:attr:`Capability.THREADS`, which do not depend on it.

Alerts cannot be sent to a card's thread and
to the channel at once (a reply with ``root_id`` does not show in the channel when
collapsed threads are on, and there is no broadcast flag), so an alert is a post of its own
in the channel that links the card (:attr:`Capability.ALERT_IN_THREAD` is not offered).
"""

from __future__ import annotations

import builtins
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from chatops_core.cards import IncidentCard
from chatops_core.errors import (
    ChannelNotFound,
    ConfigError,
    MessageNotFound,
    NotFound,
    Permanent,
    ProviderError,
    TriggerExpired,
)
from chatops_core.models import (
    ChannelRef,
    InboundCommand,
    Incident,
    MessageRef,
    Person,
    PostedText,
    Reply,
    utcnow,
)
from chatops_core.notifications import Announcement
from chatops_core.pacing import PacingPolicy
from chatops_core.providers.base import Capability, FormName, Inbound, InboundKind, Provider, WebhookRequest
from chatops_core.providers.mattermost import actions, channels, inbound, render
from chatops_core.providers.mattermost.client import MattermostClient
from chatops_core.providers.mattermost.config import MattermostSettings
from chatops_core.providers.mattermost.errors import ChannelNameTaken, MissingPermission
from chatops_core.providers.mattermost.forms import declare_dialog, resolve_dialog
from chatops_core.providers.mattermost.pacing import PACING
from chatops_core.providers.mattermost.verify import (
    check_command_token,
    check_outgoing_token,
    verify_context,
    verify_state,
)

__all__ = ["PROVIDER", "MattermostProvider"]

# Mattermost ids: 26 lowercase letters and digits.
_ID = re.compile(r"^[a-z0-9]{26}$")
DELIVERY_PROP = "chatops_delivery"
# What the server answers a post whose root_id names a reply (or no post of the channel).
INVALID_ROOT_ID = "api.post.create_post.root_id.app_error"
# A trigger id lives 3 s on servers up to v9; past this age opening a dialog is not tried.
TRIGGER_MAX_AGE_SECONDS = 2.5
# A dialog's state stays good for a day at most, however long buttons live.
DIALOG_TTL_SECONDS = 24 * 3600
# Taken channel names tried before giving up: name-2 ... name-20.
MAX_NAME_TRIES = 20
_NAME_CACHE = 256
# Usernames of commanders known by id only, looked up once an hour at most.
_USERNAME_CACHE = 256
USERNAME_TTL_SECONDS = 3600.0
OFFER_FORM_TEXT = {
    "declare": "The form to declare an incident could not open in time. Open it from here:",
    "resolve": "The form to resolve {incident} could not open in time. Open it from here:",
}


class MattermostProvider(Provider):
    """A Mattermost team: ``/im`` slash commands, clicks, dialogs and mentions (through an
    outgoing webhook) in; Markdown answers,
    cards with buttons, dialogs and incident channels out.

    ``webhook_url`` is where Mattermost sends clicks and dialog submissions (this instance's
    ``/webhooks/<name>`` URL); it defaults to the settings' ``webhook_url``. Without either,
    cards carry no buttons and list the commands to type instead. ``client`` replaces the
    REST client (tests); ``clock`` gives Unix seconds.
    """

    type: ClassVar[str] = "mattermost"
    settings_model: ClassVar[builtins.type[MattermostSettings]] = MattermostSettings
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
        }
    )
    settings: MattermostSettings

    def __init__(
        self,
        name: str,
        settings: MattermostSettings,
        *,
        webhook_url: str | None = None,
        client: MattermostClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, settings)
        if not isinstance(settings, MattermostSettings):
            raise ConfigError(f"Mattermost instance {name!r}: settings of type {type(settings).__name__}")
        self._secret = settings.actions_secret
        self._webhook_url = webhook_url or settings.webhook_url
        self._clock = clock
        self._client = client or MattermostClient(settings.url, settings.bot_token, timeout=settings.timeout)
        self._channel_ids: dict[str, str] = {}
        self._display_names: OrderedDict[str, str] = OrderedDict()
        self._usernames: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @property
    def pacing(self) -> PacingPolicy:
        return PACING

    @property
    def webhook_url(self) -> str | None:
        """Where clicks and dialog submissions go: ``webhook_url`` when set, else the
        instance's address under ``public_url`` (None: buttons are left off)."""
        return self._webhook_url or self.public_webhook_url

    # -- ingress side: no I/O -----------------------------------------------------------
    def verify(self, request: WebhookRequest) -> None:
        """A slash command must carry ``command_token``; an outgoing webhook (a mention)
        ``outgoing_webhook_token``; a click or dialog submission a context or state signed
        with ``actions_secret`` that has not expired. Else 401."""
        read = inbound.read_request(request)
        if read.kind == "command":
            check_command_token(self.settings, read.fields.get("token"), request.headers.get("Authorization"))
        elif read.kind == "mention":
            check_outgoing_token(self.settings, read.fields.get("token"))
        elif read.kind == "action":
            verify_context(self._secret, read.fields.get("context"), request.received_at)
        else:
            verify_state(self._secret, read.fields.get("state"), request.received_at)

    def refusal_response(self, command: InboundCommand, text: str) -> Inbound | None:
        """A slash command's response, and a button's (``ephemeral_text``), show a message to
        the person alone; dialogs and mentions are answered through a worker."""
        if command.source == "command":
            answer: dict[str, str] = {"response_type": "ephemeral", "text": text}
        elif command.source == "action":
            answer = {"ephemeral_text": text}
        else:
            return None
        return Inbound(
            kind=InboundKind.ANSWER, body=json.dumps(answer).encode(), content_type="application/json"
        )

    def parse(self, request: WebhookRequest) -> Inbound:
        """The neutral command of a verified request, and what Mattermost is answered now."""
        read = inbound.read_request(request)
        if read.kind == "command":
            return inbound.slash_command(read.fields, request, self.name)
        if read.kind == "mention":
            return inbound.mention(
                read.fields,
                request,
                self.name,
                bot_user_id=self.settings.bot_user_id,
                bot_name=self.settings.bot_name,
            )
        if read.kind == "action":
            context = verify_context(self._secret, read.fields.get("context"), request.received_at)
            return inbound.button_click(read.fields, context, request, self.name)
        state = verify_state(self._secret, read.fields.get("state"), request.received_at)
        return inbound.dialog_submission(read.fields, state, request, self.name)

    # -- worker side ---------------------------------------------------------------------
    def health(self) -> str:
        """Check the bot token (``GET /users/me``)."""
        me = self._client.me()
        return f"@{me.username} ({me.id}) on {self.settings.url}"

    def reply(self, command: InboundCommand, reply: Reply) -> None:
        """Answer on the command's ``response_url`` (ephemeral unless asked otherwise).

        A command without one (a click) is answered with an ephemeral post to the person
        (``POST /posts/ephemeral``), or a post in the channel for a public answer. A bot that
        may not post ephemeral messages (by default only system admins may) answers in the
        thread of the message clicked instead, naming the person.
        """
        message = render.reply_message(reply, self.name, self._commander_names(_shown(reply)))
        response_url = command.reply_to.get(inbound.REPLY_RESPONSE_URL)
        if response_url:
            body = {"response_type": "ephemeral" if reply.ephemeral else "in_channel", "text": message}
            self._client.post_response(response_url, body)
            return
        if not command.channel_id:
            raise ProviderError("Mattermost reply: the command has neither a response_url nor a channel")
        if reply.ephemeral:
            self._private_post(command, command.channel_id, message, None)
        else:
            self._client.create_post(command.channel_id, message)

    def reply_in_thread(self, channel: str, thread_id: str | None, reply: Reply) -> MessageRef:
        """Post ``reply`` in the thread of ``thread_id``, or at the top level.

        ``thread_id`` may be a reply itself (a mention written in a thread): the server takes
        only a root post as ``root_id``, so when it refuses one, the post's root is looked up
        (``GET /posts/{id}``) and the answer goes under it.
        """
        channel_id = self.resolve_channel(channel)
        message = render.reply_message(reply, self.name, self._commander_names(_shown(reply)))
        try:
            post = self._client.create_post(channel_id, message, root_id=thread_id)
        except ProviderError as exc:
            if not thread_id or exc.details.get("mattermost_error") != INVALID_ROOT_ID:
                raise
            root_id = self._client.get_post(thread_id).root_id
            if not root_id or root_id == thread_id:
                raise
            post = self._client.create_post(channel_id, message, root_id=root_id)
        return MessageRef(channel_id=post.channel_id or channel_id, message_id=post.id)

    def open_form(
        self, command: InboundCommand, form: FormName, *, incident_id: str | None, context: dict[str, str]
    ) -> None:
        """Open the declare or resolve dialog with the command's ``trigger_id``.

        The dialog's signed state carries who opened it, where, the command's
        ``response_url`` and the incident. A trigger older than 2.5 s, or one the server
        refuses, is :class:`TriggerExpired`.
        """
        trigger_id = command.reply_to.get(inbound.REPLY_TRIGGER_ID)
        age = (utcnow() - command.received_at).total_seconds()
        if not trigger_id or age > TRIGGER_MAX_AGE_SECONDS:
            raise TriggerExpired(f"Mattermost open_form: the trigger is {age:.1f}s old or missing")
        target = self.webhook_url
        if not target:
            raise TriggerExpired("Mattermost open_form: no webhook_url to send the dialog to")
        fields: dict[str, str | int] = {
            actions.FORM: form,
            actions.USER_ID: command.user.user_id,
            actions.USER_NAME: command.user.user_name or "",
            actions.CHANNEL_ID: context.get("channel_id") or command.channel_id or "",
            actions.CHANNEL_NAME: context.get("channel_name") or command.channel_name or "",
            actions.RESPONSE_URL: command.reply_to.get(inbound.REPLY_RESPONSE_URL, ""),
        }
        if form == "resolve":
            if not incident_id:
                raise ProviderError("Mattermost open_form: the resolve form needs an incident")
            fields[actions.INCIDENT] = incident_id
        ttl = min(self.settings.action_ttl_seconds, DIALOG_TTL_SECONDS)
        state = actions.dialog_state(self._secret, fields, now=self._clock(), ttl=ttl)
        dialog = declare_dialog(state) if form == "declare" else resolve_dialog(incident_id or "", state)
        self._client.open_dialog(trigger_id, target, dialog)

    def offer_form(self, command: InboundCommand, form: FormName, incident_id: str | None) -> None:
        """Show only the person who ran ``command`` a button that opens ``form`` afresh."""
        if form not in OFFER_FORM_TEXT:
            raise ProviderError(f"Mattermost offer_form: no {form!r} form")
        text = OFFER_FORM_TEXT[form].format(incident=incident_id or "the incident")
        context = actions.form_context(
            self._secret, form, incident_id, now=self._clock(), ttl=self.settings.action_ttl_seconds
        )
        attachment = render.offer_form_attachment(text, self.webhook_url, context)
        response_url = command.reply_to.get(inbound.REPLY_RESPONSE_URL)
        if response_url:
            self._client.post_response(
                response_url, {"response_type": "ephemeral", "text": "", "attachments": [attachment]}
            )
            return
        if not command.channel_id:
            raise ProviderError("Mattermost offer_form: the command has neither a response_url nor a channel")
        self._private_post(command, command.channel_id, "", {"attachments": [attachment]})

    def message_text(self, channel_id: str, message_id: str) -> PostedText:
        """Who wrote a post, its text and when (``GET /posts/{id}``)."""
        post = self._client.get_post(message_id)
        if post.channel_id and post.channel_id != channel_id:
            raise MessageNotFound(f"Mattermost {self.name}: the post is not in that channel")
        author = (
            Person(instance=self.name, user_id=post.user_id, display=post.user_id) if post.user_id else None
        )
        at = datetime.fromtimestamp(post.create_at / 1000, tz=UTC) if post.create_at else None
        return PostedText(author=author, text=post.message, at=at)

    def pin(self, channel_id: str, message_id: str) -> None:
        """Pin a post (``POST /posts/{id}/pin``); pinning it again is fine."""
        self._client.pin_post(message_id)

    def archive(self, channel_id: str) -> None:
        """Archive a channel; one already archived is not an error."""
        self._client.archive_channel(channel_id)

    def resolve_channel(self, channel: str) -> str:
        """The id of ``channel``: a 26-character id passes; a name (``incidents``,
        ``~incidents``, ``#incidents``) is looked up in the team once and remembered."""
        name = channel.strip().lstrip("~#")
        if _ID.match(name):
            return name
        found = self._channel_ids.get(name)
        if found is None:
            try:
                found = self._client.channel_by_name(self.settings.team_id, name).id
            except NotFound:
                raise ChannelNotFound(f"Mattermost {self.name}: no channel {name!r} in the team") from None
            self._channel_ids[name] = found
        return found

    def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
        """Post the incident's card into ``channel`` (a name in the team or an id).

        With ``key``, the post keeps it in its ``props``, so :meth:`find_announcement` finds
        it after an attempt whose outcome was lost.
        """
        channel_id = self.resolve_channel(channel)
        post = self._client.create_post(channel_id, "", props=self._card_props(announcement, key))
        return MessageRef(channel_id=post.channel_id or channel_id, message_id=post.id)

    def alert(
        self,
        channel: str,
        announcement: Announcement,
        *,
        thread: MessageRef | None = None,
        key: str | None = None,
        card: MessageRef | None = None,
    ) -> MessageRef:
        """Post an alert (an SLA breach, an escalation) as a message of its own in
        ``channel``, so it notifies as a new post does; with ``thread`` (the card), it links
        the card rather than replying under it, as a reply would not show in the channel; the
        card is ``card`` (or ``thread``, given by callers that know no other)."""
        shown = card or thread
        incident = IncidentCard.of(announcement)
        card_link = f"{self.settings.url}/_redirect/pl/{shown.message_id}" if shown is not None else None
        channel_id = shown.channel_id if shown is not None else self.resolve_channel(channel)
        props: dict[str, Any] = {DELIVERY_PROP: key} if key else {}
        post = self._client.create_post(
            channel_id, render.alert_message(incident, card_link), props=props or None
        )
        return MessageRef(channel_id=post.channel_id or channel_id, message_id=post.id)

    def find_announcement(
        self, channel: str, key: str, since: float, *, thread: MessageRef | None = None
    ) -> MessageRef | None:
        """The post made with ``key`` in ``channel`` since ``since`` (Unix seconds), if any.

        Reads the channel's posts changed since then (thread replies included).
        """
        channel_id = thread.channel_id if thread is not None else self.resolve_channel(channel)
        posts = self._client.channel_posts(channel_id, since_ms=int(since * 1000))
        for post in posts:
            if post.props.get(DELIVERY_PROP) == key and not post.delete_at:
                return MessageRef(channel_id=post.channel_id or channel_id, message_id=post.id)
        return None

    def update_announcement(self, ref: MessageRef, announcement: Announcement) -> None:
        """Rewrite a posted card in place (``PUT /posts/{id}/patch``), keeping its delivery key."""
        current = self._client.get_post(ref.message_id)
        key = current.props.get(DELIVERY_PROP)
        self._client.patch_post(
            ref.message_id,
            message="",
            props=self._card_props(announcement, key if isinstance(key, str) else None),
        )

    def create_channel(self, name: str, topic: str | None = None) -> ChannelRef:
        """Create a public channel in ``team_id``, adding ``-2``, ``-3``... while the name is
        taken (archived channels keep their names)."""
        display = self._display_names.get(name) or name
        header = render.defuse(topic)[:1024] if topic else None
        purpose = render.defuse(topic)[:250] if topic else None
        for n in range(1, MAX_NAME_TRIES + 1):
            candidate = name if n == 1 else channels.next_name(name, n)
            try:
                created = self._client.create_channel(
                    self.settings.team_id, candidate, display, header=header, purpose=purpose
                )
            except ChannelNameTaken:
                continue
            self._channel_ids[created.name] = created.id
            return ChannelRef(channel_id=created.id, name=created.name)
        raise ProviderError(
            f"Mattermost {self.name}: channel names {name}-2..-{MAX_NAME_TRIES} are all taken"
        )

    def invite(self, channel_id: str, user_ids: list[str]) -> None:
        """Add users to a channel; adding a member again is fine."""
        for user_id in dict.fromkeys(user_ids):
            if user_id:
                self._client.add_member(channel_id, user_id)

    def kick(self, channel_id: str, user_id: str) -> None:
        """Remove a user; one who is not in the channel is not an error."""
        self._client.remove_member(channel_id, user_id)

    def channel_name_for(self, incident_id: str, title: str) -> str:
        """A valid channel name, e.g. ``inc-12-database-timeouts``; the display name
        (``INC-12 Database timeouts``) is kept for :meth:`create_channel`."""
        name = channels.channel_name_for(incident_id, title)
        self._display_names[name] = channels.display_name_for(incident_id, title)
        while len(self._display_names) > _NAME_CACHE:
            self._display_names.popitem(last=False)
        return name

    # -- helpers -------------------------------------------------------------------------
    def _private_post(
        self, command: InboundCommand, channel_id: str, message: str, props: dict[str, Any] | None
    ) -> None:
        """An ephemeral post to the person who ran ``command``; without the permission
        (``create_post_ephemeral``, held only by system admins unless granted), a reply in
        the thread of the message they clicked that names them."""
        try:
            self._client.create_ephemeral_post(command.user.user_id, channel_id, message, props=props)
            return
        except MissingPermission:
            pass
        name = command.user.user_name
        addressed = f"@{name} {message}".rstrip() if name else message
        self._client.create_post(channel_id, addressed, props=props, root_id=command.message_id)

    def _card_props(self, announcement: Announcement, key: str | None) -> dict[str, Any]:
        card = IncidentCard.of(announcement)
        attachment = render.card_attachment(
            card,
            instance=self.name,
            now=datetime.now(UTC),
            action_url=self.webhook_url,
            sign=self._sign_button,
            usernames=self._commander_names([card]),
        )
        props: dict[str, Any] = {"attachments": [attachment]}
        if key:
            props[DELIVERY_PROP] = key
        return props

    def _sign_button(
        self, action: str, incident_id: str, version: int | None, options: Sequence[str] = ()
    ) -> dict[str, Any]:
        return dict(
            actions.card_context(
                self._secret,
                action,
                incident_id,
                version,
                now=self._clock(),
                ttl=self.settings.action_ttl_seconds,
                options=options,
            )
        )

    def _commander_names(self, shown: Iterable[IncidentCard | Incident]) -> dict[str, str]:
        """Usernames of the commanders of this instance that ``shown`` knows by id only (one
        chosen in the commander menu), so they can be mentioned.

        Each is looked up once (``GET /users/{id}``) and remembered for an hour. One the
        server does not know, or will not show, keeps its stored text; a passing failure
        (rate limit, 5xx) is raised, so what was being posted is tried again.
        """
        names: dict[str, str] = {}
        for item in shown:
            user_id = render.needs_username(item, self.name)
            if user_id is None or user_id in names:
                continue
            name = self._username(user_id)
            if name:
                names[user_id] = name
        return names

    def display_name(self, user_id: str) -> str | None:
        return self._username(user_id)

    def _username(self, user_id: str) -> str | None:
        now = self._clock()
        cached = self._usernames.get(user_id)
        if cached is not None and now - cached[1] < USERNAME_TTL_SECONDS:
            self._usernames.move_to_end(user_id)
            return cached[0]
        try:
            name = self._client.user(user_id).username
        except Permanent:
            return None
        if name:
            self._usernames[user_id] = (name, now)
            self._usernames.move_to_end(user_id)
            while len(self._usernames) > _USERNAME_CACHE:
                self._usernames.popitem(last=False)
        return name or None

    def close(self) -> None:
        """Close the REST client's connections."""
        self._client.close()


def _shown(reply: Reply) -> list[Incident]:
    """The incidents an answer shows with their commanders."""
    return ([reply.incident] if reply.incident is not None else []) + list(reply.incidents)


PROVIDER = MattermostProvider
