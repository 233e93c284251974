"""The local Teams (``tests/fakes/teams_server.py``) behaves as Microsoft documents.

Driven over HTTP with ``httpx``. Rate windows and token lifetimes run on a
:class:`ManualClock`, so nothing sleeps. A tiny endpoint in a thread plays the service where
the fake sends outgoing webhook requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.fakes.teams_server import (
    ADAPTIVE_CONTENT_TYPE,
    BOT_ISSUER,
    BOT_SCOPE,
    NOT_ADAPTIVE,
    OUTGOING_TIMEOUT,
    FakeTeams,
    ManualClock,
    hmac_signature,
    jwt_parts,
    verify_hmac,
    verify_jwt_with_jwks,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "teams"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def card(text: str = "DB down") -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


def envelope(content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CONTENT_TYPE, "content": content}]}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def teams(clock: ManualClock) -> Iterator[FakeTeams]:
    with FakeTeams(clock=clock) as fake:
        yield fake


@pytest.fixture
def live() -> Iterator[FakeTeams]:
    """On the real clock, for verifying JWTs with a library that reads the time itself."""
    with FakeTeams() as fake:
        yield fake


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


def bot_token(teams: FakeTeams, client: httpx.Client) -> str:
    answer = client.post(
        teams.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": teams.app_id,
            "client_secret": teams.app_password,
            "scope": BOT_SCOPE,
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


# -- a stand-in for the service's ingress --------------------------------------------------


class Endpoint:
    """Answers outgoing webhook requests with ``respond(body, headers) -> (status, json)``."""

    def __init__(self, respond: Callable[[bytes, dict[str, str]], tuple[int, Any]]) -> None:
        self.respond = respond
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = outer.respond(raw, {k.lower(): v for k, v in self.headers.items()})
                payload = json.dumps(answer).encode() if answer is not None else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/teams"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- outgoing webhooks (HMAC) ----------------------------------------------------------------


def test_outgoing_request_is_signed_as_documented(teams: FakeTeams) -> None:
    request = teams.outgoing_activity("declare sev2 DB down", user="bob")
    auth = request.headers["Authorization"]
    assert auth.startswith("HMAC ")
    # base64(HMAC-SHA256(key = base64-decoded secret, raw body)), computed independently.
    key = base64.b64decode(teams.outgoing_secret)
    assert auth == "HMAC " + base64.b64encode(hmac.new(key, request.body, hashlib.sha256).digest()).decode()
    assert verify_hmac(teams.outgoing_secret, request.body, auth)
    assert not verify_hmac(teams.outgoing_secret, request.body + b" ", auth)
    other = base64.b64encode(b"x" * 32).decode()
    assert not verify_hmac(other, request.body, auth)
    assert not verify_hmac(teams.outgoing_secret, request.body, None)
    forged = teams.outgoing_activity("declare sev2 DB down", secret=other)
    assert not verify_hmac(teams.outgoing_secret, forged.body, forged.headers["Authorization"])
    assert "Authorization" not in teams.outgoing_activity("x", signature="").headers


def test_outgoing_activity_has_the_documented_shape(teams: FakeTeams) -> None:
    data = teams.outgoing_activity("declare sev2 DB down", user="bob").data
    documented = fixture("outgoing_webhook_activity.json")
    assert not set(documented) - set(data)
    assert data["type"] == "message"
    assert data["text"] == f"<at>{teams.bot_name}</at> declare sev2 DB down"
    assert set(data["from"]) == {"id", "name", "aadObjectId"}
    assert data["conversation"]["conversationType"] == "channel"
    channel = teams.conversation_id("incidents")
    assert data["conversation"]["id"] == f"{channel};messageid={data['id']}"
    assert set(documented["channelData"]) - {"onBehalfOf"} <= set(data["channelData"])
    assert data["channelData"]["teamsChannelId"] == channel
    assert data["channelData"]["tenant"]["id"] == teams.tenant_id
    mention = next(e for e in data["entities"] if e["type"] == "mention")
    assert mention["text"] == f"<at>{teams.bot_name}</at>"
    assert data["serviceUrl"] and data["timestamp"].endswith("Z")


def test_send_outgoing_records_what_teams_shows(teams: FakeTeams) -> None:
    def respond(body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        if not verify_hmac(teams.outgoing_secret, body, headers.get("authorization")):
            return 401, None
        text = json.loads(body)["text"]
        attachment = {
            "contentType": ADAPTIVE_CONTENT_TYPE,
            "content": {
                **card("INC-1"),
                "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://x"}],
            },
        }
        return 200, {"type": "message", "text": f"got {text}", "attachments": [attachment]}

    endpoint = Endpoint(respond)
    try:
        answer = teams.send_outgoing(endpoint.url, "declare sev2 DB down")
        assert answer.status == 200 and answer.shown is not None
        assert answer.shown["text"] == f"got <at>{teams.bot_name}</at> declare sev2 DB down"
        assert answer.shown["unsupported_actions"] == []
        forged = teams.deliver_outgoing(
            teams.outgoing_activity("ack", signature="HMAC AAAA", url=endpoint.url)
        )
        assert forged.status == 401 and forged.shown and forged.shown["error"] == "HTTP 401"
        shown = teams.replies("incidents")
        assert [s.get("error") for s in shown] == [None, "HTTP 401"]
        assert [c.status for c in teams.calls("outgoing_reply")] == [200, 401]
    finally:
        endpoint.close()


def test_send_outgoing_flags_submit_buttons_and_gives_up_on_timeout(teams: FakeTeams) -> None:
    assert OUTGOING_TIMEOUT == 5.0

    def respond(body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        if b"slow" in body:
            time.sleep(0.5)
        submit = {"type": "Action.Submit", "title": "Ack", "data": {"a": 1}}
        attachment = {"contentType": ADAPTIVE_CONTENT_TYPE, "content": {**card(), "actions": [submit]}}
        return 200, {"type": "message", "attachments": [attachment]}

    endpoint = Endpoint(respond)
    try:
        shown = teams.send_outgoing(endpoint.url, "status").shown
        assert shown and shown["unsupported_actions"] == ["Action.Submit"]
        late = teams.send_outgoing(endpoint.url, "slow", timeout=0.2)
        assert late.timed_out and late.shown and late.shown["error"] == "timeout"
    finally:
        endpoint.close()


# -- incoming webhooks: Workflows ------------------------------------------------------------


def test_workflow_shows_the_documented_envelope(teams: FakeTeams, client: httpx.Client) -> None:
    documented = fixture("adaptive_card_envelope.json")
    answer = client.post(teams.workflow_url("incidents"), json=documented)
    assert answer.status_code == 202 and answer.content == b""
    shown = teams.cards("incidents")
    assert [c["card"] for c in shown] == [documented["attachments"][0]["content"]]
    assert shown[0]["kind"] == "adaptive" and shown[0]["source"] == "workflow"
    assert teams.flow_runs("incidents")[0]["status"] == "Succeeded"
    assert teams.cards("general") == []


@pytest.mark.parametrize(
    "body",
    [
        card(),  # the bare card, without the envelope
        {"text": "hello"},  # a connector's simple text
        fixture("message_card.json"),
        {
            "type": "message",
            "attachments": [{"contentType": ADAPTIVE_CONTENT_TYPE, "content": {"type": "Message"}}],
        },
        {"type": "message", "attachments": [{"contentType": "application/json", "content": card()}]},
    ],
)
def test_workflow_fails_wrong_envelopes_asynchronously(
    teams: FakeTeams, client: httpx.Client, body: Any
) -> None:
    answer = client.post(teams.workflow_url("incidents"), json=body)
    assert answer.status_code == 202  # accepted by the trigger all the same
    assert teams.cards("incidents") == []  # nothing shown
    run = teams.flow_runs("incidents")[-1]
    assert run["status"] == "Failed" and run["error"].startswith(NOT_ADAPTIVE)


def test_workflow_posts_each_attachment_in_order(teams: FakeTeams, client: httpx.Client) -> None:
    for text in ("one", "two"):
        assert client.post(teams.workflow_url("incidents"), json=envelope(card(text))).status_code == 202
    body = envelope(card("three"))
    body["attachments"].append({"contentType": ADAPTIVE_CONTENT_TYPE, "content": card("four")})
    client.post(teams.workflow_url("incidents"), json=body)
    assert [c["card"]["body"][0]["text"] for c in teams.cards("incidents")] == ["one", "two", "three", "four"]


def test_workflow_errors(teams: FakeTeams, client: httpx.Client) -> None:
    url = teams.workflow_url("incidents")
    assert client.post(url.replace("sig=", "sig=x"), json=envelope(card())).status_code == 401
    assert (
        client.post(url, content=b"{not json", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    teams.fail("workflow_post", status=503)
    assert client.post(url, json=envelope(card())).status_code == 503
    teams.fail("workflow_post", status=400)
    assert client.post(url, json=envelope(card())).status_code == 400
    teams.remove_webhook("incidents", "workflow")
    assert client.post(url, json=envelope(card())).status_code == 404
    assert teams.cards("incidents") == []
    assert [c.status for c in teams.calls("workflow_post")] == [401, 400, 503, 400, 404]


def test_workflow_rate_limits(teams: FakeTeams, client: httpx.Client, clock: ManualClock) -> None:
    url = teams.workflow_url("incidents")
    statuses = [client.post(url, json=envelope(card(str(i)))).status_code for i in range(5)]
    assert statuses == [202] * 4 + [429]
    limited = teams.calls("workflow_post")[-1]
    assert int(limited.response_headers["Retry-After"]) >= 1
    # 60 per 30 s: four a second for fifteen seconds fills the window.
    clock.advance(1)
    sent = 4
    while sent < 60:
        for _ in range(4):
            assert client.post(url, json=envelope(card())).status_code == 202
            sent += 1
        clock.advance(1)
    start_of_next = (int(clock() // 30) + 1) * 30
    assert client.post(url, json=envelope(card())).status_code == 429
    clock.advance(start_of_next - clock())
    assert client.post(url, json=envelope(card())).status_code == 202
    assert len(teams.cards("incidents")) == 61
    # Scripted 429 honours retry_after.
    teams.fail("workflow_post", status=429, retry_after=7)
    assert client.post(url, json=envelope(card())).headers["Retry-After"] == "7"


def test_workflow_hourly_limit(clock: ManualClock, client: httpx.Client) -> None:
    with FakeTeams(clock=clock) as teams:
        teams.set_limits("incidents", "workflow", ((1, 1000), (3600, 100)))
        url = teams.workflow_url("incidents")
        clock.advance(-(clock() % 3600))
        assert all(client.post(url, json=envelope(card())).status_code == 202 for _ in range(100))
        assert client.post(url, json=envelope(card())).status_code == 429


# -- incoming webhooks: legacy connectors --------------------------------------------------------


def test_connector_takes_the_documented_message_card(teams: FakeTeams, client: httpx.Client) -> None:
    documented = fixture("message_card.json")
    answer = client.post(teams.connector_url("incidents"), json=documented)
    assert (answer.status_code, answer.text) == (200, "1")
    assert client.post(teams.connector_url("incidents"), json={"text": "Hello World"}).text == "1"
    shown = teams.cards("incidents")
    assert [c["kind"] for c in shown] == ["messagecard", "messagecard"]
    assert shown[0]["card"] == documented and shown[0]["source"] == "connector"
    assert teams.webhook_url("incidents", "messagecard") == teams.connector_url("incidents")
    assert teams.webhook_url("incidents") == teams.workflow_url("incidents")


def test_connector_refuses_bad_payloads(teams: FakeTeams, client: httpx.Client) -> None:
    url = teams.connector_url("incidents")
    no_text = {"@type": "MessageCard", "@context": "http://schema.org/extensions", "sections": []}
    answer = client.post(url, json=no_text)
    assert answer.status_code == 400 and "Summary or Text is required" in answer.text
    assert client.post(url, content=b"nope", headers={"Content-Type": "application/json"}).status_code == 400
    assert teams.cards("incidents") == []


def test_connector_throttles_with_a_200_whose_body_says_429(
    teams: FakeTeams, client: httpx.Client, clock: ManualClock
) -> None:
    url = teams.connector_url("incidents")
    answers = [client.post(url, json={"text": f"n{i}"}) for i in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.text for a in answers[:4]] == ["1"] * 4
    # The documented check: the body "Contains" this text.
    assert "Microsoft Teams endpoint returned HTTP error 429" in answers[4].text
    assert len(teams.cards("incidents")) == 4  # the throttled one is not shown
    clock.advance(1)
    assert client.post(url, json={"text": "again"}).text == "1"
    teams.fail("connector_post", status=429)
    scripted = client.post(url, json={"text": "x"})
    assert scripted.status_code == 200 and "HTTP error 429" in scripted.text
    teams.fail("connector_post", status=429, real_429=True, retry_after=3)
    real = client.post(url, json={"text": "x"})
    assert real.status_code == 429 and real.headers["Retry-After"] == "3"
    teams.fail("connector_post", status=502)
    assert client.post(url, json={"text": "x"}).status_code == 502
    teams.remove_webhook("incidents", "connector")
    assert client.post(url, json={"text": "x"}).status_code == 404
    assert len(teams.cards("incidents")) == 5


# -- Bot Framework: metadata, keys, inbound tokens --------------------------------------------------


def test_openid_metadata_and_jwks(teams: FakeTeams, client: httpx.Client) -> None:
    metadata = client.get(teams.openid_metadata_url).json()
    documented = fixture("openid_metadata.json")
    assert set(metadata) == set(documented)
    assert metadata["issuer"] == documented["issuer"] == BOT_ISSUER
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = client.get(metadata["jwks_uri"]).json()["keys"]
    assert [k["kid"] for k in keys] == [teams.signing_key.kid]
    assert {"kty", "use", "kid", "n", "e", "endorsements"} <= set(keys[0])
    assert keys[0]["kty"] == "RSA" and "msteams" in keys[0]["endorsements"]


def _verify(token: str, jwks: dict[str, Any], teams: FakeTeams, **options: Any) -> dict[str, Any]:
    """Verify as the provider will: RS256 against the JWKS, issuer, audience, 5 min skew."""
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    return dict(
        jwt.decode(
            token,
            jwt.PyJWK(key, algorithm="RS256").key,
            algorithms=["RS256"],
            audience=teams.app_id,
            issuer=BOT_ISSUER,
            leeway=300,
            options={"require": ["exp", "nbf", "iss", "aud"]},
        )
    )


def test_inbound_jwt_verifies_against_the_jwks(live: FakeTeams, client: httpx.Client) -> None:
    teams = live
    jwks = client.get(teams.jwks_url).json()
    token = teams.inbound_jwt()
    header, _ = jwt_parts(token)
    assert header["alg"] == "RS256" and header["kid"] == teams.signing_key.kid
    claims = _verify(token, jwks, teams)
    assert claims["iss"] == BOT_ISSUER and claims["aud"] == teams.app_id
    assert claims["serviceurl"] == teams.service_url
    assert verify_jwt_with_jwks(token, jwks) == claims


def test_forged_tokens_are_told_apart(
    live: FakeTeams, teams: FakeTeams, client: httpx.Client, clock: ManualClock
) -> None:
    manual, teams = teams, live
    jwks = client.get(teams.jwks_url).json()
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(teams.inbound_jwt(foreign_key=True), jwks, teams)
    assert verify_jwt_with_jwks(teams.inbound_jwt(foreign_key=True), jwks) is None
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(teams.inbound_jwt(audience="someone-else"), jwks, teams)
    with pytest.raises(jwt.InvalidIssuerError):
        _verify(teams.inbound_jwt(issuer="https://evil.example"), jwks, teams)
    with pytest.raises(jwt.ExpiredSignatureError):
        _verify(teams.inbound_jwt(expired=True), jwks, teams)
    with pytest.raises(jwt.ImmatureSignatureError):
        _verify(teams.inbound_jwt(not_yet_valid=True), jwks, teams)
    # A wrong serviceurl verifies cryptographically; the claim is what gives it away.
    claims = _verify(teams.inbound_jwt(service_url="https://evil.example/"), jwks, teams)
    assert claims["serviceurl"] != teams.service_url
    # Within the 5 minute skew an expired token still passes (the clock is the fake's).
    fresh = manual.inbound_jwt(lifetime=60)
    clock.advance(200)
    assert _jwt_time_ok(fresh, clock(), skew=300)
    clock.advance(200)
    assert not _jwt_time_ok(fresh, clock(), skew=300)


def _jwt_time_ok(token: str, now: float, skew: float) -> bool:
    _, claims = jwt_parts(token)
    return bool(claims["nbf"] - skew <= now <= claims["exp"] + skew)


def test_key_rotation_needs_a_jwks_refresh(live: FakeTeams, client: httpx.Client) -> None:
    teams = live
    cached = client.get(teams.jwks_url).json()
    old_kid = teams.signing_key.kid
    new_kid = teams.rotate_keys()
    assert new_kid != old_kid
    token = teams.inbound_jwt()
    assert jwt_parts(token)[0]["kid"] == new_kid
    assert new_kid not in {k["kid"] for k in cached["keys"]}
    assert verify_jwt_with_jwks(token, cached) is None
    refreshed = client.get(teams.jwks_url).json()
    assert {k["kid"] for k in refreshed["keys"]} == {old_kid, new_kid}
    assert _verify(token, refreshed, teams)["aud"] == teams.app_id
    teams.rotate_keys(keep_old=False)
    assert len(client.get(teams.jwks_url).json()["keys"]) == 1
    assert len(teams.calls("jwks")) == 3


def test_bot_activity_and_submit_click(live: FakeTeams, client: httpx.Client) -> None:
    teams = live
    jwks = client.get(teams.jwks_url).json()
    request = teams.bot_activity("declare sev2 DB down")
    assert request.headers["Authorization"].startswith("Bearer ")
    claims = _verify(request.headers["Authorization"][7:], jwks, teams)
    assert claims["serviceurl"] == request.data["serviceUrl"]
    assert request.data["recipient"]["id"] == teams.bot_id
    channel = teams.conversation_id("incidents")
    assert request.data["conversation"]["id"] == f"{channel};messageid={request.data['id']}"
    dm = teams.add_conversation("alice-dm", "personal")
    personal = teams.bot_activity("status", conversation="alice-dm", mention=False)
    assert personal.data["conversation"] == {
        "conversationType": "personal",
        "tenantId": teams.tenant_id,
        "id": dm,
    }
    assert personal.data["text"] == "status"
    teams.add_conversation("war-room", "groupChat")
    assert teams.bot_activity("ack", conversation="war-room").data["conversation"]["isGroup"] is True
    assert "Authorization" not in teams.bot_activity("x", token="").headers

    token = bot_token(teams, client)
    posted = client.post(
        f"{teams.service_url}v3/conversations/{teams.conversation_id('incidents')}/activities",
        json={"type": "message", "attachments": [{"contentType": ADAPTIVE_CONTENT_TYPE, "content": card()}]},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    click = teams.submit_click(posted["id"], {"action": "ack", "incident": "INC-1", "v": 1}, user="bob")
    documented = fixture("card_action_activity.json")
    assert set(documented) - {"text"} <= set(click.data)
    assert click.data["type"] == "message"
    assert click.data["replyToId"] == posted["id"]
    assert click.data["value"] == {"action": "ack", "incident": "INC-1", "v": 1}
    assert click.data["from"]["name"] == "Bob"
    assert click.data["conversation"]["id"] == f"{channel};messageid={posted['id']}"
    _verify(click.headers["Authorization"][7:], jwks, teams)
    with pytest.raises(KeyError):
        teams.submit_click("nope", {})


# -- Bot Framework: token endpoint and connector API -----------------------------------------------


def test_token_endpoint(teams: FakeTeams, client: httpx.Client) -> None:
    good = {
        "grant_type": "client_credentials",
        "client_id": teams.app_id,
        "client_secret": teams.app_password,
        "scope": BOT_SCOPE,
    }
    answer = client.post(teams.token_url, data=good).json()
    assert set(answer) == set(fixture("token_response.json"))
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    wrong = client.post(teams.token_url, data={**good, "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert (
        client.post(teams.token_url, data={**good, "scope": "https://graph.microsoft.com/.default"}).json()[
            "error"
        ]
        == "invalid_scope"
    )
    assert client.post(teams.token_url, data={**good, "client_id": "x"}).status_code == 400
    assert client.post(teams.token_url, data={**good, "grant_type": "password"}).status_code == 400
    assert teams.calls("token")[0].json["scope"] == BOT_SCOPE
    basic = client.post(
        teams.token_url,
        data={"grant_type": "client_credentials", "scope": BOT_SCOPE},
        auth=(teams.app_id, teams.app_password),
    )
    assert basic.status_code == 200 and basic.json()["access_token"]


def test_connector_api_requires_a_token(teams: FakeTeams, client: httpx.Client, clock: ManualClock) -> None:
    url = f"{teams.service_url}v3/conversations/{teams.conversation_id('incidents')}/activities"
    message = {"type": "message", "text": "hello"}
    assert client.post(url, json=message).status_code == 401
    assert (
        client.post(url, json=message, headers={"Authorization": f"Bearer {teams.inbound_jwt()}"}).status_code
        == 401
    )
    token = bot_token(teams, client)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.post(url, json=message, headers=auth).status_code == 200
    clock.advance(3601)
    assert client.post(url, json=message, headers=auth).status_code == 401
    assert [a["text"] for a in teams.activities("incidents")] == ["hello"]


def test_post_update_in_place_and_reply(teams: FakeTeams, client: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {bot_token(teams, client)}"}
    cid = teams.conversation_id("incidents")
    base = f"{teams.service_url}v3/conversations/{cid}/activities"
    first = client.post(base, json=envelope(card("INC-1 open")), headers=auth)
    assert first.status_code == 200
    aid = first.json()["id"]
    second = client.post(base, json={"type": "message", "text": "other"}, headers=auth).json()["id"]
    updated = client.put(f"{base}/{aid}", json=envelope(card("INC-1 acknowledged")), headers=auth)
    assert updated.status_code == 200 and updated.json() == {"id": aid}
    reply = client.post(f"{base}/{aid}", json={"type": "message", "text": "ack by bob"}, headers=auth).json()
    shown = teams.activities("incidents")
    assert [a["id"] for a in shown] == [aid, second, reply["id"]]
    assert shown[0]["attachments"][0]["content"]["body"][0]["text"] == "INC-1 acknowledged"
    assert shown[0]["version"] == 2
    assert shown[2]["replyToId"] == aid
    assert [a["id"] for a in teams.activities(cid, replies=False)] == [aid, second]
    threaded = f"{teams.service_url}v3/conversations/{cid};messageid={aid}/activities"
    in_thread = client.post(threaded, json={"type": "message", "text": "in thread"}, headers=auth).json()
    assert teams.activity(in_thread["id"])["replyToId"] == aid  # type: ignore[index]
    # Conversation ids are URL-encoded by clients.
    quoted = base.replace(
        cid, httpx.URL("/" + cid).raw_path.decode()[1:].replace(":", "%3A").replace("@", "%40")
    )
    assert (
        client.put(f"{quoted}/{aid}", json={"type": "message", "text": "plain"}, headers=auth).status_code
        == 200
    )
    assert teams.activity(aid)["text"] == "plain"  # type: ignore[index]
    assert (
        client.put(f"{base}/missing", json={"type": "message", "text": "x"}, headers=auth).status_code == 404
    )
    missing_conversation = base.replace(cid, "19:nope@thread.tacv2")
    assert (
        client.post(missing_conversation, json={"type": "message", "text": "x"}, headers=auth).status_code
        == 404
    )
    assert client.post(base, json={"type": "message"}, headers=auth).status_code == 400
    ops = [c.op for c in teams.calls() if c.op.endswith("_activity")]
    assert ops[:4] == ["send_activity", "send_activity", "update_activity", "reply_activity"]


def test_connector_api_scripted_failures(teams: FakeTeams, client: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {bot_token(teams, client)}"}
    base = f"{teams.service_url}v3/conversations/{teams.conversation_id('incidents')}/activities"
    message = {"type": "message", "text": "hello"}
    teams.fail("send_activity", status=429, retry_after=2.5)
    limited = client.post(base, json=message, headers=auth)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json()["error"]["code"]
    teams.fail("send_activity", status=403)
    assert (
        client.post(base, json=message, headers=auth).json()["error"]["code"] == "BotNotInConversationRoster"
    )
    teams.fail("*", status=503)
    assert client.post(base, json=message, headers=auth).status_code == 503
    assert teams.activities("incidents") == []
    aid = client.post(base, json=message, headers=auth).json()["id"]
    teams.fail("update_activity", status=429)
    assert (
        client.put(f"{base}/{aid}", json={"type": "message", "text": "new"}, headers=auth).status_code == 429
    )
    assert teams.activity(aid)["text"] == "hello"  # type: ignore[index]


def test_wait_for_names_the_calls(teams: FakeTeams, client: httpx.Client) -> None:
    client.post(teams.workflow_url("incidents"), json=card())
    with pytest.raises(TimeoutError, match="workflow_post->202"):
        teams.wait_for(lambda: teams.cards("incidents"), timeout=0.05)
    assert teams.calls("workflow_post")[0].target == "incidents"


def test_docs_hmac_example_is_recorded_without_a_body() -> None:
    example = fixture("hmac_example.json")
    assert example["body"] is None
    assert len(base64.b64decode(example["secret"])) == 32
    assert example["authorization"].startswith("HMAC ")
    assert hmac_signature(example["secret"], b"{}").startswith("HMAC ")
