"""Request URLs (reply URLs are credentials) never reach the log, at any level."""

from __future__ import annotations

import logging

import httpx
import pytest

from chatops_core.logging_setup import configure_logging


def test_a_reply_url_requested_through_httpx_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("DEBUG")
    secret_url = "http://127.0.0.1:9/hooks/commands/s3cr3t-reply-key"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    with caplog.at_level(logging.DEBUG), httpx.Client(transport=transport) as client:
        client.post(secret_url, json={"text": "hi"})
    assert "s3cr3t-reply-key" not in caplog.text
