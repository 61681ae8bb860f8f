"""A user's state from its newest snapshot (``eventstore.snapshotting.load_state``), on real
Redis, and on Postgres for the archive: the same state as the whole fold, snapshots written after
many events or an archive read, and no command recorded twice across a snapshot."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

import schemas
from characters import Character
from commands.awaited import awaited_subscription
from commands.reward import grant_character
from commands.users import load_user
from eventstore.archive import Archive
from eventstore.archiver import archive_now
from eventstore.causation import effect_id
from eventstore.errors import HistoryGap
from eventstore.keys import Layout
from eventstore.snapshots import Snapshot
from eventstore.snapshotting import SNAPSHOT_EVERY
from eventstore.store import ANY, EventStore
from eventstore.trim import RetentionPolicy
from schemas.envelope import Envelope, Metadata
from schemas.registry import Command
from schemas.user_state import UserState, hashed_subject, user_id_for
from schemas.users import USER, CharacterGranted, DeleteUser, SignIn, UserLoggedIn
from tests.eventstore.test_archive import CountingArchive
from tests.readmodels.pg import migrated_pool

pytestmark = pytest.mark.redis

PLI = Character(code="char-pli", name="플리", type="플라스틱", dialog="안녕", match_label="플라스틱")


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    return EventStore(redis_client, layout, schemas.registry)


def command(message: Command, user_id: str) -> Envelope:
    return schemas.registry.envelope(message, aggregate_id=user_id, aggregate_type=USER,
                                     metadata=Metadata())


def sign_in(user_id: str) -> Envelope:
    return command(SignIn(user_id=user_id, provider="kakao",
                          provider_user_id=hashed_subject("kakao", "42")), user_id)


async def run(store: EventStore, envelope: Envelope) -> None:
    """Deliver ``envelope`` to its handler, as the runner does."""
    message = schemas.registry.decode_envelope(envelope)
    await awaited_subscription(store).handlers[type(message)](envelope, message)


async def logins(store: EventStore, user_id: str, n: int) -> None:
    """``n`` logins appended at once (what ``n`` sign-ins record)."""
    events = [schemas.registry.envelope(
        UserLoggedIn(provider="kakao"), aggregate_id=user_id, aggregate_type=USER,
        metadata=Metadata(causation_id=str(uuid.uuid4())),
    ) for _ in range(n)]
    await store.append(events, expected_version=ANY)


async def whole(store: EventStore, user_id: str) -> UserState:
    """The state folded from every event, without snapshots."""
    return UserState.from_events(user_id, await store.read_aggregate(user_id), schemas.registry)


async def registered_with_logins(store: EventStore, n: int) -> str:
    user_id = user_id_for("kakao", uuid.uuid4().hex)
    await run(store, sign_in(user_id))
    await logins(store, user_id, n)
    return user_id


async def test_a_user_with_many_logins_loads_from_its_snapshot(store: EventStore) -> None:
    user_id = await registered_with_logins(store, 200)
    shard = store.layout.shard_of(user_id)
    head = await store.head(shard)
    assert (await store.read_from_snapshot(user_id)).snapshot is None
    assert await load_user(store, user_id) == await whole(store, user_id)
    read = await store.read_from_snapshot(user_id)  # written by that load
    assert read.snapshot is not None and (read.after, read.events) == (201, [])
    await logins(store, user_id, 3)
    assert await load_user(store, user_id) == await whole(store, user_id)
    read = await store.read_from_snapshot(user_id)
    assert read.after == 201 and [e.version for e in read.events] == [202, 203, 204]
    await logins(store, user_id, SNAPSHOT_EVERY)  # enough to be worth the next snapshot
    state = await load_user(store, user_id)
    assert state == await whole(store, user_id) and state.version == 204 + SNAPSHOT_EVERY
    assert (await store.read_from_snapshot(user_id)).after == state.version
    assert await store.head(shard) == head + 3 + SNAPSHOT_EVERY  # snapshots stay out of the log


async def test_redelivered_sign_ins_after_a_snapshot_record_nothing_twice(
    store: EventStore,
) -> None:
    user_id = user_id_for("kakao", uuid.uuid4().hex)
    first, second = sign_in(user_id), sign_in(user_id)
    await run(store, first)  # registers
    await run(store, second)  # a login, then one more than the newest snapshot's worth
    await logins(store, user_id, 80)
    third = sign_in(user_id)
    await run(store, third)  # its load snapshotted 82 (the handler folded 82 events)
    await logins(store, user_id, SNAPSHOT_EVERY)
    await load_user(store, user_id)
    version = await store.version_of(user_id)
    assert (await store.read_from_snapshot(user_id)).after == version == 83 + SNAPSHOT_EVERY
    # All three before the snapshot: the registration is recognised in the state (its
    # redelivery would otherwise record a login), the logins carry the same event ids again,
    # which the store drops.
    for redelivered in (first, second, third, first):
        await run(store, redelivered)
    assert await store.version_of(user_id) == version
    events = await store.read_aggregate(user_id)
    for cmd in (first, second, third):
        assert sum(e.metadata.causation_id == str(cmd.id) for e in events) == 1


async def test_a_sign_in_replayed_after_the_idempotency_window_records_nothing_twice(
    store: EventStore,
) -> None:
    """A login neither the registration nor the latest, before the snapshot, replayed (from
    the dead letters) once the store no longer remembers its event id."""
    user_id = user_id_for("kakao", uuid.uuid4().hex)
    first, second = sign_in(user_id), sign_in(user_id)
    await run(store, first)
    await run(store, second)
    await logins(store, user_id, SNAPSHOT_EVERY)
    await load_user(store, user_id)  # snapshotted after the second sign-in's login
    version = await store.version_of(user_id)
    assert (await store.read_from_snapshot(user_id)).after == version
    keys = store.layout.keys_for(user_id)
    await store.redis.delete(keys.event_ids)  # the idempotency window has passed
    await run(store, second)
    assert await store.version_of(user_id) == version
    later = sign_in(user_id)
    await run(store, later)  # a new sign-in still records its login
    assert await store.version_of(user_id) == version + 1


async def test_characters_are_granted_once_across_snapshots(store: EventStore) -> None:
    user_id = await registered_with_logins(store, 100)
    answer = command(DeleteUser(user_id=user_id), user_id)  # any cause will do
    await load_user(store, user_id)  # snapshot at 101
    assert await grant_character(store, user_id, PLI, job_id="job-1", cause=answer)
    await logins(store, user_id, SNAPSHOT_EVERY)
    state = await load_user(store, user_id)  # snapshot holding the grant
    assert (await store.read_from_snapshot(user_id)).after == state.version
    assert [(c.code, c.source_job_id) for c in state.characters] == [("char-pli", "job-1")]
    assert await grant_character(store, user_id, PLI, job_id="job-1", cause=answer)  # redelivery
    assert not await grant_character(store, user_id, PLI, job_id="job-2", cause=answer)
    granted = [e for e in await store.read_aggregate(user_id)
               if isinstance(schemas.registry.decode_envelope(e), CharacterGranted)]
    assert len(granted) == 1 and await store.version_of(user_id) == state.version


async def test_a_grant_this_release_cannot_fold_is_still_seen(store: EventStore) -> None:
    """A newer release recorded the grant in a schema this one does not know (a rolling
    deploy): the fold skips it, the append answers "duplicate", and the raw events tell whose."""
    user_id = await registered_with_logins(store, 1)
    answer = command(DeleteUser(user_id=user_id), user_id)
    newer = schemas.registry.envelope(
        CharacterGranted(character_code=PLI.code, character_name=PLI.name, source_job_id="job-1"),
        aggregate_id=user_id, aggregate_type=USER, metadata=Metadata(),
        id=effect_id("grant", user_id, PLI.code),
    ).model_copy(update={"schema_version": 99})
    await store.append([newer], expected_version=ANY)
    assert (await load_user(store, user_id)).characters == []  # not understood here
    assert not await grant_character(store, user_id, PLI, job_id="job-2", cause=answer)
    assert await grant_character(store, user_id, PLI, job_id="job-1", cause=answer)
    assert await store.version_of(user_id) == 3


async def test_a_deleted_user_stays_deleted_after_a_snapshot(store: EventStore) -> None:
    user_id = await registered_with_logins(store, 100)
    await run(store, command(DeleteUser(user_id=user_id), user_id))
    assert (await load_user(store, user_id)).deleted
    assert (await store.read_from_snapshot(user_id)).after == 101  # the handler's load wrote it
    await run(store, sign_in(user_id))  # records nothing: the next generation signs in
    await run(store, command(DeleteUser(user_id=user_id), user_id))
    assert await store.version_of(user_id) == 102 and (await load_user(store, user_id)).deleted
    assert user_id_for("kakao", "other", 1) != user_id_for("kakao", "other")


DAMAGES = [
    {"data": "not json"},
    {"data": '{"user_id": "someone else", "version": 11}'},
    {"sv": "0"},  # an older release's format
    {"type": "user.other_state"},
    {"ver": "ten"},
]


async def plant_damaged_snapshot(
    store: EventStore, redis_client: aioredis.Redis, user_id: str, damage: dict[str, str]
) -> UserState:
    """The user's state, and a snapshot of it at its version spoilt by ``damage``."""
    good = UserState.from_events(user_id, await store.read_aggregate(user_id), schemas.registry)
    fields = Snapshot(user_id, good.version, UserState.SNAPSHOT_KIND, UserState.SNAPSHOT_FORMAT,
                      good.snapshot_data()).fields() | damage
    key = store.layout.keys_for(user_id).snapshots(user_id)
    await redis_client.delete(key)
    await redis_client.xadd(key, fields, id=f"{good.version}-1")
    return good


