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
from chatops_core.playground import Playground, write_playground_config
from chatops_core.providers.slack.client import SlackApi
from chatops_core.providers.slack.forms import declare_view
from chatops_core.settings import SlackSettings
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
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fields = dict(parse_qsl(raw.decode()))
                outer.commands.append(fields)
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
        write_playground_config(env, playground.api_url, None)
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
        write_playground_config(env, playground.api_url, None)
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
