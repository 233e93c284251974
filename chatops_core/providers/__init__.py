"""Chat platform providers: one package per platform behind one interface."""

from chatops_core.providers.base import (
    Inbound,
    InboundKind,
    Operation,
    Provider,
    WebhookRequest,
)
from chatops_core.providers.registry import ProviderRegistry, build_providers, default_registry

__all__ = [
    "Inbound",
    "InboundKind",
    "Operation",
    "Provider",
    "ProviderRegistry",
    "WebhookRequest",
    "build_providers",
    "default_registry",
]
