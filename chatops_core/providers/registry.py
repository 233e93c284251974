"""The provider packages found under ``chatops_core/providers/``, and a registry of factories.

A provider package is a subpackage whose ``__init__`` exposes its :class:`Provider` subclass
as ``PROVIDER``; the class names its platform (``type``) and its settings model
(``settings_model``). Nothing else lists the platforms: the registry of factories and the
settings' choice of model by ``type`` are built from what is found here, so a new platform is
one package that touches nothing outside it.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from chatops_core.errors import ConfigError, ProviderNotFound
from chatops_core.providers.base import Provider
from chatops_core.providers.config import ProviderSettingsBase, ProviderSettingsModel

ProviderFactory = Callable[[str, Any], Provider]

_PROVIDERS_PACKAGE = "chatops_core.providers"


@dataclass(frozen=True)
class ProviderPackage:
    """One platform's package: where it is and the provider class it exposes."""

    package: str  # e.g. "chatops_core.providers.slack"
    provider: type[Provider]

    @property
    def type(self) -> str:
        return self.provider.type

    @property
    def settings_model(self) -> ProviderSettingsModel:
        return self.provider.settings_model


@cache
def provider_packages() -> dict[str, ProviderPackage]:
    """Every provider package, by platform type, in order of type.

    A subpackage without ``PROVIDER`` is not a platform (yet) and is left out; one that fails
    to import is an error, not a missing platform.
    """
    root = importlib.import_module(_PROVIDERS_PACKAGE)
    found: dict[str, ProviderPackage] = {}
    for info in pkgutil.iter_modules(root.__path__):
        if not info.ispkg:
            continue
        name = f"{_PROVIDERS_PACKAGE}.{info.name}"
        module = importlib.import_module(name)
        provider = getattr(module, "PROVIDER", None)
        if provider is None:
            continue
        if not (isinstance(provider, type) and issubclass(provider, Provider)):
            raise TypeError(f"{name}.PROVIDER must be a Provider subclass")
        _check_settings_model(name, provider)
        if provider.type in found:
            raise TypeError(
                f"provider type {provider.type!r} is exposed by both "
                f"{found[provider.type].package} and {name}"
            )
        found[provider.type] = ProviderPackage(package=name, provider=provider)
    return dict(sorted(found.items()))


def _check_settings_model(package: str, provider: type[Provider]) -> None:
    model = getattr(provider, "settings_model", None)
    if not (isinstance(model, type) and issubclass(model, ProviderSettingsBase)):
        raise TypeError(f"{package}: {provider.__name__}.settings_model must subclass ProviderSettingsBase")
    default = model.model_fields["type"].default
    if default != provider.type:
        raise TypeError(
            f"{package}: {model.__name__}.type must be Literal[{provider.type!r}] with that default, "
            f"as {provider.__name__}.type says"
        )


def provider_types() -> list[str]:
    """The platform types a configuration may name, in order."""
    return list(provider_packages())


def settings_models() -> dict[str, type[ProviderSettingsBase]]:
    """Each platform type's settings model."""
    return {kind: found.settings_model for kind, found in provider_packages().items()}


def unsupported_type(instance: str, kind: object) -> ConfigError:
    """The error for an instance whose ``type`` names no provider package."""
    supported = ", ".join(provider_types()) or "none"
    if kind is None:
        return ConfigError(f"provider instance {instance!r} has no type; set type to one of: {supported}")
    return ConfigError(f"provider instance {instance!r} has type {kind!r}; supported types: {supported}")


class ProviderRegistry:
    """Provider factories by platform type (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._factories: dict[str, ProviderFactory] = {}

    def register(self, type_name: str, factory: ProviderFactory) -> None:
        with self._lock:
            self._factories[type_name] = factory

    def types(self) -> list[str]:
        with self._lock:
            return sorted(self._factories)

    def create(self, name: str, settings: ProviderSettingsBase) -> Provider:
        type_name = settings.type
        with self._lock:
            factory = self._factories.get(type_name)
        if factory is None:
            raise ProviderNotFound(f"no provider of type {type_name!r} for instance {name!r}")
        return factory(name, settings)


def default_registry() -> ProviderRegistry:
    """A registry holding every provider package found."""
    registry = ProviderRegistry()
    for kind, found in provider_packages().items():
        registry.register(kind, found.provider)
    return registry


def build_providers(
    provider_settings: Mapping[str, ProviderSettingsBase],
    registry: ProviderRegistry | None = None,
    *,
    webhook_url: Callable[[str], str | None] | None = None,
) -> dict[str, Provider]:
    """One provider per configured instance, by instance name.

    ``webhook_url`` gives an instance's public webhook address (``Settings.webhook_url``),
    which a provider whose buttons carry their own target needs.
    """
    reg = registry or default_registry()
    providers = {name: reg.create(name, conf) for name, conf in provider_settings.items()}
    if webhook_url is not None:
        for name, provider in providers.items():
            provider.public_webhook_url = webhook_url(name)
    return providers
