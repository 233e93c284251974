"""``chatops simulate``: play a person typing a slash command, with no chat workspace.

Sends the command to a running ingress as the instance's platform would (``--provider``
names the instance; by default the first configured one whose platform has dev tools): the
platform's ``devtools`` module signs the request, or gives it its token, exactly as the
platform does (:mod:`chatops_core.providers.devtools`). It listens on a local response URL and
prints what the person would see of the bot's answer: who sees it, then the message as text.

The ingress is ``--url`` when given; else the host and port the settings name, when they are
set; else the URL a running ``chatops run`` keeps in the data directory; else the default.
Beside the local playgrounds, the command is typed in the playground's channel of that name,
and its answers come back through the playground, which prints them too.
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chatops_core.errors import ConfigError
from chatops_core.models import Actor
from chatops_core.providers.config import ProviderSettingsBase
from chatops_core.providers.devtools import (
    NAMES_PATH,
    SESSION_PATH,
    DevTools,
    devtools_for,
    discover_devtools,
    playground_config,
    playground_urls,
)
from chatops_core.settings import Settings, load_settings

# How long the response listener waits on a connection that sends nothing.
RESPONSE_SOCKET_TIMEOUT_SECONDS = 5.0
# How soon the response listener notices it is asked to stop.
POLL_SECONDS = 0.05


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


def _pick(settings: Settings, name: str | None) -> tuple[str, ProviderSettingsBase, DevTools]:
    """The instance to type in, its settings and its platform's dev tools."""
    if name:
        conf = settings.providers.get(name)
        if conf is None:
            configured = ", ".join(settings.providers) or "none"
            raise ConfigError(f"no provider instance named {name!r}; configured: {configured}")
        tools = devtools_for(conf.type)
        if tools is None:
            able = ", ".join(sorted(discover_devtools())) or "none"
            raise ConfigError(
                f"instance {name!r} is of type {conf.type!r}, which `chatops simulate` cannot play "
                f"(types it can: {able})"
            )
        return name, conf, tools
    for instance, conf in settings.providers.items():
        tools = devtools_for(conf.type)
        if tools is not None:
            return instance, conf, tools
    raise ConfigError(
        "no provider instance that `chatops simulate` can play is configured: start the stack with "
        "`make run` (its local playgrounds configure one per platform) or configure one, e.g. with "
        "CHATOPS_SLACK_BOT_TOKEN and CHATOPS_SLACK_SIGNING_SECRET or a config file"
    )


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

    channel_id: str | None
    channel_name: str
    reply_url: str
    names_url: str | None = None


def _post_json(url: str, body: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        answer = json.loads(resp.read() or b"{}")
    return answer if isinstance(answer, dict) else {}


def _where(
    args: argparse.Namespace,
    user: Actor,
    listener: ResponseListener,
    playground: str | None,
    trigger: str,
) -> _Where:
    """The channel and response URL of this command.

    With the local playground, it is told who types where, so it shows names and prints
    the answers too; it hands out a response URL that passes each answer on to ``listener``.
    Without one, the command is typed in ``--channel`` (None: the platform's default).
    """
    fallback = _Where(args.channel, args.channel_name, listener.url)
    if playground is None:
        return fallback
    try:
        session = _post_json(
            f"{playground}{SESSION_PATH}",
            {
                "user_id": user.user_id,
                "user_name": user.user_name,
                "channel_id": args.channel or "",
                "channel_name": args.channel_name,
                "trigger": trigger,
                "forward_url": listener.url,
            },
        )
    except (OSError, ValueError):
        return fallback  # no playground answering: the ingress is most likely down too
    return _Where(
        channel_id=str(session.get("channel_id") or "") or fallback.channel_id,
        channel_name=str(session.get("channel_name") or args.channel_name),
        reply_url=str(session.get("reply_url") or listener.url),
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


def simulate(settings: Settings, args: argparse.Namespace) -> int:
    base = ingress_base_url(settings, args.url)
    playgrounds: dict[str, str] = {}
    if not settings.providers:
        data_dir = settings.data_dir.resolve()
        config = playground_config(data_dir)
        if config is not None:
            settings = load_settings(config)
            playgrounds = playground_urls(data_dir)
    instance, conf, tools = _pick(settings, args.provider)
    typed = args.text.strip()
    command, _, text = typed.partition(" ") if typed.startswith("/") else (settings.root_command, "", typed)
    trigger = tools.new_trigger()
    user = Actor(user_id=args.user or tools.default_user_id, user_name=args.user_name)
    with ResponseListener() as listener:
        where = _where(args, user, listener, playgrounds.get(instance), trigger)
        body, headers, content_type = tools.simulated_request(
            conf,
            text.strip(),
            user=user,
            channel_id=where.channel_id,
            channel_name=where.channel_name,
            reply_url=where.reply_url,
            trigger=trigger,
            command=command,
        )
        headers["Content-Type"] = content_type
        url = f"{base}/webhooks/{instance}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                status = resp.status
                # A platform that shows only what its webhook's response carries (a Teams
                # outgoing webhook) gets its answer here, not at the response URL.
                in_response = tools.response_answer(resp.read(), resp.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            print(f"ingress answered {exc.code}: {exc.read().decode('utf-8', 'replace')}", file=sys.stderr)
            return 1
        except urllib.error.URLError as exc:
            print(f"could not reach the ingress at {url}: {exc.reason}", file=sys.stderr)
            return 1
        print(f"ingress answered {status} in {(time.perf_counter() - started) * 1000:.0f} ms")
        if in_response is not None:
            print("\n".join(tools.answer_lines(in_response, where.channel_name, {})), flush=True)
            if not in_response.get("pending"):
                return 0
        answer = listener.wait(args.timeout)
        if answer is None:
            print(f"no answer within {args.timeout:g} s (is a worker running?)", file=sys.stderr)
            return 1
        lines = tools.answer_lines(answer, where.channel_name, _names(where.names_url))
        print("\n".join(lines), flush=True)
        return 0
