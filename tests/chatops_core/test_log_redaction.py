"""No log line carries a secret: every record's message, arguments and traceback are redacted."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatops_core.logging_setup import configure_logging


def test_a_secret_in_a_log_message_its_arguments_or_its_traceback_never_reaches_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure_logging("DEBUG")
    log = logging.getLogger("chatops.test")
    with caplog.at_level(logging.DEBUG):
        log.warning("connecting to %s", "postgres://app:hunter2@db.internal/prod")
        log.info("api_key=%s for %s", "8f14e45fceea167a5a36dedd4bea2543", "INC-12")
        try:
            raise RuntimeError("login refused for password=Tr0ub4dor")
        except RuntimeError:
            log.exception("login failed")
    text = caplog.text
    for secret in ("hunter2", "8f14e45fceea167a5a36dedd4bea2543", "Tr0ub4dor"):
        assert secret not in text, text
    assert "postgres://app:[redacted url-password]@db.internal/prod" in text
    assert "api_key=[redacted api-key] for INC-12" in text
    assert "RuntimeError: login refused for password=[redacted password]" in text


def test_the_process_log_line_on_stderr_is_redacted_with_the_configured_patterns(tmp_path: Path) -> None:
    config = tmp_path / "chatops.toml"
    config.write_text('[redaction]\npatterns = ["CASE-\\\\d{6}"]\n', encoding="utf-8")
    script = (
        "import logging\n"
        "from chatops_core.logging_setup import configure_logging\n"
        "from chatops_core.settings import load_settings\n"
        "configure_logging(load_settings().log_level)\n"
        "log = logging.getLogger('chatops.worker')\n"
        "log.warning('note %s: %s', 'CASE-123456', 'token=a8f5f167f44f4964e6')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "CHATOPS_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING chatops.worker note [redacted pattern-0]: token=[redacted token]" in done.stderr
    assert "CASE-123456" not in done.stderr and "a8f5f167f44f4964e6" not in done.stderr
