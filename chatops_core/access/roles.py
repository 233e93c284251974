"""The roles a person can hold, from the least to the most trusted."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """viewer < responder < manager < admin: each may do what the ones before it may.

    Members compare by that order (``Role.MANAGER > Role.RESPONDER``), not alphabetically as
    plain strings would; they are written as their value (``manager``) in settings, the store
    and messages.
    """

    VIEWER = "viewer"
    RESPONDER = "responder"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer ... 3 for admin."""
        return _ORDER.index(self)

    @property
    def article(self) -> str:
        """``a viewer``, ``an admin``: the role with its article, for messages."""
        return f"{'an' if self.value[0] in 'aeiou' else 'a'} {self.value}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank


_ORDER: tuple[Role, ...] = tuple(Role)

ROLE_NAMES = ", ".join(f"`{role.value}`" for role in Role)
"""The roles as a person should type them, in order."""
