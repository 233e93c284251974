"""``chatops simulate``: play a person typing a slash command, with no chat workspace.

Signs the request exactly as Slack does (``v0:{timestamp}:{body}``, HMAC-SHA256 with the
signing secret), sends it to a running ingress, listens on a local response URL and prints
what the person would see of the bot's answer: who sees it, then the message, its Block Kit
blocks as lines of text.

The ingress is ``--url`` when given; else the host and port the settings name, when they are
set; else the URL a running ``chatops run`` keeps in the data directory; else the default.
Beside the local playground, the command is typed in the playground's channel of that name,
and its answers come back through the playground, which prints them too.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import queue
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from chatops_core.errors import ConfigError
from chatops_core.playground import (
    NAMES_PATH,
    POLL_SECONDS,
    SESSION_PATH,
    playground_config,
    playground_url,
)
from chatops_core.providers.slack.plaintext import message_lines, view_lines
from chatops_core.settings import Settings, SlackSettings, load_settings

# The channel a command is typed in, when none is named and no playground names one.
DEFAULT_CHANNEL_ID = "C0SIMULATE"
# How long the response listener waits on a connection that sends nothing.
RESPONSE_SOCKET_TIMEOUT_SECONDS = 5.0


def sign_slack(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Slack sends with a request: its timestamp and v0 signature."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def new_trigger_id() -> str:
    """A trigger id shaped as Slack's: ``<digits>.<digits>.<hex>``."""
    return f"{time.time_ns() // 1000}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def slash_command_body(
    *,
    command: str,
    text: str,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    response_url: str,
    team_id: str = "T0SIMULATE",
    trigger_id: str | None = None,
) -> bytes:
    """A form-encoded slash command, with the fields Slack sends."""
    fields = {
        "token": "simulated",
        "team_id": team_id,
        "team_domain": "simulated",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": "A0SIMULATE",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return urlencode(fields).encode()


class _Responses(ThreadingHTTPServer):
    # Handler threads are joined on close, so every answer is completely written before
    # `simulate` exits.
    daemon_threads = False
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ResponseHandler)
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()


class _ResponseHandler(BaseHTTPRequestHandler):
    server: _Responses
    timeout = RESPONSE_SOCKET_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = {"text": raw.decode("utf-8", "replace")}
        if not isinstance(answer, dict):
            answer = {"text": str(answer)}
        # Answer the bot completely, and end the connection, before showing the answer: once
        # it is shown, `simulate` may exit at any moment.
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.server.received.put(answer)


class ResponseListener:
    """A local response URL: each post is answered ``ok`` and its JSON body handed over."""

    def __init__(self) -> None:
        self._server = _Responses()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_SECONDS,), name="responses", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/response"

    def wait(self, timeout: float) -> dict[str, Any] | None:
        """The next answer, or None when none came within ``timeout`` seconds."""
        try:
            return self._server.received.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop listening, once every post that came in has been answered."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ResponseListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pick(settings: Settings, name: str | None) -> tuple[str, SlackSettings]:
    slack = {k: v for k, v in settings.providers.items() if v.type == "slack"}
    if name:
        if name not in slack:
            raise ConfigError(f"no Slack instance named {name!r}; configured: {', '.join(slack) or 'none'}")
        return name, slack[name]
    if not slack:
        raise ConfigError(
            "no Slack instance configured: start the stack with `make run` (its local playground "
            "configures one) or set CHATOPS_SLACK_SIGNING_SECRET / a config file"
        )
    first = next(iter(slack))
    return first, slack[first]


def ingress_base_url(settings: Settings, url: str | None = None) -> str:
    """Where the ingress is: ``url`` when given; the host and port the settings name when
    set (``CHATOPS_HOST``, ``CHATOPS_PORT`` or the file); else the URL a running
    ``chatops run`` wrote under the data directory; else the default host and port.
    """
    if url:
        return url.rstrip("/")
    if {"host", "port"} & settings.model_fields_set:
        return f"http://{settings.host}:{settings.port}"
    from chatops_core.stack import INGRESS_URL_FILE

    running = settings.data_dir.resolve() / INGRESS_URL_FILE
    try:
        written = running.read_text(encoding="utf-8").strip()
    except OSError:
        written = ""
    if written:
        return written.rstrip("/")
    return f"http://{settings.host}:{settings.port}"


