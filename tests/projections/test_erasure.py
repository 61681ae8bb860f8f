"""A deleted user's free text leaves the scans and chat read models, whichever of the user's
shard and the scan's or chat's shard is projected first (as in a rebuild or a lagging shard)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eventstore.store import ANY, EventStore
from projections.chat import CHAT
from projections.commit import apply_batch, ensure_checkpoints
from projections.context import ReadSide
from projections.reading import ShardReader
from projections.replay import heads, replay
from projections.scans import SCANS
from schemas.chat import CHAT as CHAT_AGGREGATE
from schemas.chat import ChatCreated, MessageRecorded
from schemas.registry import Event
from schemas.scan import SCAN_JOB, ScanQueued
from schemas.users import USER, UserDeleted, UserRegistered

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

TYPED = "우리 집 베란다의 페트병"
IMAGE = "https://cdn.example/media/scan/x.png"


async def append(store: EventStore, aggregate: str, kind: str, events: list[Event]) -> None:
    envelopes = [store.registry.envelope(e, aggregate_id=aggregate, aggregate_type=kind)
                 for e in events]
    await store.append(envelopes, expected_version=ANY)


async def project_shards(side: ReadSide, shards: list[int]) -> None:
    """Project the scans and chat models one shard after the other, in the given order."""
    targets = await heads(side)
    for shard in shards:
        for projection in (SCANS, CHAT):
            await replay(side, projection, "v1", {shard: targets[shard]})


def distinct_shards(side: ReadSide) -> tuple[str, str, str]:
    """A user, a scan job and a chat on three different shards (the layout has four)."""
    user = "user-" + uuid.uuid4().hex
    taken = {side.layout.shard_of(user)}
    ids = []
    while len(ids) < 2:
        candidate = str(uuid.uuid4())
        if side.layout.shard_of(candidate) not in taken:
            taken.add(side.layout.shard_of(candidate))
            ids.append(candidate)
    return user, ids[0], ids[1]


@pytest.mark.parametrize("deletion_first", [True, False])
async def test_deletion_scrubs_typed_text_in_either_shard_order(
    side: ReadSide, store: EventStore, deletion_first: bool
) -> None:
    user, job, chat = distinct_shards(side)
    await append(store, job, SCAN_JOB, [ScanQueued(user_id=user, image_url=IMAGE,
                                                   user_input=TYPED)])
    await append(store, chat, CHAT_AGGREGATE, [
        ChatCreated(user_id=user),
        MessageRecorded(message_id="m-1", role="user", content=TYPED, image_url=IMAGE),
        MessageRecorded(message_id="m-2", role="assistant", content="라벨을 떼고 버려요."),
    ])
    await append(store, user, USER, [
        UserRegistered(username="", nickname="", provider="dev", provider_user_id="h"),
        UserDeleted(),
    ])
    shards = [side.layout.shard_of(x) for x in (job, chat)]
    user_shard = side.layout.shard_of(user)
    await project_shards(side, [user_shard, *shards] if deletion_first else [*shards, user_shard])

    scan = await side.pool.fetchrow("SELECT * FROM scans WHERE job_id = $1", job)
    assert scan is not None
    assert (scan["user_input"], scan["image_url"]) == (None, None)
    assert (scan["user_id"], scan["status"]) == (user, "queued")  # the rest stays
    session = await side.pool.fetchrow("SELECT * FROM chat_sessions WHERE id = $1", chat)
    assert session is not None
    assert (session["title"], session["preview"], session["message_count"]) == (None, None, 2)
    messages = await side.pool.fetch(
        "SELECT role, content, image_url FROM chat_messages WHERE chat_id = $1 ORDER BY id", chat
    )
    assert [tuple(m) for m in messages] == [
        ("user", "", None), ("assistant", "라벨을 떼고 버려요.", None)
    ]


async def test_other_users_keep_their_text(side: ReadSide, store: EventStore) -> None:
    user, job, _ = distinct_shards(side)
    other_job = str(uuid.uuid4())
    await append(store, job, SCAN_JOB, [ScanQueued(user_id=user, image_url=IMAGE,
                                                   user_input=TYPED)])
    await append(store, other_job, SCAN_JOB, [ScanQueued(user_id="someone-else",
                                                         image_url=IMAGE, user_input=TYPED)])
    await append(store, user, USER, [UserDeleted()])
    await project_shards(side, sorted(set((await heads(side)).keys())))
    rows = await side.pool.fetch("SELECT job_id, user_input FROM scans")
    assert {r["job_id"]: r["user_input"] for r in rows} == {job: None, other_job: TYPED}


@pytest.mark.parametrize("known_user", [False, True])
@pytest.mark.parametrize("deletion_first", [True, False])
async def test_a_deletion_and_a_new_scan_in_concurrent_transactions(
    side: ReadSide, store: EventStore, deletion_first: bool, known_user: bool
) -> None:
    """The deletion's batch and a batch with the user's new scan (two shards, two projector
    processes) are in flight at once; whichever commits second still leaves no typed text."""
    user, job, earlier = distinct_shards(side)
    if known_user:  # the user's row exists already, from an earlier, projected scan
        await append(store, earlier, SCAN_JOB, [ScanQueued(user_id=user, image_url=IMAGE)])
        await project_shards(side, [side.layout.shard_of(earlier)])
    await append(store, job, SCAN_JOB, [ScanQueued(user_id=user, image_url=IMAGE,
                                                   user_input=TYPED)])
    await append(store, user, USER, [UserDeleted()])
    reader = ShardReader(side.redis, side.layout, side.registry, SCANS.wire_names(side.registry))
    async with side.pool.acquire() as conn:
        await ensure_checkpoints(conn, "scans", "v1", range(side.layout.shards))
    first, second = (user, job) if deletion_first else (job, user)

    async def apply(conn: object, aggregate: str) -> None:
        shard = side.layout.shard_of(aggregate)
        batch = await reader.read(shard, 0, 100)
        await apply_batch(conn, SCANS, reader, "v1", batch)  # type: ignore[arg-type]

    async with side.pool.acquire() as one, side.pool.acquire() as two:
        held = one.transaction()
        await held.start()
        await apply(one, first)  # written, not committed
        other = asyncio.create_task(apply(two, second))
        await asyncio.sleep(0.3)  # the second batch runs up to the user's row and waits there
        await held.commit()
        await other
    rows = await side.pool.fetch("SELECT user_input, image_url FROM scans WHERE user_id = $1", user)
    assert [tuple(r) for r in rows] == [(None, None)] * (2 if known_user else 1)
