"""The interface every chat platform implements.

The ingress side (``verify``, ``parse``) does no I/O: it turns a raw webhook into an
:class:`Inbound` with the platform's own "received" answer. The worker side sends, updates
and manages channels through the platform's API and maps every failure onto
:mod:`chatops_core.errors`. A provider declares what it supports as a set of
:class:`Operation`, so callers ask with :meth:`Provider.supports` instead of catching
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
from chatops_core.models import ChannelRef, InboundCommand, MessageRef, Reply
from chatops_core.notifications import Announcement

FormName = Literal["declare", "resolve"]
"""The forms a platform may open: declaring an incident, resolving one."""


class Operation(StrEnum):
    SEND_MESSAGE = "send_message"
    SEND_NOTIFICATION = "send_notification"
    UPDATE_MESSAGE = "update_message"
    DELETE_MESSAGE = "delete_message"
    INTERACTIVE = "interactive"
    WEBHOOKS = "webhooks"
    CHANNEL_MANAGEMENT = "channel_management"
    USER_MANAGEMENT = "user_management"
    SLASH_COMMANDS = "slash_commands"
    BOT_MENTIONS = "bot_mentions"
    # Alerts (an SLA breach, an escalation) posted in the thread of the incident's card and
    # sent to the channel too, so they notify; without it an alert is a new message.
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


class Provider(ABC):
    """One configured instance of a chat platform."""

    type: ClassVar[str]
    operations: ClassVar[frozenset[Operation]]

    def __init__(self, name: str, settings: Any) -> None:
        self.name = name
        self.settings = settings

    def supports(self, operation: Operation) -> bool:
        return operation in self.operations

    def require(self, operation: Operation) -> None:
        if not self.supports(operation):
            raise OperationNotSupported(f"{self.type} provider {self.name!r} does not support {operation}")

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
        """Answer the person who ran ``command``."""

    @abstractmethod
    def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
        """Post an incident announcement into ``channel`` (name or id).

        ``key`` identifies the delivery; where the platform can store it with the message,
        :meth:`find_announcement` finds the post again after an attempt whose outcome was lost.
        """

    def resolve_channel(self, channel: str) -> str:
        """The platform's id for ``channel``; by default the reference itself."""
        return channel

    def find_announcement(
        self, channel: str, key: str, since: float, *, thread: MessageRef | None = None
    ) -> MessageRef | None:
        """The message posted with ``key`` since ``since``, where the platform can tell.

        ``thread``: the message whose thread the post went to (an alert), if any. Raises a
        :class:`~chatops_core.errors.Permanent` error when the platform refuses the lookup
        (say, a missing permission to read the channel).
        """
        return None

    def alert(
        self,
        channel: str,
        announcement: Announcement,
        *,
        thread: MessageRef | None = None,
        key: str | None = None,
    ) -> MessageRef:
        """Post an alert about an incident (an SLA breach, an escalation) that people must see.

        Where the provider supports :attr:`Operation.ALERT_IN_THREAD` and ``thread`` (the
        incident's card) is given, the alert goes in the card's thread and to the channel too;
        otherwise it is a new message in ``channel``, by default posted as an announcement.
        ``key`` works as for :meth:`announce`.
        """
        return self.announce(channel, announcement, key=key)

    def update_announcement(self, ref: MessageRef, announcement: Announcement) -> None:
        self.require(Operation.UPDATE_MESSAGE)
        raise NotImplementedError

    def create_channel(self, name: str, topic: str | None = None) -> ChannelRef:
        self.require(Operation.CHANNEL_MANAGEMENT)
        raise NotImplementedError

    def invite(self, channel_id: str, user_ids: list[str]) -> None:
        self.require(Operation.CHANNEL_MANAGEMENT)
        raise NotImplementedError

    def kick(self, channel_id: str, user_id: str) -> None:
        self.require(Operation.CHANNEL_MANAGEMENT)
        raise NotImplementedError

    def channel_name_for(self, incident_id: str, title: str) -> str:
        """A channel name for an incident, valid on this platform."""
        self.require(Operation.CHANNEL_MANAGEMENT)
        raise NotImplementedError

    # -- interactive (clicks, forms) and bot mentions ---------------------------------
    def open_form(
        self, trigger_id: str, form: FormName, *, incident_id: str | None, context: dict[str, str]
    ) -> None:
        """Open ``form`` for the person whose interaction gave ``trigger_id``.

        ``context`` (and ``incident_id``) come back with the submitted form. Raises
        :class:`~chatops_core.errors.TriggerExpired` when the trigger is stale or used.
        """
        self.require(Operation.INTERACTIVE)
        raise NotImplementedError

    def offer_form(self, command: InboundCommand, form: FormName, incident_id: str | None) -> None:
        """Show the person who ran ``command``, and only them, a button that opens ``form``."""
        self.require(Operation.INTERACTIVE)
        raise NotImplementedError

    def reply_in_thread(self, channel: str, thread_ts: str | None, reply: Reply) -> MessageRef:
        """Post ``reply`` in ``channel``, in the thread of ``thread_ts`` (top level when None)."""
        self.require(Operation.BOT_MENTIONS)
        raise NotImplementedError

    def message_text(self, channel_id: str, message_id: str) -> tuple[str | None, str]:
        """The author's user id (None for an app or webhook) and the text of one message."""
        self.require(Operation.BOT_MENTIONS)
        raise NotImplementedError

    def pin(self, channel_id: str, message_id: str) -> None:
        """Pin a message in its channel; one already pinned is not an error."""
        self.require(Operation.INTERACTIVE)
        raise NotImplementedError

    def archive(self, channel_id: str) -> None:
        """Archive a channel; one already archived is not an error."""
        self.require(Operation.CHANNEL_MANAGEMENT)
        raise NotImplementedError
