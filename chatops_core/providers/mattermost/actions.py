"""What the buttons and dialogs the bot posts carry, and what comes back when they are used.

Mattermost sends an action's ``integration.context`` (or a dialog's ``state``) back to the
integration unchanged, and authenticates neither
(https://developers.mattermost.com/integrate/plugins/interactive-messages/), so both are
signed (:mod:`.verify`) and carry only ids: the action, the incident and the version of
the incident the card showed. Action ids are letters only: the server accepts only
alphanumeric ids for actions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from chatops_core.providers.mattermost.verify import Payload, sign_context, sign_state

CardActionName = Literal["ack", "mitigate", "resolve", "escalate"]
CARD_ACTIONS: frozenset[str] = frozenset({"ack", "mitigate", "resolve", "escalate"})
# The button of an offered form ("open the form again").
OPEN_FORM = "form"

# Keys of a context and of a dialog's state.
ACTION = "action"
INCIDENT = "incident"
VERSION = "version"
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
    secret: SecretStr, action: str, incident_id: str, version: int | None, *, now: float, ttl: int
) -> Payload:
    """The signed context of one button of an incident's card."""
    payload: dict[str, str | int] = {ACTION: action, INCIDENT: incident_id}
    if version is not None:
        payload[VERSION] = version
    return sign_context(secret, payload, now, ttl)


def form_context(secret: SecretStr, form: str, incident_id: str | None, *, now: float, ttl: int) -> Payload:
    """The signed context of the button that opens ``form`` afresh."""
    payload: dict[str, str | int] = {ACTION: OPEN_FORM, FORM: form}
    if incident_id:
        payload[INCIDENT] = incident_id
    return sign_context(secret, payload, now, ttl)


def dialog_state(secret: SecretStr, fields: dict[str, str | int], *, now: float, ttl: int) -> str:
    """The signed ``state`` of a dialog: who opened it, where, and for which incident."""
    return sign_state(secret, {k: v for k, v in fields.items() if v != ""}, now, ttl)
