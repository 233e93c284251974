"""Mattermost request authentication: the slash command's token and the signed button
context and dialog state. Requests are built by the fake's helpers, the way Mattermost sends
them; nothing here opens a socket, and time is an injected ``now``.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr

from chatops_core.errors import InvalidWebhook
from chatops_core.providers.mattermost.config import MattermostSettings
from chatops_core.providers.mattermost.verify import (
    EXPIRY_KEY,
    MAX_PAYLOAD_BYTES,
    SIGNATURE_KEY,
    check_command_token,
    sign_context,
    sign_state,
    verify_context,
    verify_state,
)
from tests.fakes.mattermost_server import (
    DEFAULT_COMMAND_TOKEN,
    button_click_payload,
    dialog_submission_payload,
    slash_command_form,
)

SECRET = "k3y-for-buttons-0123456789abcdef"
OTHER_SECRET = "another-key-0123456789abcdefghij"
NOW = 1_780_000_000.25
TTL = 30 * 24 * 3600
PAYLOAD: dict[str, str | int] = {"action": "ack", "incident": "INC-12", "version": 3}
USER_ID = "rd49ehbqyjytddasoownkuqrxe"
TEAM_ID = "5xxzt146eax4tul69409opqjlf"


def _settings(command_token: str = DEFAULT_COMMAND_TOKEN) -> MattermostSettings:
    return MattermostSettings(
        url="https://mattermost.example.com",
        bot_token=SecretStr("m8rb5i3yh7nwxgfpz9u1t4kdoa"),
        command_token=SecretStr(command_token),
        actions_secret=SecretStr(SECRET),
        team_id=TEAM_ID,
    )


def _command(token: str) -> tuple[dict[str, str], dict[str, str]]:
    """The form fields and headers of an ``/im`` command carrying ``token``."""
    body, headers = slash_command_form(
        command="/im",
        text="declare sev2 Database timeouts",
        token=token,
        channel_id="j6j53p28k6urx15fpcgsr20psq",
        channel_name="incidents",
        team_id=TEAM_ID,
        team_domain="example",
        user_id=USER_ID,
        user_name="alice",
        response_url="http://127.0.0.1:1/hooks/commands/abc",
        trigger_id="dHJpZ2dlcg==",
    )
    return dict(parse_qsl(body.decode(), keep_blank_values=True)), headers


def _over_the_wire(value: Any) -> Any:
    """``value`` as it comes back after Mattermost stored and re-sent it as JSON."""
    return json.loads(json.dumps(value))


def _as_float64(context: dict[str, Any]) -> dict[str, Any]:
    """A context whose numbers came back as floats (a JSON decoder into float64 does that)."""
    return {k: float(v) if isinstance(v, int) else v for k, v in context.items()}


# -- slash command token ------------------------------------------------------------------

WRONG_SAME_LENGTH = DEFAULT_COMMAND_TOKEN[:-1] + ("a" if DEFAULT_COMMAND_TOKEN[-1] != "a" else "b")


@pytest.mark.parametrize(
    ("form_token", "authorization", "reason"),
    [
        pytest.param(DEFAULT_COMMAND_TOKEN, None, None, id="right-in-form"),
        pytest.param(None, f"Token {DEFAULT_COMMAND_TOKEN}", None, id="right-in-header"),
        pytest.param(DEFAULT_COMMAND_TOKEN, f"Token {DEFAULT_COMMAND_TOKEN}", None, id="right-in-both"),
        pytest.param(None, f"token  {DEFAULT_COMMAND_TOKEN} ", None, id="header-scheme-any-case"),
        pytest.param(DEFAULT_COMMAND_TOKEN, "Bearer something-else", None, id="other-scheme-ignored"),
        pytest.param("wrong", None, "token mismatch", id="wrong-in-form"),
        pytest.param(None, "Token wrong", "token mismatch", id="wrong-in-header"),
        pytest.param(WRONG_SAME_LENGTH, None, "token mismatch", id="same-length-wrong-form"),
        pytest.param(None, f"Token {WRONG_SAME_LENGTH}", "token mismatch", id="same-length-wrong-header"),
        pytest.param(DEFAULT_COMMAND_TOKEN, "Token wrong", "token mismatch", id="right-form-wrong-header"),
        pytest.param(
            "wrong", f"Token {DEFAULT_COMMAND_TOKEN}", "token mismatch", id="wrong-form-right-header"
        ),
        pytest.param(DEFAULT_COMMAND_TOKEN.upper(), None, "token mismatch", id="case-differs"),
        pytest.param(DEFAULT_COMMAND_TOKEN + " ", None, "token mismatch", id="trailing-space"),
        pytest.param("t\u00f6ken", None, "token mismatch", id="non-ascii"),
        pytest.param("\ud800", None, "token mismatch", id="lone-surrogate"),
        pytest.param(None, None, "missing token", id="missing"),
        pytest.param("", "", "missing token", id="empty"),
        pytest.param(None, "Token ", "missing token", id="header-without-token"),
        pytest.param(None, "Bearer " + DEFAULT_COMMAND_TOKEN, "missing token", id="only-other-scheme"),
    ],
)
def test_command_token(form_token: str | None, authorization: str | None, reason: str | None) -> None:
    settings = _settings()
    if reason is None:
        check_command_token(settings, form_token, authorization)
        return
    with pytest.raises(InvalidWebhook) as caught:
        check_command_token(settings, form_token, authorization)
    assert caught.value.http_status == 401
    assert caught.value.details["reason"] == reason
    assert DEFAULT_COMMAND_TOKEN not in str(caught.value)


def test_command_token_as_mattermost_sends_it() -> None:
    form, headers = _command(DEFAULT_COMMAND_TOKEN)
    check_command_token(_settings(), form.get("token"), headers.get("Authorization"))


def test_command_token_of_another_command_is_refused() -> None:
    form, headers = _command("zzzzkf1nx3yt9dr4n8585ihbxy")
    with pytest.raises(InvalidWebhook) as caught:
        check_command_token(_settings(), form.get("token"), headers.get("Authorization"))
    assert caught.value.http_status == 401


# -- signed button context ----------------------------------------------------------------


def test_context_round_trip() -> None:
    context = sign_context(SECRET, PAYLOAD, NOW, TTL)
    assert set(context) == {*PAYLOAD, EXPIRY_KEY, SIGNATURE_KEY}
    assert context[EXPIRY_KEY] == int(NOW) + TTL
    assert verify_context(SECRET, context, NOW) == PAYLOAD
    assert verify_context(SecretStr(SECRET), _over_the_wire(context), NOW + TTL - 1) == PAYLOAD


def test_context_is_small() -> None:
    context = sign_context(SECRET, {"action": "severity", "incident": "INC-123456", "version": 999}, NOW, TTL)
    assert len(json.dumps(context, separators=(",", ":"))) < 160


def test_context_survives_numbers_as_floats() -> None:
    context = _over_the_wire(sign_context(SECRET, PAYLOAD, NOW, TTL))
    assert verify_context(SECRET, _as_float64(context), NOW) == PAYLOAD


def test_context_from_a_button_click() -> None:
    """Signed into a button, sent back in the click's JSON body, verified from it."""
    context = sign_context(SECRET, PAYLOAD, NOW, TTL)
    click = button_click_payload(
        user_id=USER_ID,
        user_name="alice",
        post_id="gqrnh3675jfxzftnjyjfe4udeh",
        channel_id="j6j53p28k6urx15fpcgsr20psq",
        channel_name="incidents",
        team_id=TEAM_ID,
        team_domain="example",
        trigger_id="dHJpZ2dlcg==",
        context=context,
    )
    received = json.loads(json.dumps(click).encode())
    assert verify_context(SECRET, received["context"], NOW + 60) == PAYLOAD


