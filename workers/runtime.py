"""What a worker process holds: settings, the store and one provider per instance.

Built lazily, once per process (after the pool forks), from the one settings object.
"""

from __future__ import annotations

import threading
from functools import cached_property

from chatops_core.errors import ProviderNotFound
from chatops_core.providers import Provider, build_providers
from chatops_core.settings import Settings
from chatops_core.store import IncidentStore


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    @cached_property
    def store(self) -> IncidentStore:
        return IncidentStore(self.settings.effective_database_url())

    @cached_property
    def providers(self) -> dict[str, Provider]:
        return build_providers(self.settings.providers)

    def provider(self, instance: str) -> Provider:
        try:
            return self.providers[instance]
        except KeyError:
            raise ProviderNotFound(f"no provider instance named {instance!r}") from None
