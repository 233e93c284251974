"""The interface every chat platform implements.

The ingress side (``verify``, ``parse``) does no I/O: it turns a raw webhook into an
:class:`Inbound` with the platform's own "received" answer. The worker side sends, updates
and manages channels through the platform's API and maps every failure onto
:mod:`chatops_core.errors`. A provider declares what it can do as a set of
:class:`Capability`; callers ask with :meth:`Provider.supports` where they would use it and
take the capability's documented fallback when the answer is no, instead of catching
"not supported".
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

from chatops_core.errors import OperationNotSupported
from chatops_core.models import ChannelRef, InboundCommand, MessageRef, PostedText, Reply
from chatops_core.notifications import Announcement
from chatops_core.pacing import PacingPolicy
from chatops_core.providers.config import ProviderSettingsModel

_DEFAULT_PACING = PacingPolicy()

FormName = Literal["declare", "resolve"]
"""The forms a platform may open: declaring an incident, resolving one."""


class Capability(StrEnum):
    """What a provider can do beyond posting a message, each asked where it is used.

    Every capability names its fallback, taken by the caller when a provider lacks it.
    """

    # Answer only the person who ran the command. Fallback: the answer is posted where the
    # command came from.
    PRIVATE_REPLY = "private_reply"
    # Replies in a thread (a mention answered under it). Fallback: a new message at the top
    # level of the channel.
    THREADS = "threads"
    # Edit a posted card in place. Fallback: a new message per change (never a dead letter).
    UPDATE_MESSAGE = "update_message"
    # Open a form (``open_form``/``offer_form``). Fallback: answer with the typed form of the
    # command (``declare sev2 <title>``).
    FORMS = "forms"
    # Cards carry action buttons and menus. Fallback: the card lists the commands to type.
    BUTTONS = "buttons"
    # Pin the card in the incident's channel. Fallback: not pinned.
    PIN = "pin"
    # Create, join people to, remove them from and archive incident channels. Fallback: no
    # incident channel.
    CHANNELS = "channels"
    # Find a post again by its delivery key (``find_announcement``) after an attempt whose
    # outcome was lost. Fallback: post (at least once).
    FIND_POSTED = "find_posted"
    # The platform shows only what its webhook's HTTP response carries: a command with an
    # ``answer_key`` gets its first answer in that response (``answer_body``), the ingress
    # waiting a bounded time for it. Fallback (the worker was late, or a second answer):
    # ``reply`` posts it where the provider's settings route it.
    ANSWER_IN_RESPONSE = "answer_in_response"
    # Bot mentions in, and ``message_text`` (the timeline reaction).
    MENTIONS = "mentions"
    # An alert (an SLA breach, an escalation) posted in the thread of the incident's card and
    # sent to the channel too, so it notifies (asked with THREADS). Fallback: a new message
    # in the channel.
    ALERT_IN_THREAD = "alert_in_thread"


class _Headers(dict[str, str]):
    """Case-insensitive header mapping (keys stored lowercase)."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        super().__init__((k.lower(), v) for k, v in (items or {}).items())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass
class WebhookRequest:
    """A raw inbound webhook, free of any web framework.

    ``headers`` is looked up case-insensitively. A plain ``dict`` is wrapped to make it so;
    any other mapping (a web framework's header object) must already be case-insensitive,
    and is used as it is, without a copy.
    """

    body: bytes
    headers: Mapping[str, str]
    content_type: str = ""
    received_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if isinstance(self.headers, dict) and not isinstance(self.headers, _Headers):
            self.headers = _Headers(self.headers)


class InboundKind(StrEnum):
    COMMAND = "command"  # enqueue ``command`` on the interactive queue
    ANSWER = "answer"  # answered in place (url_verification, ssl_check, ping)
    IGNORE = "ignore"  # acknowledged, nothing to do