@dataclass
class _Where:
    """Where the command is typed and where its answers come back."""

    channel_id: str
    channel_name: str
    response_url: str
    names_url: str | None = None


def _post_json(url: str, body: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        answer = json.loads(resp.read() or b"{}")
    return answer if isinstance(answer, dict) else {}


def _where(
    args: argparse.Namespace, listener: ResponseListener, playground: str | None, trigger_id: str
) -> _Where:
    """The channel and response URL of this command.

    With the local playground, it is told who types where, so it shows names and prints
    the answers too; it hands out a response URL that passes each answer on to ``listener``.
    """
    fallback = _Where(args.channel or DEFAULT_CHANNEL_ID, args.channel_name, listener.url)
    if playground is None:
        return fallback
    try:
        session = _post_json(
            f"{playground}{SESSION_PATH}",
            {
                "user_id": args.user,
                "user_name": args.user_name,
                "channel_id": args.channel or "",
                "channel_name": args.channel_name,
                "trigger_id": trigger_id,
                "forward_url": listener.url,
            },
        )
    except (OSError, ValueError):
        return fallback  # no playground answering: the ingress is most likely down too
    return _Where(
        channel_id=str(session.get("channel_id") or fallback.channel_id),
        channel_name=str(session.get("channel_name") or args.channel_name),
        response_url=str(session.get("response_url") or listener.url),
        names_url=f"{playground}{NAMES_PATH}",
    )


def _names(url: str | None) -> dict[str, str]:
    if url is None:
        return {}
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            found = json.loads(resp.read() or b"{}")
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def answer_lines(answer: dict[str, Any], channel_name: str, names: dict[str, str]) -> list[str]:
    """What the person sees of an answer: who sees it, then the message as text."""
    view = answer.get("view")
    if isinstance(view, dict):
        return ["bot opened a form for you:", *view_lines(view, names.get)]
    if answer.get("response_type") == "in_channel":
        heading = f"bot (in #{channel_name}, everyone sees this):"
    else:
        heading = "bot (only you see this):"
    return [heading, *message_lines(answer, names.get)]


def simulate(settings: Settings, args: argparse.Namespace) -> int:
    base = ingress_base_url(settings, args.url)
    playground: str | None = None
    if not settings.providers:
        config = playground_config(settings.data_dir.resolve())
        if config is not None:
            settings = load_settings(config)
            conf = settings.providers.get("slack")
            if conf is not None and conf.type == "slack":
                playground = playground_url(conf.api_url)
    instance, conf = _pick(settings, args.provider)
    text = args.text.strip()
    command, _, rest = text.partition(" ") if text.startswith("/") else (settings.root_command, "", text)
    trigger_id = new_trigger_id()
    with ResponseListener() as listener:
        where = _where(args, listener, playground, trigger_id)
        body = slash_command_body(
            command=command,
            text=rest.strip(),
            user_id=args.user,
            user_name=args.user_name,
            channel_id=where.channel_id,
            channel_name=where.channel_name,
            response_url=where.response_url,
            trigger_id=trigger_id,
        )
        headers = sign_slack(conf.signing_secret.get_secret_value(), body, int(time.time()))
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = f"{base}/webhooks/{instance}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            print(f"ingress answered {exc.code}: {exc.read().decode('utf-8', 'replace')}", file=sys.stderr)
            return 1
        except urllib.error.URLError as exc:
            print(f"could not reach the ingress at {url}: {exc.reason}", file=sys.stderr)
            return 1
        print(f"ingress answered {status} in {(time.perf_counter() - started) * 1000:.0f} ms")
        answer = listener.wait(args.timeout)
        if answer is None:
            print(f"no answer within {args.timeout:g} s (is a worker running?)", file=sys.stderr)
            return 1
        print("\n".join(answer_lines(answer, where.channel_name, _names(where.names_url))), flush=True)
        return 0
