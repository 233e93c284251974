"""People: who is behind a platform user, and the role they hold.

:class:`PeopleRecords` is a mixin of :class:`~chatops_core.store.IncidentStore`, running in
its transactions.

- A *person* is one human. Each platform user (instance, user id) is an *identity* of
  exactly one person, made on first use (:meth:`PeopleRecords.person_for`), with the name
  the platform shows and, where the platform reports it, the e-mail address.
- An e-mail address belongs to at most one person: an identity seen with an address that
  another person has joins that person (and a person left with no identity is merged into
  them, grant included unless they have one of their own). So roles, rate limits and the
  audit trail follow the human across platforms.
- A *grant* is the role given to a person in chat (``/im role``) or with
  ``chatops users grant``. It overrides ``[access.roles]`` for that person, up or down,
  until it is revoked; without one, the highest role ``[access.roles]`` gives any of their
  identities or their address holds, else ``[access] default_role``.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chatops_core.access.roles import Role
from chatops_core.access.settings import AccessSettings, identity_key, normalize_email
from chatops_core.store.schema import GrantRow, IdentityRow, PersonRow, utc

# A new identity and a new address seen at the same moment by two workers: one of them
# meets the other's row (a unique key) and settles again, finding it.
_SETTLE_ATTEMPTS = 3


@dataclass(frozen=True)
class Identity:
    """A platform user: the instance, their id there and the name it last showed."""

    instance: str
    user_id: str
    name: str | None

    @property
    def key(self) -> str:
        """``"<instance>:<user id>"``, as ``[access.roles]`` and ``chatops users`` write it."""
        return identity_key(self.instance, self.user_id)


@dataclass(frozen=True)
class Grant:
    """A role given to a person, by whom (a person's name, or the operator) and when."""

    role: Role
    granted_by: str
    at: datetime


@dataclass(frozen=True)
class KnownPerson:
    """A person as the store knows them."""

    id: int
    display_name: str
    email: str | None
    created_at: datetime
    identities: tuple[Identity, ...]
    grant: Grant | None

    def is_identity(self, instance: str | None, user_id: str | None) -> bool:
        return any(i.instance == instance and i.user_id == user_id for i in self.identities)


@dataclass(frozen=True)
class RoleSource:
    """A person's role and where it comes from, in words (for ``chatops users show``)."""

    role: Role
    source: str


class PeopleRecords:
    """People, identities and grants: the part of the store the access policy reads."""

    # [access] as configured; IncidentStore.from_settings sets the process's own.
    access: AccessSettings = AccessSettings()

    if TYPE_CHECKING:
        # Provided by IncidentStore.
        def _writing(self) -> AbstractContextManager[Session]: ...

        def _reading(self) -> AbstractContextManager[Session]: ...

    # --- people -----------------------------------------------------------------------

    def person_for(
        self,
        instance: str,
        user_id: str,
        name: str | None = None,
        email: str | None = None,
        *,
        at: datetime | None = None,
    ) -> KnownPerson:
        """The person behind platform user ``user_id`` of ``instance``, made on first use.

        ``name`` (as the platform shows them) becomes their display name; ``email``, when the
        platform reports one, joins them to the person who has that address already.
        """
        name = (name or "").strip() or None
        address = normalize_email(email)
        with self._reading() as session:
            identity = session.get(IdentityRow, (instance, user_id))
            if identity is not None:
                person = session.get(PersonRow, identity.person_id)
                if (
                    person is not None
                    and (name is None or (identity.name == name and person.display_name == name))
                    and (address is None or person.email == address)
                ):
                    return _known(session, person)
        when = utc(at) if at is not None else datetime.now(UTC)
        for attempt in range(_SETTLE_ATTEMPTS):
            try:
                with self._writing() as session:
                    person = _settle(session, instance, user_id, name, address, when)
                    return _known(session, person)
            except IntegrityError:
                if attempt == _SETTLE_ATTEMPTS - 1:
                    raise
        raise AssertionError("not reached")

    def find_person(self, instance: str, user_id: str) -> KnownPerson | None:
        """The person behind a platform user, if that user has been seen (nothing is made)."""
        with self._reading() as session:
            identity = session.get(IdentityRow, (instance, user_id))
            if identity is None:
                return None
            person = session.get(PersonRow, identity.person_id)
            return None if person is None else _known(session, person)

    def person(self, person_id: int) -> KnownPerson | None:
        """Person ``person_id``, if there is one."""
        with self._reading() as session:
            person = session.get(PersonRow, person_id)
            return None if person is None else _known(session, person)

    def person_by_email(self, email: str) -> KnownPerson | None:
        """The person with address ``email``, if any."""
        address = normalize_email(email)
        with self._reading() as session:
            person = session.execute(select(PersonRow).where(PersonRow.email == address)).scalar_one_or_none()
            return None if person is None else _known(session, person)

    def person_with_email(self, email: str, *, at: datetime | None = None) -> KnownPerson:
        """The person with address ``email``, made (with no platform user yet) when there is
        none: a role granted to them holds once a platform reports that address."""
        address = normalize_email(email)
        if address is None:
            raise ValueError("no e-mail address given")
        when = utc(at) if at is not None else datetime.now(UTC)
        for attempt in range(_SETTLE_ATTEMPTS):
            try:
                with self._writing() as session:
                    person = session.execute(
                        select(PersonRow).where(PersonRow.email == address)
                    ).scalar_one_or_none()
                    if person is None:
                        person = PersonRow(email=address, display_name=address, created_at=when)
                        session.add(person)
                        session.flush()
                    return _known(session, person)
            except IntegrityError:
                if attempt == _SETTLE_ATTEMPTS - 1:
                    raise
        raise AssertionError("not reached")

    def person_named(self, instance: str, name: str) -> KnownPerson | None:
        """The one person whose user on ``instance`` goes by ``name`` (``@`` and case aside);
        None when nobody, or more than one person, does."""
        wanted = name.removeprefix("@").strip().lower()
        with self._reading() as session:
            ids = set(
                session.execute(
                    select(IdentityRow.person_id).where(
                        IdentityRow.instance == instance, func.lower(IdentityRow.name) == wanted
                    )
                ).scalars()
            )
            if len(ids) != 1:
                return None
            person = session.get(PersonRow, ids.pop())
            return None if person is None else _known(session, person)

    def people(self) -> list[KnownPerson]:
        """Everyone the store knows, the first seen first."""
        with self._reading() as session:
            rows = session.execute(select(PersonRow).order_by(PersonRow.id)).scalars().all()
            return _all_known(session, rows)

    # --- roles ------------------------------------------------------------------------

    def role_of(self, person: KnownPerson) -> Role:
        """The role ``person`` holds: their grant, else ``[access.roles]``, else the default."""
        return self.role_source(person).role

    def role_source(self, person: KnownPerson) -> RoleSource:
        """:meth:`role_of`, and where the role comes from in words."""
        if person.grant is not None:
            grant = person.grant
            at = grant.at.isoformat(timespec="seconds")
            return RoleSource(grant.role, f"granted by {grant.granted_by} at {at}")
        access = self.access
        configured = access.configured_role(
            ((i.instance, i.user_id) for i in person.identities), person.email
        )
        if configured is not None:
            keys = [i.key for i in person.identities] + ([person.email] if person.email else [])
            named = [key for key in keys if access.roles.get(key) == configured]
            return RoleSource(configured, f"[access.roles] {', '.join(repr(k) for k in named)}")
        return RoleSource(access.default_role, "[access] default_role")

    def grant(
        self, person_id: int, role: Role, *, granted_by: str, at: datetime | None = None
    ) -> KnownPerson:
        """Give person ``person_id`` ``role`` (replacing an earlier grant); KeyError when
        there is no such person."""
        when = utc(at) if at is not None else datetime.now(UTC)
        with self._writing() as session:
            person = session.get(PersonRow, person_id)
            if person is None:
                raise KeyError(person_id)
            row = session.get(GrantRow, person_id)
            if row is None:
                session.add(GrantRow(person_id=person_id, role=role, granted_by=granted_by, at=when))
            else:
                row.role, row.granted_by, row.at = role, granted_by, when
            session.flush()
            return _known(session, person)

    def revoke(self, person_id: int) -> bool:
        """Take back person ``person_id``'s grant (the configuration then decides); False when
        they had none."""
        with self._writing() as session:
            removed = session.execute(delete(GrantRow).where(GrantRow.person_id == person_id))
            return bool(getattr(removed, "rowcount", 0))

    def admins(self) -> list[KnownPerson]:
        """The known people who hold the admin role (granted or configured), the first seen
        first; with ``default_role = "admin"``, everyone."""
        access = self.access
        if access.default_role is Role.ADMIN:
            return [p for p in self.people() if self.role_of(p) is Role.ADMIN]
        keys = [key for key, role in access.roles.items() if role is Role.ADMIN]
        # Configured keys are "<instance>:<user id>" or an address (which holds no ":").
        pairs = [tuple(key.split(":", 1)) for key in keys if ":" in key]
        emails = [key for key in keys if ":" not in key]
        with self._reading() as session:
            conditions = [PersonRow.id.in_(select(GrantRow.person_id).where(GrantRow.role == Role.ADMIN))]
            if pairs:
                conditions.append(
                    PersonRow.id.in_(
                        select(IdentityRow.person_id).where(
                            tuple_(IdentityRow.instance, IdentityRow.user_id).in_(pairs)
                        )
                    )
                )
            if emails:
                conditions.append(PersonRow.email.in_(emails))
            rows = session.execute(select(PersonRow).where(or_(*conditions)).order_by(PersonRow.id)).scalars()
            candidates = _all_known(session, rows.all())
        return [p for p in candidates if self.role_of(p) is Role.ADMIN]


def _settle(
    session: Session, instance: str, user_id: str, name: str | None, address: str | None, at: datetime
) -> PersonRow:
    """Find or make the person behind (instance, user id), applying what was seen."""
    owner = None
    if address is not None:
        owner = session.execute(select(PersonRow).where(PersonRow.email == address)).scalar_one_or_none()
    identity = session.get(IdentityRow, (instance, user_id))
    if identity is None:
        person = owner
        if person is None:
            person = PersonRow(email=address, display_name=name or user_id, created_at=at)
            session.add(person)
            session.flush()
        identity = IdentityRow(
            instance=instance, user_id=user_id, person_id=person.id, name=name, created_at=at
        )
        session.add(identity)
        session.flush()
    else:
        person = session.get(PersonRow, identity.person_id)
        assert person is not None  # the foreign key
        if address is not None and person.email != address:
            if owner is not None:
                identity.person_id = owner.id
                session.flush()
                _merge_if_left_alone(session, person, owner)
                person = owner
            elif person.email is None or _identity_count(session, person.id) == 1:
                # A first address, or a new one for someone this platform user alone stands for.
                person.email = address
            # Otherwise another identity of theirs reported the address they have: kept.
    if name is not None:
        identity.name = name
        person.display_name = name
    session.flush()
    return person


def _identity_count(session: Session, person_id: int) -> int:
    return session.execute(
        select(func.count()).select_from(IdentityRow).where(IdentityRow.person_id == person_id)
    ).scalar_one()


def _merge_if_left_alone(session: Session, person: PersonRow, into: PersonRow) -> None:
    """Merge ``person`` into ``into`` when no identity is left to ``person``: their grant goes
    along unless ``into`` has one of their own."""
    if _identity_count(session, person.id):
        return
    theirs = session.get(GrantRow, person.id)
    if theirs is not None and session.get(GrantRow, into.id) is None:
        session.add(GrantRow(person_id=into.id, role=theirs.role, granted_by=theirs.granted_by, at=theirs.at))
    session.execute(delete(GrantRow).where(GrantRow.person_id == person.id))
    if theirs is not None:
        session.expunge(theirs)
    session.flush()
    session.delete(person)
    session.flush()


def _known(session: Session, person: PersonRow) -> KnownPerson:
    return _all_known(session, [person])[0]


def _all_known(session: Session, rows: Iterable[PersonRow]) -> list[KnownPerson]:
    people = list(rows)
    ids = [p.id for p in people]
    identities: dict[int, list[Identity]] = {i: [] for i in ids}
    grants: dict[int, Grant] = {}
    if ids:
        found = session.execute(
            select(IdentityRow)
            .where(IdentityRow.person_id.in_(ids))
            .order_by(IdentityRow.created_at, IdentityRow.instance, IdentityRow.user_id)
        ).scalars()
        for row in found:
            identities[row.person_id].append(Identity(row.instance, row.user_id, row.name))
        for grant in session.execute(select(GrantRow).where(GrantRow.person_id.in_(ids))).scalars():
            grants[grant.person_id] = Grant(grant.role, grant.granted_by, grant.at)
    return [
        KnownPerson(
            id=p.id,
            display_name=p.display_name,
            email=p.email,
            created_at=p.created_at,
            identities=tuple(identities[p.id]),
            grant=grants.get(p.id),
        )
        for p in people
    ]
