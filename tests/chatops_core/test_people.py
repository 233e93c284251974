"""People in the store: made on first use, one person per e-mail address across platforms,
and the role each holds. On SQLite, and on PostgreSQL when CHATOPS_TEST_DATABASE_URL is set."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from chatops_core.access import AccessSettings, Role
from chatops_core.store import IncidentStore

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_a_platform_user_becomes_a_person_on_first_use_and_keeps_their_latest_name(
    store: IncidentStore,
) -> None:
    assert store.find_person("slack", "U1") is None
    first = store.person_for("slack", "U1", "alice")
    again = store.person_for("slack", "U1", "Alice Liddell")
    assert again.id == first.id
    assert again.display_name == "Alice Liddell"
    assert [(i.key, i.name) for i in again.identities] == [("slack:U1", "Alice Liddell")]
    assert store.person_for("slack", "U1").display_name == "Alice Liddell"  # no name: kept
    other = store.person_for("slack", "U2", "bob")
    assert other.id != first.id
    assert [p.display_name for p in store.people()] == ["Alice Liddell", "bob"]
    nameless = store.person_for("mm", "8jk3", None)
    assert nameless.display_name == "8jk3"


def test_the_same_email_on_two_platforms_is_one_person(store: IncidentStore) -> None:
    slack = store.person_for("slack", "U1", "alice", "Alice@Example.com")
    mm = store.person_for("mm", "8jk3", "alice.l", "alice@example.com")
    assert mm.id == slack.id
    assert mm.email == "alice@example.com"
    assert {i.key for i in mm.identities} == {"slack:U1", "mm:8jk3"}
    assert store.person_by_email("ALICE@example.com") == store.person(slack.id)
    # A platform that reports no address still finds her through the identity.
    assert store.person_for("mm", "8jk3").id == slack.id


def test_a_user_first_seen_without_an_email_joins_the_person_who_has_it(store: IncidentStore) -> None:
    owner = store.person_for("slack", "U1", "alice", "alice@example.com")
    store.grant(owner.id, Role.MANAGER, granted_by="ops", at=T0)
    # Seen on Mattermost before that platform reported her address: a person of her own...
    alone = store.person_for("mm", "8jk3", "alice.l")
    assert alone.id != owner.id
    store.grant(alone.id, Role.ADMIN, granted_by="ops", at=T0)
    # ...until it does: the identity joins Alice, and the empty person is merged away.
    joined = store.person_for("mm", "8jk3", "alice.l", "alice@example.com")
    assert joined.id == owner.id
    assert {i.key for i in joined.identities} == {"slack:U1", "mm:8jk3"}
    assert store.person(alone.id) is None
    assert joined.grant is not None and joined.grant.role is Role.MANAGER  # her own grant stands
    assert [p.id for p in store.people()] == [owner.id]


def test_a_merged_person_brings_their_grant_when_the_owner_has_none(store: IncidentStore) -> None:
    owner = store.person_for("slack", "U1", "alice", "alice@example.com")
    alone = store.person_for("mm", "8jk3", "alice.l")
    store.grant(alone.id, Role.MANAGER, granted_by="ops", at=T0)
    joined = store.person_for("mm", "8jk3", "alice.l", "alice@example.com")
    assert joined.id == owner.id
    assert joined.grant is not None and (joined.grant.role, joined.grant.granted_by) == (Role.MANAGER, "ops")


def test_a_person_with_other_users_keeps_them_when_one_joins_someone_else(store: IncidentStore) -> None:
    bob = store.person_for("slack", "U2", "bob")
    store.person_for("discord", "42", "bob")  # a second platform user with no address
    store.person_for("slack", "U2", "bob", "bob@example.com")
    # Discord's 42 turns out to be Carol's: it moves; Bob keeps his Slack user.
    carol = store.person_for("mm", "c1", "carol", "carol@example.com")
    moved = store.person_for("discord", "42", "carol", "carol@example.com")
    assert moved.id == carol.id
    still_bob = store.person(bob.id)
    assert still_bob is not None and [i.key for i in still_bob.identities] == ["slack:U2"]


def test_an_address_reported_for_a_lone_user_is_recorded_and_can_change(store: IncidentStore) -> None:
    first = store.person_for("slack", "U1", "alice")
    assert first.email is None
    assert store.person_for("slack", "U1", "alice", "alice@old.example").email == "alice@old.example"
    assert store.person_for("slack", "U1", "alice", "alice@new.example").email == "alice@new.example"


def test_role_of_grant_overrides_configuration_which_overrides_the_default(store: IncidentStore) -> None:
    store.access = AccessSettings(
        default_role=Role.VIEWER,
        roles={"slack:U1": Role.ADMIN, "alice@example.com": Role.MANAGER, "mm:bob": Role.RESPONDER},
    )
    alice = store.person_for("slack", "U1", "alice")
    bob = store.person_for("mm", "bob", "bob", "bob@example.com")
    carol = store.person_for("slack", "U3", "carol", "carol@example.com")
    assert store.role_of(alice) is Role.ADMIN
    assert store.role_of(bob) is Role.RESPONDER
    assert store.role_of(carol) is Role.VIEWER  # the default
    assert store.role_source(carol).source == "[access] default_role"
    # Alice on Mattermost, known by her address only: a manager.
    alice_mm = store.person_for("mm", "a1", "alice", "alice@example.com")
    assert alice_mm.id != alice.id and store.role_of(alice_mm) is Role.MANAGER
    # Once Slack reports her address too, she is one person: the highest configured role.
    alice = store.person_for("slack", "U1", "alice", "alice@example.com")
    assert alice.id == alice_mm.id
    assert store.role_of(alice) is Role.ADMIN
    assert "'slack:U1'" in store.role_source(alice).source
    # A grant overrides the configuration, down as well as up, until revoked.
    alice = store.grant(alice.id, Role.RESPONDER, granted_by="ops", at=T0)
    assert store.role_of(alice) is Role.RESPONDER
    assert store.role_source(alice).source == "granted by ops at 2026-12-07T09:00:00+00:00"
    carol = store.grant(carol.id, Role.MANAGER, granted_by="alice", at=T0)
    assert store.role_of(carol) is Role.MANAGER
    assert store.revoke(alice.id) is True
    assert store.revoke(alice.id) is False
    refreshed = store.person(alice.id)
    assert refreshed is not None and store.role_of(refreshed) is Role.ADMIN


def test_admins_are_those_granted_or_configured_admin(store: IncidentStore) -> None:
    store.access = AccessSettings(roles={"slack:U1": Role.ADMIN, "dana@example.com": Role.ADMIN})
    alice = store.person_for("slack", "U1", "alice")
    store.person_for("slack", "U2", "bob")
    carol = store.person_for("slack", "U3", "carol")
    dana = store.person_for("mm", "d", "dana", "dana@example.com")
    store.grant(carol.id, Role.ADMIN, granted_by="alice", at=T0)
    assert [p.display_name for p in store.admins()] == ["alice", "carol", "dana"]
    store.grant(alice.id, Role.MANAGER, granted_by="carol", at=T0)  # a grant overrides her config
    store.revoke(dana.id)
    assert [p.display_name for p in store.admins()] == ["carol", "dana"]


def test_an_address_can_hold_a_role_before_its_person_shows_up(store: IncidentStore) -> None:
    waiting = store.person_with_email("Erin@Example.com")
    assert waiting.identities == () and waiting.display_name == "erin@example.com"
    store.grant(waiting.id, Role.MANAGER, granted_by="ops", at=T0)
    erin = store.person_for("slack", "U5", "erin", "erin@example.com")
    assert erin.id == waiting.id and store.role_of(erin) is Role.MANAGER
    assert store.person_with_email("erin@example.com").id == waiting.id


def test_person_named_finds_one_user_by_their_platform_name(store: IncidentStore) -> None:
    alice = store.person_for("mm", "a1", "alice")
    store.person_for("mm", "b1", "bob")
    store.person_for("mm", "b2", "bob")
    found = store.person_named("mm", "@Alice")
    assert found is not None and found.id == alice.id
    assert store.person_named("mm", "bob") is None  # two people go by it
    assert store.person_named("slack", "alice") is None  # not on that platform


def test_many_workers_seeing_one_new_address_at_once_make_one_person(store: IncidentStore) -> None:
    users = [("slack", f"U{i}") for i in range(4)] + [("mm", f"m{i}") for i in range(4)]

    def seen(user: tuple[str, str]) -> int:
        return store.person_for(user[0], user[1], "zoe", "zoe@example.com").id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(seen, users, timeout=60))
    assert len(ids) == 1
    (zoe,) = store.people()
    assert len(zoe.identities) == len(users)
