"""The local Mattermost (``tests/fakes/mattermost_server.py``) behaves as Mattermost documents.

Driven over HTTP with ``urllib`` (the venv has no ``requests``). Time-dependent behaviour
(trigger ids, response URLs, posting limits) runs on a :class:`ManualClock`, so nothing sleeps.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.fakes.mattermost_server import (
    COMMAND_RESPONSE,
    FakeMattermost,
    ManualClock,
    button_click_payload,
    dialog_submission_payload,
    send,
    slash_command_form,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mattermost"
ERROR_KEYS = {"id", "message", "detailed_error", "request_id", "status_code"}


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class Answer:
    def __init__(self, status: int, headers: dict[str, str], raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def text(self) -> str:
        return self.raw.decode()


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> Answer:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Answer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers.items()), error.read())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def mm(clock: ManualClock) -> Iterator[FakeMattermost]:
    with FakeMattermost(clock=clock) as server:
        yield server


def api(mm: FakeMattermost, method: str, path: str, body: Any = None, **kwargs: Any) -> Answer:
    kwargs.setdefault("token", mm.token)
    return http(method, mm.api_url + path, body, **kwargs)


def card(url: str = "http://integration.invalid/actions") -> dict[str, Any]:
    """Props with a message attachment holding two buttons (the interactive messages shape)."""
    return {
        "attachments": [
            {
                "pretext": "SEV-2 declared",
                "text": "Database timeouts",
                "actions": [
                    {
                        "id": "ack",
                        "name": "Acknowledge",
                        "integration": {"url": url, "context": {"action": "ack"}},
                    },
                    {
                        "id": "resolve",
                        "name": "Resolve",
                        "style": "danger",
                        "integration": {"url": url, "context": {"action": "resolve", "sig": "s3cr3t"}},
                    },
                ],
            }
        ]
    }


# -- authentication ----------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401_with_mattermosts_error_shape(mm: FakeMattermost) -> None:
    for token in (None, "not-the-token"):
        answer = api(mm, "GET", "/users/me", token=token)
        assert answer.status == 401
        error = answer.json
        assert set(error) == ERROR_KEYS
        assert error["id"] == "api.context.session_expired.app_error"
        assert error["status_code"] == 401
        assert error["request_id"] == answer.headers["X-Request-Id"]
        assert len(error["request_id"]) == 26
    assert set(_fixture("error_unauthorized.json")) == ERROR_KEYS
    # The documented error fields are all there (is_oauth only when true, as the server does).
    assert set(_fixture("error_response.json")) - {"is_oauth"} <= ERROR_KEYS
    assert [c.status for c in mm.calls("get_user")] == [401, 401]


def test_bearer_token_reads_users(mm: FakeMattermost) -> None:
    me = api(mm, "GET", "/users/me").json
    assert me["id"] == mm.bot_user_id and me["username"] == "incident-bot" and me["is_bot"] is True
    assert len(me["id"]) == 26 and me["id"].isalnum() and me["id"].islower()
    alice = api(mm, "GET", f"/users/{mm.user_id('alice')}").json
    assert alice["username"] == "alice"
    assert api(mm, "GET", "/users/username/bob").json["id"] == mm.user_id("bob")
    assert api(mm, "GET", "/users/username/nobody").status == 404
    assert api(mm, "GET", "/users/" + "x" * 26).json["id"] == "app.user.missing_account.const"
    assert api(mm, "GET", "/users/short").json["id"] == "api.context.invalid_url_param.app_error"


# -- posts -------------------------------------------------------------------------------------


def test_create_post_answers_the_post_without_action_integrations(
    mm: FakeMattermost, clock: ManualClock
) -> None:
    channel_id = mm.channel_id("incidents")
    answer = api(mm, "POST", "/posts", {"channel_id": channel_id, "message": "SEV-2", "props": card()})
    assert answer.status == 201
    post = answer.json
    assert len(post["id"]) == 26
    assert post["create_at"] == post["update_at"] == int(clock() * 1000)
    assert post["channel_id"] == channel_id and post["user_id"] == mm.bot_user_id
    assert post["message"] == "SEV-2" and post["root_id"] == ""
    actions = post["props"]["attachments"][0]["actions"]
    # The server keeps integration url and context confidential: stored, never answered.
    assert [a["id"] for a in actions] == ["ack", "resolve"]
    assert all("integration" not in a for a in actions)
    stored = mm.posts("incidents")[-1]["props"]["attachments"][0]["actions"]
    assert stored[1]["integration"]["context"] == {"action": "resolve", "sig": "s3cr3t"}
    assert set(_fixture("post_response.json")) <= set(post)

    reply = api(mm, "POST", "/posts", {"channel_id": channel_id, "message": "note", "root_id": post["id"]})
    assert reply.status == 201 and reply.json["root_id"] == post["id"]
    assert mm.post(post["id"])["reply_count"] == 1
    bad_root = api(mm, "POST", "/posts", {"channel_id": channel_id, "message": "x", "root_id": "y" * 26})
    assert bad_root.status == 400 and bad_root.json["id"] == "api.post.create_post.root_id.app_error"
    unknown_channel = api(mm, "POST", "/posts", {"channel_id": "z" * 26, "message": "x"})
    assert unknown_channel.status == 403


def test_patch_keeps_omitted_fields_while_plain_put_blanks_them(mm: FakeMattermost) -> None:
    channel_id = mm.channel_id("incidents")
    post = api(mm, "POST", "/posts", {"channel_id": channel_id, "message": "SEV-2", "props": card()}).json
    api(mm, "POST", f"/posts/{post['id']}/pin")

    patched = api(mm, "PUT", f"/posts/{post['id']}/patch", {"message": "SEV-2 (acknowledged)"})
    assert patched.status == 200
    assert patched.json["message"] == "SEV-2 (acknowledged)"
    assert patched.json["props"]["attachments"][0]["actions"][0]["id"] == "ack"
    assert patched.json["is_pinned"] is True
    assert patched.json["edit_at"] > 0
    assert mm.post(post["id"])["props"]["attachments"][0]["actions"][0]["integration"]["context"] == {
        "action": "ack"
    }

    updated = api(mm, "PUT", f"/posts/{post['id']}", {"id": post["id"], "message": "resolved"})
    assert updated.status == 200
    # "omitted fields will be treated as blank": the card and the pin are gone.
    assert updated.json["message"] == "resolved"
    assert updated.json["props"] == {}
    assert updated.json["is_pinned"] is False

    blank = api(mm, "PUT", f"/posts/{post['id']}", {"id": post["id"], "props": card()})
    assert blank.json["message"] == ""
    mismatch = api(mm, "PUT", f"/posts/{post['id']}", {"id": "q" * 26, "message": "x"})
    assert mismatch.status == 400 and mismatch.json["id"] == "api.context.invalid_body_param.app_error"
    # The server answers an edit of a post it cannot load with a permission error.
    assert api(mm, "PUT", f"/posts/{'q' * 26}/patch", {"message": "x"}).status == 403
    assert api(mm, "GET", f"/posts/{post['id']}").json["message"] == ""
    assert [c.op for c in mm.calls() if c.op.endswith("_post")] == [
        "create_post",
        "pin_post",
        "patch_post",
        "update_post",
        "update_post",
        "update_post",
        "patch_post",
        "get_post",
    ]


def test_channel_posts_list_newest_first_and_ephemeral_posts(mm: FakeMattermost) -> None:
    channel_id = mm.channel_id("incidents")
    first = mm.add_post("incidents", "earlier, by a person")
    second = api(mm, "POST", "/posts", {"channel_id": channel_id, "message": "bot"}).json["id"]
    listing = api(mm, "GET", f"/channels/{channel_id}/posts?per_page=10").json
    assert listing["order"] == [second, first]
    assert set(listing["posts"]) == {first, second}
    assert api(mm, "GET", f"/channels/{channel_id}/posts?before={second}").json["order"] == [first]

    alice = mm.user_id("alice")
    ephemeral = api(
        mm,
        "POST",
        "/posts/ephemeral",
        {"user_id": alice, "post": {"channel_id": channel_id, "message": "only you"}},
    )
    assert ephemeral.status == 201 and ephemeral.json["type"] == "system_ephemeral"
    assert mm.ephemeral_posts("incidents")[0]["user_id"] == alice
    assert len(mm.posts("incidents")) == 2
    mm.ephemeral_allowed = False
    denied = api(
        mm, "POST", "/posts/ephemeral", {"user_id": alice, "post": {"channel_id": channel_id, "message": "x"}}
    )
    assert denied.status == 403 and denied.json["id"] == "api.context.permissions.app_error"


# -- channels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Incident-42",
        "incident 42",
        "-incident",
        "_incident",
        "a",
        "x" * 65,
        "inc.42",
        "inc/42",
        "",
        "ünïcode",
    ],
)
def test_channel_names_follow_mattermosts_rules(mm: FakeMattermost, name: str) -> None:
    answer = api(
        mm,
        "POST",
        "/channels",
        {"team_id": mm.team_id, "name": name, "display_name": "Incident 42", "type": "O"},
    )
    assert answer.status == 400
    assert answer.json["id"] == "model.channel.is_valid.2_or_more.app_error"


def test_create_channel_and_manage_it(mm: FakeMattermost) -> None:
    body = {
        "team_id": mm.team_id,
        "name": "inc-42_db-timeouts" + "x" * 46,  # 64 characters
        "display_name": "INC-42 Database timeouts",
        "type": "P",
        "purpose": "Incident 42",
        "header": "SEV-2",
    }
    created = api(mm, "POST", "/channels", body)
    assert created.status == 201
    channel = created.json
    assert channel["name"] == body["name"] and channel["type"] == "P" and channel["team_id"] == mm.team_id
    assert channel["creator_id"] == mm.bot_user_id and channel["header"] == "SEV-2"

    taken = api(mm, "POST", "/channels", {**body, "type": "O"})
    assert taken.status == 400 and taken.json["id"] == "store.sql_channel.save_channel.exists.app_error"
    bad_type = api(mm, "POST", "/channels", {**body, "name": "inc-43", "type": "D"})
    assert bad_type.json["id"] == "model.channel.is_valid.type.app_error"
    assert api(mm, "POST", "/channels", {**body, "name": "inc-44", "team_id": "t" * 26}).status == 403

    by_name = api(mm, "GET", f"/teams/{mm.team_id}/channels/name/{body['name']}")
    assert by_name.status == 200 and by_name.json["id"] == channel["id"]
    missing = api(mm, "GET", f"/teams/{mm.team_id}/channels/name/nope")
    assert missing.status == 404 and missing.json["id"] == "app.channel.get_by_name.missing.app_error"

    alice = mm.user_id("alice")
    member = api(mm, "POST", f"/channels/{channel['id']}/members", {"user_id": alice})
    assert member.status == 201 and member.json["user_id"] == alice
    assert alice in mm.channel(channel["id"])["members"]
    assert api(mm, "DELETE", f"/channels/{channel['id']}/members/{alice}").json == {"status": "OK"}
    assert api(mm, "DELETE", f"/channels/{channel['id']}/members/{alice}").status == 404

    patched = api(mm, "PUT", f"/channels/{channel['id']}/patch", {"header": "SEV-1 | commander @bob"})
    assert patched.json["header"] == "SEV-1 | commander @bob" and patched.json["purpose"] == "Incident 42"

    assert api(mm, "DELETE", f"/channels/{channel['id']}").json == {"status": "OK"}
    assert api(mm, "GET", f"/channels/{channel['id']}").json["delete_at"] > 0
    again = api(mm, "DELETE", f"/channels/{channel['id']}")
    assert again.status == 400 and again.json["id"] == "api.channel.delete_channel.deleted.app_error"
    archived = api(mm, "POST", "/posts", {"channel_id": channel["id"], "message": "x"})
    assert archived.json["id"] == "api.post.create_post.can_not_post_to_deleted.error"
    # An archived channel keeps its name.
    assert api(mm, "POST", "/channels", body).status == 400


def test_newest_servers_allow_one_character_names() -> None:
    with FakeMattermost(channel_name_min_length=1) as mm:
        body = {"team_id": mm.team_id, "name": "a", "display_name": "A", "type": "O"}
        assert api(mm, "POST", "/channels", body).status == 201
        assert api(mm, "POST", "/channels", {**body, "name": "B"}).json["id"] == (
            "model.channel.is_valid.1_or_more.app_error"
        )


# -- dialogs -----------------------------------------------------------------------------------


def test_dialog_trigger_is_valid_for_three_seconds_and_once(mm: FakeMattermost, clock: ManualClock) -> None:
    opened = _fixture("dialog_open.json")

    def open_dialog(trigger_id: str) -> Answer:
        return api(mm, "POST", "/actions/dialogs/open", {**opened, "trigger_id": trigger_id})

    trigger = mm.slash_command("declare").trigger_id
    clock.advance(2.9)
    assert open_dialog(trigger).json == {"status": "OK"}
    assert mm.dialogs()[0]["dialog"]["callback_id"] == "somecallbackid"
    assert mm.dialogs()[0]["user_id"] == mm.user_id("alice")
    assert open_dialog(trigger).status == 400  # used

    stale = mm.new_trigger_id("bob")
    clock.advance(3.1)
    expired = open_dialog(stale)
    assert expired.status == 400 and expired.json["id"] == "interactive_message.decode_trigger_id.expired"
    # The docs' own example trigger id was not issued here.
    assert open_dialog(opened["trigger_id"]).status == 400
    fresh = mm.new_trigger_id()
    assert api(mm, "POST", "/actions/dialogs/open", {**opened, "trigger_id": fresh, "url": ""}).status == 400
    untitled = {**opened, "trigger_id": fresh, "dialog": {**opened["dialog"], "title": "x" * 25}}
    assert api(mm, "POST", "/actions/dialogs/open", untitled).status == 400


# -- failures and limits -----------------------------------------------------------------------


def test_scripted_429_carries_mattermosts_rate_limit_headers_and_body(mm: FakeMattermost) -> None:
    channel_id = mm.channel_id("incidents")
    mm.fail("create_post", status=429, reset=7, limit=10)
    limited = api(mm, "POST", "/posts", {"channel_id": channel_id, "message": "x"})
    assert limited.status == 429
    assert limited.headers["X-Ratelimit-Limit"] == "10"
    assert limited.headers["X-Ratelimit-Remaining"] == "0"
    assert limited.headers["X-Ratelimit-Reset"] == "7"
    assert limited.headers["Retry-After"] == "7"
    assert limited.text.strip() == _fixture("rate_limited.json")["body"]
    assert mm.posts("incidents") == []
    assert api(mm, "POST", "/posts", {"channel_id": channel_id, "message": "x"}).status == 201

    mm.fail("patch_post", status=503)
    mm.fail("create_channel", status=403)
    post_id = mm.posts("incidents")[0]["id"]
    unavailable = api(mm, "PUT", f"/posts/{post_id}/patch", {"message": "y"})
    assert unavailable.status == 503 and set(unavailable.json) == ERROR_KEYS
    forbidden = api(
        mm, "POST", "/channels", {"team_id": mm.team_id, "name": "ok", "display_name": "Ok", "type": "O"}
    )
    assert forbidden.status == 403 and forbidden.json["id"] == "api.context.permissions.app_error"
    assert [c.status for c in mm.calls("create_post")] == [429, 201]


def test_per_channel_posting_limit(mm: FakeMattermost, clock: ManualClock) -> None:
    mm.limit_channel("incidents", per_second=2)
    channel_id = mm.channel_id("incidents")
    statuses = [
        api(mm, "POST", "/posts", {"channel_id": channel_id, "message": str(i)}).status for i in range(3)
    ]
    assert statuses == [201, 201, 429]
    limited = mm.calls("create_post")[-1]
    assert limited.response_headers["X-Ratelimit-Limit"] == "2"
    assert limited.response_headers["X-Ratelimit-Reset"] == "1"
    other = api(mm, "POST", "/posts", {"channel_id": mm.channel_id("off-topic"), "message": "x"})
    assert other.status == 201
    clock.advance(1.0)
    assert api(mm, "POST", "/posts", {"channel_id": channel_id, "message": "later"}).status == 201
    assert [p["message"] for p in mm.posts("incidents")] == ["0", "1", "later"]


# -- response URLs -----------------------------------------------------------------------------


def test_response_url_takes_five_posts_within_thirty_minutes(mm: FakeMattermost, clock: ManualClock) -> None:
    command = mm.slash_command("status", channel="incidents")
    url = command.response_url
    assert "/hooks/commands/" in url
    answers = [
        http("POST", url, {"response_type": "in_channel", "text": f"update {i}", "attachments": []})
        for i in range(5)
    ]
    assert [a.status for a in answers] == [200] * 5 and answers[0].text == "ok"
    sixth = http("POST", url, {"response_type": "ephemeral", "text": "too many"})
    assert sixth.status == 400 and sixth.json["id"] == "app.command_webhook.try_use.invalid"
    assert [r["text"] for r in mm.responses(url)] == [f"update {i}" for i in range(5)]
    assert [p["message"] for p in mm.posts("incidents")] == [f"update {i}" for i in range(5)]
    assert mm.posts("incidents")[0]["user_id"] == mm.user_id("alice")

    late = mm.slash_command("status")
    plain = http("POST", late.response_url, data=b"plain text works", headers={"Content-Type": "text/plain"})
    assert plain.status == 200 and mm.responses(late.response_url) == [{"text": "plain text works"}]
    assert mm.ephemeral_posts()[-1]["post"]["message"] == "plain text works"
    clock.advance(30 * 60 + 1)
    expired = http("POST", late.response_url, {"text": "too late"})
    assert expired.status == 404 and expired.json["id"] == "app.command_webhook.get.missing"
    mm.fail(COMMAND_RESPONSE, status=502)
    assert http("POST", mm.slash_command().response_url, {"text": "x"}).status == 502


# -- requests Mattermost sends to the integration ------------------------------------------------


def test_slash_command_request_has_the_documented_fields() -> None:
    documented = dict(parse_qsl((FIXTURES / "slash_command.txt").read_text(), keep_blank_values=True))
    body, headers = slash_command_form(**documented)
    assert dict(parse_qsl(body.decode(), keep_blank_values=True)) == documented
    assert list(documented) == sorted(documented)
    recorded = _fixture("slash_command_headers.json")
    for name in ("Authorization", "Content-Type", "User-Agent"):
        assert headers[name] == recorded[name]


def test_fake_builds_slash_command_click_and_submission(mm: FakeMattermost) -> None:
    command = mm.slash_command("declare sev2 Database timeouts", user="bob", channel="incidents")
    assert command.headers["Authorization"] == f"Token {mm.command_token}"
    assert command.data["token"] == mm.command_token
    assert command.data["user_name"] == "bob" and command.data["channel_name"] == "incidents"
    assert command.data["team_domain"] == "example" and command.data["team_id"] == mm.team_id
    assert command.data["text"] == "declare sev2 Database timeouts" and command.data["command"] == "/im"

    post_id = mm.add_post(
        "incidents", "card", user="incident-bot", props=card("http://ingress.invalid/webhooks/mm")
    )
    click = mm.button_click(post_id, "Resolve", user="carol")
    assert click.url == "http://ingress.invalid/webhooks/mm"
    documented = _fixture("button_click.json")
    assert set(documented) <= set(click.data)
    assert click.data["context"] == {"action": "resolve", "sig": "s3cr3t"}
    assert click.data["user_name"] == "carol" and click.data["post_id"] == post_id
    assert click.data["type"] == "button" and click.data["trigger_id"]
    assert set(click.data) == set(
        button_click_payload(
            user_id="",
            user_name="",
            post_id="",
            channel_id="",
            channel_name="",
            team_id="",
            team_domain="",
            trigger_id="",
            context={},
        )
    )

    api(mm, "POST", "/actions/dialogs/open", {**_fixture("dialog_open.json"), "trigger_id": click.trigger_id})
    submission = mm.dialog_submission({"realname": "INC-42"})
    assert submission.url == "http://localhost:5000/dialog_submit"
    assert (
        submission.data["type"] == "dialog_submission" and submission.data["callback_id"] == "somecallbackid"
    )
    assert submission.data["state"] == "somestate" and submission.data["user_id"] == mm.user_id("carol")
    assert set(submission.data) == set(_fixture("dialog_submission.json"))
    cancelled = dialog_submission_payload(
        callback_id="c",
        state="s",
        user_id="u",
        channel_id="c",
        team_id="t",
        submission={"a": 1},
        cancelled=True,
    )
    assert cancelled["submission"] == {} and cancelled["cancelled"] is True


@pytest.fixture
def integration() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local integration: slash commands answer in channel, clicks answer the docs' update."""
    received: list[dict[str, Any]] = []

    class Integration(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers["Content-Type"] == "application/json":
                received.append(json.loads(raw))
                answer = _fixture("action_response.json")
            else:
                received.append(dict(parse_qsl(raw.decode())))
                answer = {"response_type": "in_channel", "text": "declared"}
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Integration)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/mm", received
    finally:
        server.shutdown()
        server.server_close()


