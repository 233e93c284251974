"""The audit trail: one append-only record per chat action, click, form, API intake, grant
and refusal.

A record says when, who (the person, or the platform user they claimed to be), where
(platform instance, channel), what (the command word, never its text), on which incident,
the outcome and why. Records are only ever appended and read: the store has no method that
changes or removes one, and on PostgreSQL a trigger refuses ``UPDATE``, ``DELETE`` and
``TRUNCATE`` on the table (on SQLite a trigger refuses ``UPDATE`` and ``DELETE``).

Where records are written:

- The worker appends a record for each command it carries out (typed, clicked, submitted in
  a form, asked in a mention, a reaction that marks a message), straight into the store, in
  the transaction-free way every other step is recorded: keyed by the command, so a task
  that runs twice appends once.
- The ingress never touches the database on its request path (it answers within the
  platform's deadline), so what it refuses (a forged or unauthorized request) and what the
  API takes in go to a capped Redis stream on the broker (:class:`AuditStream`): one
  ``XADD`` with a short timeout that never fails the request. The maintenance task
  ``chatops.audit_drain`` moves them into the store every few seconds; each entry is keyed by
  its stream id, so a drain that runs twice (two beats, a retry) appends once.
- ``chatops users grant`` / ``revoke`` append theirs directly.

Never recorded: secrets, request bodies, the text people typed (titles, notes), tokens and
signatures. A refused reason is the answer the person got, passed through the redactor.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatops_core.access.settings import normalize_email
from chatops_core.commands.grammar import CommandName
from chatops_core.models import InboundCommand, format_incident_id, utcnow
from chatops_core.redaction import active as active_redactor

log = logging.getLogger("chatops.audit")

# The Redis stream the ingress writes to and the drain empties, and its cap: past it Redis
# drops the oldest entries (approximately, which is cheaper), so a flood of forged requests
# while the drain is stopped costs bounded memory. Beyond the cap those entries are lost.
AUDIT_STREAM = "chatops:audit"
AUDIT_STREAM_MAX_ENTRIES = 100_000
# How long one XADD may take on the request path before it is given up (seconds).
AUDIT_STREAM_TIMEOUT_SECONDS = 0.25
# The drain moves at most this many entries per store transaction, and this many batches a run.
DRAIN_BATCH = 500
DRAIN_MAX_BATCHES = 20
DRAIN_INTERVAL_SECONDS = 5.0

# Query limits (CLI and API).
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_TEXT_MAX = {"actor": 255, "user_id": 255, "channel": 255, "command": 128, "reason": 1000}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RELATIVE = re.compile(r"^(\d{1,6})\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_WORDS = frozenset(name.value for name in CommandName)


class AuditOutcome(StrEnum):
    """How an action ended."""

    OK = "ok"  # carried out (a command done, a form opened, a notification taken in)
    DENIED = "denied"  # refused by the access policy
    RATE_LIMITED = "rate_limited"  # refused: too many commands from this person
    FORGED = "forged"  # a request whose signature or token did not check out
    INVALID = "invalid"  # wrong input: the person was told what to type instead


OUTCOME_NAMES = "|".join(outcome.value for outcome in AuditOutcome)


def _clean(value: str | None, limit: int) -> str | None:
    """One line of printable text, at most ``limit`` characters (None for none or blank)."""
    if value is None:
        return None
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", str(value))).strip()
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AuditEntry(BaseModel):
    """A record to append. ``claimed``: ``instance``/``user_id``/``channel`` are what an
    unverified request said, not who sent it (a forged request); no person is looked up then.

    ``key`` makes appending idempotent: a second entry with a key already recorded is dropped.
    """

    model_config = ConfigDict(frozen=True)

    at: datetime = Field(default_factory=utcnow)
    outcome: AuditOutcome
    source: str  # command|action|form|mention|reaction|api|cli|webhook
    command: str | None = None
    person_id: int | None = None
    actor: str | None = None
    instance: str | None = None
    user_id: str | None = None
    claimed: bool = False
    platform: str | None = None
    channel: str | None = None
    incident: str | None = None
    reason: str | None = None
    key: str | None = None

    @field_validator("actor", "user_id", "channel", "command", "reason")
    @classmethod
    def _text(cls, value: str | None, info: Any) -> str | None:
        return _clean(value, _TEXT_MAX[info.field_name])

    @field_validator("source", "instance", "platform", "incident")
    @classmethod
    def _short(cls, value: str | None) -> str | None:
        return _clean(value, 64)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else value[:255]

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a timezone-aware time is needed")
        return value.astimezone(UTC)


class AuditRecord(AuditEntry):
    """A record as stored, with its number (ascending in the order appended)."""

    id: int


def record_json(record: AuditRecord) -> dict[str, Any]:
    """A record as the API and ``chatops audit --json`` show it."""
    at = record.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": record.id,
        "at": at,
        "outcome": record.outcome.value,
        "person_id": record.person_id,
        "actor": record.actor,
        "instance": record.instance,
        "user_id": record.user_id,
        "claimed": record.claimed,
        "platform": record.platform,
        "channel": record.channel,
        "source": record.source,
        "command": record.command,
        "incident": record.incident,
        "reason": record.reason,
    }


def command_word(text: str | None) -> str | None:
    """The command word ``text`` starts with, when it is one (never the rest of the text)."""
    words = (text or "").split()
    word = words[0].lower() if words else ""
    return word if word in _WORDS else None


def redacted(text: str | None) -> str | None:
    """``text`` as a record keeps it: through the process's redactor (an answer may quote
    what the person typed)."""
    return None if text is None else active_redactor().redact(text)


def command_entry(
    inbound: InboundCommand,
    outcome: AuditOutcome,
    *,
    command: str | None,
    incident: int | str | None = None,
    reason: str | None = None,
    step: str = "",
) -> AuditEntry:
    """The record of what the worker did with ``inbound`` (keyed by it, plus ``step`` for a
    second record of one command)."""
    if isinstance(incident, int):
        incident = format_incident_id(incident)
    return AuditEntry(
        at=utcnow(),
        outcome=outcome,
        source=inbound.source,
        command=command,
        actor=inbound.user.display,
        instance=inbound.instance,
        user_id=inbound.user.user_id,
        platform=inbound.platform,
        channel=inbound.channel_name or inbound.channel_id,
        incident=incident,
        reason=redacted(reason),
        key=f"{inbound.key}:audit{step}"[:255],
    )


# --- filters ---------------------------------------------------------------------------------


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``1d`` (also ``s``, ``w``) before ``now``, or an ISO 8601 time (one
    without a zone is UTC); ValueError saying what to write otherwise."""
    raw = text.strip()
    now = now or utcnow()
    relative = _RELATIVE.match(raw.lower())
    if relative is not None:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"since must be a duration like 30m, 2h or 1d, or an ISO 8601 time like "
            f"2026-12-07T09:00:00Z, not {raw[:40]!r}"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def parse_outcome(text: str) -> AuditOutcome:
    """An outcome by name; ValueError listing them otherwise."""
    try:
        return AuditOutcome(text.strip().lower())
    except ValueError:
        raise ValueError(f"outcome must be one of {OUTCOME_NAMES}, not {text[:40]!r}") from None


