"""The HTTP server under each local fake platform: 127.0.0.1, a free port unless one is
chosen, started once, stopped cleanly, usable as a context manager; and the request handler
they share (read the request, answer it, write the answer)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LocalServer:
    """Serves the handler :meth:`_make_handler` returns; ``_port`` 0 takes a free port."""

    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _port: int = 0

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        """Listen on 127.0.0.1 (idempotent)."""
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), self._make_handler())
        self._server.daemon_threads = True
        # A short poll interval keeps stop() fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``"""
        return f"http://127.0.0.1:{self.port}"


class FakeHandler(BaseHTTPRequestHandler):
    """Reads a request, hands it to :meth:`answer` and writes what that returns.

    ``answer(method, target, headers, raw)`` (by default the ``fake``'s ``_handle``) gets the
    request headers with lowercase names and returns ``(status, body, headers)``: a dict or
    list body goes out as JSON, bytes or text as ``text/plain``. The class attributes say how
    each platform writes its answers; a subclass names the verbs it serves (``do_GET =
    FakeHandler.serve``, ...).
    """

    json_type = "application/json"
    json_end = ""  # appended to a JSON body
    fixed_headers: tuple[tuple[str, str], ...] = ()  # sent after Content-Length on every answer
    none_is_empty = False  # a None body: no body and no Content-Type
    bodiless_statuses: tuple[int, ...] = ()  # statuses answered without a body
    typed_when_empty = True  # an empty text body still carries a Content-Type

    fake: Any = None  # what answers: ``fake._handle(method, target, headers, raw)``

    def answer(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, Mapping[str, str]]:
        return self.fake._handle(method, target, headers, raw)

    def encode(self, status: int, body: Any) -> tuple[bytes, str | None]:
        if status in self.bodiless_statuses or (body is None and self.none_is_empty):
            return b"", None
        if isinstance(body, dict | list):
            return (json.dumps(body) + self.json_end).encode(), self.json_type
        payload = body if isinstance(body, bytes) else str(body).encode()
        return payload, "text/plain; charset=utf-8" if payload or self.typed_when_empty else None

    def lowered_headers(self) -> dict[str, str]:
        """The request's headers by lowercase name (the last of a repeated one)."""
        return {key.lower(): value for key, value in self.headers.items()}

    def serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        lowered = self.lowered_headers()
        status, body, headers = self.answer(self.command, self.path, lowered, raw)
        payload, content_type = self.encode(status, body)
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in self.fixed_headers:
                self.send_header(key, value)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except OSError:
            pass  # the client went away (a killed worker, say)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet: the calls are recorded instead."""


class KeepAliveHandler(FakeHandler):
    """HTTP/1.1 keep-alive, as the platforms' servers do (a client that asks to close gets
    that); one write per answer and no Nagle delay, so keep-alive requests do not stall.

    An HTTP/1.1 request's headers are read line by line (:meth:`parse_request`):
    ``http.server`` parses them with the ``email`` package, which takes more than half of
    what a local server spends on a request, and the benchmarks count that time as part of
    each delivery.
    """

    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    max_line = 65536
    max_headers = 100

    # The Date header's text, worked out once a second (formatting it took a tenth of what a
    # request cost): (second, text).
    _date: tuple[int, str] = (0, "")
    _lowered: dict[str, str] | None = None

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        cached = KeepAliveHandler._date
        if cached[0] != second:
            cached = KeepAliveHandler._date = (second, formatdate(second, usegmt=True))
        return cached[1]

    def lowered_headers(self) -> dict[str, str]:
        if self._lowered is not None:
            return self._lowered
        return super().lowered_headers()

    def parse_request(self) -> bool:
        """The request line and headers of an HTTP/1.1 request, into what ``http.server``
        sets (``command``, ``path``, ``request_version``, ``headers``,
        ``close_connection``), and the headers by lowercase name as they are read; any other
        request line is left to ``http.server``."""
        self._lowered = None
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or words[2] != "HTTP/1.1":
            return super().parse_request()
        self.requestline = line
        self.command, self.path, self.request_version = words
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # a path, never a host
        headers = self.MessageClass()
        lowered: dict[str, str] = {}
        for _ in range(self.max_headers + 1):
            raw = self.rfile.readline(self.max_line + 1)
            if len(raw) > self.max_line:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, colon, value = str(raw, "iso-8859-1").partition(":")
            if not colon or not name or name != name.strip():
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad header line {raw!r}")
                return False
            headers[name] = lowered[name.lower()] = value.strip()
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers, self._lowered = headers, lowered
        self.close_connection = "close" in headers.get("Connection", "").lower()
        if headers.get("Expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True