def test_round_trips_apply_the_integrations_answers(
    mm: FakeMattermost, integration: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = integration
    command = mm.run_slash_command(url, "declare sev2 x", user="bob")
    assert command.status == 200
    assert received[0]["text"] == "declare sev2 x" and received[0]["token"] == mm.command_token
    assert mm.posts("incidents")[-1]["message"] == "declared"
    assert mm.posts("incidents")[-1]["user_id"] == mm.user_id("bob")

    props = card(url)
    created = api(
        mm, "POST", "/posts", {"channel_id": mm.channel_id("incidents"), "message": "c", "props": props}
    )
    delivered = mm.click(created.json["id"], "ack", user="alice")
    assert delivered.status == 200
    assert received[1]["context"] == {"action": "ack"} and received[1]["user_name"] == "alice"
    # update.props {} clears the props (so the buttons); ephemeral_text goes to the clicker.
    post = mm.post(created.json["id"])
    assert post["message"] == "Updated!" and post["props"] == {}
    assert mm.ephemeral_posts("incidents")[-1]["user_id"] == mm.user_id("alice")
    assert mm.ephemeral_posts("incidents")[-1]["post"]["message"] == "You updated the post!"
    answer = send(mm.slash_command("help"), url)
    assert answer.status == 200 and answer.json["text"] == "declared"


def test_wait_for_names_the_calls_seen(mm: FakeMattermost) -> None:
    api(mm, "GET", "/users/me")
    with pytest.raises(TimeoutError, match=r"get_user->200"):
        mm.wait_for(lambda: mm.calls("create_post"), timeout=0.05)
    assert mm.wait_for(lambda: mm.calls("get_user"))[0].ok
