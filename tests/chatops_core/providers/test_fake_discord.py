"""The local Discord (``tests/fakes/discord_server.py``) behaves as Discord documents.

Driven over HTTP with ``httpx``. Time-dependent behaviour (interaction token expiry, posting
limits) runs on a :class:`ManualClock`, so nothing sleeps. A tiny Interactions Endpoint in a
thread plays the ingress where the fake sends signed requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.discord_server import (
    EPHEMERAL,
    INTERACTION_TOKEN_TTL,
    LOADING,
    FakeDiscord,
    ManualClock,
    UserRef,
    send,
    verify_signature,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "discord"
RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Bucket",
)
UA = "DiscordBot (https://github.com/example/chatops, 0.1.0)"

IM_COMMAND = {
    "name": "im",
    "type": 1,
    "description": "Incident management",
    "options": [
        {
            "type": 1,
            "name": "declare",
            "description": "Declare an incident",
            "options": [
                {"type": 3, "name": "title", "description": "What is wrong", "required": True},
                {
                    "type": 3,
                    "name": "severity",
                    "description": "sev1..sev4",
                    "required": False,
                    "choices": [{"name": "sev1", "value": "sev1"}, {"name": "sev2", "value": "sev2"}],
                },
            ],
        },
        {
            "type": 1,
            "name": "assign",
            "description": "Assign a role",
            "options": [
                {"type": 4, "name": "incident", "description": "Incident number", "required": True},
                {"type": 6, "name": "user", "description": "Who", "required": True},
            ],
        },
    ],
}


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def discord(clock: ManualClock) -> Iterator[FakeDiscord]:
    with FakeDiscord(clock=clock) as fake:
        yield fake


@pytest.fixture
def api(discord: FakeDiscord) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bot {discord.token}", "User-Agent": UA}
    with httpx.Client(base_url=discord.api_url, headers=headers, timeout=5) as client:
        yield client


class Endpoint:
    """An Interactions Endpoint that verifies signatures and answers with ``answer(body)``."""

    def __init__(self, public_key: str, answer: Callable[[dict[str, Any]], tuple[int, Any]]) -> None:
        self.public_key = public_key
        self.answer = answer
        self.received: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify_signature(
                    endpoint.public_key,
                    self.headers.get("X-Signature-Ed25519", ""),
                    self.headers.get("X-Signature-Timestamp", ""),
                    raw,
                )
                body: Any
                if not ok:
                    status, body = 401, "invalid request signature"
                else:
                    data = json.loads(raw)
                    endpoint.received.append(data)
                    status, body = (200, {"type": 1}) if data["type"] == 1 else endpoint.answer(data)
                payload = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/discord"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(discord: FakeDiscord) -> Iterator[Endpoint]:
    ep = Endpoint(discord.public_key_hex, lambda data: (200, {"type": 5, "data": {"flags": EPHEMERAL}}))
    yield ep
    ep.close()


def _got(value: dict[str, Any] | None) -> dict[str, Any]:
    assert value is not None
    return value


def _assert_rate_headers(headers: httpx.Headers) -> None:
    for name in RATE_HEADERS:
        assert name in headers, name


# -- auth, records ---------------------------------------------------------------------------


def test_wrong_or_missing_bot_token_is_401(discord: FakeDiscord) -> None:
    channel = discord.channel_id("incidents")
    for headers in (
        {},
        {"Authorization": "Bot nope"},
        {"Authorization": discord.token},
        {"Authorization": f"Bearer {discord.token}"},
    ):
        answer = httpx.post(
            f"{discord.api_url}/channels/{channel}/messages", json={"content": "x"}, headers=headers
        )
        assert answer.status_code == 401
        assert answer.json() == {"message": "401: Unauthorized", "code": 0}
    assert discord.messages("incidents") == []


def test_calls_are_recorded_with_user_agent(discord: FakeDiscord, api: httpx.Client) -> None:
    channel = discord.channel_id("incidents")
    assert api.post(f"/channels/{channel}/messages", json={"content": "hello"}).status_code == 200
    httpx.get(
        f"{discord.api_url}/channels/{channel}/messages", headers={"Authorization": f"Bot {discord.token}"}
    )
    call = discord.calls("create_message")[0]
    assert call.user_agent == UA and call.json == {"content": "hello"} and call.ok
    assert [c.op for c in discord.bad_user_agents()] == ["get_messages"]


# -- messages ------------------------------------------------------------------------------------


def test_create_edit_list_and_pin_messages(discord: FakeDiscord, api: httpx.Client) -> None:
    channel = discord.channel_id("incidents")
    card = {
        "content": "INC-1",
        "embeds": [
            {"title": "Database down", "description": "sev2", "fields": [{"name": "Lead", "value": "alice"}]}
        ],
        "components": [
            {
                "type": 1,
                "components": [
                    {"type": 2, "style": 1, "label": "Ack", "custom_id": "inc:1:ack"},
                    {"type": 2, "style": 5, "label": "Runbook", "url": "https://example.com"},
                ],
            }
        ],
    }
    created = api.post(f"/channels/{channel}/messages", json=card)
    assert created.status_code == 200
    message = created.json()
    assert isinstance(message["id"], str) and message["id"].isdigit()
    assert message["embeds"][0]["type"] == "rich" and message["author"]["bot"] is True
    _assert_rate_headers(created.headers)
    second = api.post(f"/channels/{channel}/messages", json={"content": "later"}).json()
    assert int(second["id"]) > int(message["id"])

    edited = api.patch(f"/channels/{channel}/messages/{message['id']}", json={"content": "INC-1 (acked)"})
    assert edited.status_code == 200 and edited.json()["edited_timestamp"]
    assert edited.json()["components"] == card["components"]

    listed = api.get(f"/channels/{channel}/messages").json()
    assert [m["id"] for m in listed] == [second["id"], message["id"]]  # newest first
    after = api.get(f"/channels/{channel}/messages", params={"after": message["id"], "limit": 10}).json()
    assert [m["id"] for m in after] == [second["id"]]
    assert api.get(f"/channels/{channel}/messages", params={"limit": 0}).json()["code"] == 50035

    pinned = api.put(f"/channels/{channel}/pins/{message['id']}")
    assert pinned.status_code == 204 and pinned.content == b""
    assert discord.pinned("incidents") == [message["id"]]
    missing = api.put(f"/channels/{channel}/pins/1234567890123456789")
    assert missing.status_code == 404 and missing.json() == {"message": "Unknown Message", "code": 10008}
    unknown = api.post("/channels/1234567890123456789/messages", json={"content": "x"})
    assert unknown.status_code == 404 and unknown.json() == {"message": "Unknown Channel", "code": 10003}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"embeds": [{"title": f"e{i}"} for i in range(11)]}, ["embeds"]),
        ({"embeds": [{"description": "x" * 4000}, {"description": "y" * 2001}]}, ["embeds"]),
        ({"content": "x" * 2001}, ["content"]),
        (
            {
                "content": "x",
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 2, "style": 1, "custom_id": f"b{i}", "label": "b"} for i in range(6)
                        ],
                    }
                ],
            },
            ["components", "0", "components"],
        ),
        (
            {
                "content": "x",
                "components": [
                    {"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "c" * 101, "label": "b"}]}
                ],
            },
            ["components", "0", "components", "0", "custom_id"],
        ),
        (
            {
                "content": "x",
                "components": [
                    {"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "", "label": "b"}]}
                ],
            },
            ["components", "0", "components", "0", "custom_id"],
        ),
        (
            {
                "content": "x",
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 2, "style": 1, "custom_id": "same"},
                            {"type": 2, "style": 2, "custom_id": "same"},
                        ],
                    }
                ],
            },
            ["components", "0", "components", "1", "custom_id"],
        ),
        (
            {
                "content": "x",
                "components": [{"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "a"}]}] * 6,
            },
            ["components"],
        ),
    ],
)
def test_over_the_limits_is_invalid_form_body(
    discord: FakeDiscord, api: httpx.Client, body: Any, path: list[str]
) -> None:
    answer = api.post(f"/channels/{discord.channel_id('incidents')}/messages", json=body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["code"] == 50035 and error["message"] == "Invalid Form Body"
    node = error["errors"]
    for key in path:
        node = node[key]
    assert node["_errors"][0]["code"] and node["_errors"][0]["message"]
    assert set(error) == set(_fixture("error_invalid_form_body.json"))
    assert discord.messages("incidents") == []


def test_empty_message_is_50006(discord: FakeDiscord, api: httpx.Client) -> None:
    answer = api.post(f"/channels/{discord.channel_id('incidents')}/messages", json={"content": ""})
    assert answer.status_code == 400 and answer.json()["code"] == 50006


# -- rate limits and scripted failures -----------------------------------------------------------


def test_scripted_429_has_documented_body_and_headers(discord: FakeDiscord, api: httpx.Client) -> None:
    channel = discord.channel_id("incidents")
    discord.fail("create_message", retry_after=64.57)
    answer = api.post(f"/channels/{channel}/messages", json={"content": "x"})
    documented = _fixture("rate_limited.json")
    assert answer.status_code == 429
    assert answer.json() == {"message": "You are being rate limited.", "retry_after": 64.57, "global": False}
    assert set(answer.json()) == set(documented["body"])
    assert answer.headers["Retry-After"] == documented["headers"]["Retry-After"] == "65"
    assert answer.headers["X-RateLimit-Scope"] == "user"
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    _assert_rate_headers(answer.headers)
    assert api.post(f"/channels/{channel}/messages", json={"content": "x"}).status_code == 200

    discord.fail("*", retry_after=2.5, is_global=True)
    answer = api.get(f"/channels/{channel}/messages")
    assert answer.json() == {"message": "You are being rate limited.", "retry_after": 2.5, "global": True}
    assert answer.headers["X-RateLimit-Global"] == "true" and answer.headers["X-RateLimit-Scope"] == "global"
    assert answer.headers["Retry-After"] == "3"

    discord.fail("edit_message", scope="shared")
    answer = api.patch(f"/channels/{channel}/messages/1", json={"content": "x"})
    assert answer.json()["message"] == _fixture("rate_limited_shared.json")["body"]["message"]


def test_channel_limit_answers_429_until_a_second_passes(
    discord: FakeDiscord, api: httpx.Client, clock: ManualClock
) -> None:
    channel = discord.channel_id("incidents")
    discord.limit_channel("incidents", per_second=2)
    statuses = [
        api.post(f"/channels/{channel}/messages", json={"content": str(i)}).status_code for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = discord.calls("create_message")[-1]
    assert 0 < limited.response["retry_after"] <= 1.0 and limited.response["global"] is False
    clock.advance(1.0)
    assert api.post(f"/channels/{channel}/messages", json={"content": "3"}).status_code == 200
    assert len(discord.messages("incidents")) == 3


def test_scripted_errors(discord: FakeDiscord, api: httpx.Client) -> None:
    channel = discord.channel_id("incidents")
    discord.fail("create_message", status=403)
    discord.fail("create_message", status=404)
    discord.fail("create_message", status=404, code=10008)
    discord.fail("create_message", status=502)
    answers = [api.post(f"/channels/{channel}/messages", json={"content": "x"}) for _ in range(5)]
    assert [a.status_code for a in answers] == [403, 404, 404, 502, 200]
    assert answers[0].json() == {"message": "Missing Permissions", "code": 50013}
    assert answers[1].json() == {"message": "Unknown Channel", "code": 10003}
    assert answers[2].json() == {"message": "Unknown Message", "code": 10008}
    assert answers[3].json()["code"] == 0
    assert set(answers[0].json()) == set(_fixture("error_response.json"))


# -- guild channels --------------------------------------------------------------------------


def test_guild_channels_and_permission_overwrites(discord: FakeDiscord, api: httpx.Client) -> None:
    bob = discord.user_id("bob")
    created = api.post(
        f"/guilds/{discord.guild_id}/channels",
        json={
            "name": "INC 42 Database Down",
            "type": 0,
            "topic": "sev2",
            "parent_id": discord.category_id,
            "permission_overwrites": [{"id": discord.guild_id, "type": 0, "deny": "1024"}],
        },
    )
    assert created.status_code == 201
    channel = created.json()
    assert channel["name"] == "inc-42-database-down" and channel["parent_id"] == discord.category_id
    assert channel["permission_overwrites"] == [
        {"id": discord.guild_id, "type": 0, "allow": "0", "deny": "1024"}
    ]
    assert channel["id"] in [c["id"] for c in api.get(f"/guilds/{discord.guild_id}/channels").json()]

    for body, key in (
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "topic": "t" * 1025}, "topic"),
        ({"name": "ok", "parent_id": "1234567890123456789"}, "parent_id"),
        ({"name": "ok", "permission_overwrites": [{"id": "1", "type": 3}]}, "permission_overwrites"),
    ):
        refused = api.post(f"/guilds/{discord.guild_id}/channels", json=body)
        assert refused.status_code == 400 and key in refused.json()["errors"], body
    assert api.post("/guilds/1234567890123456789/channels", json={"name": "x"}).json()["code"] == 10004

    granted = api.put(f"/channels/{channel['id']}/permissions/{bob}", json={"type": 1, "allow": "3072"})
    assert granted.status_code == 204
    assert {"id": bob, "type": 1, "allow": "3072", "deny": "0"} in _got(discord.channel(channel["id"]))[
        "permission_overwrites"
    ]
    assert api.delete(f"/channels/{channel['id']}/permissions/{bob}").status_code == 204
    assert bob not in [o["id"] for o in _got(discord.channel(channel["id"]))["permission_overwrites"]]

    patched = api.patch(
        f"/channels/{channel['id']}",
        json={
            "name": "archived-inc-42",
            "topic": "resolved",
            "parent_id": None,
            "permission_overwrites": [{"id": discord.guild_id, "type": 0, "deny": "2048"}],
        },
    )
    assert patched.status_code == 200 and patched.json()["name"] == "archived-inc-42"
    assert (
        patched.json()["parent_id"] is None and patched.json()["permission_overwrites"][0]["deny"] == "2048"
    )

    assert api.delete(f"/channels/{channel['id']}").status_code == 200
    assert api.get(f"/channels/{channel['id']}").json() == {"message": "Unknown Channel", "code": 10003}


def test_strict_channel_names(clock: ManualClock) -> None:
    with FakeDiscord(clock=clock, strict_channel_names=True) as fake:
        answer = httpx.post(
            f"{fake.api_url}/guilds/{fake.guild_id}/channels",
            json={"name": "Has Spaces"},
            headers={"Authorization": f"Bot {fake.token}"},
        )
        assert answer.status_code == 400 and "name" in answer.json()["errors"]


# -- application commands ----------------------------------------------------------------------


def test_bulk_overwrite_is_idempotent(discord: FakeDiscord, api: httpx.Client) -> None:
    path = f"/applications/{discord.application_id}/guilds/{discord.guild_id}/commands"
    first = api.put(path, json=[IM_COMMAND])
    assert first.status_code == 200
    again = api.put(path, json=[IM_COMMAND])
    assert again.json() == first.json()
    assert api.get(path).json() == first.json()
    assert first.json()[0]["id"].isdigit() and first.json()[0]["guild_id"] == discord.guild_id

    changed = dict(IM_COMMAND, description="Incidents")
    third = api.put(path, json=[changed]).json()
    assert third[0]["id"] == first.json()[0]["id"] and third[0]["version"] != first.json()[0]["version"]
    assert api.put(path, json=[]).json() == [] and discord.guild_commands() == []

    documented = api.put(
        f"/applications/{discord.application_id}/commands", json=[_fixture("application_command.json")]
    )
    assert documented.status_code == 200 and documented.json()[0]["name"] == "blep"
    assert api.get(f"/applications/{discord.application_id}/commands").json() == documented.json()
    other_app = api.get("/applications/1234567890123456789/commands")
    assert other_app.status_code == 403 and other_app.json()["code"] == 50001


@pytest.mark.parametrize(
    ("command", "where"),
    [
        (dict(IM_COMMAND, name="IM"), ["0", "name"]),
        (dict(IM_COMMAND, name="x" * 33), ["0", "name"]),
        (dict(IM_COMMAND, name="has space"), ["0", "name"]),
        (dict(IM_COMMAND, description=""), ["0", "description"]),
        (dict(IM_COMMAND, description="d" * 101), ["0", "description"]),
        (
            dict(IM_COMMAND, options=[{"type": 3, "name": f"o{i}", "description": "d"} for i in range(26)]),
            ["0", "options"],
        ),
        (
            dict(
                IM_COMMAND,
                options=[
                    {
                        "type": 1,
                        "name": "a",
                        "description": "d",
                        "options": [{"type": 1, "name": "b", "description": "d"}],
                    }
                ],
            ),
            ["0", "options", "0", "options", "0", "type"],
        ),
        (
            dict(
                IM_COMMAND,
                options=[
                    {"type": 1, "name": "a", "description": "d"},
                    {"type": 3, "name": "b", "description": "d"},
                ],
            ),
            ["0", "options"],
        ),
        (
            dict(
                IM_COMMAND,
                options=[
                    {"type": 3, "name": "a", "description": "d"},
                    {"type": 3, "name": "b", "description": "d", "required": True},
                ],
            ),
            ["0", "options", "1", "required"],
        ),
    ],
)
def test_invalid_commands_are_refused(
    discord: FakeDiscord, api: httpx.Client, command: dict[str, Any], where: list[str]
) -> None:
    answer = api.put(f"/applications/{discord.application_id}/commands", json=[command])
    assert answer.status_code == 400 and answer.json()["code"] == 50035
    node = answer.json()["errors"]
    for key in where:
        node = node[key]
    assert node["_errors"]
    assert discord.global_commands() == []


# -- Discord's side of interactions ------------------------------------------------------------


def test_requests_are_signed_as_discord_signs(discord: FakeDiscord) -> None:
    outgoing = discord.ping()
    signature = outgoing.headers["X-Signature-Ed25519"]
    timestamp = outgoing.headers["X-Signature-Timestamp"]
    assert len(signature) == 128 and len(discord.public_key_hex) == 64
    assert verify_signature(discord.public_key_hex, signature, timestamp, outgoing.body)
    assert not verify_signature(discord.public_key_hex, signature, timestamp, outgoing.body + b" ")
    assert not verify_signature(discord.public_key_hex, signature, str(int(timestamp) + 1), outgoing.body)
    other = FakeDiscord(seed=1)
    assert not verify_signature(other.public_key_hex, signature, timestamp, outgoing.body)
    assert outgoing.data == {k: v for k, v in json.loads(outgoing.body).items()}
    from nacl.signing import VerifyKey  # the docs' own Python example

    VerifyKey(bytes.fromhex(discord.public_key_hex)).verify(
        timestamp.encode() + outgoing.body, bytes.fromhex(signature)
    )


def test_interaction_payloads_have_the_documented_shape(discord: FakeDiscord, api: httpx.Client) -> None:
    api.put(f"/applications/{discord.application_id}/guilds/{discord.guild_id}/commands", json=[IM_COMMAND])
    documented = _fixture("interaction_slash_command.json")
    command = discord.command("assign", {"incident": 7, "user": "bob"}).data
    for key in (
        "id",
        "type",
        "token",
        "member",
        "guild_id",
        "channel_id",
        "data",
        "app_permissions",
        "locale",
    ):
        assert key in command and key in documented, key
    assert command["application_id"] == discord.application_id
    assert set(command["member"]["user"]) >= {"id", "username", "global_name"}
    sub = command["data"]["options"][0]
    assert sub["type"] == 1 and sub["name"] == "assign"
    bob = discord.user_id("bob")
    assert sub["options"] == [
        {"name": "incident", "type": 4, "value": 7},
        {"name": "user", "type": 6, "value": bob},
    ]
    assert command["data"]["resolved"]["users"][bob]["username"] == "bob"
    assert set(command["data"]["resolved"]["users"][bob]) >= set(
        _fixture("interaction_user_command.json")["data"]["resolved"]["users"]["809850198683418695"]
    ) - {"bot"}

    loose = discord.command(
        None, {"who": UserRef("carol"), "note": "x", "n": 2.5, "flag": True}, command="other"
    ).data
    assert [o["type"] for o in loose["data"]["options"]] == [6, 3, 10, 5]

    message_id = discord.add_message(
        "incidents",
        "card",
        user=discord.bot_user_id,
        components=[
            {"type": 1, "components": [{"type": 2, "style": 1, "label": "Ack", "custom_id": "inc:7:ack"}]}
        ],
    )
    click = discord.component_click(message_id, "inc:7:ack", user="carol").data
    component = _fixture("component_interaction.json")
    assert click["type"] == component["type"] == 3
    assert click["data"] == {"custom_id": "inc:7:ack", "component_type": 2}
    assert click["message"]["id"] == message_id and click["message"]["components"] == [
        {"type": 1, "components": [{"type": 2, "style": 1, "label": "Ack", "custom_id": "inc:7:ack"}]}
    ]
    assert set(component) - set(click) <= {"guild_id"} | set(click)

    label = discord.modal_submit({"title": "DB down"}, custom_id="declare", shape="label").data["data"]
    documented_label = _fixture("modal_submit_label.json")["data"]["components"][0]
    assert label["components"][0]["type"] == documented_label["type"] == 18
    assert set(label["components"][0]["component"]) == set(documented_label["component"])
    row = discord.modal_submit({"title": "DB down"}, custom_id="declare", shape="action_row").data["data"]
    documented_row = _fixture("modal_submit_action_row.json")["data"]["components"][0]
    assert row["components"][0]["type"] == documented_row["type"] == 1
    assert row["components"][0]["components"][0]["value"] == "DB down"
    assert set(documented_row["components"][0]) <= set(row["components"][0]["components"][0])


def test_deferred_command_then_edit_original(
    discord: FakeDiscord, endpoint: Endpoint, clock: ManualClock
) -> None:
    delivered = discord.run_command(endpoint.url, "declare", {"title": "DB down", "severity": "sev2"})
    assert delivered.status == 200 and delivered.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    token = endpoint.received[-1]["token"]
    thinking = discord.original(token)
    assert thinking is not None and thinking["flags"] == EPHEMERAL | LOADING
    assert discord.messages("incidents") == [] and discord.ephemeral_messages("alice")

    clock.advance(600)
    path = f"{discord.api_url}/webhooks/{discord.application_id}/{token}/messages/@original"
    edited = httpx.patch(path, json={"content": "Declared INC-1"})
    assert edited.status_code == 200
    assert edited.json()["content"] == "Declared INC-1" and edited.json()["flags"] == EPHEMERAL
    _assert_rate_headers(edited.headers)
    followup = httpx.post(
        f"{discord.api_url}/webhooks/{discord.application_id}/{token}", json={"content": "more"}
    )
    assert followup.status_code == 200 and discord.followups(token)[0]["id"] == followup.json()["id"]

    clock.advance(INTERACTION_TOKEN_TTL - 600 + 1)
    expired = httpx.patch(path, json={"content": "too late"})
    assert expired.status_code == 404 and expired.json() == {"message": "Unknown Webhook", "code": 10015}


def test_callback_endpoint_and_followup_after_deferral(discord: FakeDiscord, clock: ManualClock) -> None:
    outgoing = discord.command("declare", {"title": "x"})
    callback = f"{discord.api_url}/interactions/{outgoing.id}/{outgoing.token}/callback"
    answered = httpx.post(callback, json={"type": 5})
    assert answered.status_code == 204 and discord.response_type(outgoing) == 5
    again = httpx.post(callback, json={"type": 4, "data": {"content": "x"}})
    assert again.status_code == 400 and again.json()["code"] == 40060
    # A follow-up right after a type 5 edits the loading message (documented compatibility).
    followup = httpx.post(
        f"{discord.api_url}/webhooks/{discord.application_id}/{outgoing.token}", json={"content": "done"}
    )
    assert followup.json()["id"] == _got(discord.original(outgoing))["id"]
    assert [m["content"] for m in discord.messages("incidents")] == ["done"]

    late = discord.command("declare", {"title": "y"})
    clock.advance(3.5)
    refused = httpx.post(f"{discord.api_url}/interactions/{late.id}/{late.token}/callback", json={"type": 5})
    assert refused.status_code == 404 and refused.json()["code"] == 10062
    wrong = httpx.post(f"{discord.api_url}/interactions/{late.id}/nope/callback", json={"type": 1})
    assert wrong.status_code == 404

    component_type = discord.command("declare", {"title": "z"})
    bad = httpx.post(
        f"{discord.api_url}/interactions/{component_type.id}/{component_type.token}/callback",
        json={"type": 6},
    )
    assert bad.status_code == 400 and bad.json()["code"] == 50035


def test_click_deferred_update_then_edit_original_edits_the_card(
    discord: FakeDiscord, clock: ManualClock
) -> None:
    card = discord.add_message(
        "incidents",
        "INC-1",
        user=discord.bot_user_id,
        components=[
            {"type": 1, "components": [{"type": 2, "style": 1, "label": "Ack", "custom_id": "inc:1:ack"}]}
        ],
    )
    ep = Endpoint(discord.public_key_hex, lambda data: (200, {"type": 6}))
    try:
        delivered = discord.click(ep.url, card, "inc:1:ack", user="bob")
        assert delivered.status == 200
        token = ep.received[-1]["token"]
        assert discord.response_type(token) == 6 and _got(discord.original(token))["id"] == card
        edited = httpx.patch(
            f"{discord.api_url}/webhooks/{discord.application_id}/{token}/messages/@original",
            json={"content": "INC-1 acked by bob", "components": []},
        )
        assert edited.status_code == 200
        assert (
            _got(discord.message(card))["content"] == "INC-1 acked by bob"
            and _got(discord.message(card))["components"] == []
        )
    finally:
        ep.close()


def test_modal_round_trip_and_update_message(discord: FakeDiscord) -> None:
    answers = iter(
        [
            (
                200,
                {
                    "type": 9,
                    "data": {
                        "custom_id": "declare",
                        "title": "Declare an incident",
                        "components": [
                            {
                                "type": 18,
                                "label": "Title",
                                "component": {"type": 4, "custom_id": "title", "style": 1},
                            }
                        ],
                    },
                },
            ),
            (200, {"type": 4, "data": {"content": "Declared: DB down"}}),
        ]
    )
    ep = Endpoint(discord.public_key_hex, lambda data: next(answers))
    try:
        discord.run_command(ep.url, "declare")
        assert discord.modals()[-1]["data"]["custom_id"] == "declare"
        discord.submit_modal(ep.url, {"title": "DB down"})
        submitted = ep.received[-1]
        assert submitted["type"] == 5 and submitted["data"]["components"][0]["type"] == 18
        assert submitted["data"]["components"][0]["component"]["value"] == "DB down"
        assert [m["content"] for m in discord.messages("incidents")] == ["Declared: DB down"]
        assert [c.status for c in discord.calls("inline_response")] == [204, 204]
    finally:
        ep.close()

    card = discord.add_message(
        "incidents",
        "INC-2",
        user=discord.bot_user_id,
        components=[
            {
                "type": 1,
                "components": [{"type": 2, "style": 4, "label": "Resolve", "custom_id": "inc:2:resolve"}],
            }
        ],
    )
    ep = Endpoint(
        discord.public_key_hex, lambda data: (200, {"type": 7, "data": {"content": "INC-2 resolved"}})
    )
    try:
        discord.click(ep.url, card, "inc:2:resolve")
        assert _got(discord.message(card))["content"] == "INC-2 resolved"
    finally:
        ep.close()


def test_bad_signature_is_refused_by_a_verifying_endpoint(discord: FakeDiscord, endpoint: Endpoint) -> None:
    outgoing = discord.ping()
    forged = dict(outgoing.headers, **{"X-Signature-Ed25519": "00" * 64})
    assert send(outgoing, endpoint.url).json == {"type": 1}
    assert send(type(outgoing)(None, outgoing.body, forged, outgoing.data), endpoint.url).status == 401
    assert discord.run_ping(endpoint.url).json == {"type": 1}


def test_callback_with_response_modal_limits_and_delete_original(discord: FakeDiscord) -> None:
    outgoing = discord.command("declare", {"title": "x"})
    base = f"{discord.api_url}/interactions/{outgoing.id}/{outgoing.token}/callback"
    too_many = [
        {"type": 18, "label": f"L{i}", "component": {"type": 4, "custom_id": f"i{i}", "style": 1}}
        for i in range(6)
    ]
    refused = httpx.post(
        base, json={"type": 9, "data": {"custom_id": "m", "title": "T", "components": too_many}}
    )
    assert refused.status_code == 400 and refused.json()["code"] == 50035 and discord.modals() == []
    answered = httpx.post(base, params={"with_response": "true"}, json={"type": 4, "data": {"content": "hi"}})
    assert answered.status_code == 200
    assert answered.json()["resource"]["message"]["content"] == "hi"
    assert answered.json()["interaction"]["response_message_id"] == _got(discord.original(outgoing))["id"]
    original = f"{discord.api_url}/webhooks/{discord.application_id}/{outgoing.token}/messages/@original"
    assert httpx.get(original).json()["content"] == "hi"
    assert httpx.delete(original).status_code == 204
    assert discord.messages("incidents") == [] and httpx.get(original).json()["code"] == 10008

    submitted = discord.modal_submit({"title": "x"}, custom_id="declare")
    cannot = httpx.post(
        f"{discord.api_url}/interactions/{submitted.id}/{submitted.token}/callback",
        json={"type": 9, "data": {"custom_id": "m", "title": "T", "components": too_many[:1]}},
    )
    assert cannot.status_code == 400  # a MODAL_SUBMIT cannot answer another modal


def test_subcommand_groups_nest_one_level(discord: FakeDiscord, api: httpx.Client) -> None:
    group = {
        "type": 2,
        "name": "role",
        "description": "Roles",
        "options": [{"type": 1, "name": "get", "description": "Get"}],
    }
    ok = api.put(
        f"/applications/{discord.application_id}/commands",
        json=[dict(IM_COMMAND, options=[group]), {"type": 3, "name": "Open Incident"}],
    )
    assert ok.status_code == 200 and [c["type"] for c in ok.json()] == [1, 3]
    nested = dict(group, options=[dict(group, name="inner")])
    refused = api.put(
        f"/applications/{discord.application_id}/commands", json=[dict(IM_COMMAND, options=[nested])]
    )
    assert refused.status_code == 400 and refused.json()["code"] == 50035
