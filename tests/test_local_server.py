"""The HTTP server under the local platforms reads a request's headers as http.server does."""

from __future__ import annotations

import email.utils
import http.client
import io
import re
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.fakes.local_server import KeepAliveHandler, LocalServer


class _Echo(LocalServer):
    """Answers each request with what it read: method, path and headers (name, value)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.seen_lowered: dict[str, str] = {}

    def _make_handler(self) -> type[KeepAliveHandler]:
        server = self

        class Handler(KeepAliveHandler):
            fake = self

            def serve(self) -> None:
                server.seen.append(self.headers)
                super().serve()

            do_GET = do_POST = serve

        return Handler

    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        self.seen_lowered = dict(headers)
        return 200, {"method": method, "path": target, "body": raw.decode()}, {}


@pytest.fixture
def echo() -> Iterator[_Echo]:
    with _Echo() as server:
        yield server


def _exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` as it is; what comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_headers_read_as_http_server_reads_them(echo: _Echo) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", echo.port, timeout=5)
    conn.putrequest("POST", "//api//chat.postMessage")
    for name, value in (
        ("Content-Type", "application/json; charset=utf-8"),
        ("Authorization", "Bearer  xoxb-1 "),
        ("X-Twice", "one"),
        ("X-Twice", "two"),
        ("Content-Length", "2"),
    ):
        conn.putheader(name, value)
    conn.endheaders(b"{}")
    answer = conn.getresponse()
    assert answer.status == 200
    echoed = answer.read()
    (headers,) = echo.seen
    raw = (
        b"Host: 127.0.0.1\r\nAccept-Encoding: identity\r\nContent-Type: application/json; charset=utf-8\r\n"
        b"Authorization: Bearer  xoxb-1 \r\nX-Twice: one\r\nX-Twice: two\r\nContent-Length: 2\r\n\r\n"
    )
    expected = http.client.parse_headers(io.BytesIO(raw))
    assert headers.get_all("x-twice") == expected.get_all("x-twice") == ["one", "two"]
    assert headers["content-type"] == expected["content-type"]
    assert headers.get_content_charset() == "utf-8"
    assert headers["Authorization"] == expected["Authorization"].strip() == "Bearer  xoxb-1"
    assert b'"path": "/api//chat.postMessage"' in echoed and b'"body": "{}"' in echoed
    # What the fake answering it gets: every header by its lowercase name, the last of a
    # repeated one, as http.server's headers give them.
    assert echo.seen_lowered == {name.lower(): value for name, value in headers.items()}
    assert echo.seen_lowered["x-twice"] == "two"


def test_the_date_header_is_http_servers(echo: _Echo) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", echo.port, timeout=5)
    before = email.utils.formatdate(usegmt=True)
    conn.request("GET", "/a")
    answer = conn.getresponse()
    answer.read()
    after = email.utils.formatdate(usegmt=True)
    assert answer.getheader("Date") in (before, after)
    again = _exchange(echo.port, b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n")
    assert re.search(rb"\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n", again)


def test_keep_alive_close_and_malformed_requests(echo: _Echo) -> None:
    # Two requests on one connection (keep-alive), then one that asks to close it.
    conn = http.client.HTTPConnection("127.0.0.1", echo.port, timeout=5)
    for _ in range(2):
        conn.request("GET", "/a")
        answer = conn.getresponse()
        assert answer.status == 200 and not answer.will_close
        answer.read()
    sock = conn.sock
    conn.request("GET", "/a", headers={"Connection": "close"})
    answer = conn.getresponse()
    assert answer.status == 200
    answer.read()
    assert sock is not None and sock is conn.sock and sock.recv(1) == b""  # the server closed it
    assert len(echo.seen) == 3
    # A header line without a colon, too many headers, another HTTP version: refused as
    # http.server refuses them; HTTP/1.0 is left to http.server.
    assert _exchange(echo.port, b"GET /a HTTP/1.1\r\nno colon\r\n\r\n").startswith(b"HTTP/1.1 400")
    many = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    assert _exchange(echo.port, b"GET /a HTTP/1.1\r\n" + many + b"\r\n").startswith(b"HTTP/1.1 431")
    assert b"Error code: 505" in _exchange(echo.port, b"GET /a HTTP/2.0\r\nHost: x\r\n\r\n")
    assert _exchange(echo.port, b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200 OK")
    assert len(echo.seen) == 4