@dataclass(frozen=True)
class ActorFilter:
    """Whose records: a person id, a platform user (``instance:user id``) or an e-mail
    address. A person's records are theirs on every platform (their identities), also those
    appended before two identities were known to be one person."""

    person_id: int | None = None
    instance: str | None = None
    user_id: str | None = None
    email: str | None = None

    @classmethod
    def parse(cls, text: str) -> ActorFilter:
        raw = text.strip()
        if raw.isascii() and raw.isdigit() and len(raw) <= 12:
            return cls(person_id=int(raw))
        instance, sep, user_id = raw.partition(":")
        if sep and instance and user_id and " " not in raw and "@" not in instance:
            return cls(instance=instance, user_id=user_id)
        address = normalize_email(raw)
        if address and address.count("@") == 1 and " " not in address:
            return cls(email=address)
        raise ValueError(
            "actor must be a person id (see `chatops users list`), a platform user "
            f"INSTANCE:USER_ID (e.g. slack:U024BE7LH) or an e-mail address, not {raw[:40]!r}"
        )


# --- the stream between the ingress and the store ---------------------------------------------


class AuditStream:
    """The capped Redis stream where the ingress leaves records for the drain.

    :meth:`add` is made for a request path: one ``XADD`` on a client whose every call is
    bounded (``AUDIT_STREAM_TIMEOUT_SECONDS``, no retry); a failure is logged and dropped,
    never raised, so an unreachable Redis costs at most that long and never fails a request.
    """

    def __init__(self, client: redis.Redis, *, key: str = AUDIT_STREAM) -> None:
        self._client = client
        self._key = key

    @classmethod
    def from_url(cls, url: str, *, timeout: float = AUDIT_STREAM_TIMEOUT_SECONDS) -> AuditStream:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        return cls(client)

    def add(self, entry: AuditEntry) -> bool:
        """Leave ``entry`` for the drain; False (logged) when Redis did not take it."""
        try:
            self._client.xadd(
                self._key,
                {"entry": entry.model_dump_json(exclude={"key"})},
                maxlen=AUDIT_STREAM_MAX_ENTRIES,
                approximate=True,
            )
            return True
        except redis.RedisError as exc:
            reason = type(exc).__name__
            log.warning("audit record %s/%s not kept: %s", entry.outcome.value, entry.source, reason)
            return False

    def pending(self) -> int:
        """How many entries wait for the drain."""
        return int(self._client.xlen(self._key))  # type: ignore[arg-type]

    def drain(
        self,
        append: Callable[[Sequence[AuditEntry]], int],
        *,
        batch: int = DRAIN_BATCH,
        max_batches: int = DRAIN_MAX_BATCHES,
    ) -> int:
        """Move entries into the store through ``append`` (the store's ``append_audit``),
        oldest first; return how many were read.

        An entry is deleted from the stream only after ``append`` returned, and each carries
        the key ``stream:<entry id>``, so a drain cut off half way, or two drains at once,
        append each entry once. An entry that cannot be read is logged and deleted.
        """
        moved = 0
        for _ in range(max_batches):
            found: Any = self._client.xrange(self._key, count=batch)
            if not found:
                break
            entries: list[AuditEntry] = []
            ids: list[bytes | str] = []
            for entry_id, fields in found:
                ids.append(entry_id)
                name = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                raw = fields.get(b"entry", fields.get("entry"))
                try:
                    data = json.loads(raw)
                    entries.append(AuditEntry.model_validate({**data, "key": f"stream:{name}"}))
                except (TypeError, ValueError, ValidationError):
                    log.error("audit stream entry %s cannot be read; dropped", name)
            if entries:
                append(entries)
            self._client.xdel(self._key, *ids)
            moved += len(entries)
            if len(found) < batch:
                break
        return moved

    def close(self) -> None:
        self._client.close()


def forged_entry(
    *,
    source: str,
    reason: str | None,
    instance: str | None = None,
    platform: str | None = None,
    command: str | None = None,
    claimed_user: str | None = None,
    claimed_channel: str | None = None,
) -> AuditEntry:
    """The record of a request refused as forged or unauthorized: the user and channel it
    claimed, when it could be read, marked ``claimed``; never the body or its credentials."""
    return AuditEntry(
        outcome=AuditOutcome.FORGED,
        source=source,
        command=command,
        instance=instance,
        platform=platform,
        user_id=claimed_user,
        actor=f"claimed {claimed_user}" if claimed_user else None,
        channel=claimed_channel,
        claimed=True,
        reason=redacted(reason),
    )