def test_menu_pick_is_neither_signed_nor_returned() -> None:
    context = _over_the_wire(
        sign_context(SECRET, {"action": "severity", "incident": "INC-1", "version": 2}, NOW, TTL)
    )
    context["selected_option"] = "SEV-1"
    assert verify_context(SECRET, context, NOW) == {"action": "severity", "incident": "INC-1", "version": 2}


def _changed(key: str, value: Any) -> Any:
    if key == SIGNATURE_KEY:
        return ("A" if value[0] != "A" else "B") + value[1:]
    if isinstance(value, int):
        return value + 1
    return value + "x"


@pytest.mark.parametrize("key", [*PAYLOAD, EXPIRY_KEY, SIGNATURE_KEY])
def test_context_with_a_field_changed_is_refused(key: str) -> None:
    context = _over_the_wire(sign_context(SECRET, PAYLOAD, NOW, TTL))
    context[key] = _changed(key, context[key])
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, context, NOW)
    assert caught.value.http_status == 401
    assert caught.value.details["reason"] == "signature mismatch"


@pytest.mark.parametrize("key", [*PAYLOAD, EXPIRY_KEY])
def test_context_with_a_field_removed_is_refused(key: str) -> None:
    context = _over_the_wire(sign_context(SECRET, PAYLOAD, NOW, TTL))
    del context[key]
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, context, NOW)
    assert caught.value.details["reason"] == "signature mismatch"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("user", "admin", id="extra-string"),
        pytest.param("version_override", 9, id="extra-int"),
        pytest.param("Action", "resolve", id="same-name-other-case"),
    ],
)
def test_context_with_extra_keys_is_refused(key: str, value: Any) -> None:
    context = _over_the_wire(sign_context(SECRET, PAYLOAD, NOW, TTL))
    context[key] = value
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, context, NOW)
    assert caught.value.details["reason"] == "signature mismatch"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param({"nested": 1}, "malformed context", id="object"),
        pytest.param([1], "malformed context", id="list"),
        pytest.param(None, "malformed context", id="null"),
        pytest.param(True, "malformed context", id="bool"),
        pytest.param(3.5, "malformed context", id="fraction"),
    ],
)
def test_context_with_foreign_values_is_refused(value: Any, reason: str) -> None:
    context = _over_the_wire(sign_context(SECRET, PAYLOAD, NOW, TTL))
    context["version"] = value
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, context, NOW)
    assert caught.value.details["reason"] == reason


