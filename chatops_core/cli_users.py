"""``chatops users``: the people the service knows, and the roles they hold.

- ``chatops users list``: one line each: id, name, role, e-mail, platform users.
- ``chatops users show WHO``: one person in full, with where their role comes from.
- ``chatops users grant WHO ROLE``: give a role; it overrides ``[access.roles]`` until revoked.
- ``chatops users revoke WHO``: take the grant back (the configuration decides again).

``WHO`` is a person's id (``chatops users list``), a platform user ``<instance>:<user id>``
(``slack:U024BE7LH``) or an e-mail address. ``grant`` also takes a platform user or an
address not seen yet: the person is made then, and keeps the role once they show up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatops_core.access.roles import Role
from chatops_core.access.settings import normalize_email

if TYPE_CHECKING:
    from chatops_core.store import IncidentStore
    from chatops_core.store.people import KnownPerson

# Who granted a role from the command line, as the grant records it.
OPERATOR = "an operator (chatops users)"


def add_users_command(
    sub: argparse._SubParsersAction, load_settings: Callable[[argparse.Namespace], Any]
) -> None:  # type: ignore[type-arg]
    """Add ``chatops users`` to the ``chatops`` subcommands; ``load_settings(args)`` reads
    the configuration as every command does."""

    def run(args: argparse.Namespace) -> int:
        return cmd_users(args, load_settings(args))

    p = sub.add_parser("users", help="people and their roles (list, show, grant, revoke)")
    p.add_argument(
        "--config", default=argparse.SUPPRESS, help="TOML configuration file (else CHATOPS_CONFIG)"
    )
    p.set_defaults(func=run)
    users = p.add_subparsers(dest="users_command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        u = users.add_parser(name, help=help_text)
        u.add_argument(
            "--config", default=argparse.SUPPRESS, help="TOML configuration file (else CHATOPS_CONFIG)"
        )
        return u

    who_help = "a person id, INSTANCE:USER_ID (e.g. slack:U024BE7LH) or an e-mail address"
    add("list", "one line each: id, name, role, e-mail, platform users")
    u = add("show", "one person, their platform users and where their role comes from")
    u.add_argument("who", help=who_help)
    u = add("grant", "give a role (overrides [access.roles] until revoked)")
    u.add_argument("who", help=who_help)
    u.add_argument("role", choices=[role.value for role in Role])
    u = add("revoke", "take a granted role back ([access] decides again)")
    u.add_argument("who", help=who_help)


def cmd_users(args: argparse.Namespace, settings: Any) -> int:
    from chatops_core.store import IncidentStore

    store = IncidentStore.from_settings(settings)
    try:
        if store.current_revision() != store.head_revision():
            print("chatops: the database is not up to date; run `chatops db upgrade` first", file=sys.stderr)
            return 1
        if args.users_command == "list":
            return _list(store)
        if args.users_command == "grant":
            return _grant(store, args.who, Role(args.role))
        person = _find(store, args.who)
        if person is None:
            print(
                f"chatops: nobody known as {args.who!r}; `chatops users list` shows everyone", file=sys.stderr
            )
            return 1
        if args.users_command == "show":
            return _show(store, person)
        return _revoke(store, person)
    finally:
        store.close()


def _find(store: IncidentStore, who: str) -> KnownPerson | None:
    who = who.strip()
    if who.isdigit():
        return store.person(int(who))
    instance, sep, user_id = who.partition(":")
    if sep and instance and user_id:
        return store.find_person(instance, user_id)
    if "@" in who:
        return store.person_by_email(who)
    return None


def _who(person: KnownPerson) -> str:
    return f"{person.display_name} (person {person.id})"


def _audit(store: IncidentStore, command: str, reason: str) -> None:
    """Append the audit record of a grant or revoke made from the command line."""
    from chatops_core.audit import AuditEntry, AuditOutcome

    store.append_audit(
        AuditEntry(outcome=AuditOutcome.OK, source="cli", command=command, actor=OPERATOR, reason=reason)
    )


def _identities(person: KnownPerson) -> str:
    return ", ".join(i.key for i in person.identities) or "-"


def _list(store: IncidentStore) -> int:
    people = store.people()
    if not people:
        print("nobody yet (people are known once they use the bot)")
    for person in people:
        role = store.role_of(person)
        print(
            f"{person.id}\t{person.display_name}\t{role.value}\t{person.email or '-'}\t{_identities(person)}"
        )
    return 0


def _show(store: IncidentStore, person: KnownPerson) -> int:
    found = store.role_source(person)
    print(f"person {person.id}: {person.display_name}")
    print(f"e-mail: {person.email or '-'}")
    print(f"role: {found.role.value} ({found.source})")
    print(f"known since: {person.created_at.isoformat(timespec='seconds')}")
    print("platform users:" if person.identities else "platform users: none yet")
    for identity in person.identities:
        print(f"  {identity.key}" + (f" ({identity.name})" if identity.name else ""))
    return 0


def _grant(store: IncidentStore, who: str, role: Role) -> int:
    person = _find(store, who)
    if person is None:
        person = _new_person(store, who)
        if person is None:
            print(
                f"chatops: {who!r} is not a person id, INSTANCE:USER_ID or an e-mail address; "
                "`chatops users list` shows everyone",
                file=sys.stderr,
            )
            return 1
    before = store.role_of(person)
    person = store.grant(person.id, role, granted_by=OPERATOR)
    _audit(store, "grant", f"granted {_who(person)} the {role.value} role (was {before.value})")
    print(f"{person.display_name} (person {person.id}) is now {role.article} (was {before.article})")
    return 0


def _new_person(store: IncidentStore, who: str) -> KnownPerson | None:
    """A person made for a platform user or an address not seen yet, to hold a grant."""
    instance, sep, user_id = who.strip().partition(":")
    if sep and instance and user_id and " " not in who.strip():
        return store.person_for(instance, user_id)
    address = normalize_email(who)
    if address and "@" in address and ":" not in address and " " not in address:
        return store.person_with_email(address)
    return None


def _revoke(store: IncidentStore, person: KnownPerson) -> int:
    had = person.grant
    if had is None or not store.revoke(person.id):
        found = store.role_source(person)
        who = f"{person.display_name} (person {person.id})"
        print(f"{who} has no grant; role {found.role.value} ({found.source})")
        return 0
    refreshed = store.person(person.id)
    assert refreshed is not None
    found = store.role_source(refreshed)
    _audit(store, "revoke", f"revoked {_who(person)}'s grant of {had.role.value}; now {found.role.value}")
    print(
        f"{person.display_name} (person {person.id}): grant of {had.role.value} revoked; "
        f"now {found.role.article} ({found.source})"
    )
    return 0