@pytest.mark.parametrize("damage", DAMAGES)
async def test_a_bad_snapshot_is_ignored_then_replaced(
    store: EventStore, redis_client: aioredis.Redis, damage: dict[str, str]
) -> None:
    user_id = await registered_with_logins(store, 10)
    await plant_damaged_snapshot(store, redis_client, user_id, damage)
    await logins(store, user_id, 1)
    assert await load_user(store, user_id) == await whole(store, user_id)  # read whole, no error
    read = await store.read_from_snapshot(user_id)  # replaced by a readable one
    assert read.snapshot is not None and read.after == 12 and read.events == []


@pytest.mark.parametrize("damage", DAMAGES)
async def test_a_bad_snapshot_at_the_current_version_is_replaced_at_once(
    store: EventStore, redis_client: aioredis.Redis, damage: dict[str, str]
) -> None:
    """A user with no new events since (a release changed ``SNAPSHOT_FORMAT``) does not keep
    a snapshot nobody can use, read whole at every load."""
    user_id = await registered_with_logins(store, 10)
    good = await plant_damaged_snapshot(store, redis_client, user_id, damage)
    assert await load_user(store, user_id) == good
    read = await store.read_from_snapshot(user_id)  # replaced at the same version
    assert read.snapshot is not None and (read.after, read.events) == (11, [])
    assert UserState.from_snapshot(user_id, read.snapshot.data) == good
    assert (read.snapshot.kind, read.snapshot.format) == (
        UserState.SNAPSHOT_KIND, UserState.SNAPSHOT_FORMAT)
    assert await load_user(store, user_id) == good


