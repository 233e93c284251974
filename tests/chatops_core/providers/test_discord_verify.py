"""Discord interaction signatures: only a request signed by the application's key, with a
fresh timestamp, passes; every forgery is 401."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from chatops_core.errors import InvalidWebhook
from chatops_core.providers.base import WebhookRequest
from chatops_core.providers.discord.verify import signature_valid, verify_interaction, verify_key
from tests.fakes.discord_server import FakeDiscord

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "discord"

# RFC 8032 section 7.1, TEST 2 and TEST 3: published Ed25519 vectors (public key, message,
# signature), checked through the same verification the endpoint uses.
RFC8032 = [
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        yield server


def _request(body: bytes, headers: dict[str, str], at: float | None = None) -> WebhookRequest:
    return WebhookRequest(
        body=body, headers=headers, content_type="application/json", received_at=at or time.time()
    )


@pytest.mark.parametrize(("public", "message", "signature"), RFC8032)
def test_published_ed25519_vectors_verify_and_a_changed_byte_does_not(
    public: str, message: str, signature: str
) -> None:
    key = verify_key(public)
    assert signature_valid(key, bytes.fromhex(signature), bytes.fromhex(message))
    assert not signature_valid(key, bytes.fromhex(signature), bytes.fromhex(message) + b"!")
    flipped = bytearray(bytes.fromhex(signature))
    flipped[0] ^= 1
    assert not signature_valid(key, bytes(flipped), bytes.fromhex(message))


@pytest.mark.parametrize(
    "name", ["interaction_slash_command.json", "component_interaction.json", "modal_submit_action_row.json"]
)
def test_documented_payloads_signed_as_discord_signs_pass(fake: FakeDiscord, name: str) -> None:
    body = json.dumps(json.loads((FIXTURES / name).read_text())).encode()
    verify_interaction(verify_key(fake.public_key_hex), _request(body, fake.signed_headers(body)))


def _forgeries(fake: FakeDiscord) -> dict[str, WebhookRequest]:
    body = fake.ping().body
    good = fake.signed_headers(body)
    other = SigningKey(bytes(range(32)))
    stamp = good["X-Signature-Timestamp"]
    wrong_key = dict(good, **{"X-Signature-Ed25519": other.sign(stamp.encode() + body).signature.hex()})
    old_stamp = str(int(time.time()) - 3600)
    return {
        "wrong key": _request(body, wrong_key),
        "altered body": _request(body.replace(b'"type":1', b'"type":2'), good),
        "altered timestamp": _request(body, dict(good, **{"X-Signature-Timestamp": str(int(stamp) + 1)})),
        "missing signature": _request(body, {k: v for k, v in good.items() if k != "X-Signature-Ed25519"}),
        "missing timestamp": _request(body, {k: v for k, v in good.items() if k != "X-Signature-Timestamp"}),
        "no headers": _request(body, {}),
        "signature not hex": _request(body, dict(good, **{"X-Signature-Ed25519": "zz" * 64})),
        "signature too short": _request(body, dict(good, **{"X-Signature-Ed25519": "00" * 63})),
        "old timestamp, validly signed": _request(body, fake.signed_headers(body, old_stamp)),
        "future timestamp, validly signed": _request(
            body, fake.signed_headers(body, str(int(time.time()) + 600))
        ),
        "timestamp not a number, validly signed": _request(body, fake.signed_headers(body, "soon")),
        "empty body, body's signature": _request(b"", good),
    }


def test_only_the_genuine_request_passes(fake: FakeDiscord) -> None:
    key = verify_key(fake.public_key_hex)
    body = fake.ping().body
    verify_interaction(key, _request(body, fake.signed_headers(body)))
    for what, forged in _forgeries(fake).items():
        with pytest.raises(InvalidWebhook) as refused:
            verify_interaction(key, forged)
        assert refused.value.http_status == 401, what


def test_a_timestamp_within_five_minutes_passes_and_beyond_does_not(fake: FakeDiscord) -> None:
    key = verify_key(fake.public_key_hex)
    body = fake.ping().body
    signed_at = 1_800_000_000
    headers = fake.signed_headers(body, str(signed_at))
    verify_interaction(key, _request(body, headers), now=signed_at + 299)
    verify_interaction(key, _request(body, headers), now=signed_at - 299)
    for now in (signed_at + 301, signed_at - 301):
        with pytest.raises(InvalidWebhook):
            verify_interaction(key, _request(body, headers), now=now)