def test_context_signed_with_another_secret_is_refused() -> None:
    context = sign_context(OTHER_SECRET, PAYLOAD, NOW, TTL)
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, context, NOW)
    assert caught.value.details["reason"] == "signature mismatch"


def test_context_expires() -> None:
    context = sign_context(SECRET, PAYLOAD, NOW, TTL)
    expiry = context[EXPIRY_KEY]
    assert isinstance(expiry, int)
    assert verify_context(SECRET, context, expiry) == PAYLOAD
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, context, expiry + 1)
    assert caught.value.http_status == 401
    assert caught.value.details["reason"] == "expired"
    with pytest.raises(InvalidWebhook):
        verify_context(SECRET, context, expiry + 0.001)


def test_expiry_cannot_be_pushed_back() -> None:
    context = sign_context(SECRET, PAYLOAD, NOW, 60)
    context[EXPIRY_KEY] = int(NOW) + TTL
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, context, NOW + 120)
    assert caught.value.details["reason"] == "signature mismatch"


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        pytest.param(None, "missing context", id="none"),
        pytest.param({}, "missing context", id="empty"),
        pytest.param("action=ack", "missing context", id="string"),
        pytest.param(["action", "ack"], "missing context", id="list"),
        pytest.param({"action": "ack", "incident": "INC-12"}, "missing signature", id="unsigned"),
        pytest.param({**PAYLOAD, "exp": 2_000_000_000, "sig": ""}, "missing signature", id="empty-signature"),
        pytest.param(
            {**PAYLOAD, "exp": 2_000_000_000, "sig": 7}, "missing signature", id="numeric-signature"
        ),
        pytest.param(
            {**PAYLOAD, "exp": 2_000_000_000, "sig": "\u00e9" * 43}, "signature mismatch", id="non-ascii"
        ),
    ],
)
def test_missing_or_forged_context_is_refused(context: Any, reason: str) -> None:
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, context, NOW)
    assert caught.value.http_status == 401
    assert caught.value.details["reason"] == reason


@pytest.mark.parametrize(
    ("payload", "ttl"),
    [
        pytest.param({"exp": 1}, TTL, id="reserved-exp"),
        pytest.param({"sig": "x"}, TTL, id="reserved-sig"),
        pytest.param({"selected_option": "x"}, TTL, id="reserved-selected-option"),
        pytest.param({"flag": True}, TTL, id="bool-value"),
        pytest.param({"ratio": 0.5}, TTL, id="float-value"),
        pytest.param({"nested": {"a": 1}}, TTL, id="object-value"),
        pytest.param({"big": 2**60}, TTL, id="int-beyond-float64"),
        pytest.param({"text": "\ud800"}, TTL, id="lone-surrogate"),
        pytest.param({"has space": "x"}, TTL, id="key-not-identifier"),
        pytest.param({"k" * 33: "x"}, TTL, id="key-too-long"),
        pytest.param({"blob": "x" * MAX_PAYLOAD_BYTES}, TTL, id="too-big"),
        pytest.param(PAYLOAD, 0, id="ttl-zero"),
        pytest.param(PAYLOAD, -5, id="ttl-negative"),
    ],
)
def test_signing_refuses_what_cannot_round_trip(payload: dict[str, Any], ttl: int) -> None:
    with pytest.raises(ValueError):
        sign_context(SECRET, payload, NOW, ttl)
    with pytest.raises(ValueError):
        sign_state(SECRET, payload, NOW, ttl)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        sign_context("", PAYLOAD, NOW, TTL)
    with pytest.raises(ValueError):
        verify_context(SecretStr(""), {"sig": "x"}, NOW)


