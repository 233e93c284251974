"""Log configuration shared by every process: one line per event, never a secret."""

from __future__ import annotations

import logging
import sys
from typing import Any

from chatops_core import redaction

# Loggers of libraries that write request URLs at INFO or DEBUG: a platform's reply URL (a
# Mattermost or Slack response URL, a Teams webhook) is a credential, so they say only
# warnings and errors, at any level.
URL_LOGGERS = ("httpx", "httpcore")


class RedactingFilter(logging.Filter):
    """Redacts a record's final message (its ``msg`` formatted with its ``args``), its
    traceback and its stack with the process's redactor (:func:`chatops_core.redaction.active`).

    The record is changed in place, once: ``msg`` becomes the redacted message and ``args``
    none, so no handler or formatter can format the secret back in.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FORMATTER = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    if getattr(record, "_chatops_redacted", False):
        return
    redactor = redaction.active()
    try:
        message = record.getMessage()
    except Exception:
        # Arguments that do not fit the message: the handler reports that as logging does,
        # with the message and its arguments redacted one by one.
        record.msg = redactor.redact(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(redactor.redact(str(arg)) for arg in record.args)
    else:
        record.msg = redactor.redact(message)
        record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redactor.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)
    record._chatops_redacted = True  # type: ignore[attr-defined]


def install_redaction() -> None:
    """Redact every record as it is made, whichever logger makes it and whichever handler
    (ours, Celery's, gunicorn's, a test's) writes it: a filter on a logger or a handler sees
    only some records, a record factory sees them all."""
    make = logging.getLogRecordFactory()
    if getattr(make, "_chatops_redacting", False):
        return

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        redact_record(record)
        return record

    redacted_record._chatops_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted_record)


def configure_logging(level: str = "INFO") -> None:
    install_redaction()
    for name in URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    if getattr(root, "_chatops_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    root._chatops_configured = True  # type: ignore[attr-defined]
