"""gunicorn settings of the ingress: ``gunicorn --config python:ingress.gunicorn_conf``.

Every command that starts the ingress (``chatops ingress``, ``chatops run``) builds its
command line with :func:`chatops_core.stack.gunicorn_argv`, which names this module.

Metrics: each gunicorn worker is its own process with its own counters, so a scrape that
one worker answers would show only its share. prometheus-client's multiprocess mode
(https://prometheus.github.io/client_python/multiprocess/) has every worker write its
values to files in one directory, ``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` sums them.
The directory is the one that variable names, else a new temporary one removed on exit. It
is emptied when the ingress starts, so counts start from zero with the process like any
other counter, and the variable is set before any worker imports prometheus-client (the
value class is chosen at import).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_owned: list[Path] = []


def on_starting(server: Any) -> None:
    """In the master, before any worker starts: an empty metrics directory."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="chatops-metrics-"))
        _owned.append(directory)
        os.environ[MULTIPROC_ENV] = str(directory)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its counts stay in the sum, its live gauges do not."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    for directory in _owned:
        shutil.rmtree(directory, ignore_errors=True)
