"""What clicks, forms, mentions and reactions need beyond a typed command.

- A mention is answered in its thread; a plain question goes through the intent parser, and
  a phrasing it does not understand gets a short help answer, never a guess.
- ``declare`` with no title, and a click on Resolve, open a form. ``views.open`` must happen
  within the 3 s life of the ``trigger_id``; when the trigger is already too old, the person
  gets a message with a button that opens the form afresh.
- A reaction (``timeline_reaction``) on a message in an incident's channel adds that message
  to the incident's timeline, with its author and time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from chatops_core.commands.grammar import parse_command, parse_severity
from chatops_core.commands.intents import understand
from chatops_core.errors import CommandError, Permanent, TriggerExpired
from chatops_core.models import EntryKind, InboundCommand, Reply, utcnow
from chatops_core.providers import Operation, Provider
from chatops_core.providers.base import FormName
from workers.runtime import Runtime

log = logging.getLogger("chatops.worker")

# A trigger_id lives 3 s; past this age there is no point in trying views.open.
TRIGGER_MAX_AGE_SECONDS = 2.5

MENTION_HELP = (
    "I did not catch that. Ask me things like “what's open?”, “status of 12”, “who is on INC-4?”, "
    "or use the commands: `declare sev2 <title>`, `ack INC-4`, `resolve INC-4 <note>`, `help`."
)


def answer(provider: Provider, inbound: InboundCommand, reply: Reply) -> bool:
    """Answer where the request came from: a mention in its thread, else as the platform does.

    An answer the platform refuses for good (its way back to the person expired or was used
    up, as Slack's ``response_url`` after 30 minutes or 5 posts) is given up and logged: the
    command's other effects stand, and trying again cannot help. False when given up; a
    passing failure (:class:`~chatops_core.errors.Retryable`) is raised to retry.
    """
    try:
        if inbound.source == "mention" and inbound.channel_id:
            provider.reply_in_thread(inbound.channel_id, inbound.thread_ts, reply)
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


def wants_declare_form(inbound: InboundCommand, provider: Provider) -> bool:
    """``declare`` (optionally with a severity) and no title, where forms are possible."""
    if inbound.source != "command" or not inbound.trigger_id or not provider.supports(Operation.INTERACTIVE):
        return False
    words = inbound.text.split()
    if not words or words[0].lower() != "declare":
        return False
    return len(words) == 1 or (len(words) == 2 and parse_severity(words[1]) is not None)


def open_form(provider: Provider, inbound: InboundCommand, form: FormName, incident_id: str | None) -> None:
    """Open ``form`` for the person, or offer a button that opens it when the trigger is stale."""
    context = {
        "channel_id": inbound.channel_id or "",
        "channel_name": inbound.channel_name or "",
        "response_url": inbound.response_url or "",
    }
    age = (utcnow() - inbound.received_at).total_seconds()
    if inbound.trigger_id and age < TRIGGER_MAX_AGE_SECONDS:
        try:
            provider.open_form(inbound.trigger_id, form, incident_id=incident_id, context=context)
            return
        except TriggerExpired:
            log.info("trigger expired for %s; offering the form again", inbound.key)
    provider.offer_form(inbound, form, incident_id)


def timeline_mark(runtime: Runtime, provider: Provider, inbound: InboundCommand) -> None:
    """Add the marked message to its incident's timeline (only in an incident's own channel)."""
    if not inbound.channel_id or not inbound.message_ts:
        return
    incident = runtime.store.find_by_channel(inbound.instance, inbound.channel_id)
    if incident is None:
        return
    author, text = provider.message_text(inbound.channel_id, inbound.message_ts)
    try:
        at = datetime.fromtimestamp(float(inbound.message_ts), tz=UTC)
    except ValueError:
        at = utcnow()
    runtime.store.add_timeline(
        incident.number,
        kind=EntryKind.NOTE,
        actor=f"<@{author}>" if author else inbound.user.display,
        platform=inbound.platform,
        channel=inbound.channel_name or inbound.channel_id,
        text=text,
        at=at,
    )
