"""Teams request authentication, both modes, against the local Teams (tests/fakes/teams_server.py):
requests are the fake's outgoing-webhook and bot activities, forged with its knobs; the keys
come from its OpenID metadata and key set over HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from chatops_core.errors import InvalidWebhook
from chatops_core.providers.base import WebhookRequest
from chatops_core.providers.teams.config import TeamsSettings
from chatops_core.providers.teams.verify import MIN_REFRESH_SECONDS, TeamsVerifier, mode_of
from tests.fakes.teams_server import FakeTeams, ManualClock, Outgoing, hmac_signature


@pytest.fixture(scope="module")
def teams() -> Iterator[FakeTeams]:
    with FakeTeams() as fake:
        yield fake


def _settings(teams: FakeTeams, *, webhook: bool = True, bot: bool = True) -> TeamsSettings:
    extra: dict[str, Any] = {}
    if webhook:
        extra["outgoing_webhook_secret"] = SecretStr(teams.outgoing_secret)
    if bot:
        extra.update(app_id=teams.app_id, app_password=SecretStr(teams.app_password))
    return TeamsSettings(
        openid_metadata_url=teams.openid_metadata_url,
        channels={"incidents": {"webhook_url": teams.workflow_url("incidents")}},
        **extra,
    )


def _request(outgoing: Outgoing, body: bytes | None = None) -> WebhookRequest:
    return WebhookRequest(body=outgoing.body if body is None else body, headers=dict(outgoing.headers))


def test_mode_follows_the_authorization_scheme() -> None:
    def mode(value: str | None) -> str | None:
        return mode_of(WebhookRequest(b"{}", {"Authorization": value} if value is not None else {}))

    assert mode("HMAC abc=") == "webhook"
    assert mode("hmac abc=") == "webhook"
    assert mode("Bearer x.y.z") == "bot"
    assert mode("Basic dXNlcjpwYXNz") is None
    assert mode("") is None
    assert mode(None) is None


def test_genuine_requests_of_both_modes_pass(teams: FakeTeams) -> None:
    verifier = TeamsVerifier(_settings(teams))
    assert verifier.verify(_request(teams.outgoing_activity("declare sev2 DB down"))) == "webhook"
    assert verifier.verify(_request(teams.bot_activity("ack INC-1"))) == "bot"
    teams.add_conversation("dm-alice", "personal")
    assert (
        verifier.verify(_request(teams.bot_activity("list", conversation="dm-alice", mention=False))) == "bot"
    )


# name -> how the forged request is made from the fake
FORGED_WEBHOOK: dict[str, Callable[[FakeTeams], WebhookRequest]] = {
    "wrong secret": lambda t: _request(
        t.outgoing_activity("ack INC-1", secret="c2VjcmV0LW9mLXNvbWVvbmUtZWxzZS0wMTIzNDU2Nzg5")
    ),
    "altered body": lambda t: _request(
        o := t.outgoing_activity("ack INC-1"), o.body.replace(b"ack INC-1", b"resolve INC-1")
    ),
    "missing header": lambda t: _request(t.outgoing_activity("ack INC-1", signature="")),
    "not base64": lambda t: _request(t.outgoing_activity("ack INC-1", signature="HMAC not*base64")),
    "signature of another body": lambda t: _request(
        t.outgoing_activity("ack INC-1", signature=hmac_signature(t.outgoing_secret, b"{}"))
    ),
    "unknown scheme": lambda t: _request(t.outgoing_activity("ack INC-1", signature="Basic YWxpY2U6cHc=")),
}


@pytest.mark.parametrize("case", FORGED_WEBHOOK, ids=list(FORGED_WEBHOOK))
def test_forged_outgoing_webhook_requests_are_refused(teams: FakeTeams, case: str) -> None:
    verifier = TeamsVerifier(_settings(teams))
    with pytest.raises(InvalidWebhook) as refused:
        verifier.verify(FORGED_WEBHOOK[case](teams))
    assert refused.value.http_status == 401


FORGED_BOT: dict[str, Callable[[FakeTeams], WebhookRequest]] = {
    "wrong audience": lambda t: _request(t.bot_activity("ack INC-1", audience="another-app")),
    "wrong issuer": lambda t: _request(t.bot_activity("ack INC-1", issuer="https://sts.windows.net/x/")),
    "expired": lambda t: _request(t.bot_activity("ack INC-1", expired=True)),
    "not yet valid": lambda t: _request(t.bot_activity("ack INC-1", not_yet_valid=True)),
    "foreign key under a listed kid": lambda t: _request(t.bot_activity("ack INC-1", foreign_key=True)),
    "foreign key under its own kid": lambda t: _request(
        t.bot_activity("ack INC-1", foreign_key=True, kid=t.foreign_key.kid)
    ),
    "serviceurl mismatch": lambda t: _request(
        t.bot_activity("ack INC-1", service_url="https://evil.example/teams/")
    ),
    "body's serviceUrl changed": lambda t: _request(
        o := t.bot_activity("ack INC-1"),
        o.body.replace(t.service_url.encode(), b"https://evil.example/teams/"),
    ),
    "missing header": lambda t: _request(t.bot_activity("ack INC-1", token="")),
    "not a JWT": lambda t: _request(t.bot_activity("ack INC-1", token="not-a-token")),
    "alg none": lambda t: _request(
        t.bot_activity("ack INC-1", token=_unsigned(t.inbound_jwt(), t.signing_key.kid))
    ),
    "HS256 instead of RS256": lambda t: _request(
        t.bot_activity("ack INC-1", token=_hs256(t.inbound_jwt(), t.signing_key.kid))
    ),
}


def _b64(data: dict[str, Any]) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    import base64

    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _unsigned(token: str, kid: str) -> str:
    return f"{_b64({'alg': 'none', 'kid': kid, 'typ': 'JWT'})}.{_b64(_claims(token))}."


def _hs256(token: str, kid: str) -> str:
    import base64
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'kid': kid, 'typ': 'JWT'})}.{_b64(_claims(token))}"
    signature = hmac.new(kid.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@pytest.mark.parametrize("case", FORGED_BOT, ids=list(FORGED_BOT))
def test_forged_bot_activities_are_refused(teams: FakeTeams, case: str) -> None:
    verifier = TeamsVerifier(_settings(teams))
    with pytest.raises(InvalidWebhook) as refused:
        verifier.verify(FORGED_BOT[case](teams))
    assert refused.value.http_status == 401


def test_a_mode_that_is_not_configured_is_refused(teams: FakeTeams) -> None:
    webhook_only = TeamsVerifier(_settings(teams, bot=False))
    bot_only = TeamsVerifier(_settings(teams, webhook=False))
    with pytest.raises(InvalidWebhook) as refused:
        webhook_only.verify(_request(teams.bot_activity("ack INC-1")))
    assert refused.value.http_status == 401
    with pytest.raises(InvalidWebhook) as refused:
        bot_only.verify(_request(teams.outgoing_activity("ack INC-1")))
    assert refused.value.http_status == 401


def test_rotated_keys_are_fetched_again_once_the_interval_allows() -> None:
    clock = ManualClock(start=1000.0)
    with FakeTeams() as teams:
        verifier = TeamsVerifier(_settings(teams), clock=clock)
        assert verifier.verify(_request(teams.bot_activity("ack INC-1"))) == "bot"
        teams.rotate_keys(keep_old=False)
        # Keys were fetched a moment ago: the new kid is refused rather than fetched again.
        with pytest.raises(InvalidWebhook):
            verifier.verify(_request(teams.bot_activity("ack INC-1")))
        clock.advance(MIN_REFRESH_SECONDS)
        assert verifier.verify(_request(teams.bot_activity("ack INC-1"))) == "bot"
        assert len(teams.calls("jwks")) == 2


def test_a_flood_of_unknown_kids_fetches_the_keys_at_most_once_per_interval() -> None:
    clock = ManualClock(start=1000.0)
    with FakeTeams() as teams:
        verifier = TeamsVerifier(_settings(teams), clock=clock)
        assert verifier.verify(_request(teams.bot_activity("ack INC-1"))) == "bot"
        for n in range(50):
            with pytest.raises(InvalidWebhook):
                verifier.verify(
                    _request(teams.bot_activity("ack INC-1", foreign_key=True, kid=f"made-up-{n}"))
                )
            clock.advance(0.5)  # 25 s in all: still within one interval
        assert len(teams.calls("jwks")) == 1
        clock.advance(MIN_REFRESH_SECONDS)
        for n in range(20):
            with pytest.raises(InvalidWebhook):
                verifier.verify(_request(teams.bot_activity("ack INC-1", foreign_key=True, kid=f"again-{n}")))
        assert len(teams.calls("jwks")) == 2
        # A genuine token still passes from the cache, with no fetch.
        assert verifier.verify(_request(teams.bot_activity("ack INC-1"))) == "bot"
        assert len(teams.calls("jwks")) == 2


def test_a_failed_key_fetch_refuses_the_request_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(start=1000.0)
    with FakeTeams() as teams:
        verifier = TeamsVerifier(_settings(teams), clock=clock)
        teams.fail("jwks", times=2, status=503)
        token_seen = teams.bot_activity("ack INC-1")
        with caplog.at_level(logging.WARNING, logger="chatops_core.providers.teams.verify"):
            for _ in range(2):
                with pytest.raises(InvalidWebhook) as refused:
                    verifier.verify(_request(token_seen))
                assert refused.value.http_status == 401
                clock.advance(MIN_REFRESH_SECONDS)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        token = token_seen.headers["Authorization"].split(" ", 1)[1]
        assert token not in caplog.text and token.split(".")[2] not in caplog.text
        # The metadata answers again: the next request passes.
        assert verifier.verify(_request(teams.bot_activity("ack INC-1"))) == "bot"