@dataclass
class Inbound:
    """What the ingress does with a verified webhook, and what it answers."""

    kind: InboundKind
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    command: InboundCommand | None = None
    dedupe_key: str | None = None
    # A command with an ``answer_key``: how long the ingress may hold the request open for
    # the worker's answer (``body`` is the answer when it does not come in time).
    answer_wait: float = 0.0


class Provider(ABC):
    """One configured instance of a chat platform."""

    type: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    # The model of a ``[providers.<name>]`` table of this type (its package's config.py).
    settings_model: ClassVar[ProviderSettingsModel]

    def __init__(self, name: str, settings: Any) -> None:
        self.name = name
        self.settings = settings
        # Where the platform reaches this instance (``{public_url}/webhooks/<name>``), for
        # platforms whose buttons and forms carry the address their clicks go to.
        self.public_webhook_url: str | None = None

    @property
    def pacing(self) -> PacingPolicy:
        """How fast this instance may post and update: the delivery machinery takes its send
        slots by this policy. By default about one post a second per channel."""
        return _DEFAULT_PACING

    def supports(self, capability: Capability) -> bool:
        """Whether this provider has ``capability``."""
        return capability in self.capabilities

    def require(self, capability: Capability) -> None:
        """Raise :class:`~chatops_core.errors.OperationNotSupported` (permanent) without ``capability``."""
        if not self.supports(capability):
            raise OperationNotSupported(f"{self.type} provider {self.name!r} does not support {capability}")

    # -- ingress side: pure, no I/O ---------------------------------------------------
    @abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Raise :class:`~chatops_core.errors.InvalidWebhook` (401) unless authentic."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> Inbound:
        """Turn a verified request into an :class:`Inbound` (400 if unparseable)."""

    # -- worker side -----------------------------------------------------------------
    @abstractmethod
    def health(self) -> str:
        """Check the credentials against the platform; a short description, or raise."""

    @abstractmethod
    def reply(self, command: InboundCommand, reply: Reply) -> None:
        """Answer the person who ran ``command``, the way its ``reply_to`` says.

        ``reply.ephemeral`` asks for an answer only they see; a provider without
        :attr:`Capability.PRIVATE_REPLY` is given non-ephemeral replies by its callers.
        """

    @abstractmethod
    def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
        """Post an incident announcement into ``channel`` (name or id).

        ``key`` identifies the delivery; where the platform can store it with the message,
        :meth:`find_announcement` finds the post again after an attempt whose outcome was lost.
        """

    def refusal_response(self, command: InboundCommand, text: str) -> Inbound | None:
        """An answer to the webhook that carried ``command`` showing ``text`` to the person
        who sent it, and only them, while nothing of the command runs (the ingress refused
        it: over their rate); None where the platform's response cannot show that (a worker
        then tells them the usual way). No I/O."""
        return None

    def answer_body(self, command: InboundCommand, reply: Reply) -> tuple[bytes, str]:
        """``reply`` as the HTTP response to the webhook that carried ``command``: its body and
        content type (:attr:`Capability.ANSWER_IN_RESPONSE`). The ingress sends it when the
        worker hands it over in time; otherwise :meth:`reply` is asked to post it."""
        self.require(Capability.ANSWER_IN_RESPONSE)
        raise NotImplementedError

    def display_name(self, user_id: str) -> str | None:
        """The name this platform shows for ``user_id``, where it can tell; None otherwise
        (a refusal or an unknown user is None too: the caller keeps what it had)."""
        return None

    def names_channel(self, alias: str, channel_id: str | None, channel_name: str | None) -> bool:
        """Whether the routed channel ``alias`` is the channel a command came from.

        By default an alias names a channel by its id, or by its name written bare or with
        the ``#``/``~`` a platform shows before channel names; no platform call is made.
        """
        if channel_id and alias == channel_id:
            return True
        return bool(channel_name) and alias.lstrip("#~") == channel_name

    def resolve_channel(self, channel: str) -> str:
        """The platform's id for ``channel``; by default the reference itself."""
        return channel

    def find_announcement(
        self, channel: str, key: str, since: float, *, thread: MessageRef | None = None
    ) -> MessageRef | None:
        """The message posted with ``key`` since ``since``, where the platform can tell.

        ``thread``: the message whose thread the post went to (an alert), if any. Raises a
        :class:`~chatops_core.errors.Permanent` error when the platform refuses the lookup
        (say, a missing permission to read the channel). Asked only of a provider with
        :attr:`Capability.FIND_POSTED`.
        """
        return None

    def alert(
        self,
        channel: str,
        announcement: Announcement,
        *,
        thread: MessageRef | None = None,
        key: str | None = None,
        card: MessageRef | None = None,
    ) -> MessageRef:
        """Post an alert about an incident (an SLA breach, an escalation) that people must see.

        Where the provider supports :attr:`Capability.ALERT_IN_THREAD` and ``thread`` (the
        incident's card) is given, the alert goes in the card's thread and to the channel too;
        otherwise it is a new message in ``channel``, by default posted as an announcement.
        ``card`` is the incident's card in this channel whenever one is shown (thread or not),
        for a platform that links it from the alert. ``key`` works as for :meth:`announce`.
        """
        return self.announce(channel, announcement, key=key)

    def update_announcement(self, ref: MessageRef, announcement: Announcement) -> None:
        """Rewrite a posted announcement in place (:attr:`Capability.UPDATE_MESSAGE`)."""
        self.require(Capability.UPDATE_MESSAGE)
        raise NotImplementedError

    def create_channel(self, name: str, topic: str | None = None) -> ChannelRef:
        self.require(Capability.CHANNELS)
        raise NotImplementedError

    def invite(self, channel_id: str, user_ids: list[str]) -> None:
        self.require(Capability.CHANNELS)
        raise NotImplementedError

    def kick(self, channel_id: str, user_id: str) -> None:
        self.require(Capability.CHANNELS)
        raise NotImplementedError

    def channel_name_for(self, incident_id: str, title: str) -> str:
        """A channel name for an incident, valid on this platform."""
        self.require(Capability.CHANNELS)
        raise NotImplementedError

    # -- interactive (clicks, forms) and bot mentions ---------------------------------
    def open_form(
        self, command: InboundCommand, form: FormName, *, incident_id: str | None, context: dict[str, str]
    ) -> None:
        """Open ``form`` for the person who ran ``command`` (:attr:`Capability.FORMS`).

        ``context`` (and ``incident_id``) come back with the submitted form, and so does the
        way to answer that ``command.reply_to`` holds. The provider judges whether the
        command can still open a form (its trigger's age from ``command.received_at``) and
        raises :class:`~chatops_core.errors.TriggerExpired` when it is stale, used or too old.
        """
        self.require(Capability.FORMS)
        raise NotImplementedError

    def offer_form(self, command: InboundCommand, form: FormName, incident_id: str | None) -> None:
        """Show the person who ran ``command``, and only them, a button that opens ``form``."""
        self.require(Capability.FORMS)
        raise NotImplementedError

    def reply_in_thread(self, channel: str, thread_id: str | None, reply: Reply) -> MessageRef:
        """Post ``reply`` in ``channel``, in the thread ``thread_id`` (top level when None)."""
        self.require(Capability.MENTIONS)
        raise NotImplementedError

    def message_text(self, channel_id: str, message_id: str) -> PostedText:
        """Who wrote one message, its text and when it was posted (:attr:`Capability.MENTIONS`)."""
        self.require(Capability.MENTIONS)
        raise NotImplementedError

    def pin(self, channel_id: str, message_id: str) -> None:
        """Pin a message in its channel; one already pinned is not an error."""
        self.require(Capability.PIN)
        raise NotImplementedError

    def archive(self, channel_id: str) -> None:
        """Archive a channel; one already archived is not an error."""
        self.require(Capability.CHANNELS)
        raise NotImplementedError
