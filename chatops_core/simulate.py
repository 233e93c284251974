"""``chatops simulate``: play a person typing a slash command, with no chat workspace.

Signs the request exactly as Slack does (``v0:{timestamp}:{body}``, HMAC-SHA256 with the
signing secret), sends it to a running ingress, listens on a local response URL and prints
what the bot answers.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import queue
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from chatops_core.errors import ConfigError
from chatops_core.settings import Settings, SlackSettings, load_settings


def sign_slack(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Slack sends with a request: its timestamp and v0 signature."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


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
        "trigger_id": f"{time.time_ns() // 1000}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}",
    }
    return urlencode(fields).encode()


class _Responses(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ResponseHandler)
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()


class _ResponseHandler(BaseHTTPRequestHandler):
    server: _Responses

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.server.received.put(json.loads(raw or b"{}"))
        except ValueError:
            self.server.received.put({"text": raw.decode("utf-8", "replace")})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


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


def simulate(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.providers:
        from chatops_core.playground import playground_config

        config = playground_config(settings.data_dir.resolve())
        if config is not None:
            settings = load_settings(config)
    instance, conf = _pick(settings, args.provider)
    text = args.text.strip()
    command, _, rest = text.partition(" ") if text.startswith("/") else (settings.root_command, "", text)
    server = _Responses()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        body = slash_command_body(
            command=command,
            text=rest.strip(),
            user_id=args.user,
            user_name=args.user_name,
            channel_id=args.channel,
            channel_name=args.channel_name,
            response_url=f"http://127.0.0.1:{port}/response",
        )
        headers = sign_slack(conf.signing_secret.get_secret_value(), body, int(time.time()))
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        base = args.url or f"http://{settings.host}:{settings.port}"
        url = f"{base.rstrip('/')}/webhooks/{instance}"
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
        try:
            answer = server.received.get(timeout=args.timeout)
        except queue.Empty:
            print(f"no answer within {args.timeout:g} s (is a worker running?)", file=sys.stderr)
            return 1
        visibility = "in channel" if answer.get("response_type") == "in_channel" else "only you"
        print(f"bot ({visibility}):")
        print(answer.get("text", ""))
        return 0
    finally:
        server.shutdown()
        server.server_close()
