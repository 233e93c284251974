"""The ``[access]`` table: who holds which role, and the least role each command word needs.

```toml
[access]
default_role = "responder"           # anyone not named below
[access.roles]                       # by platform user ("<instance>:<user id>") or e-mail
"slack:U024BE7LH" = "admin"
"alice@example.com" = "manager"
[access.commands]                    # the least role per command word (defaults below)
close = "manager"
[access.rate_limit]
commands_per_minute = 20
burst = 10
```

A role granted in chat (``/im role``) or with ``chatops users grant`` overrides what this
table says for that person until it is revoked; see :mod:`chatops_core.access.policy`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatops_core.access.roles import Role

DEFAULT_COMMAND_ROLES: Mapping[str, Role] = MappingProxyType(
    {
        "status": Role.VIEWER,
        "list": Role.VIEWER,
        "help": Role.VIEWER,
        "join": Role.VIEWER,
        "leave": Role.VIEWER,
        "close": Role.MANAGER,
        "reopen": Role.MANAGER,
        "role": Role.ADMIN,
    }
)
"""The least role of the command words that do not need ``responder`` (every other word)."""

DEFAULT_ROLE_OF_A_WORD = Role.RESPONDER

_IDENTITY_KEY = re.compile(r"^([a-z0-9][a-z0-9_-]{0,62}):(\S+)$")
_EMAIL = re.compile(r"^[^@\s:]+@[^@\s:]+$")


def identity_key(instance: str, user_id: str) -> str:
    """How ``[access.roles]`` names a platform user: ``"<instance>:<user id>"``."""
    return f"{instance}:{user_id}"


def normalize_email(email: str | None) -> str | None:
    """An e-mail address as compared everywhere (trimmed, lowercase); None for none or blank."""
    if email is None:
        return None
    email = email.strip().lower()
    return email or None


class RateLimitSettings(BaseModel):
    """How many commands one person may run: ``commands_per_minute`` on average, in bursts
    of up to ``burst``, counted per person across platforms."""

    model_config = ConfigDict(extra="forbid")

    commands_per_minute: Annotated[int, Field(ge=1)] = 20
    burst: Annotated[int, Field(ge=1)] = 10
    # The ceiling for everyone on one provider instance together, protecting the workers
    # from a flood (many people, or many accounts).
    instance_commands_per_minute: Annotated[int, Field(ge=1)] = 600
    instance_burst: Annotated[int, Field(ge=1)] = 100


class AccessSettings(BaseModel):
    """Who may do what. The defaults keep a fresh installation open: everyone is a responder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_role: Role = Role.RESPONDER
    # "<instance>:<user id>" or an e-mail address -> role.
    roles: dict[str, Role] = Field(default_factory=dict)
    # Command word -> the least role it needs; words not named keep their defaults.
    commands: dict[str, Role] = Field(default_factory=dict)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)

    @field_validator("roles")
    @classmethod
    def _role_keys(cls, value: dict[str, Role]) -> dict[str, Role]:
        keys: dict[str, Role] = {}
        for key, role in value.items():
            key = key.strip()
            if _EMAIL.match(key):
                key = normalize_email(key) or key
            elif not _IDENTITY_KEY.match(key):
                raise ValueError(
                    f'{key!r} is neither "<instance>:<user id>" (e.g. "slack:U024BE7LH") '
                    "nor an e-mail address"
                )
            keys[key] = role
        return keys

    @field_validator("commands")
    @classmethod
    def _command_words(cls, value: dict[str, Role]) -> dict[str, Role]:
        # Imported here: the grammar imports the roles, and this module is read by the settings.
        from chatops_core.commands.grammar import CommandName

        words = {name.value for name in CommandName}
        unknown = sorted(set(value) - words)
        if unknown:
            raise ValueError(
                f"unknown command word(s) {', '.join(unknown)}; the words are {', '.join(sorted(words))}"
            )
        return value

    def command_roles(self) -> dict[str, Role]:
        """The least role of every configured or defaulted word (others need ``responder``)."""
        return {**DEFAULT_COMMAND_ROLES, **self.commands}

    def configured_role(self, identities: Iterable[tuple[str, str]], email: str | None) -> Role | None:
        """The role ``[access.roles]`` gives a person known by ``identities`` (instance, user
        id) and ``email``: the highest of the entries naming them, None when none does."""
        found = [self.roles.get(identity_key(instance, user_id)) for instance, user_id in identities]
        address = normalize_email(email)
        if address is not None:
            found.append(self.roles.get(address))
        named = [role for role in found if role is not None]
        return max(named) if named else None
