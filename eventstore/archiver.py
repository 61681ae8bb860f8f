"""The archiver: copies each shard's log into ``event_log`` in position order, then trims Redis.

One active archiver per shard (a Postgres advisory-lock lease, held on a dedicated session as
the projectors' leases are). A cycle reads the log from the archive checkpoint in batches, COPYs
each batch and moves the checkpoint in the same transaction (``archive.write_batch``), then
runs one ``Trimmer`` step. A ``kill -9`` at any point either loses the open transaction (the
batch is copied again) or leaves a committed batch whose entries are still in Redis (the next
trim removes them): nothing is lost and nothing is copied twice (the primary key and the
checkpoint guard would refuse it).

Before copying, the archiver checks that the log still holds what the checkpoint says it
archived (the head is not below it, and the entry at the checkpoint has the archived event
id): when Redis lost its tail the archiver stops with ``ArchiveError`` rather than archive
reused positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import asyncpg
import redis.asyncio as aioredis
from redis.client import NEVER_DECODE

from eventstore.archive import (
    ArchiveError,
    RawEntry,
    ensure_schema,
    load_checkpoint,
    write_batch,
)
from eventstore.cancellation import raise_if_cancelled
from eventstore.keys import Layout
from eventstore.metrics import archive_metrics
from eventstore.trim import FloorSource, RetentionPolicy, Trimmer, TrimReport

if TYPE_CHECKING:
    from eventstore.archive import Pool

log = logging.getLogger(__name__)

BATCH = 10_000


def lease_key(schema: str, shard: int) -> int:
    """The advisory-lock key of shard ``shard``'s archiver in ``schema``."""
    digest = hashlib.blake2b(f"eco2-archiver:{schema}:{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class CycleReport:
    shard: int
    head: int
    archived_before: int
    archived: int
    trim: TrimReport

    @property
    def copied(self) -> int:
        return self.archived - self.archived_before


class ShardArchiver:
    """Archive and trim one shard (the caller holds its lease)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: Pool,
        layout: Layout,
        shard: int,
        policy: RetentionPolicy,
        floors: Sequence[tuple[str, FloorSource]] = (),
        batch: int = BATCH,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.keys = layout.keys(shard)
        self.batch = batch
        self.trimmer = Trimmer(redis, pool, self.keys, policy, floors)
        self._partitions: set[tuple[int, int]] = set()
        self._schema_ready = False

    async def archive(self) -> tuple[int, int]:
        """Copy everything up to the current head; returns (checkpoint before, after)."""
        keys = self.keys
        async with self.pool.acquire() as conn:
            if not self._schema_ready:
                await ensure_schema(conn)
                self._schema_ready = True
            async with conn.transaction():
                start, event_id = await load_checkpoint(conn, keys.shard)
            await self._check_log(start, event_id)
            position = start
            # The next batch is read from Redis while the current one is COPYed.
            upcoming = asyncio.ensure_future(self._read(position))
            try:
                while True:
                    raise_if_cancelled()
                    entries = await upcoming
                    if not entries:
                        return start, position
                    upcoming = asyncio.ensure_future(
                        self._read(int(entries[-1][0].split(b"-", 1)[0]))
                    )
                    try:
                        position = await write_batch(
                            conn, keys.shard, position, entries, self._partitions
                        )
                    except Exception:
                        self._partitions.clear()  # a rolled-back transaction may have made them
                        raise
            finally:
                upcoming.cancel()

    async def _read(self, after: int) -> list[RawEntry]:
        # Plain XRANGE: measured faster than any Lua variant (converting stream replies into
        # Lua tables costs Redis more than sending them). Undecoded: the field bytes go to
        # COPY as they are.
        args = (self.keys.events, f"{after + 1}-0", "+", "COUNT", self.batch)
        if isinstance(self.redis, aioredis.RedisCluster):
            return cast(
                list[RawEntry],
                await self.redis.execute_command("XRANGE", *args, **{NEVER_DECODE: True}),
            )
        # On one node the reply is also left unparsed (no dict per entry): redis-py looks its
        # reply callbacks up by the command name as given, and has none for b"XRANGE".
        # The pairs stay the reply's two-item lists (they unpack as the tuples would).
        return cast(
            list[RawEntry],
            await self.redis.execute_command(b"XRANGE", *args, **{NEVER_DECODE: True}),
        )

    async def _check_log(self, archived: int, event_id: str | None) -> None:
        keys = self.keys
        # A plain pipeline (on a Redis Cluster a MULTI's replies come back unparsed); the head
        # and the floor only grow, so reading them around the entry is as good as a snapshot.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.floor)
            pipe.xrange(keys.events, min=f"{archived}-0", max=f"{archived}-0")
            pipe.get(keys.head)
            floor_raw, at, head_raw = await pipe.execute()
        head, floor = int(head_raw or 0), int(floor_raw or 0)
        if head < archived:
            raise ArchiveError(
                f"shard {keys.shard}: the log's head {head} is below the archived position"
                f" {archived} (Redis lost its tail); archiving stopped"
            )
        if floor > archived:
            raise ArchiveError(
                f"shard {keys.shard}: Redis was trimmed to {floor}, past the archive ({archived})"
            )
        if at and event_id and at[0][1].get("id") != event_id:
            raise ArchiveError(
                f"shard {keys.shard}: position {archived} holds event {at[0][1].get('id')},"
                f" the archive has {event_id} (Redis lost its tail); archiving stopped"
            )

    def forget_schema(self) -> None:
        """The archive's tables went missing (a dropped schema): the next cycle creates them
        again before reading its checkpoint."""
        self._schema_ready = False
        self._partitions.clear()

    async def cycle(self) -> CycleReport:
        """Archive up to the head, then trim what the floors allow."""
        before, archived = await self.archive()
        raise_if_cancelled()
        trim = await self.trimmer.trim(archived)
        head = int(await self.redis.get(self.keys.head) or 0)
        return CycleReport(self.keys.shard, head, before, archived, trim)


@dataclass(frozen=True)
class ArchiverOptions:
    interval_s: float = 5.0  # pause between cycles of an idle shard
    lease_retry_s: float = 5.0
    batch: int = BATCH


class ArchiverService:
    """The archivers of one process: each shard whose lease it gets, cycle after cycle."""

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: Pool,
        dsn: str,
        schema: str,
        layout: Layout,
        policy: RetentionPolicy,
        floors: Sequence[tuple[str, FloorSource]] = (),
        options: ArchiverOptions | None = None,
    ) -> None:
        self.redis, self.pool, self.dsn, self.schema = redis, pool, dsn, schema
        self.layout = layout
        self.options = options or ArchiverOptions()
        self.archivers = {
            s: ShardArchiver(redis, pool, layout, s, policy, floors, self.options.batch)
            for s in range(layout.shards)
        }
        self.last: dict[int, CycleReport] = {}
        self.errors: dict[int, str] = {}

    async def run(self) -> None:
        """Hold leases and archive the shards they give, until cancelled."""
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres down: the leases are gone, start again
                raise_if_cancelled()
                log.warning("archiver session ended: %s (retrying)", exc)
            raise_if_cancelled()
            await asyncio.sleep(self.options.lease_retry_s)

    async def _session(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, timeout=10, server_settings={"search_path": self.schema}
        )
        try:
            await ensure_schema(conn)
            held: set[int] = set()
            while True:
                for shard in range(self.layout.shards):
                    if shard not in held and await conn.fetchval(
                        "SELECT pg_try_advisory_lock($1)", lease_key(self.schema, shard)
                    ):
                        held.add(shard)
                        log.info("archiver: shard %s leased", shard)
                idle = True
                for shard in sorted(held):
                    raise_if_cancelled()
                    idle = await self._cycle(shard) and idle
                await conn.fetchval("SELECT 1", timeout=10)  # the lease session is still alive
                raise_if_cancelled()
                if idle:
                    await asyncio.sleep(self.options.interval_s)
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    async def _cycle(self, shard: int) -> bool:
        """One cycle; True when the shard was idle (nothing copied)."""
        try:
            report = await self.archivers[shard].cycle()
        except ArchiveError as exc:
            self._failed(shard, str(exc), logging.ERROR)
            return True
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
            raise_if_cancelled()
            # The schema was dropped under the archiver: the next cycle creates the tables
            # again, or keeps failing (reported once) while the schema itself is missing.
            self.archivers[shard].forget_schema()
            self._failed(shard, f"shard {shard}: the archive's tables are missing: {exc}",
                         logging.ERROR)
            return True
        except (OSError, asyncpg.PostgresError, aioredis.RedisError) as exc:
            raise_if_cancelled()
            self._failed(shard, f"shard {shard}: {exc} (retrying)", logging.WARNING)
            return True
        self.errors.pop(shard, None)
        self.last[shard] = report
        metrics = archive_metrics()
        metrics.archived.labels(str(shard)).set(report.archived)
        metrics.hot.labels(str(shard)).set(max(report.head - report.archived, 0))
        return report.copied == 0

    def _failed(self, shard: int, message: str, level: int) -> None:
        """Record why the shard's last cycle failed; a failure that repeats is logged once."""
        if self.errors.get(shard) != message:
            log.log(level, "archiver: %s", message)
        self.errors[shard] = message


async def archive_now(
    redis: aioredis.Redis,
    pool: Pool,
    schema: str,
    layout: Layout,
    policy: RetentionPolicy,
    floors: Sequence[tuple[str, FloorSource]] = (),
) -> list[CycleReport]:
    """One archive+trim cycle of every shard, each under its lease (waits for a running
    archiver to finish its cycle)."""
    async with pool.acquire() as conn:
        await ensure_schema(conn)
    reports = []
    async with pool.acquire() as lock:
        for shard in range(layout.shards):
            key = lease_key(schema, shard)
            await lock.execute("SELECT pg_advisory_lock($1)", key)
            try:
                reports.append(
                    await ShardArchiver(redis, pool, layout, shard, policy, floors).cycle()
                )
            finally:
                await lock.execute("SELECT pg_advisory_unlock($1)", key)
    return reports