async def test_a_newer_releases_snapshot_is_used_by_it_not_replaced_by_this_one(
    store: EventStore, redis_client: aioredis.Redis
) -> None:
    """During a rolling deploy two releases read the same users: this one reads a snapshot in
    a newer format whole, but leaves it in place (else the two would replace each other's at
    every load)."""
    user_id = await registered_with_logins(store, 10)
    good = await plant_damaged_snapshot(store, redis_client, user_id, {"sv": "2"})
    key = store.layout.keys_for(user_id).snapshots(user_id)
    kept = await redis_client.xrange(key)
    assert await load_user(store, user_id) == good
    assert await redis_client.xrange(key) == kept
    await logins(store, user_id, 1)  # a new event: a snapshot this release can use, later on
    assert await load_user(store, user_id) == await whole(store, user_id)
    read = await store.read_from_snapshot(user_id)
    assert read.snapshot is not None and (read.after, read.snapshot.format) == (
        12, UserState.SNAPSHOT_FORMAT)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as pool:
        yield pool


@pytest.mark.postgres
async def test_an_archived_user_loads_without_the_archive_once_snapshotted(
    redis_client: aioredis.Redis, layout: Layout, pool: asyncpg.Pool
) -> None:
    archive = CountingArchive(pool)
    store = EventStore(redis_client, layout, schemas.registry, archive=archive)
    user_id = await registered_with_logins(store, 20)
    before = await whole(store, user_id)
    schema = await pool.fetchval("SELECT current_schema()")
    everything = RetentionPolicy(hot_retention_s=0, idempotency_window_s=0)
    await archive_now(redis_client, pool, schema, layout, everything)
    assert not await redis_client.exists(layout.keys_for(user_id).aggregate(user_id))
    assert await load_user(store, user_id) == before  # from the archive: then snapshotted
    assert archive.queries > 0 and (await store.read_from_snapshot(user_id)).after == 21
    again = sign_in(user_id)
    await run(store, again)  # a login at 22, in Redis again
    await pool.execute("DELETE FROM event_log WHERE aggregate_id = $1", user_id)
    archive.queries = 0
    state = await load_user(store, user_id)
    assert archive.queries == 0  # nor could it have helped: the archived rows are gone
    assert (state.registered, state.version, state.last_login_by) == (True, 22, str(again.id))
    assert state.registered_at == before.registered_at
    assert await store.read_aggregate(user_id, after_version=22) == []  # a poll, past the floor
    await run(store, again)  # redelivered: recognised from the state
    assert archive.queries == 0 and await store.version_of(user_id) == 22


