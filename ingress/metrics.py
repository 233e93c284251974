"""Prometheus metrics of the ingress.

Under gunicorn the ingress runs as several worker processes; in prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, see ``ingress/gunicorn_conf.py``) each
writes its values to that directory and :attr:`IngressMetrics.registry` sums every
process's files, so each scrape shows the whole ingress, whichever worker answers it.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

# prometheus-client's own switch: it picks file-backed values at import when this is set.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class IngressMetrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        """``multiprocess_dir`` defaults to ``PROMETHEUS_MULTIPROC_DIR``; without one, this
        process's own values are shown."""
        if multiprocess_dir is None:
            multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        own = CollectorRegistry()
        self.webhooks = Counter(
            "chatops_webhooks_total",
            "Webhooks received, by instance and outcome",
            ["instance", "outcome"],
            registry=own,
        )
        self.latency = Histogram(
            "chatops_webhook_seconds",
            "Time to answer a webhook",
            ["instance"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=own,
        )
        if multiprocess_dir:
            # What a scrape shows: the sum over every process's files (never this process's
            # live values as well, which are already in its file).
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=multiprocess_dir)
        else:
            self.registry = own
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe(self, instance: str, outcome: str, seconds: float) -> None:
        """Count one webhook and its answer time (label children looked up once)."""
        children = self._children.get((instance, outcome))
        if children is None:
            children = (self.webhooks.labels(instance, outcome), self.latency.labels(instance))
            self._children[(instance, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)
