"""What clicks, forms, mentions and reactions need beyond a typed command.

Each platform feature is asked of the provider where it is used, with its fallback:

- A mention is answered in its thread (:attr:`~Capability.THREADS`; else at the top level of
  its channel); a plain question goes through the intent parser, and a phrasing it does not
  understand gets a short help answer, never a guess.
- An answer meant for the person alone (:attr:`~Capability.PRIVATE_REPLY`) is posted where
  the command came from on a platform that cannot answer privately.
- ``declare`` with no title, and a click on Resolve, open a form (:attr:`~Capability.FORMS`).
  The provider judges whether the command can still open one; when it cannot
  (:class:`~chatops_core.errors.TriggerExpired`), the person gets a message with a button that
  opens the form afresh. Without forms the command runs as typed, and ``declare`` without a
  title answers with the typed form of the command.
- A reaction on a message in an incident's channel adds that message to the incident's
  timeline, with its author's name and the time it was posted.
"""

from __future__ import annotations

import logging

import redis

from chatops_core.access import NotAllowed
from chatops_core.answers import AnswerExchange
from chatops_core.audit import AuditOutcome
from chatops_core.commands.grammar import parse_command, parse_severity
from chatops_core.commands.intents import understand
from chatops_core.commands.service import authorize
from chatops_core.errors import CommandError, Permanent, TriggerExpired, Unavailable
from chatops_core.models import EntryKind, InboundCommand, Reply, utcnow
from chatops_core.providers import Capability, Provider
from chatops_core.providers.base import FormName
from chatops_core.redaction import active as active_redactor
from chatops_core.redaction import for_storage
from workers.audit import record
from workers.runtime import Runtime

log = logging.getLogger("chatops.worker")

MENTION_HELP = (
    "I did not catch that. Ask me things like “what's open?”, “status of 12”, “who is on INC-4?”, "
    "or use the commands: `declare sev2 <title>`, `ack INC-4`, `resolve INC-4 <note>`, `help`."
)


def answer(
    provider: Provider, inbound: InboundCommand, reply: Reply, answers: AnswerExchange | None = None
) -> bool:
    """Answer where the request came from: a mention in its thread, else as the platform does.

    A command whose answer travels in its webhook's own response (``answer_key``, on a
    provider with :attr:`~Capability.ANSWER_IN_RESPONSE`) hands its first answer to the
    waiting ingress through ``answers``; when the ingress no longer waits (the worker was
    late, or this is a second answer), the provider posts it its other way.

    A platform that cannot answer only the person gets the answer in the channel instead. An
    answer the platform refuses for good (its way back to the person expired or was used up)
    is given up and logged: the command's other effects stand, and trying again cannot help.
    False when given up; a passing failure (:class:`~chatops_core.errors.Retryable`) is raised
    to retry. Every text in the answer is redacted: what is stored may be what people wrote
    (``[redaction] keep_original_in_timeline``), what is said in chat never is.
    """
    reply = active_redactor().reply(reply)
    if reply.ephemeral and not provider.supports(Capability.PRIVATE_REPLY):
        reply = reply.model_copy(update={"ephemeral": False})
    if (
        inbound.answer_key is not None
        and answers is not None
        and provider.supports(Capability.ANSWER_IN_RESPONSE)
    ):
        body, content_type = provider.answer_body(inbound, reply)
        try:
            if answers.hand_over(inbound.answer_key, body, content_type):
                return True
        except redis.RedisError as exc:
            raise Unavailable(f"could not hand the answer to the ingress: {type(exc).__name__}") from exc
        log.info("answer to %s posted: the ingress no longer waits for it", inbound.key)
    try:
        if inbound.source == "mention" and inbound.channel_id:
            thread = inbound.thread_id if provider.supports(Capability.THREADS) else None
            provider.reply_in_thread(inbound.channel_id, thread, reply)
        else:
            provider.reply(inbound, reply)
    except Permanent as exc:
        log.warning("gave up answering command %s: %s: %s", inbound.key, exc.code, exc.message)
        return False
    return True


def command_text(inbound: InboundCommand) -> str | None:
    """The command-language text to run, or None when a mention asked something we do not act on."""
    if inbound.source != "mention":
        return inbound.text
    try:
        parse_command(inbound.text)
        return inbound.text
    except CommandError:
        understood = understand(inbound.text)
        return understood.command if understood else None


def wants_form(inbound: InboundCommand, provider: Provider) -> FormName | None:
    """The form to open instead of running the command, where the platform has forms.

    A click that asks for one (Resolve, "Open the form") names it; a typed ``declare``
    (optionally with a severity) without a title opens the declare form. Without
    :attr:`~Capability.FORMS`, None: the command runs as typed (``declare`` alone then answers
    with the typed form of the command).
    """
    if not provider.supports(Capability.FORMS):
        return None
    if inbound.form is not None:
        return inbound.form
    if inbound.source != "command":
        return None
    words = inbound.text.split()
    if not words or words[0].lower() != "declare":
        return None
    if len(words) == 1 or (len(words) == 2 and parse_severity(words[1]) is not None):
        return "declare"
    return None


def open_form(provider: Provider, inbound: InboundCommand, form: FormName, incident_id: str | None) -> None:
    """Open ``form`` for the person, or offer a button that opens it when the command can no
    longer open one (the provider raises :class:`~chatops_core.errors.TriggerExpired`)."""
    context = {"channel_id": inbound.channel_id or "", "channel_name": inbound.channel_name or ""}
    try:
        provider.open_form(inbound, form, incident_id=incident_id, context=context)
        return
    except TriggerExpired as exc:
        log.info("form for %s cannot open (%s); offering it again", inbound.key, exc.message)
    provider.offer_form(inbound, form, incident_id)


def timeline_mark(runtime: Runtime, provider: Provider, inbound: InboundCommand) -> None:
    """Add the marked message to its incident's timeline (only in an incident's own channel).

    The entry names the message's author (the person who marked it when the message has no
    person as author) and carries the time it was posted. Marking is a ``note`` to the access
    policy: a person who may not add one is skipped without a word (a reaction asks for no
    answer), and the refusal is recorded in the audit trail.
    """
    if not inbound.channel_id or not inbound.message_id or not provider.supports(Capability.MENTIONS):
        return
    incident = runtime.store.find_by_channel(inbound.instance, inbound.channel_id)
    if incident is None:
        return
    try:
        authorize(runtime.store, inbound, "note", incident)
    except NotAllowed as exc:
        log.info("reaction by %s not marked: %s", inbound.key, exc.code)
        denied = AuditOutcome.DENIED
        record(runtime, inbound, denied, command="note", incident=incident.number, reason=exc.message)
        return
    posted = provider.message_text(inbound.channel_id, inbound.message_id)
    text = for_storage(runtime.settings.redaction, posted.text) or ""
    runtime.store.add_timeline(
        incident.number,
        kind=EntryKind.NOTE,
        actor=posted.author.display if posted.author else inbound.user.display,
        platform=inbound.platform,
        channel=inbound.channel_name or inbound.channel_id,
        text=text,
        at=posted.at or utcnow(),
    )
    record(runtime, inbound, AuditOutcome.OK, command="note", incident=incident.number, reason="marked")
