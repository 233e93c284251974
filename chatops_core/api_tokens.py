"""Named API tokens with scopes: the ``[api]`` table, and who a bearer token is.

```toml
[api]
metrics_token_hash = "sha256:..."    # optional: /metrics then needs that token
[api.tokens.incident-system]         # a name of your choice, shown in the logs
hash = "sha256:..."                  # `chatops tokens new NAME --scope notify` prints both lines
scopes = ["notify"]                  # notify | read | admin (admin implies the others)
[api.tokens.dashboard]
hash = "sha256:..."
scopes = ["read"]
```

What each scope opens (see ``ingress/api.py``): ``notify`` the notifications intake
(``POST /api/v1/notifications``), ``read`` the incident reads (``GET /api/v1/incidents``...),
``admin`` everything, the audit trail (``GET /api/v1/audit``) among it: the audit trail names
people and what they were refused, more than a dashboard needs. An endpoint of the API not
named by a scope needs ``admin``, so a new endpoint is closed until someone decides otherwise.

The older single ``[chatops] api_token`` (``CHATOPS_API_TOKEN``) keeps working: it is one more
token, named ``api_token`` in the logs, with every scope.

Only a hash of each token is configured, so a leaked configuration file (or ConfigMap, or
backup) opens nothing. The hash is a plain SHA-256, on purpose: a slow key-derivation function
(scrypt, Argon2) exists to make guessing a *password* from its hash expensive, because people
choose passwords from a small space. These tokens are 32 random bytes from the operating
system's generator (:func:`new_token`); no guess at 2**256 of them gets anywhere however fast
each one is, so a slow KDF would add only latency (on every API call) and nothing against an
attacker. Hashing also makes the comparison safe by construction: every presented token
becomes 32 bytes, compared with :func:`hmac.compare_digest` against *every* configured hash,
with no early exit, so the time taken says neither how much of a token was right nor which
name it matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "LEGACY_TOKEN_NAME",
    "ApiSettings",
    "ApiTokenSettings",
    "Caller",
    "Scope",
    "TokenTable",
    "bearer_token",
    "grants",
    "hash_token",
    "matches_hash",
    "new_token",
    "token_hash_problem",
]

HASH_PREFIX = "sha256:"
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
TOKEN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TOKEN_NAME_RULE = "1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
TOKEN_BYTES = 32

LEGACY_TOKEN_NAME = "api_token"
"""How the logs name ``[chatops] api_token``: it cannot clash with a configured name, whose
``[api.tokens.<name>]`` table would be an ``api_token`` table, which validation refuses."""


class Scope(StrEnum):
    """What a token may do. ``admin`` implies every other scope."""

    NOTIFY = "notify"
    READ = "read"
    ADMIN = "admin"


def grants(scopes: Iterable[Scope], needed: Scope) -> bool:
    """Whether a token holding ``scopes`` may do what ``needed`` guards."""
    held = set(scopes)
    return Scope.ADMIN in held or needed in held


def new_token() -> str:
    """A fresh token: 32 random bytes from the operating system, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def hash_token(token: str) -> str:
    """The configured form of ``token``: ``"sha256:<64 hex digits>"``."""
    return HASH_PREFIX + _digest(token).hex()


