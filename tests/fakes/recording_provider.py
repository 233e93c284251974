"""A provider that plays a chat platform in memory and records every call, for worker tests.

:class:`RecordingProvider` implements the whole provider interface with the capabilities a
test chooses (any subset of :class:`~chatops_core.providers.base.Capability`), so the
workers' fallbacks can be tried on "a platform that cannot edit a post" or "one without
channels" with no server at all. It:

- keeps a small world: channels (``#incidents``, ``#general``... and those it creates), the
  messages posted in them (thread, pinned, edits) and what each person was answered;
- records every call as a :class:`Record` (method, arguments, what it returned or raised),
  readable as one line each (``provider.log()``), so a failing test shows what happened;
- refuses a call that needs a capability it was not given with
  :class:`~chatops_core.errors.OperationNotSupported`, recorded like any other call, as a
  real provider's ``require`` does: a caller that forgets to ask is caught;
- fails the next call(s) of a method with a chosen error (:meth:`RecordingProvider.fail`):
  ``RateLimited(retry_after=...)``, ``ServerError``, ``ConnectionFailed`` with
  ``outcome_unknown`` (before or after the call took effect), any ``Permanent`` error;
- paces nothing: :attr:`RecordingProvider.pacing` is a policy of no waits.

Its inbound side is a trivial JSON format signed with a shared secret, so the ingress can be
driven with it too. A request is a POST with ``Content-Type: application/json`` and a body::

    {"id": "r1",                                  # the request's id (de-duplication)
     "text": "declare sev2 Database timeouts",    # what follows the root command
     "user": {"id": "U1", "name": "alice"},
     "channel": {"id": "C1", "name": "incidents"},
     "source": "command",                         # optional: command|action|form|mention|reaction
     "thread_id": null, "message_id": null,       # optional
     "answer_in_response": 2.0}                   # optional: wait this long for the answer

signed with the header ``X-Recording-Signature: sha256=<hex HMAC-SHA256 of the raw body
keyed with the instance's secret>``. :func:`recording_request` builds one. A missing or wrong
signature is 401; a body that is not such JSON is 400. The answer is ``{"ok": true}``.

With ``answer_in_response`` (and :attr:`Capability.ANSWER_IN_RESPONSE`) the command's first
answer travels in the HTTP response, as on a Teams outgoing webhook: the ingress waits up to
that many seconds for ``{"answer": "<text>"}`` and otherwise answers
``{"ok": true, "later": true}``.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, cast

from pydantic import SecretStr

from chatops_core.errors import (
    ChannelNotFound,
    ChatOpsError,
    InvalidWebhook,
    MessageNotFound,
    OperationNotSupported,
)
from chatops_core.models import (
    Actor,
    ChannelRef,
    InboundCommand,
    MessageRef,
    Person,
    PostedText,
    Reply,
    utcnow,
)
from chatops_core.notifications import Announcement
from chatops_core.pacing import PacingPolicy
from chatops_core.providers.base import (
    Capability,
    FormName,
    Inbound,
    InboundKind,
    Provider,
    WebhookRequest,
)
from chatops_core.providers.config import ProviderSettingsBase

__all__ = [
    "ALL_CAPABILITIES",
    "DEFAULT_CHANNELS",
    "DEFAULT_SECRET",
    "NO_WAITS",
    "SIGNATURE_HEADER",
    "Message",
    "Record",
    "RecordingProvider",
    "RecordingSettings",
    "recording_request",
    "sign",
]

Source = Literal["command", "action", "form", "mention", "reaction"]
ALL_CAPABILITIES: frozenset[Capability] = frozenset(Capability)
DEFAULT_CHANNELS = ("incidents", "critical-incidents", "major-incidents", "general")
DEFAULT_SECRET = "recording-secret-0123456789"
SIGNATURE_HEADER = "X-Recording-Signature"
# Pacing with no waits: tests deliver one notification after another into one channel.
NO_WAITS = PacingPolicy(post_interval=0.0, update_interval=0.0, post_gap=0.0)

# The capability each method needs; a call without it is refused as a real provider does.
_NEEDS: dict[str, Capability] = {
    "update_announcement": Capability.UPDATE_MESSAGE,
    "find_announcement": Capability.FIND_POSTED,
    "create_channel": Capability.CHANNELS,
    "invite": Capability.CHANNELS,
    "kick": Capability.CHANNELS,
    "archive": Capability.CHANNELS,
    "channel_name_for": Capability.CHANNELS,
    "pin": Capability.PIN,
    "open_form": Capability.FORMS,
    "offer_form": Capability.FORMS,
    "message_text": Capability.MENTIONS,
}


class RecordingSettings(ProviderSettingsBase):
    """Settings of a recording instance: the shared keys plus the secret that signs requests."""

    type: Literal["recording"] = "recording"
    secret: SecretStr = SecretStr(DEFAULT_SECRET)


@dataclass(frozen=True)
class Record:
    """One call: the method, its arguments, and what it returned or raised."""

    seq: int
    method: str
    args: dict[str, Any]
    result: Any = None
    error: ChatOpsError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.args.items())
        outcome = (
            f"-> {type(self.error).__name__}: {self.error}" if self.error else f"-> {_short(self.result)}"
        )
        return f"#{self.seq} {self.method}({shown}) {outcome}"


@dataclass
class Message:
    """A message in the fake's world: a post, an alert, an answer posted in a channel."""

    id: str
    channel_id: str
    text: str
    kind: str  # announcement | alert | reply | thread_reply
    key: str | None = None
    thread_id: str | None = None
    to_channel_too: bool = False  # a thread reply also shown in the channel (an alert)
    incident_id: str | None = None
    version: int | None = None
    status: str | None = None
    pinned: bool = False
    edits: list[str] = field(default_factory=list)
    author: str | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass
class _Channel:
    id: str
    name: str
    topic: str | None = None
    members: set[str] = field(default_factory=set)
    archived: bool = False


@dataclass
class _Fault:
    error: ChatOpsError | Callable[[], ChatOpsError]
    after: bool  # the call takes effect, then fails (its outcome lost on the way back)


class RecordingProvider(Provider):
    """An in-memory platform with ``capabilities`` chosen by the test, recording every call.

    ``capabilities`` defaults to every capability. The instance's channels are
    ``channels`` (ids ``C0001``, ``C0002``...); any other name is unknown
    (:class:`~chatops_core.errors.ChannelNotFound`) until :meth:`create_channel` makes it.
    """

    type: ClassVar[str] = "recording"
    capabilities: ClassVar[frozenset[Capability]] = ALL_CAPABILITIES
    settings_model: ClassVar[builtins.type[ProviderSettingsBase]] = RecordingSettings
    settings: RecordingSettings

    def __init__(
        self,
        name: str = "rec",
        settings: RecordingSettings | None = None,
        *,
        capabilities: Iterable[Capability] = ALL_CAPABILITIES,
        channels: Iterable[str] = DEFAULT_CHANNELS,
    ) -> None:
        super().__init__(name, settings if settings is not None else RecordingSettings())
        # Chosen per fake: this instance's set stands in for the class-wide one.
        self.capabilities = frozenset(capabilities)  # type: ignore[misc]
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._records: list[Record] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._channels: dict[str, _Channel] = {}
        self._messages: dict[str, Message] = {}
        self._answers: list[tuple[InboundCommand, Reply, str]] = []
        self._forms: list[dict[str, Any]] = []
        for channel in channels:
            self.add_channel(channel)

    # -- set-up ----------------------------------------------------------------------------
    def add_channel(self, name: str, *, members: Iterable[str] = ()) -> str:
        """Make a channel exist (no call recorded); returns its id."""
        with self._lock:
            channel = _Channel(
                id=f"C{next(self._ids):04d}", name=name.removeprefix("#"), members=set(members)
            )
            self._channels[channel.id] = channel
            return channel.id

    def add_message(self, channel: str, text: str, *, author: str | None = "U0000AUTHOR") -> str:
        """Put a message someone wrote into ``channel`` (no call recorded); returns its id."""
        with self._lock:
            found = self._channel(channel)
            message = Message(id=self._new_message_id(), channel_id=found.id, text=text, kind="human")
            message.author = author
            self._messages[message.id] = message
            return message.id

    def fail(
        self,
        method: str,
        error: ChatOpsError | Callable[[], ChatOpsError],
        *,
        times: int = 1,
        after: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error`` (an instance, or a
        callable making a fresh one per call).

        ``after=False``: the call fails before it takes effect (nothing posted). ``after=True``:
        it takes effect, then fails, as when the answer is lost on the way back; pair it with
        ``ConnectionFailed(outcome_unknown=True)``.
        """
        with self._lock:
            queue = self._faults.setdefault(method, deque())
            for _ in range(times):
                queue.append(_Fault(error=error, after=after))

    # -- inspection ------------------------------------------------------------------------
    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[Record]:
        """Every call, oldest first; only those of ``method``; only (un)successful ones."""
        with self._lock:
            return [
                r
                for r in self._records
                if (method is None or r.method == method) and (ok is None or r.ok == ok)
            ]

    def methods(self) -> list[str]:
        """The methods called, in order (refused and failed calls included)."""
        return [r.method for r in self.calls()]

    def log(self) -> str:
        """Every call, one readable line each (for assertion messages)."""
        return "\n".join(str(r) for r in self.calls()) or "(no calls)"

    def messages(self, channel: str | None = None) -> list[Message]:
        """Messages in ``channel`` (id, ``#name`` or name) or everywhere, oldest first."""
        with self._lock:
            found = self._channel(channel).id if channel is not None else None
            return [m for m in self._messages.values() if found is None or m.channel_id == found]

    def message(self, ref: MessageRef | str) -> Message:
        with self._lock:
            message_id = ref.message_id if isinstance(ref, MessageRef) else ref
            return self._messages[message_id]

    def answers(self, user_id: str | None = None) -> list[tuple[Reply, str]]:
        """What people were answered through :meth:`reply`: ``(reply, visibility)``, where
        visibility is ``"private"`` (only the person saw it) or ``"channel"``."""
        with self._lock:
            return [(r, v) for c, r, v in self._answers if user_id is None or c.user.user_id == user_id]

    def answer_texts(self, user_id: str | None = None) -> list[str]:
        """The text of every answer a person got, through :meth:`reply` or in a thread/channel."""
        with self._lock:
            texts = [r.text for r, _ in self.answers(user_id)]
            texts += [m.text for m in self._messages.values() if m.kind in ("reply", "thread_reply")]
            return texts

    def forms(self) -> list[dict[str, Any]]:
        """Forms opened or offered: ``how`` (opened|offered), ``form``, ``incident_id``, ``user``."""
        with self._lock:
            return [dict(f) for f in self._forms]

    def channel(self, channel: str) -> dict[str, Any] | None:
        """A channel as ``{"id", "name", "topic", "members", "archived"}``; None if unknown."""
        with self._lock:
            try:
                found = self._channel(channel)
            except ChannelNotFound:
                return None
            return {
                "id": found.id,
                "name": found.name,
                "topic": found.topic,
                "members": sorted(found.members),
                "archived": found.archived,
            }

    def channel_names(self) -> list[str]:
        with self._lock:
            return [c.name for c in self._channels.values()]

    # -- pacing ------------------------------------------------------------------------------
    @property
    def pacing(self) -> PacingPolicy:
        """No waits: posts and updates go out back to back."""
        return NO_WAITS

    # -- ingress side: no I/O -----------------------------------------------------------------
    def verify(self, request: WebhookRequest) -> None:
        """Check ``X-Recording-Signature`` against the body; 401 unless it matches."""
        given = str(request.headers.get(SIGNATURE_HEADER) or "")
        expected = sign(request.body, self.settings.secret.get_secret_value())
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise InvalidWebhook("bad or missing recording signature", http_status=401)

    def parse(self, request: WebhookRequest) -> Inbound:
        """The request's command (see the module's documentation for the format)."""
        try:
            data = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidWebhook("the body is not JSON", http_status=400) from None
        if not isinstance(data, dict):
            raise InvalidWebhook("the body is not a JSON object", http_status=400)
        user = data.get("user")
        channel = data.get("channel") or {}
        request_id = data.get("id")
        if not isinstance(user, dict) or not user.get("id") or not isinstance(request_id, str):
            raise InvalidWebhook("a command needs an id and a user with an id", http_status=400)
        if not isinstance(channel, dict) or not isinstance(data.get("text", ""), str):
            raise InvalidWebhook("channel must be an object and text a string", http_status=400)
        source = data.get("source") or "command"
        if source not in ("command", "action", "form", "mention", "reaction"):
            raise InvalidWebhook(f"unknown source {str(source)[:20]!r}", http_status=400)
        received = datetime.fromtimestamp(request.received_at, tz=utcnow().tzinfo)
        command = InboundCommand(
            key=f"{self.type}:{self.name}:{request_id}",
            instance=self.name,
            platform=self.type,
            text=str(data.get("text") or "").strip(),
            user=Actor(user_id=str(user["id"]), user_name=_opt(user.get("name"))),
            channel_id=_opt(channel.get("id")),
            channel_name=_opt(channel.get("name")),
            received_at=received,
            source=cast(Source, source),
            thread_id=_opt(data.get("thread_id")),
            message_id=_opt(data.get("message_id")),
            reply_to={"request": request_id},
        )
        wait = data.get("answer_in_response")
        if isinstance(wait, int | float) and self.supports(Capability.ANSWER_IN_RESPONSE):
            command.answer_key = command.key
            return Inbound(
                kind=InboundKind.COMMAND,
                body=b'{"ok":true,"later":true}',
                content_type="application/json",
                command=command,
                dedupe_key=command.key,
                answer_wait=float(wait),
            )
        return Inbound(
            kind=InboundKind.COMMAND,
            body=b'{"ok":true}',
            content_type="application/json",
            command=command,
            dedupe_key=command.key,
        )

    def answer_body(self, command: InboundCommand, reply: Reply) -> tuple[bytes, str]:
        """``{"answer": text}``, recorded as an answer shown "in response"."""

        def act() -> tuple[bytes, str]:
            self.require(Capability.ANSWER_IN_RESPONSE)
            return json.dumps({"answer": reply.text}).encode(), "application/json"

        return self._call("answer_body", {"command": command.key, "text": reply.text}, act)

    # -- worker side --------------------------------------------------------------------------
    def health(self) -> str:
        return self._call("health", {}, lambda: f"recording instance {self.name}")

    def reply(self, command: InboundCommand, reply: Reply) -> None:
        """Answer the person: privately where PRIVATE_REPLY is given and asked for, else in
        the command's channel for everyone."""

        def act() -> None:
            private = reply.ephemeral and self.supports(Capability.PRIVATE_REPLY)
            self._answers.append((command, reply, "private" if private else "channel"))

        self._call(
            "reply", {"user": command.user.user_id, "channel": command.channel_id, "text": reply.text}, act
        )

    def reply_in_thread(self, channel: str, thread_id: str | None, reply: Reply) -> MessageRef:
        """Post ``reply`` in ``thread_id``'s thread (THREADS needed), or at the top level."""

        def act() -> MessageRef:
            if thread_id is not None:
                self.require(Capability.THREADS)
            found = self._channel(channel)
            kind = "thread_reply" if thread_id is not None else "reply"
            return self._post(found, reply.text, kind=kind, thread_id=thread_id)

        return self._call(
            "reply_in_thread", {"channel": channel, "thread_id": thread_id, "text": reply.text}, act
        )

    def open_form(
        self,
        command: InboundCommand,
        form: FormName,
        *,
        incident_id: str | None,
        context: dict[str, str],
    ) -> None:
        def act() -> None:
            self._forms.append(
                {"how": "opened", "form": form, "incident_id": incident_id, "user": command.user.user_id}
            )

        self._call("open_form", {"form": form, "incident_id": incident_id, "user": command.user.user_id}, act)

    def offer_form(self, command: InboundCommand, form: FormName, incident_id: str | None) -> None:
        def act() -> None:
            self._forms.append(
                {"how": "offered", "form": form, "incident_id": incident_id, "user": command.user.user_id}
            )

        self._call(
            "offer_form", {"form": form, "incident_id": incident_id, "user": command.user.user_id}, act
        )

    def message_text(self, channel_id: str, message_id: str) -> PostedText:
        def act() -> PostedText:
            message = self._messages.get(message_id)
            if message is None or message.channel_id != self._channel(channel_id).id:
                raise MessageNotFound(f"no message {message_id} in {channel_id}")
            author = (
                Person(instance=self.name, user_id=message.author, display=message.author)
                if message.author
                else None
            )
            return PostedText(author=author, text=message.text, at=message.at)

        return self._call("message_text", {"channel_id": channel_id, "message_id": message_id}, act)

    def announce(self, channel: str, announcement: Announcement, *, key: str | None = None) -> MessageRef:
        def act() -> MessageRef:
            return self._post(
                self._channel(channel),
                _card_text(announcement),
                kind="announcement",
                key=key,
                announcement=announcement,
            )

        return self._call("announce", {"channel": channel, **_about(announcement), "key": key}, act)

    def alert(
        self,
        channel: str,
        announcement: Announcement,
        *,
        thread: MessageRef | None = None,
        key: str | None = None,
        card: MessageRef | None = None,
    ) -> MessageRef:
        """An alert: in ``thread``'s thread and to the channel too (THREADS needed), else a
        new message in ``channel``."""

        def act() -> MessageRef:
            text = f"ALERT {_card_text(announcement)}"
            if thread is not None:
                self.require(Capability.THREADS)
                found = self._channel(thread.channel_id)
                return self._post(
                    found,
                    text,
                    kind="alert",
                    key=key,
                    announcement=announcement,
                    thread_id=thread.message_id,
                    to_channel_too=True,
                )
            return self._post(self._channel(channel), text, kind="alert", key=key, announcement=announcement)

        args = {
            "channel": channel,
            **_about(announcement),
            "thread": thread.message_id if thread else None,
            "key": key,
        }
        return self._call("alert", args, act)

    def find_announcement(
        self, channel: str, key: str, since: float, *, thread: MessageRef | None = None
    ) -> MessageRef | None:
        def act() -> MessageRef | None:
            found = self._channel(thread.channel_id if thread is not None else channel)
            for message in self._messages.values():
                if (
                    message.channel_id == found.id
                    and message.key == key
                    and message.at.timestamp() >= since
                    and (thread is None or message.thread_id == thread.message_id)
                ):
                    return MessageRef(channel_id=found.id, message_id=message.id)
            return None

        args = {"channel": channel, "key": key, "thread": thread.message_id if thread else None}
        return self._call("find_announcement", args, act)

    def update_announcement(self, ref: MessageRef, announcement: Announcement) -> None:
        def act() -> None:
            message = self._messages.get(ref.message_id)
            if message is None or message.channel_id != ref.channel_id:
                raise MessageNotFound(f"no message {ref.message_id} in {ref.channel_id}")
            message.edits.append(message.text)
            message.text = _card_text(announcement)
            message.version = announcement.incident.version
            message.status = announcement.incident.status.value

        self._call("update_announcement", {"message": ref.message_id, **_about(announcement)}, act)

    def resolve_channel(self, alias: str) -> str:
        return self._call("resolve_channel", {"alias": alias}, lambda: self._channel(alias).id)

    def create_channel(self, name: str, topic: str | None = None) -> ChannelRef:
        def act() -> ChannelRef:
            taken = set(self.channel_names())
            final, n = name, 1
            while final in taken:
                n += 1
                final = f"{name}-{n}"
            channel_id = self.add_channel(final)
            self._channels[channel_id].topic = topic
            return ChannelRef(channel_id=channel_id, name=final)

        return self._call("create_channel", {"name": name, "topic": topic}, act)

    def invite(self, channel_id: str, user_ids: list[str]) -> None:
        def act() -> None:
            self._channel(channel_id).members.update(user_ids)

        self._call("invite", {"channel_id": channel_id, "user_ids": list(user_ids)}, act)

    def kick(self, channel_id: str, user_id: str) -> None:
        def act() -> None:
            self._channel(channel_id).members.discard(user_id)

        self._call("kick", {"channel_id": channel_id, "user_id": user_id}, act)

    def archive(self, channel_id: str) -> None:
        def act() -> None:
            self._channel(channel_id).archived = True

        self._call("archive", {"channel_id": channel_id}, act)

    def pin(self, channel_id: str, message_id: str) -> None:
        def act() -> None:
            message = self._messages.get(message_id)
            if message is None or message.channel_id != self._channel(channel_id).id:
                raise MessageNotFound(f"no message {message_id} in {channel_id}")
            message.pinned = True

        self._call("pin", {"channel_id": channel_id, "message_id": message_id}, act)

    def channel_name_for(self, incident_id: str, title: str) -> str:
        def act() -> str:
            words = "".join(c if c.isalnum() else "-" for c in f"{incident_id} {title}".lower())
            return "-".join(w for w in words.split("-") if w)[:64]

        return self._call("channel_name_for", {"incident_id": incident_id, "title": title}, act)

    # -- machinery ----------------------------------------------------------------------------
    def _call(self, method: str, args: dict[str, Any], act: Callable[[], Any]) -> Any:
        """Record one call: refused without its capability, failed when told, else done."""
        with self._lock:
            try:
                needed = _NEEDS.get(method)
                if needed is not None and not self.supports(needed):
                    raise OperationNotSupported(
                        f"{self.type} provider {self.name!r} does not support {needed}",
                        capability=str(needed),
                    )
                fault = self._next_fault(method)
                if fault is not None and not fault.after:
                    raise _error_of(fault)
                result = act()
                if fault is not None:
                    raise _error_of(fault)
            except ChatOpsError as exc:
                self._records.append(Record(next(self._seq), method, args, error=exc))
                raise
            self._records.append(Record(next(self._seq), method, args, result=result))
            return result

    def _next_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    def _channel(self, ref: str) -> _Channel:
        if ref in self._channels:
            return self._channels[ref]
        name = ref.removeprefix("#")
        for channel in self._channels.values():
            if channel.name == name:
                return channel
        raise ChannelNotFound(f"{self.type} {self.name}: no channel {ref!r}")

    def _new_message_id(self) -> str:
        return f"M{next(self._ids):05d}"

    def _post(
        self,
        channel: _Channel,
        text: str,
        *,
        kind: str,
        key: str | None = None,
        announcement: Announcement | None = None,
        thread_id: str | None = None,
        to_channel_too: bool = False,
    ) -> MessageRef:
        if channel.archived:
            raise ChannelNotFound(f"{self.type} {self.name}: channel {channel.name!r} is archived")
        message = Message(
            id=self._new_message_id(),
            channel_id=channel.id,
            text=text,
            kind=kind,
            key=key,
            thread_id=thread_id,
            to_channel_too=to_channel_too,
            incident_id=announcement.incident.id if announcement else None,
            version=announcement.incident.version if announcement else None,
            status=announcement.incident.status.value if announcement else None,
        )
        self._messages[message.id] = message
        return MessageRef(channel_id=channel.id, message_id=message.id)


def sign(body: bytes, secret: str) -> str:
    """The ``X-Recording-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def recording_request(
    text: str,
    *,
    secret: str = DEFAULT_SECRET,
    request_id: str = "r1",
    user_id: str = "U100ALICE",
    user_name: str = "alice",
    channel_id: str | None = "C0004",
    channel_name: str | None = "general",
    source: str = "command",
    thread_id: str | None = None,
    message_id: str | None = None,
    answer_in_response: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a signed request in the recording format."""
    data: dict[str, Any] = {
        "id": request_id,
        "text": text,
        "user": {"id": user_id, "name": user_name},
        "channel": {"id": channel_id, "name": channel_name},
        "source": source,
        "thread_id": thread_id,
        "message_id": message_id,
    }
    if answer_in_response is not None:
        data["answer_in_response"] = answer_in_response
    body = json.dumps(data).encode()
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}


def _error_of(fault: _Fault) -> ChatOpsError:
    return fault.error() if callable(fault.error) else fault.error


def _card_text(announcement: Announcement) -> str:
    inc = announcement.incident
    return f"[{inc.severity.value}] {inc.id} {inc.title} ({inc.status.value}) — {announcement.summary}"


def _about(announcement: Announcement) -> dict[str, Any]:
    inc = announcement.incident
    return {"type": announcement.type, "incident": inc.id, "status": inc.status.value, "version": inc.version}


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _short(value: Any) -> str:
    if isinstance(value, MessageRef):
        return f"{value.channel_id}/{value.message_id}"
    if isinstance(value, ChannelRef):
        return f"{value.name}({value.channel_id})"
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
