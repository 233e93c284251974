"""What the buttons and dialogs the bot posts carry, and what comes back when they are used.

Mattermost sends an action's ``integration.context`` (or a dialog's ``state``) back to the
integration unchanged, and authenticates neither
(https://developers.mattermost.com/integrate/plugins/interactive-messages/), so both are
signed (:mod:`.verify`) and carry only ids: the action, the incident and the version of
the incident the card showed. Action ids are letters only: the server accepts only
alphanumeric ids for actions.

A card's two menus are actions of ``type: "select"``: the severity menu (static options, whose
context also signs the severities it offers) and the commander menu (``data_source:
"users"``). Mattermost adds the choice to the context as ``selected_option`` (an option's
``value``, or a user's id), which no signature covers: it is checked against what the menu
offers when the request is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import SecretStr

from chatops_core.providers.mattermost.verify import Payload, sign_context, sign_state

CardActionName = Literal["ack", "mitigate", "resolve", "escalate"]
CARD_ACTIONS: frozenset[str] = frozenset({"ack", "mitigate", "resolve", "escalate"})
# The button of an offered form ("open the form again").
OPEN_FORM = "form"
# The card's menus (action ids): a severity to raise the incident to, a commander to assign.
SEVERITY_MENU = "severity"
COMMANDER_MENU = "commander"
CARD_MENUS: frozenset[str] = frozenset({SEVERITY_MENU, COMMANDER_MENU})
# What Mattermost adds to a menu's context: the chosen option's value (a user id for users).
SELECTED_OPTION = "selected_option"

# Keys of a context and of a dialog's state.
ACTION = "action"
INCIDENT = "incident"
VERSION = "version"
# The values a static menu offers, joined with OPTION_SEPARATOR.
OPTIONS = "options"
OPTION_SEPARATOR = ","
FORM = "form"
CHANNEL_ID = "channel_id"
CHANNEL_NAME = "channel_name"
RESPONSE_URL = "response_url"
USER_ID = "user_id"
USER_NAME = "user_name"

# Dialog callback ids and fields.
DECLARE_FORM = "declare"
RESOLVE_FORM = "resolve"
TITLE_FIELD = "title"
SEVERITY_FIELD = "severity"
DESCRIPTION_FIELD = "description"
NOTE_FIELD = "note"


def card_context(
    secret: SecretStr,
    action: str,
    incident_id: str,
    version: int | None,
    *,
    now: float,
    ttl: int,
    options: Sequence[str] = (),
) -> Payload:
    """The signed context of one button or menu of an incident's card; a static menu's
    ``options`` (the values it offers) are signed with it."""
    payload: dict[str, str | int] = {ACTION: action, INCIDENT: incident_id}
    if version is not None:
        payload[VERSION] = version
    if options:
        payload[OPTIONS] = OPTION_SEPARATOR.join(options)
    return sign_context(secret, payload, now, ttl)


def offered_options(context: Payload) -> frozenset[str]:
    """The values a verified menu context says its menu offers (none for a button)."""
    joined = context.get(OPTIONS)
    if not isinstance(joined, str) or not joined:
        return frozenset()
    return frozenset(value for value in joined.split(OPTION_SEPARATOR) if value)


def form_context(secret: SecretStr, form: str, incident_id: str | None, *, now: float, ttl: int) -> Payload:
    """The signed context of the button that opens ``form`` afresh."""
    payload: dict[str, str | int] = {ACTION: OPEN_FORM, FORM: form}
    if incident_id:
        payload[INCIDENT] = incident_id
    return sign_context(secret, payload, now, ttl)


def dialog_state(secret: SecretStr, fields: dict[str, str | int], *, now: float, ttl: int) -> str:
    """The signed ``state`` of a dialog: who opened it, where, and for which incident."""
    return sign_state(secret, {k: v for k, v in fields.items() if v != ""}, now, ttl)