def token_hash_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a configured token hash, None when nothing.

    The message never quotes the value: someone may have pasted the token itself there.
    """
    if _HASH.match(value.strip().lower()):
        return None
    scheme = value.partition(":")[0].strip().lower() if ":" in value else ""
    if scheme and scheme != "sha256" and re.fullmatch(r"[a-z0-9-]{1,20}", scheme):
        return (
            f'hash scheme {scheme!r} is not supported; write "sha256:<64 hex digits>" '
            "(`chatops tokens hash` prints it)"
        )
    return (
        'must be "sha256:" followed by 64 hex digits, the hash of the token, not the token itself '
        "(`chatops tokens hash` prints it)"
    )


def _stored_digest(value: str) -> bytes:
    return bytes.fromhex(value.strip().lower().removeprefix(HASH_PREFIX))


def _checked_hash(value: str) -> str:
    problem = token_hash_problem(value)
    if problem:
        raise ValueError(problem)
    return value.strip().lower()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value (the scheme in any case),
    None without one."""
    scheme, _, presented = (authorization or "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    return presented


def matches_hash(presented: str | None, configured_hash: str) -> bool:
    """Whether ``presented`` is the token whose hash is ``configured_hash``, in constant time."""
    if presented is None:
        return False
    return hmac.compare_digest(_digest(presented), _stored_digest(configured_hash))


class ApiTokenSettings(BaseModel):
    """One ``[api.tokens.<name>]`` table: the hash of a token and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hash: str
    scopes: list[Scope] = Field(min_length=1)

    @field_validator("hash")
    @classmethod
    def _hash_format(cls, value: str) -> str:
        return _checked_hash(value)


class ApiSettings(BaseModel):
    """The ``[api]`` table: named tokens of ``/api/v1``, and the optional token of ``/metrics``.

    ``metrics_token_hash``: when set, ``/metrics`` answers only a request carrying
    ``Authorization: Bearer <the token of that hash>`` (401 otherwise); unset, it stays open,
    for a Prometheus that scrapes it on a private network.
    """

    model_config = ConfigDict(extra="forbid")

    tokens: dict[str, ApiTokenSettings] = Field(default_factory=dict)
    metrics_token_hash: str | None = None

    @field_validator("tokens")
    @classmethod
    def _names(cls, value: dict[str, ApiTokenSettings]) -> dict[str, ApiTokenSettings]:
        for name in value:
            if not TOKEN_NAME.match(name) or name == LEGACY_TOKEN_NAME:
                reason = (
                    f"is the name the logs give [chatops] {LEGACY_TOKEN_NAME}; choose another"
                    if name == LEGACY_TOKEN_NAME
                    else f"must be {TOKEN_NAME_RULE}"
                )
                raise ValueError(f"token name {name[:64]!r} {reason}")
        return value

    @field_validator("metrics_token_hash")
    @classmethod
    def _metrics_hash_format(cls, value: str | None) -> str | None:
        return None if value is None else _checked_hash(value)

    @model_validator(mode="after")
    def _distinct(self) -> ApiSettings:
        """Two names for one token would make the logs name either; refuse it."""
        seen: dict[str, str] = {}
        for name, token in self.tokens.items():
            if token.hash in seen:
                raise ValueError(f"tokens {seen[token.hash]!r} and {name!r} have the same hash")
            seen[token.hash] = name
        return self


@dataclass(frozen=True)
class Caller:
    """Who presented a known token: its configured name and scopes."""

    name: str
    scopes: frozenset[Scope]

    def may(self, needed: Scope) -> bool:
        return grants(self.scopes, needed)


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    caller: Caller


class TokenTable:
    """The tokens of ``/api/v1``: every ``[api.tokens.*]`` hash, and ``[chatops] api_token``."""

    def __init__(self, entries: Iterable[tuple[str, bytes, Iterable[Scope]]]) -> None:
        self._entries = tuple(
            _Entry(digest, Caller(name, frozenset(scopes))) for name, digest, scopes in entries
        )

    @classmethod
    def from_settings(cls, api: ApiSettings, legacy_token: SecretStr | None) -> TokenTable:
        entries: list[tuple[str, bytes, Iterable[Scope]]] = [
            (name, _stored_digest(token.hash), token.scopes) for name, token in api.tokens.items()
        ]
        legacy = legacy_token.get_secret_value() if legacy_token is not None else ""
        if legacy:
            # Kept only as its hash, like the others, and compared the same way.
            entries.append((LEGACY_TOKEN_NAME, _digest(legacy), tuple(Scope)))
        return cls(entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def identify(self, presented: str) -> Caller | None:
        """The caller whose token ``presented`` is, None for an unknown token.

        The token is hashed once and compared with every configured hash, all of them every
        time: neither the comparison nor the loop ends early.
        """
        digest = _digest(presented)
        found: Caller | None = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest) and found is None:
                found = entry.caller
        return found
