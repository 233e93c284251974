"""The Mattermost client against the local Mattermost (``tests/fakes/mattermost_server.py``).

Each call's effect is checked in the fake's state and recorded requests; each failure the
fake can play is checked to become the right error of :mod:`chatops_core.errors`. Time runs
on a :class:`ManualClock`, so nothing sleeps; the two network failures use a closed port and
a socket that never answers.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from chatops_core.errors import (
    AuthenticationFailed,
    ChannelNotFound,
    ChatOpsError,
    ConfigError,
    ConnectionFailed,
    MessageNotFound,
    NotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Retryable,
    ServerError,
    TriggerExpired,
    UserNotFound,
)
from chatops_core.providers.mattermost.client import MattermostClient, Post
from chatops_core.providers.mattermost.errors import (
    Asked,
    ChannelArchived,
    ChannelNameTaken,
    MissingPermission,
    ResponseUrlExpired,
    map_mattermost_response,
    parse_app_error,
    retry_after_seconds,
)
from tests.fakes.mattermost_server import FakeMattermost, ManualClock, app_error


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def mm(clock: ManualClock) -> Iterator[FakeMattermost]:
    with FakeMattermost(clock=clock) as server:
        yield server


@pytest.fixture
def client(mm: FakeMattermost) -> Iterator[MattermostClient]:
    with MattermostClient(mm.url, mm.token, timeout=2.0, user_agent="chatops-test/1") as api:
        yield api


def stored_post(mm: FakeMattermost, post_id: str) -> dict[str, Any]:
    """A post as the fake stores it (action integrations kept)."""
    post = mm.post(post_id)
    assert post is not None, f"the fake has no post {post_id}"
    return post


def members(mm: FakeMattermost, channel_id: str) -> list[str]:
    channel = mm.channel(channel_id)
    assert channel is not None, f"the fake has no channel {channel_id}"
    return list(channel["members"])


def card(key: str = "inc-42") -> dict[str, Any]:
    """Props with one attachment, two buttons and a key to find the post again."""
    return {
        "incident_key": key,
        "attachments": [
            {
                "text": "SEV-2 Database timeouts",
                "actions": [
                    {"id": "ack", "name": "Acknowledge", "integration": {"url": "http://x.invalid/a"}},
                    {"id": "resolve", "name": "Resolve", "integration": {"url": "http://x.invalid/a"}},
                ],
            }
        ],
    }


# -- users -------------------------------------------------------------------------------------


def test_users_and_the_headers_every_api_call_carries(mm: FakeMattermost, client: MattermostClient) -> None:
    me = client.me()
    assert me.id == mm.bot_user_id and me.username == "incident-bot" and me.is_bot
    alice = client.user(mm.user_id("alice"))
    assert alice.username == "alice" and not alice.is_bot and alice.first_name == "Alice"
    assert client.user_by_username("@bob").id == mm.user_id("bob")
    assert client.user_by_username("carol").raw["email"] == "carol@example.com"

    calls = mm.calls("get_user") + mm.calls("get_user_by_username")
    assert [c.path for c in mm.calls("get_user_by_username")] == [
        "/api/v4/users/username/bob",
        "/api/v4/users/username/carol",
    ]
    for call in calls:
        assert call.headers["authorization"] == f"Bearer {mm.token}"
        assert call.headers["user-agent"] == "chatops-test/1"
        assert call.ok


# -- posts -------------------------------------------------------------------------------------


def test_create_post_reply_and_get_post(mm: FakeMattermost, client: MattermostClient) -> None:
    channel_id = mm.channel_id("incidents")
    post = client.create_post(channel_id, "SEV-2 declared", props=card())
    assert isinstance(post, Post) and len(post.id) == 26
    assert post.channel_id == channel_id and post.user_id == mm.bot_user_id
    assert post.props["incident_key"] == "inc-42"
    # The server keeps action integrations to itself; the fake stores them.
    assert "integration" not in post.props["attachments"][0]["actions"][0]
    stored = stored_post(mm, post.id)
    assert stored["message"] == "SEV-2 declared"
    assert stored["props"]["attachments"][0]["actions"][0]["integration"]["url"] == "http://x.invalid/a"

    reply = client.create_post(channel_id, "a note", root_id=post.id)
    assert reply.root_id == post.id and stored_post(mm, post.id)["reply_count"] == 1
    assert mm.calls("create_post")[1].json == {
        "channel_id": channel_id,
        "message": "a note",
        "root_id": post.id,
    }

    fetched = client.get_post(post.id)
    assert fetched == post


def test_patch_post_is_always_the_patch_call_and_keeps_omitted_fields(
    mm: FakeMattermost, client: MattermostClient
) -> None:
    post = client.create_post(mm.channel_id("incidents"), "SEV-2", props=card())
    client.pin_post(post.id)

    patched = client.patch_post(post.id, message="SEV-2 (acknowledged)")
    assert patched.message == "SEV-2 (acknowledged)"
    assert patched.props["incident_key"] == "inc-42" and patched.is_pinned
    assert patched.edit_at > 0

    new_props = {**card(), "status": "resolved"}
    repropped = client.patch_post(post.id, props=new_props)
    assert repropped.message == "SEV-2 (acknowledged)" and repropped.props["status"] == "resolved"

    patches = mm.calls("patch_post")
    assert [(c.method, c.path) for c in patches] == [("PUT", f"/api/v4/posts/{post.id}/patch")] * 2
    assert patches[0].json == {"message": "SEV-2 (acknowledged)"}
    assert set(patches[1].json) == {"props"}
    # Never the plain PUT, which blanks every omitted field.
    assert mm.calls("update_post") == []
    with pytest.raises(ValueError):
        client.patch_post(post.id)


def test_channel_posts_newest_first_since_and_paging(
    mm: FakeMattermost, client: MattermostClient, clock: ManualClock
) -> None:
    channel_id = mm.channel_id("incidents")
    earlier = mm.add_post("incidents", "by a person")
    clock.advance(1)
    since_ms = int(clock() * 1000)
    clock.advance(1)
    first = client.create_post(channel_id, "one", props=card("inc-1"))
    clock.advance(1)
    second = client.create_post(channel_id, "two", props=card("inc-2"))

    assert [p.id for p in client.channel_posts(channel_id)] == [second.id, first.id, earlier]
    recent = client.channel_posts(channel_id, since_ms=since_ms)
    assert [p.id for p in recent] == [second.id, first.id]
    found = [p for p in recent if p.props.get("incident_key") == "inc-1"]
    assert found == [first]
    assert mm.calls("get_posts_for_channel")[1].params == {"since": str(since_ms)}

    assert [p.id for p in client.channel_posts(channel_id, per_page=1, page=1)] == [first.id]
    assert [p.id for p in client.channel_posts(channel_id, before=first.id)] == [earlier]
    with pytest.raises(ValueError):
        client.channel_posts(channel_id, since_ms=since_ms, per_page=10)


def test_pin_and_ephemeral_post(mm: FakeMattermost, client: MattermostClient) -> None:
    channel_id = mm.channel_id("incidents")
    post = client.create_post(channel_id, "pin me")
    client.pin_post(post.id)
    client.pin_post(post.id)
    assert stored_post(mm, post.id)["is_pinned"] is True

    alice = mm.user_id("alice")
    ephemeral = client.create_ephemeral_post(alice, channel_id, "only you", props={"k": "v"})
    assert ephemeral.type == "system_ephemeral" and ephemeral.message == "only you"
    [seen] = mm.ephemeral_posts("incidents")
    assert seen["user_id"] == alice and seen["post"]["props"] == {"k": "v"}
    assert [p["message"] for p in mm.posts("incidents")] == ["pin me"]

    mm.ephemeral_allowed = False
    with pytest.raises(MissingPermission) as caught:
        client.create_ephemeral_post(alice, channel_id, "x")
    assert caught.value.details["mattermost_error"] == "api.context.permissions.app_error"


# -- channels ----------------------------------------------------------------------------------


def test_create_find_patch_members_and_archive_a_channel(
    mm: FakeMattermost, client: MattermostClient
) -> None:
    channel = client.create_channel(
        mm.team_id, "inc-42-db", "INC-42 Database", purpose="Incident 42", header="SEV-2", private=True
    )
    assert channel.private and channel.name == "inc-42-db" and channel.team_id == mm.team_id
    assert mm.calls("create_channel")[0].json == {
        "team_id": mm.team_id,
        "name": "inc-42-db",
        "display_name": "INC-42 Database",
        "type": "P",
        "purpose": "Incident 42",
        "header": "SEV-2",
    }
    assert client.channel(channel.id) == channel
    assert client.channel_by_name(mm.team_id, "inc-42-db").id == channel.id

    alice = mm.user_id("alice")
    client.add_member(channel.id, alice)
    client.add_member(channel.id, alice)
    assert alice in members(mm, channel.id)
    assert client.remove_member(channel.id, alice) is True
    assert alice not in members(mm, channel.id)
    assert client.remove_member(channel.id, alice) is False

    patched = client.patch_channel(channel.id, header="SEV-1 | commander @bob")
    assert patched.header == "SEV-1 | commander @bob" and patched.purpose == "Incident 42"
    assert mm.calls("patch_channel")[0].json == {"header": "SEV-1 | commander @bob"}
    with pytest.raises(ValueError):
        client.patch_channel(channel.id)

    assert client.archive_channel(channel.id) is True
    assert client.channel(channel.id).archived
    assert client.archive_channel(channel.id) is False
    with pytest.raises(ChannelNotFound):
        client.channel_by_name(mm.team_id, "inc-42-db")
    assert client.channel_by_name(mm.team_id, "inc-42-db", include_deleted=True).archived
    with pytest.raises(ChannelArchived) as caught:
        client.create_post(channel.id, "too late")
    assert isinstance(caught.value, ChannelNotFound) and not caught.value.retryable


def test_a_taken_channel_name_is_its_own_permanent_error(
    mm: FakeMattermost, client: MattermostClient
) -> None:
    with pytest.raises(ChannelNameTaken) as caught:
        client.create_channel(mm.team_id, "incidents", "Incidents again")
    error = caught.value
    assert isinstance(error, Permanent) and error.code == "channel_name_taken"
    assert error.details["mattermost_error"] == "store.sql_channel.save_channel.exists.app_error"
    assert error.details["status"] == 400 and len(str(error.details["request_id"])) == 26


# -- dialogs and response URLs -----------------------------------------------------------------


def dialog() -> dict[str, Any]:
    return {
        "callback_id": "declare",
        "title": "Declare an incident",
        "elements": [{"display_name": "Title", "name": "title", "type": "text"}],
    }


def test_open_dialog_and_stale_or_used_triggers(
    mm: FakeMattermost, client: MattermostClient, clock: ManualClock
) -> None:
    trigger = mm.slash_command("declare").trigger_id
    client.open_dialog(trigger, "http://ingress.invalid/mm/dialog", dialog())
    [opened] = mm.dialogs()
    assert opened["dialog"]["callback_id"] == "declare" and opened["user_id"] == mm.user_id("alice")
    assert opened["url"] == "http://ingress.invalid/mm/dialog"

    with pytest.raises(TriggerExpired):
        client.open_dialog(trigger, "http://ingress.invalid/mm/dialog", dialog())  # used
    stale = mm.new_trigger_id("bob")
    clock.advance(3.1)
    with pytest.raises(TriggerExpired) as caught:
        client.open_dialog(stale, "http://ingress.invalid/mm/dialog", dialog())
    assert caught.value.details["mattermost_error"] == "interactive_message.decode_trigger_id.expired"
    with pytest.raises(TriggerExpired):
        client.open_dialog("bm90LWEtdHJpZ2dlcg==", "http://ingress.invalid/mm/dialog", dialog())
    # A refusal of the dialog itself is not about the trigger.
    with pytest.raises(ProviderError) as bad:
        client.open_dialog(mm.new_trigger_id(), "http://ingress.invalid/mm/dialog", {"title": ""})
    assert not isinstance(bad.value, TriggerExpired)


def test_post_response_until_the_url_is_used_up_or_expired(
    mm: FakeMattermost, client: MattermostClient, clock: ManualClock
) -> None:
    command = mm.slash_command("status", channel="incidents")
    for i in range(5):
        client.post_response(command.response_url, {"response_type": "in_channel", "text": f"update {i}"})
    assert [r["text"] for r in mm.responses(command.response_url)] == [f"update {i}" for i in range(5)]
    assert [p["message"] for p in mm.posts("incidents")] == [f"update {i}" for i in range(5)]
    # The bot token goes to the API only.
    assert all("authorization" not in c.headers for c in mm.calls("command_response"))

    with pytest.raises(ResponseUrlExpired) as used:
        client.post_response(command.response_url, {"text": "a sixth"})
    assert isinstance(used.value, Permanent)
    assert used.value.details["mattermost_error"] == "app.command_webhook.try_use.invalid"

    late = mm.slash_command("status")
    clock.advance(30 * 60 + 1)
    with pytest.raises(ResponseUrlExpired) as expired:
        client.post_response(late.response_url, {"text": "too late"})
    assert expired.value.details["status"] == 404
    assert late.response_url not in str(expired.value)

    mm.fail("command_response", status=502)
    with pytest.raises(ServerError):
        client.post_response(mm.slash_command().response_url, {"text": "x"})
    with pytest.raises(ProviderError):
        client.post_response("ftp://example.invalid/hooks/commands/x", {"text": "x"})


# -- how failures map --------------------------------------------------------------------------


def test_a_wrong_token_is_authentication_failed(mm: FakeMattermost) -> None:
    with MattermostClient(mm.url, "wrong-token-abcdefghijklmnop") as api:
        with pytest.raises(AuthenticationFailed) as caught:
            api.me()
    assert caught.value.details["mattermost_error"] == "api.context.session_expired.app_error"
    assert caught.value.details["status"] == 401


def test_permissions_are_a_permanent_missing_permission(mm: FakeMattermost, client: MattermostClient) -> None:
    mm.fail("create_channel", status=403)
    with pytest.raises(MissingPermission) as caught:
        client.create_channel(mm.team_id, "inc-1", "INC 1")
    assert isinstance(caught.value, Permanent) and caught.value.code == "missing_permission"
    # Mattermost answers an edit of a post it cannot load with 403 too.
    with pytest.raises(MissingPermission):
        client.patch_post("q" * 26, message="x")


@pytest.mark.parametrize(
    ("call", "expected", "error_id"),
    [
        (lambda c, m: c.user("x" * 26), UserNotFound, "app.user.missing_account.const"),
        (lambda c, m: c.user_by_username("nobody"), UserNotFound, "app.user.get_by_username.app_error"),
        (lambda c, m: c.channel("z" * 26), ChannelNotFound, "app.channel.get.existing.app_error"),
        (
            lambda c, m: c.channel_by_name(m.team_id, "nope"),
            ChannelNotFound,
            "app.channel.get_by_name.missing.app_error",
        ),
        (lambda c, m: c.channel_posts("z" * 26), ChannelNotFound, "app.channel.get.existing.app_error"),
        (lambda c, m: c.get_post("q" * 26), MessageNotFound, "app.post.get.app_error"),
        # The channel exists; the user named in the body does not.
        (
            lambda c, m: c.add_member(m.channel_id("incidents"), "x" * 26),
            UserNotFound,
            "app.user.missing_account.const",
        ),
    ],
)
def test_404_becomes_the_not_found_of_what_was_asked(
    mm: FakeMattermost,
    client: MattermostClient,
    call: Callable[[MattermostClient, FakeMattermost], object],
    expected: type[NotFound],
    error_id: str,
) -> None:
    with pytest.raises(expected) as caught:
        call(client, mm)
    assert caught.value.details["mattermost_error"] == error_id
    assert caught.value.details["status"] == 404 and not caught.value.retryable


def test_404_without_a_known_id_goes_by_what_was_asked() -> None:
    cases: list[tuple[Asked, type[NotFound]]] = [
        ("user", UserNotFound),
        ("channel", ChannelNotFound),
        ("post", MessageNotFound),
        ("other", NotFound),
    ]
    for asked, expected in cases:
        assert type(map_mattermost_response(404, {}, "not json", operation="x", asked=asked)) is expected
    # A path the server does not serve (an older server, a wrong URL) is no missing object.
    no_route = json.dumps(app_error(404, "api.context.404.app_error", "Sorry."))
    assert type(map_mattermost_response(404, {}, no_route, operation="x", asked="post")) is ProviderError


def test_429_is_rate_limited_with_the_servers_wait(mm: FakeMattermost, client: MattermostClient) -> None:
    channel_id = mm.channel_id("incidents")
    mm.fail("create_post", status=429, reset=7, limit=10)
    with pytest.raises(RateLimited) as caught:
        client.create_post(channel_id, "x")
    error = caught.value
    assert error.retry_after == 7.0 and isinstance(error, Retryable)
    assert error.details["limit"] == 10 and error.details["remaining"] == 0
    assert mm.posts("incidents") == []

    mm.limit_channel("incidents", per_second=1)
    client.create_post(channel_id, "first")
    with pytest.raises(RateLimited) as limited:
        client.create_post(channel_id, "second")
    assert limited.value.retry_after == 1.0
    assert [p["message"] for p in mm.posts("incidents")] == ["first"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_a_retryable_server_error(mm: FakeMattermost, client: MattermostClient, status: int) -> None:
    post = client.create_post(mm.channel_id("incidents"), "x")
    mm.fail("patch_post", status=status)
    with pytest.raises(ServerError) as caught:
        client.patch_post(post.id, message="y")
    assert caught.value.details["status"] == status and caught.value.retryable
    assert caught.value.details["mattermost_error"] == "fake.scripted_failure.app_error"
    assert stored_post(mm, post.id)["message"] == "x"


def test_other_refusals_are_provider_errors_with_mattermosts_id(
    mm: FakeMattermost, client: MattermostClient
) -> None:
    with pytest.raises(ProviderError) as caught:
        client.create_channel(mm.team_id, "Not A Name", "Bad")
    assert type(caught.value) is ProviderError
    assert caught.value.details["mattermost_error"] == "model.channel.is_valid.2_or_more.app_error"
    assert "model.channel.is_valid.2_or_more.app_error" in str(caught.value)


def test_a_refused_connection_never_reached_the_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with MattermostClient(f"http://127.0.0.1:{port}", "tok-refused-0123456789", timeout=1.0) as api:
        with pytest.raises(ConnectionFailed) as caught:
            api.create_post("c" * 26, "x")
    error = caught.value
    assert error.retryable and error.details["outcome_unknown"] is False
    assert error.details["operation"] == "create_post"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_a_read_timeout_may_have_reached_the_server(silent_server: int) -> None:
    with MattermostClient(f"http://127.0.0.1:{silent_server}", "tok-timeout-0123456789", timeout=0.2) as api:
        with pytest.raises(ConnectionFailed) as caught:
            api.create_post("c" * 26, "x")
    error = caught.value
    assert error.retryable and error.details["outcome_unknown"] is True
    assert error.details["transport_error"] == "ReadTimeout"


@pytest.mark.parametrize(
    ("raised", "outcome_unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow handshake"), False),
        (httpx.PoolTimeout("no free connection"), False),
        (httpx.WriteTimeout("slow write"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ],
)
def test_transport_failures_say_whether_the_request_may_have_gone_out(
    request: pytest.FixtureRequest, raised: httpx.TransportError, outcome_unknown: bool
) -> None:
    def fail(sent: httpx.Request) -> httpx.Response:
        raise raised

    api = MattermostClient("http://mm.invalid", "tok-mock-0123456789", transport=httpx.MockTransport(fail))
    request.addfinalizer(api.close)
    with pytest.raises(ConnectionFailed) as caught:
        api.create_post("c" * 26, "x")
    assert caught.value.details["outcome_unknown"] is outcome_unknown
    assert caught.value.details["transport_error"] == type(raised).__name__


def test_an_unreadable_success_answer_may_have_taken_effect(request: pytest.FixtureRequest) -> None:
    def garbled(sent: httpx.Request) -> httpx.Response:
        return httpx.Response(201, text="<html>proxy says hi</html>")

    api = MattermostClient("http://mm.invalid", "tok-mock-0123456789", transport=httpx.MockTransport(garbled))
    request.addfinalizer(api.close)
    with pytest.raises(ProviderError) as caught:
        api.create_post("c" * 26, "x")
    assert caught.value.details["outcome_unknown"] is True and not caught.value.retryable


def test_a_redirect_is_not_followed(request: pytest.FixtureRequest) -> None:
    def moved(sent: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "https://elsewhere.invalid/api/v4/posts"})

    api = MattermostClient("http://mm.invalid", "tok-mock-0123456789", transport=httpx.MockTransport(moved))
    request.addfinalizer(api.close)
    with pytest.raises(ProviderError, match="redirect"):
        api.create_post("c" * 26, "x")


def test_an_unusable_url_or_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        MattermostClient("chat.example.com", "t")
    with pytest.raises(ConfigError):
        MattermostClient("https://chat.example.com", " ")


# -- the token stays secret --------------------------------------------------------------------


def test_no_token_in_errors_reprs_or_logs(
    mm: FakeMattermost, silent_server: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = mm.token
    errors: list[ChatOpsError] = []
    with MattermostClient(mm.url, token, timeout=2.0) as api:
        assert token not in repr(api) and token not in str(vars(api))
        channel_id = mm.channel_id("incidents")
        # A server that echoes the token back in its message.
        mm.fail("create_post", status=400, error_id="api.post.bad", message=f"bad token {token}")
        mm.fail("get_post", status=503, message=f"{token} down")
        mm.fail("create_channel", status=429)
        for call in (
            lambda: api.create_post(channel_id, "x"),
            lambda: api.get_post("q" * 26),
            lambda: api.create_channel(mm.team_id, "inc-9", "INC 9"),
            lambda: api.user("x" * 26),
            lambda: api.create_channel(mm.team_id, "incidents", "Taken"),
            lambda: api.open_dialog("bm90", "http://x.invalid", dialog()),
        ):
            with pytest.raises(ChatOpsError) as caught:
                call()
            errors.append(caught.value)
    with MattermostClient(f"http://127.0.0.1:{silent_server}", token, timeout=0.1) as api:
        with pytest.raises(ConnectionFailed) as timed_out:
            api.me()
        errors.append(timed_out.value)
    with MattermostClient(mm.url, "a-wrong-token-0123456789") as api:
        with pytest.raises(AuthenticationFailed) as refused:
            api.me()
        errors.append(refused.value)

    assert "[redacted]" in str(errors[0])
    for error in errors:
        for text in (str(error), repr(error), repr(error.args), repr(error.details)):
            assert token not in text and "a-wrong-token-0123456789" not in text
    assert token not in caplog.text and "a-wrong-token-0123456789" not in caplog.text


# -- parsing helpers ---------------------------------------------------------------------------


def test_retry_after_reads_both_headers_and_takes_the_longer() -> None:
    assert retry_after_seconds({"X-Ratelimit-Reset": "4"}) == 4.0
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"X-Ratelimit-Reset": "2", "Retry-After": "5"}) == 5.0
    assert retry_after_seconds({}) == 1.0
    assert retry_after_seconds({"X-Ratelimit-Reset": "soon"}, default=2.5) == 2.5
    assert retry_after_seconds({"X-Ratelimit-Reset": "0"}) == 1.0
    now = 1_767_225_600.0
    assert retry_after_seconds({"X-Ratelimit-Reset": str(int(now) + 30)}, now=lambda: now) == 30.0
    later = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=12), usegmt=True)
    assert retry_after_seconds({"Retry-After": later}, now=lambda: now) == pytest.approx(12.0)


def test_parse_app_error_takes_mattermosts_error_body_only() -> None:
    body = app_error(403, "api.context.permissions.app_error", "No.", request_id="r" * 26)
    parsed = parse_app_error(json.dumps(body))
    assert parsed is not None and parsed.id == "api.context.permissions.app_error"
    assert parsed.status_code == 403 and parsed.request_id == "r" * 26
    assert parse_app_error("limit exceeded\n") is None
    assert parse_app_error(b"") is None
    assert parse_app_error('{"message": "no id"}') is None
