"""A thread-safe registry of provider factories by platform type."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from chatops_core.errors import ProviderNotFound
from chatops_core.providers.base import Provider

ProviderFactory = Callable[[str, Any], Provider]


class ProviderRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._factories: dict[str, ProviderFactory] = {}

    def register(self, type_name: str, factory: ProviderFactory) -> None:
        with self._lock:
            self._factories[type_name] = factory

    def types(self) -> list[str]:
        with self._lock:
            return sorted(self._factories)

    def create(self, name: str, settings: Any) -> Provider:
        type_name = getattr(settings, "type", None)
        with self._lock:
            factory = self._factories.get(type_name or "")
        if factory is None:
            raise ProviderNotFound(f"no provider of type {type_name!r} for instance {name!r}")
        return factory(name, settings)


def default_registry() -> ProviderRegistry:
    """A registry holding every built-in platform."""
    from chatops_core.providers.slack import SlackProvider

    registry = ProviderRegistry()
    registry.register("slack", SlackProvider)
    return registry


def build_providers(
    provider_settings: Mapping[str, Any], registry: ProviderRegistry | None = None
) -> dict[str, Provider]:
    """One provider per configured instance, by instance name."""
    reg = registry or default_registry()
    return {name: reg.create(name, conf) for name, conf in provider_settings.items()}
