"""``chatops simulate`` against a stand-in ingress: where it finds the ingress, what it prints
of the bot's answer, and that the bot's answer post is completely answered."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from chatops_core.cli import main
from chatops_core.errors import InvalidWebhook
from chatops_core.models import Actor
from chatops_core.providers.base import InboundKind, WebhookRequest
from chatops_core.providers.devtools import (
    discover_devtools,
    playground_config,
    playground_urls,
    write_playground_config,
)
from chatops_core.providers.registry import provider_types
from chatops_core.providers.slack import SlackProvider
from chatops_core.providers.slack.client import SlackApi
from chatops_core.providers.slack.config import SlackSettings
from chatops_core.providers.slack.devtools import simulated_request
from chatops_core.providers.slack.forms import declare_view
from chatops_core.providers.slack.playground import Playground
from chatops_core.stack import free_port

# Under the data directory while `chatops run` serves: its ingress's base URL.
INGRESS_URL_FILE = "ingress.url"

# What the bot answers to `/im status INC-1` (the blocks as the Slack provider renders them).
STATUS_ANSWER: dict[str, Any] = {
    "response_type": "ephemeral",
    "text": "INC-1 [SEV-2] acknowledged: Database timeouts\nCommander: simulator",
    "blocks": [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "INC-1 [SEV-2] acknowledged: Database timeouts\nCommander: simulator",
            },
        },
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*INC-1: Database &lt;timeouts&gt;*"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Severity*\n:large_orange_circle: SEV-2"},
                {"type": "mrkdwn", "text": "*Status*\nAcknowledged"},
                {"type": "mrkdwn", "text": "*Commander*\n<@U0SIMULATE>"},
                {"type": "mrkdwn", "text": "*Channel*\n<#C00000002>"},
            ],
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Declared <!date^1796522755^{date_short_pretty} {time}|2026-12-06 02:05 UTC> "
                    "by simulator",
                }
            ],
        },
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Timeline*"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "<!date^1796522755^{date_short_pretty} {time}|2026-12-06 02:05 UTC> *declared* "
                "simulator: Declared by simulator: Database timeouts\n"
                "<!date^1796522756^{date_short_pretty} {time}|2026-12-06 02:06 UTC> *acknowledged* "
                "simulator: Acknowledged by simulator",
            },
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Resolve"},
                    "action_id": "im:resolve",
                }
            ],
        },
    ],
}


class FakeIngress:
    """Answers each slash command 200 at once, then has ``answer`` post the bot's reply."""

    def __init__(self, answer: Callable[[dict[str, str]], None]) -> None:
        self.commands: list[dict[str, str]] = []
        # Each request as it came: path, headers and raw body.
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fields = dict(parse_qsl(raw.decode()))
                outer.commands.append(fields)
                outer.requests.append((self.path, dict(self.headers.items()), raw))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                threading.Thread(target=answer, args=(fields,), daemon=True).start()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _post(response_url: str, body: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(
        response_url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        resp.read()


def _answering(body: dict[str, Any]) -> Callable[[dict[str, str]], None]:
    return lambda fields: _post(fields["response_url"], body)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment with one Slack instance; returns the data directory."""
    for name in [n for n in __import__("os").environ if n.startswith("CHATOPS_")]:
        monkeypatch.delenv(name)
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    monkeypatch.setenv("CHATOPS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CHATOPS_SLACK_BOT_TOKEN", "xoxb-simulate-test")
    monkeypatch.setenv("CHATOPS_SLACK_SIGNING_SECRET", "simulate-test-secret")
    return data_dir


@pytest.fixture
def ingress() -> Iterator[Callable[..., FakeIngress]]:
    started: list[FakeIngress] = []

    def start(answer: Callable[[dict[str, str]], None] | None = None) -> FakeIngress:
        answer = answer or _answering({"text": "hello"})
        fake = FakeIngress(answer)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.close()


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_simulate_finds_a_stack_on_another_port_through_the_data_dir(
    env: Path, ingress: Callable[..., FakeIngress], capsys: pytest.CaptureFixture[str]
) -> None:
    fake = ingress()
    (env / INGRESS_URL_FILE).write_text(fake.url + "\n")
    assert main(["simulate", "--timeout", "5", "help"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["bot (only you see this):", "hello"]
    assert len(fake.commands) == 1


def test_an_explicit_port_or_url_wins_over_the_data_dir(
    env: Path,
    ingress: Callable[..., FakeIngress],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = ingress()
    (env / INGRESS_URL_FILE).write_text(_dead_url() + "\n")
    monkeypatch.setenv("CHATOPS_PORT", str(fake.server.server_port))
    assert main(["simulate", "--timeout", "5", "help"]) == 0
    monkeypatch.setenv("CHATOPS_PORT", str(free_port()))
    assert main(["simulate", "--timeout", "5", "--url", fake.url, "help"]) == 0
    assert len(fake.commands) == 2
    assert capsys.readouterr().out.count("hello") == 2


def test_simulate_prints_the_blocks_of_an_answer_as_text(
    env: Path, ingress: Callable[..., FakeIngress], capsys: pytest.CaptureFixture[str]
) -> None:
    fake = ingress(_answering(STATUS_ANSWER))
    assert main(["simulate", "--timeout", "5", "--url", fake.url, "status INC-1"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "bot (only you see this):",
        "INC-1 [SEV-2] acknowledged: Database timeouts",
        "Commander: simulator",
        "-" * 40,
        "INC-1: Database <timeouts>",
        "Severity: 🟠 SEV-2 · Status: Acknowledged · Commander: @U0SIMULATE · Channel: #C00000002",
        "Declared 2026-12-06 02:05 UTC by simulator",
        "-" * 40,
        "Timeline",
        "2026-12-06 02:05 UTC declared simulator: Declared by simulator: Database timeouts",
        "2026-12-06 02:06 UTC acknowledged simulator: Acknowledged by simulator",
        "[Resolve]",
    ]


def _raw_request(url: str, body: bytes) -> tuple[socket.socket, bytes]:
    """A connected socket and the bytes of a JSON POST to ``url`` (a response URL)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return sock, head


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


class _TwoPosts:
    """The bot's first answer, sent whole, and a second post still on its way (its body held
    back until ``finish`` is called), each over a raw socket."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.first: socket.socket | None = None
        self.second: socket.socket | None = None
        self._second_body = json.dumps({"text": "and one more thing"}).encode()

    def __call__(self, fields: dict[str, str]) -> None:
        url = fields["response_url"]
        self.second, head = _raw_request(url, self._second_body)
        self.second.sendall(head)  # headers only, for now
        body = json.dumps({"response_type": "ephemeral", "text": "INC-1 acknowledged"}).encode()
        self.first, head = _raw_request(url, body)
        self.first.sendall(head + body)
        self.ready.set()

    def finish(self) -> None:
        assert self.second is not None
        self.second.sendall(self._second_body)


def test_simulate_answers_every_post_of_the_bot_completely_before_it_exits(
    env: Path, ingress: Callable[..., FakeIngress]
) -> None:
    posts = _TwoPosts()
    fake = ingress(posts)
    run = subprocess.Popen(
        [sys.executable, "-m", "chatops_core.cli", "simulate", "--timeout", "10", "--url", fake.url, "ack 1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout is not None
        shown = [run.stdout.readline() for _ in range(3)]
        assert shown[1:] == ["bot (only you see this):\n", "INC-1 acknowledged\n"], shown
        assert posts.ready.wait(5) and posts.first is not None and posts.second is not None
        assert _read_all(posts.first).endswith(b"\r\n\r\nok")
        # The second post came in before the answer was shown: simulate waits for it.
        with pytest.raises(subprocess.TimeoutExpired):
            run.wait(1.0)
        posts.finish()
        answer = _read_all(posts.second)
        assert answer.startswith(b"HTTP/1.0 200 ") and answer.endswith(b"\r\n\r\nok"), answer
        assert run.wait(10) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for sock in (posts.first, posts.second):
            if sock is not None:
                sock.close()


def test_with_the_playground_the_answer_uses_its_channel_and_names(
    env: Path,
    ingress: Callable[..., FakeIngress],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As `chatops run` with nothing configured: the playground and its configuration.
    monkeypatch.delenv("CHATOPS_SLACK_BOT_TOKEN")
    monkeypatch.delenv("CHATOPS_SLACK_SIGNING_SECRET")
    console: list[str] = []
    playground = Playground(env, out=console.append)
    playground.start()
    try:
        write_playground_config(env, {"slack": playground}, None)
        war_room = playground.open_session({"channel_name": "inc-1-database-timeouts"})["channel_id"]
        fake = ingress(
            _answering({"response_type": "in_channel", "text": f"<@U0SIMULATE> joined <#{war_room}>"})
        )
        (env / INGRESS_URL_FILE).write_text(fake.url + "\n")
        assert main(["simulate", "--timeout", "5", "join INC-1"]) == 0
    finally:
        playground.stop()
    command = fake.commands[0]
    incidents = playground.open_session({"channel_name": "incidents"})["channel_id"]
    assert (command["channel_id"], command["channel_name"]) == (incidents, "incidents")
    assert capsys.readouterr().out.splitlines()[1:] == [
        "bot (in #incidents, everyone sees this):",
        "@simulator joined #inc-1-database-timeouts",
    ]
    assert console == [
        "[slack #incidents] (answer in the channel) @simulator joined #inc-1-database-timeouts"
    ]


def test_a_form_the_bot_opens_is_shown_to_the_person(
    env: Path,
    ingress: Callable[..., FakeIngress],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("CHATOPS_SLACK_BOT_TOKEN")
    monkeypatch.delenv("CHATOPS_SLACK_SIGNING_SECRET")
    console: list[str] = []
    playground = Playground(env, out=console.append)
    playground.start()
    try:
        write_playground_config(env, {"slack": playground}, None)
        settings = SlackSettings(
            bot_token="xoxb-playground", signing_secret="unused", api_url=playground.api_url
        )
        # As the worker does for `declare` with no title: open the form with the command's trigger.
        fake = ingress(lambda fields: SlackApi(settings).open_view(fields["trigger_id"], declare_view({})))
        (env / INGRESS_URL_FILE).write_text(fake.url + "\n")
        assert main(["simulate", "--timeout", "5", "/im declare"]) == 0
    finally:
        playground.stop()
    assert capsys.readouterr().out.splitlines()[1:] == [
        "bot opened a form for you:",
        "Declare an incident",
        "Title *: ____",
        "Severity *: ____",
        "Description: ____",
        "[Declare]",
    ]
    assert console[0] == "[slack] (form opened for @simulator) Declare an incident"


def test_provider_names_the_instance_and_its_platform_signs_the_request(
    env: Path,
    tmp_path: Path,
    ingress: Callable[..., FakeIngress],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "two.toml"
    config.write_text(
        '[providers.acme]\ntype = "slack"\nbot_token = "xoxb-a"\nsigning_secret = "acme-secret"\n'
        '[providers.beta]\ntype = "slack"\nbot_token = "xoxb-b"\nsigning_secret = "beta-secret"\n'
    )
    monkeypatch.setenv("CHATOPS_CONFIG", str(config))
    fake = ingress()
    assert main(["simulate", "--timeout", "5", "--url", fake.url, "--provider", "beta", "ack INC-3"]) == 0
    assert main(["simulate", "--timeout", "5", "--url", fake.url, "/im status"]) == 0
    (beta_path, headers, raw), (first_path, _, _) = fake.requests
    # --provider picks the instance; without it, the first configured one that simulate can play.
    assert (beta_path, first_path) == ("/webhooks/beta", "/webhooks/acme")
    # Signed as Slack signs, with that instance's secret: its provider takes it as a command.
    beta = SlackProvider("beta", SlackSettings(bot_token="xoxb-b", signing_secret="beta-secret"))
    request = WebhookRequest(body=raw, headers=headers, content_type=headers["Content-Type"])
    beta.verify(request)
    parsed = beta.parse(request)
    assert parsed.kind == InboundKind.COMMAND and parsed.command is not None
    assert (parsed.command.command, parsed.command.text) == ("/im", "ack INC-3")
    assert (parsed.command.user.user_id, parsed.command.user.user_name) == ("U0SIMULATE", "simulator")
    assert capsys.readouterr().out.count("hello") == 2


def test_an_instance_simulate_cannot_find_is_named(
    env: Path, ingress: Callable[..., FakeIngress], capsys: pytest.CaptureFixture[str]
) -> None:
    fake = ingress()
    assert main(["simulate", "--timeout", "5", "--url", fake.url, "--provider", "nope", "help"]) == 2
    assert "no provider instance named 'nope'; configured: slack" in capsys.readouterr().err
    assert fake.requests == []


def test_with_nothing_configured_simulate_says_how_to_start(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CHATOPS_SLACK_BOT_TOKEN")
    monkeypatch.delenv("CHATOPS_SLACK_SIGNING_SECRET")
    assert main(["simulate", "--timeout", "1", "--url", _dead_url(), "help"]) == 2
    assert "`make run`" in capsys.readouterr().err


def test_slack_devtools_sign_a_command_the_slack_provider_accepts() -> None:
    settings = SlackSettings(bot_token="xoxb-1", signing_secret="the-secret")
    body, headers, content_type = simulated_request(
        settings,
        "declare sev2 Database timeouts",
        user=Actor(user_id="U0ALICE", user_name="alice"),
        channel_id=None,
        channel_name="incidents",
        reply_url="http://127.0.0.1:9/response",
        trigger="1.2.abc",
        command="/im",
    )
    provider = SlackProvider("slack", settings)
    request = WebhookRequest(
        body=body, headers={**headers, "Content-Type": content_type}, content_type=content_type
    )
    provider.verify(request)
    command = provider.parse(request).command
    assert command is not None
    assert (command.text, command.user.user_name, command.channel_name) == (
        "declare sev2 Database timeouts",
        "alice",
        "incidents",
    )
    forged = WebhookRequest(body=body + b"x", headers=headers, content_type=content_type)
    with pytest.raises(InvalidWebhook):
        provider.verify(forged)


def test_every_platform_with_dev_tools_is_found_by_itself() -> None:
    found = discover_devtools()
    assert set(found) <= set(provider_types())
    # Slack comes first: `chatops simulate` with no --provider types in Slack.
    assert list(found)[0] == "slack" and found["slack"].instance == "slack"
    instances = [tools.instance for tools in found.values()]
    assert len(set(instances)) == len(instances)


class _StubPlayground:
    def __init__(self, kind: str, port: int) -> None:
        self.kind, self.port = kind, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def start(self) -> None:
        return

    def stop(self) -> None:
        return

    def config_toml(self, instance: str) -> str:
        return f'[providers.{instance}]\ntype = "{self.kind}"\n'


def test_the_playground_configuration_has_one_instance_per_playground(tmp_path: Path) -> None:
    playgrounds = {"slack": _StubPlayground("slack", 1001), "mm": _StubPlayground("mattermost", 1002)}
    path = write_playground_config(tmp_path, playgrounds, "https://chatops.example.com")
    assert playground_config(tmp_path) == path
    assert path.read_text().startswith('[chatops]\npublic_url = "https://chatops.example.com"\n')
    assert '[providers.slack]\ntype = "slack"' in path.read_text()
    assert '[providers.mm]\ntype = "mattermost"' in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
    assert playground_urls(tmp_path) == {"slack": "http://127.0.0.1:1001", "mm": "http://127.0.0.1:1002"}
