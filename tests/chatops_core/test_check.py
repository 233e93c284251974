"""`chatops check` says what is wrong with a provider in words an operator acts on.

Each provider is the real one, calling the local server that plays its platform, made to
fail the way the platform does (a refused token, a rate limit), or pointed at a port where
nothing listens or a name that does not resolve. A failure a credential check cannot see (a
scope only posting needs) is found in what a real delivery recorded in Redis.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from chatops_core.cli import main
from chatops_core.notifications import IncidentSnapshot, Notification
from chatops_core.provider_health import read_health
from tests.fakes.mattermost_server import FakeMattermost
from tests.fakes.slack_server import FakeSlack
from tests.workers.slack_runtime import slack_runtime
from workers.delivery import deliver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CHATOPS_CONFIG", "CHATOPS_BROKER_URL", "CHATOPS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATOPS_DATA_DIR", str(tmp_path / "var"))
    return tmp_path


def _slack_env(monkeypatch: pytest.MonkeyPatch, token: str, api_url: str) -> None:
    monkeypatch.setenv("CHATOPS_SLACK_BOT_TOKEN", token)
    monkeypatch.setenv("CHATOPS_SLACK_SIGNING_SECRET", "signing-secret-value")
    monkeypatch.setenv("CHATOPS_SLACK_API_URL", api_url)


def _check(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check"])
    out = capsys.readouterr()
    return code, out.out + out.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_healthy_slack_passes(
    env: Path, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _slack_env(monkeypatch, slack.token, slack.api_url)
    code, out = _check(capsys)
    assert code == 0, out
    assert "provider slack (slack): ok" in out


def test_a_refused_token_is_a_bad_token(
    env: Path, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _slack_env(monkeypatch, "xoxb-revoked-0000-secretpart", slack.api_url)
    code, out = _check(capsys)
    assert code == 1
    assert "FAILED: authentication_failed: bad token: Slack refused the bot token" in out
    assert "invalid_auth" in out
    assert "xoxb-revoked-0000-secretpart" not in out
    assert "signing-secret-value" not in out


def test_a_port_where_nothing_listens_is_an_unreachable_url_naming_only_the_host(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    _slack_env(monkeypatch, "xoxb-t", f"http://127.0.0.1:{port}/secret-path-k3y/api/")
    code, out = _check(capsys)
    assert code == 1
    assert f"unreachable URL: cannot reach 127.0.0.1:{port}: the connection was refused" in out
    assert "secret-path-k3y" not in out


def test_a_name_that_does_not_resolve_is_said_to_be_dns(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # .invalid never resolves (RFC 6761).
    _slack_env(monkeypatch, "xoxb-t", "http://chatops-check.invalid/api/")
    code, out = _check(capsys)
    assert code == 1
    assert "cannot reach chatops-check.invalid: its name does not resolve (DNS)" in out


def test_a_rate_limited_check_says_so_with_the_wait(
    env: Path, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _slack_env(monkeypatch, slack.token, slack.api_url)
    slack.fail("auth.test", times=1, status=200, error="ratelimited")
    code, out = _check(capsys)
    assert code == 1
    assert "rate limited: Slack asked to slow down" in out


def test_mattermost_bad_token_and_unreachable_server(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeMattermost() as mm:
        config = env / "chatops.toml"
        config.write_text(
            f"""
[providers.mm]
type = "mattermost"
url = "{mm.url}"
bot_token = "wrong-token-abcdefghijklmnopqrstuvwxyz"
command_token = "c"
actions_secret = "0123456789abcdef0123456789abcdef"
team_id = "{mm.team_id}"
webhook_url = "https://chatops.example.com/webhooks/mm"
"""
        )
        monkeypatch.setenv("CHATOPS_CONFIG", str(config))
        code, out = _check(capsys)
        assert code == 1
        assert "bad token: Mattermost refused the bot token" in out
        assert "wrong-token-abcdefghijklmnopqrstuvwxyz" not in out
        port = _free_port()
        config.write_text(config.read_text().replace(mm.url, f"http://127.0.0.1:{port}"))
        code, out = _check(capsys)
        assert code == 1
        assert f"cannot reach 127.0.0.1:{port}: the connection was refused" in out


def test_a_scope_only_posting_needs_is_named_from_what_a_delivery_recorded(
    env: Path,
    slack: FakeSlack,
    redis_url: str,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # auth.test needs no scope, so the credential check passes; the post does not.
    runtime = slack_runtime(env, slack, broker_url=redis_url)
    slack.fail(
        "chat.postMessage",
        status=200,
        body={"ok": False, "error": "missing_scope", "needed": "chat:write", "provided": "channels:read"},
    )
    notification = Notification(
        type="incident.created",
        incident=IncidentSnapshot(
            id="INC-7", title="Disk full", severity="SEV-2", status="open", created_at=datetime.now(UTC)
        ),
    )
    with pytest.raises(Exception, match="missing_scope"):
        deliver(runtime, notification, "n1", "slack", "#incidents", slot_taken=True)
    # The health goes out with the lock's release, which the lock thread sends.
    assert runtime.locks is not None and runtime.locks.flush()
    health = read_health(redis_client)["slack"]
    assert health.consecutive_failures == 1
    assert health.last_error is not None and health.last_error.scope == "chat:write"

    _slack_env(monkeypatch, slack.token, slack.api_url)
    monkeypatch.setenv("CHATOPS_BROKER_URL", redis_url)
    code, out = _check(capsys)
    assert code == 1
    assert "provider slack (slack): ok" in out
    assert "provider slack: deliveries failing (1 in a row): missing scope chat:write" in out
    assert "add the scope chat:write to the app" in out

    # The next post goes out (to another channel, whose pace is its own): the instance is
    # healthy again, and so is the check.
    deliver(runtime, notification, "n1", "slack", "#major-incidents", slot_taken=True)
    assert runtime.locks.flush()
    assert read_health(redis_client)["slack"].consecutive_failures == 0
    code, out = _check(capsys)
    assert code == 0, out
