"""Prometheus metrics of the ingress."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram


class IngressMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "chatops_webhooks_total",
            "Webhooks received, by instance and outcome",
            ["instance", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chatops_webhook_seconds",
            "Time to answer a webhook",
            ["instance"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe(self, instance: str, outcome: str, seconds: float) -> None:
        """Count one webhook and its answer time (label children looked up once)."""
        children = self._children.get((instance, outcome))
        if children is None:
            children = (self.webhooks.labels(instance, outcome), self.latency.labels(instance))
            self._children[(instance, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)
