"""Log configuration shared by every process: one line per event, never a secret."""

from __future__ import annotations

import logging
import sys

# Loggers of libraries that write request URLs at INFO or DEBUG: a platform's reply URL (a
# Mattermost or Slack response URL, a Teams webhook) is a credential, so they say only
# warnings and errors, at any level.
URL_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str = "INFO") -> None:
    for name in URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    if getattr(root, "_chatops_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root._chatops_configured = True  # type: ignore[attr-defined]