@pytest.mark.postgres
async def test_a_trimmed_user_without_an_archive_is_refused_never_snapshotted(
    redis_client: aioredis.Redis, layout: Layout, pool: asyncpg.Pool
) -> None:
    """A reader with no archive wired cannot see the versions a trim moved to Postgres: it
    raises ``HistoryGap`` (as ``read_aggregate`` does) rather than return, or snapshot, a state
    folded from the part still in Redis."""
    archived = EventStore(redis_client, layout, schemas.registry, archive=Archive(pool))
    bare = EventStore(redis_client, layout, schemas.registry)
    user_id = await registered_with_logins(archived, 20)
    key = layout.keys_for(user_id).snapshots(user_id)
    everything = RetentionPolicy(hot_retention_s=0, idempotency_window_s=0)
    schema = await pool.fetchval("SELECT current_schema()")
    await archive_now(redis_client, pool, schema, layout, everything)  # the stream goes whole
    with pytest.raises(HistoryGap):  # registered, or never seen? Only the archive knows
        await load_user(bare, user_id)
    await logins(archived, user_id, SNAPSHOT_EVERY)  # 22..85 in Redis: worth a snapshot
    for read in (load_user(bare, user_id), bare.read_aggregate(user_id)):
        with pytest.raises(HistoryGap, match="version 22 is the first in Redis"):
            await read
    assert not await redis_client.exists(key)  # nothing snapshotted from versions 22..85
    state = await load_user(archived, user_id)  # with the archive: whole, and snapshotted
    assert state == await whole(archived, user_id) and state.registered
    assert (await archived.read_from_snapshot(user_id)).after == 85
    # A snapshot this release cannot use: the whole read it needs is refused the same way.
    await plant_damaged_snapshot(archived, redis_client, user_id, {"sv": "0"})
    with pytest.raises(HistoryGap):
        await load_user(bare, user_id)
    assert await redis_client.xrange(key) and (await redis_client.xrange(key))[0][1]["sv"] == "0"
    assert await load_user(archived, user_id) == state  # replaced at 85
    # A usable snapshot, then a login, all archived and trimmed away: is 85 still the last?
    await run(archived, sign_in(user_id))
    await archive_now(redis_client, pool, schema, layout, everything)
    with pytest.raises(HistoryGap):
        await load_user(bare, user_id)
    assert (await load_user(archived, user_id)).version == 86
