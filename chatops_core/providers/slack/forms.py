"""The modals: declaring an incident and resolving one.

Built with :mod:`slack_sdk.models.views` and opened with ``views.open``
(https://docs.slack.dev/reference/methods/views.open). Each input block's ``block_id`` equals
its element's ``action_id``, so a submission's ``view.state.values[block][action]`` is easy to
read back (https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload).
A modal's title may hold 24 characters, its submit and close labels 24, and
``private_metadata`` 3000 (https://docs.slack.dev/reference/views/modal-view).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import (
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from chatops_core.commands.grammar import (
    DEFAULT_SEVERITY,
    NOTE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    severity_word,
)
from chatops_core.models import Severity
from chatops_core.providers.slack import actions

MODAL_TITLE_MAX = 24
# A plain_text_input holds at most 3000 characters
# (https://docs.slack.dev/reference/block-kit/block-elements/plain-text-input-element).
INPUT_MAX = 3000


def severity_option(severity: Severity) -> Option:
    """A menu option showing ``SEV-2`` whose value is ``sev2``."""
    return Option(label=severity.value, value=severity_word(severity))


def severity_options() -> list[Option]:
    return [severity_option(severity) for severity in Severity]


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=True)


def _modal_title(text: str) -> str:
    return text if len(text) <= MODAL_TITLE_MAX else text[: MODAL_TITLE_MAX - 1] + "…"


def declare_view(context: Mapping[str, str]) -> dict[str, Any]:
    """The form that declares an incident: title, severity, optional description."""
    blocks = [
        InputBlock(
            block_id=actions.TITLE_FIELD,
            label=_plain("Title"),
            element=PlainTextInputElement(
                action_id=actions.TITLE_FIELD,
                placeholder=_plain("Checkout errors above 5%"),
                max_length=TITLE_MAX_LENGTH,
            ),
        ),
        InputBlock(
            block_id=actions.SEVERITY_FIELD,
            label=_plain("Severity"),
            element=StaticSelectElement(
                action_id=actions.SEVERITY_FIELD,
                placeholder=_plain("Severity"),
                options=severity_options(),
                initial_option=severity_option(DEFAULT_SEVERITY),
            ),
        ),
        InputBlock(
            block_id=actions.DESCRIPTION_FIELD,
            label=_plain("Description"),
            optional=True,
            element=PlainTextInputElement(
                action_id=actions.DESCRIPTION_FIELD,
                multiline=True,
                max_length=INPUT_MAX,
                placeholder=_plain("What is happening, and who is affected?"),
            ),
        ),
    ]
    view = View(
        type="modal",
        callback_id=actions.DECLARE_FORM,
        title=_plain("Declare an incident"),
        submit=_plain("Declare"),
        close=_plain("Cancel"),
        private_metadata=actions.encode_metadata(context),
        blocks=blocks,
    )
    return view.to_dict()


def resolve_view(incident_id: str, context: Mapping[str, str]) -> dict[str, Any]:
    """The form that resolves ``incident_id``, with an optional resolution note."""
    blocks = [
        InputBlock(
            block_id=actions.NOTE_FIELD,
            label=_plain("Resolution"),
            optional=True,
            element=PlainTextInputElement(
                action_id=actions.NOTE_FIELD,
                multiline=True,
                max_length=min(NOTE_MAX_LENGTH, INPUT_MAX),
                placeholder=_plain("What fixed it?"),
            ),
        ),
    ]
    view = View(
        type="modal",
        callback_id=actions.RESOLVE_FORM,
        title=_plain(_modal_title(f"Resolve {incident_id}")),
        submit=_plain("Resolve"),
        close=_plain("Cancel"),
        private_metadata=actions.encode_metadata(context, incident_id),
        blocks=blocks,
    )
    return view.to_dict()
