"""The names shared by what we send and what Slack sends back when someone uses it.

A button or menu on an incident card has an ``action_id`` saying what it does; the incident
it belongs to travels in the button's ``value`` and in the ``block_id`` of its block, so a
click names its incident without any lookup
(https://docs.slack.dev/reference/interaction-payloads/block_actions-payload). A modal has a
``callback_id`` saying which form it is, and ``private_metadata`` carrying what the worker
knew when it opened the form: the channel and ``response_url`` to answer in, and the incident
(https://docs.slack.dev/surfaces/modals).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

PREFIX = "im:"

# Card buttons and menus (action_id).
ACK = "im:ack"
MITIGATE = "im:mitigate"
RESOLVE = "im:resolve"
ESCALATE = "im:escalate"
SEVERITY = "im:severity"
ASSIGN = "im:assign"
# The button that opens a form when its trigger was too old (value: the form's name).
OPEN_FORM = "im:open_form"

# Modals (callback_id) and their inputs (block_id, equal to the element's action_id).
DECLARE_FORM = "im:declare"
RESOLVE_FORM = "im:resolve"
TITLE_FIELD = "title"
SEVERITY_FIELD = "severity"
DESCRIPTION_FIELD = "description"
NOTE_FIELD = "note"

# private_metadata is limited to 3000 characters (https://docs.slack.dev/reference/views/modal-view).
METADATA_MAX = 3000
# Dropped first when the metadata would be too long: the worker can still answer in the channel.
_DROPPABLE = ("response_url", "channel_name")
_ESSENTIAL = ("channel_id", "incident_id")

_VERSION_SUFFIX = re.compile(r":v[0-9]+$")


def block_id(incident_id: str, version: int | None = None) -> str:
    """``im:INC-12``, or ``im:INC-12:v3`` for version 3 of the incident.

    Slack asks for a new ``block_id`` whenever a message is updated
    (https://docs.slack.dev/reference/block-kit/blocks/actions-block), so that clients show
    the new initial values of menus instead of a stale choice.
    """
    base = f"{PREFIX}{incident_id}"
    return f"{base}:v{version}" if version is not None else base


def incident_from_block_id(value: str | None) -> str | None:
    """The incident id carried by a ``block_id`` made by :func:`block_id`; None otherwise."""
    if not value or not value.startswith(PREFIX):
        return None
    incident_id = _VERSION_SUFFIX.sub("", value[len(PREFIX) :])
    return incident_id or None


def version_from_block_id(value: str | None) -> int | None:
    """The incident version carried by a ``block_id`` made by :func:`block_id`; None otherwise.

    A click names the version of the card it was made on, so an old card does not act again.
    """
    if not value or not value.startswith(PREFIX):
        return None
    found = _VERSION_SUFFIX.search(value)
    if found is None:
        return None
    version = int(found.group(0)[2:])
    return version if version >= 1 else None


def encode_metadata(context: Mapping[str, str], incident_id: str | None = None) -> str:
    """``context`` (plus the incident id) as the JSON text of a modal's ``private_metadata``."""
    data = {key: value for key, value in context.items() if value}
    if incident_id:
        data["incident_id"] = incident_id
    text = _dumps(data)
    for key in _DROPPABLE:
        if len(text) <= METADATA_MAX:
            return text
        data.pop(key, None)
        text = _dumps(data)
    if len(text) > METADATA_MAX:
        text = _dumps({key: data[key] for key in _ESSENTIAL if key in data})
    return text


def _dumps(data: Mapping[str, str]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def decode_metadata(text: str | None) -> dict[str, str]:
    """The string fields of a modal's ``private_metadata``; empty when it is not ours."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(key): value for key, value in data.items() if isinstance(value, str) and value}
