"""Chat platform providers: one package per platform behind one interface.

Each platform is a subpackage (``slack/``, ``mattermost/``...) whose ``__init__`` exposes its
:class:`Provider` subclass as ``PROVIDER``, with its settings model in ``config.py``, its
pacing policy and, optionally, its dev tools (``devtools.py``). The subpackages are found by
themselves (:func:`provider_packages`); nothing outside a platform's package lists it.
"""

from chatops_core.providers.base import (
    Capability,
    Inbound,
    InboundKind,
    Provider,
    WebhookRequest,
)
from chatops_core.providers.config import ProviderSettingsBase
from chatops_core.providers.registry import (
    ProviderRegistry,
    build_providers,
    default_registry,
    provider_packages,
    provider_types,
)

__all__ = [
    "Capability",
    "Inbound",
    "InboundKind",
    "Provider",
    "ProviderRegistry",
    "ProviderSettingsBase",
    "WebhookRequest",
    "build_providers",
    "default_registry",
    "provider_packages",
    "provider_types",
]