# -- signed dialog state ------------------------------------------------------------------


def test_state_round_trip() -> None:
    state = sign_state(SECRET, PAYLOAD, NOW, 600)
    assert isinstance(state, str)
    assert verify_state(SecretStr(SECRET), state, NOW + 599) == PAYLOAD


def test_state_from_a_dialog_submission() -> None:
    state = sign_state(SECRET, {"form": "resolve", "incident": "INC-12", "version": 4}, NOW, 600)
    submission = dialog_submission_payload(
        callback_id="resolve",
        state=state,
        user_id=USER_ID,
        channel_id="j6j53p28k6urx15fpcgsr20psq",
        team_id=TEAM_ID,
        submission={"resolution": "Rolled back"},
    )
    received = json.loads(json.dumps(submission))
    assert verify_state(SECRET, received["state"], NOW + 30) == {
        "form": "resolve",
        "incident": "INC-12",
        "version": 4,
    }


def test_state_expires() -> None:
    state = sign_state(SECRET, PAYLOAD, NOW, 600)
    assert verify_state(SECRET, state, int(NOW) + 600) == PAYLOAD
    with pytest.raises(InvalidWebhook) as caught:
        verify_state(SECRET, state, int(NOW) + 601)
    assert caught.value.http_status == 401
    assert caught.value.details["reason"] == "expired"


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def _one_char_too_many(state: str) -> str:
    """``state`` with a payload of 4n+1 characters, which no base64 string has."""
    encoded, signature = state.split(".")
    return encoded + "A" * ((1 - len(encoded)) % 4 or 4) + "." + signature


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        pytest.param(lambda s: _flip(s, 3), "signature mismatch", id="payload-changed"),
        pytest.param(lambda s: _flip(s, len(s) - 5), "signature mismatch", id="signature-changed"),
        pytest.param(lambda s: s.split(".")[0], "malformed state", id="no-signature"),
        pytest.param(lambda s: s.split(".")[0] + ".", "malformed state", id="empty-signature"),
        pytest.param(lambda s: "." + s.split(".")[1], "malformed state", id="empty-payload"),
        pytest.param(
            lambda s: s.replace("-", "+").replace("_", "/") + "=", "malformed state", id="not-base64url"
        ),
        pytest.param(_one_char_too_many, "malformed state", id="bad-base64-length"),
        pytest.param(lambda s: "", "missing state", id="empty"),
        pytest.param(lambda s: "somestate", "malformed state", id="docs-example"),
    ],
)
def test_changed_or_foreign_state_is_refused(mangle: Any, reason: str) -> None:
    state = sign_state(SECRET, PAYLOAD, NOW, 600)
    with pytest.raises(InvalidWebhook) as caught:
        verify_state(SECRET, mangle(state), NOW)
    assert caught.value.http_status == 401
    assert caught.value.details["reason"] == reason


def test_state_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(InvalidWebhook) as caught:
        verify_state(SECRET, sign_state(OTHER_SECRET, PAYLOAD, NOW, 600), NOW)
    assert caught.value.details["reason"] == "signature mismatch"


def test_state_is_not_a_context_and_a_context_is_not_a_state() -> None:
    """Each signature says what it is for: one cannot be passed off as the other."""
    state = sign_state(SECRET, PAYLOAD, NOW, TTL)
    encoded, signature = state.split(".")
    fields = json.loads(_b64decode(encoded))
    with pytest.raises(InvalidWebhook) as caught:
        verify_context(SECRET, {**fields, SIGNATURE_KEY: signature}, NOW)
    assert caught.value.details["reason"] == "signature mismatch"

    context = sign_context(SECRET, PAYLOAD, NOW, TTL)
    body = {k: v for k, v in context.items() if k != SIGNATURE_KEY}
    forged = f"{_b64encode(json.dumps(body, sort_keys=True, separators=(',', ':')))}.{context[SIGNATURE_KEY]}"
    with pytest.raises(InvalidWebhook) as caught:
        verify_state(SECRET, forged, NOW)
    assert caught.value.details["reason"] == "signature mismatch"


def test_state_is_not_a_missing_value() -> None:
    with pytest.raises(InvalidWebhook) as caught:
        verify_state(SECRET, None, NOW)
    assert caught.value.details["reason"] == "missing state"


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
