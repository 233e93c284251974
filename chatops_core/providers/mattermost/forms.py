"""The dialogs the bot opens: declare an incident, resolve one.

A dialog is opened with ``POST /api/v4/actions/dialogs/open`` and a ``trigger_id`` from the
click or command that asked for it; its submission comes back to the dialog's ``url`` with
the ``state`` given here, signed (:mod:`.verify`), so it cannot be forged or replayed
against another incident.
https://developers.mattermost.com/integrate/plugins/interactive-dialogs/
"""

from __future__ import annotations

from typing import Any

from chatops_core.commands.grammar import DEFAULT_SEVERITY, TITLE_MAX_LENGTH, severity_word
from chatops_core.models import Severity
from chatops_core.providers.mattermost import actions

# "Title of the dialog. Maximum 24 characters."
DIALOG_TITLE_MAX = 24
DESCRIPTION_MAX = 3000
NOTE_MAX = 2000


def declare_dialog(state: str) -> dict[str, Any]:
    """Title (required), severity (default SEV-3) and an optional description."""
    return {
        "callback_id": actions.DECLARE_FORM,
        "title": "Declare an incident",
        "submit_label": "Declare",
        "state": state,
        "elements": [
            {
                "display_name": "Title",
                "name": actions.TITLE_FIELD,
                "type": "text",
                "max_length": TITLE_MAX_LENGTH,
                "placeholder": "What is broken?",
            },
            {
                "display_name": "Severity",
                "name": actions.SEVERITY_FIELD,
                "type": "select",
                "default": severity_word(DEFAULT_SEVERITY),
                "options": [
                    {"text": severity.value, "value": severity_word(severity)} for severity in Severity
                ],
            },
            {
                "display_name": "Description",
                "name": actions.DESCRIPTION_FIELD,
                "type": "textarea",
                "optional": True,
                "max_length": DESCRIPTION_MAX,
            },
        ],
    }


def resolve_dialog(incident_id: str, state: str) -> dict[str, Any]:
    """An optional resolution note for ``incident_id``."""
    title = f"Resolve {incident_id}"
    return {
        "callback_id": actions.RESOLVE_FORM,
        "title": title if len(title) <= DIALOG_TITLE_MAX else "Resolve the incident",
        "submit_label": "Resolve",
        "state": state,
        "elements": [
            {
                "display_name": "Resolution note",
                "name": actions.NOTE_FIELD,
                "type": "textarea",
                "optional": True,
                "max_length": NOTE_MAX,
                "placeholder": "What fixed it?",
            }
        ],
    }
