"""A local stand-in for Slack's Web API, so the product can be tried with no workspace.

``chatops run`` starts it when no platform is configured: it accepts the Web API calls the
bot makes (post, update, create channel, invite, ...), answers as Slack does, and prints
each message to the console. ``chatops simulate`` plays the person typing commands.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl


class _Handler(BaseHTTPRequestHandler):
    server: _PlaygroundServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            try:
                params = json.loads(raw or b"{}")
            except ValueError:
                params = {}
        else:
            params = dict(parse_qsl(raw.decode("utf-8", "replace")))
        method = self.path.rsplit("/", 1)[-1]
        body = json.dumps(self.server.playground.call(method, params)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _PlaygroundServer(ThreadingHTTPServer):
    daemon_threads = True
    playground: Playground


class Playground:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._server = _PlaygroundServer((host, port), _Handler)
        self._server.playground = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="playground", daemon=True)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._channels: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}/api/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _channel_id(self, channel: str) -> str:
        name = channel.lstrip("#")
        with self._lock:
            if name.startswith("C") and name in self._channels.values():
                return name
            if name not in self._channels:
                self._channels[name] = f"C{next(self._ids):08d}"
            return self._channels[name]

    def _channel_name(self, channel_id: str) -> str:
        with self._lock:
            for name, cid in self._channels.items():
                if cid == channel_id:
                    return name
        return channel_id

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ts = f"{time.time():.6f}"
        if method in ("chat.postMessage", "chat.update"):
            channel = self._channel_id(str(params.get("channel", "")))
            verb = "posted" if method == "chat.postMessage" else "updated"
            print(f"[slack #{self._channel_name(channel)}] ({verb}) {params.get('text', '')}", flush=True)
            return {"ok": True, "channel": channel, "ts": params.get("ts") or ts}
        if method == "conversations.create":
            name = str(params.get("name", ""))
            channel = self._channel_id(name)
            print(f"[slack] channel #{name} created", flush=True)
            return {"ok": True, "channel": {"id": channel, "name": name}}
        if method == "auth.test":
            return {"ok": True, "user_id": "UPLAYGROUND", "team": "playground"}
        return {"ok": True, "channel": {"id": self._channel_id(str(params.get("channel", "")))}}


def write_playground_config(data_dir: Path, api_url: str, public_url: str | None) -> Path:
    """A configuration with one Slack instance talking to the playground.

    The signing secret is generated once and kept in ``var/`` so ``chatops simulate`` signs
    with the same one.
    """
    path = data_dir / "playground.toml"
    secret_file = data_dir / "playground.secret"
    if secret_file.exists():
        secret = secret_file.read_text().strip()
    else:
        secret = secrets.token_hex(16)
        secret_file.write_text(secret)
        secret_file.chmod(0o600)
    lines = ["[chatops]"]
    if public_url:
        lines.append(f"public_url = {json.dumps(public_url)}")
    lines += [
        "",
        "[providers.slack]",
        'type = "slack"',
        'bot_token = "xoxb-playground"',
        f"signing_secret = {json.dumps(secret)}",
        f"api_url = {json.dumps(api_url)}",
        'default_channel = "#incidents"',
        "create_incident_channels = true",
        "",
    ]
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path


def playground_config(data_dir: Path) -> Path | None:
    path = data_dir / "playground.toml"
    return path if path.exists() else None
