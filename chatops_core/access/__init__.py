"""Who may do what: roles, the ``[access]`` settings and the policy that decides."""

from chatops_core.access.policy import Decision, NotAllowed, decide, least_role
from chatops_core.access.roles import ROLE_NAMES, Role
from chatops_core.access.settings import (
    DEFAULT_COMMAND_ROLES,
    AccessSettings,
    RateLimitSettings,
    identity_key,
    normalize_email,
)

__all__ = [
    "DEFAULT_COMMAND_ROLES",
    "ROLE_NAMES",
    "AccessSettings",
    "Decision",
    "NotAllowed",
    "RateLimitSettings",
    "Role",
    "decide",
    "identity_key",
    "least_role",
    "normalize_email",
]
