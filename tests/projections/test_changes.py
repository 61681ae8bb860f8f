"""Writing a batch's changes: each table and shape of row is one ``unnest`` upsert, whose
arrays are typed as the columns the table specs declare."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest

from projections.changes import Changes, RowChange
from projections.scans import SCANS
from readmodels import tables
from schemas.envelope import Envelope
from schemas.scan import Stage, StageStarted

pytestmark = [pytest.mark.postgres]


async def test_column_types_match_the_created_tables(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for group in tables.GROUPS.values():
            for spec in group.tables:
                rows = await conn.fetch(
                    "SELECT attname, atttypid::regtype::text AS type FROM pg_attribute"
                    " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
                    spec.physical("v1"),
                )
                declared = {
                    name: await conn.fetchval("SELECT $1::text::regtype::text", written)
                    for name, written in spec.column_types.items()
                }
                assert declared == {r["attname"]: r["type"] for r in rows}, spec.name


async def test_rows_of_every_shape_are_written_and_upserted(pool: asyncpg.Pool) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    async with pool.acquire() as conn:
        first = Changes(tables.STATS, shared=frozenset({"stats_rewards"}))
        first.add("stats_scans_daily", (date(2026, 1, 2), "종이"), count=2)
        first.add("stats_scans_daily", (date(2026, 1, 3), "플라스틱"), count=1)
        for code in ("c3", "c1", "c2"):
            first.add("stats_rewards", code, count=1)
        async with conn.transaction():
            assert await first.write(conn, "v1") == 5

        second = Changes(tables.STATS, shared=frozenset({"stats_rewards"}))
        second.add("stats_scans_daily", (date(2026, 1, 2), "종이"), count=3)
        second.add("stats_rewards", "c1", count=4)
        async with conn.transaction():
            await second.write(conn, "v1")
        daily = await conn.fetch("SELECT * FROM stats_scans_daily_v1 ORDER BY day")
        assert [tuple(r) for r in daily] == [
            (date(2026, 1, 2), "종이", 5), (date(2026, 1, 3), "플라스틱", 1)
        ]
        rewards = await conn.fetch("SELECT * FROM stats_rewards_v1 ORDER BY character_code")
        assert [tuple(r) for r in rewards] == [("c1", 5), ("c2", 1), ("c3", 1)]

        scans = Changes(tables.SCANS)
        scans.set("scans", "j1", user_id="u1", progress=10, classification='{"a": 1}',
                  answer='{"b":2,"a":1}', created_at=at, rule_found=None)
        scans.set("scans", "j2", user_id="u2", progress=20, classification=None,
                  answer=None, created_at=None, rule_found=True)
        scans.set("scans", "j3", status="done")  # another shape
        scans.insert_once("scan_users", "u1", erased_at=None)
        async with conn.transaction():
            assert await scans.write(conn, "v1") == 4
        again = Changes(tables.SCANS)
        again.insert_once("scan_users", "u1", erased_at=at)  # the first insert wins
        again.set("scans", "j1", progress=30)
        async with conn.transaction():
            await again.write(conn, "v1")
        rows = await conn.fetch(
            "SELECT job_id, user_id, status, progress, classification::text,"
            " answer::text, created_at, rule_found FROM scans_v1 ORDER BY job_id"
        )
        assert [tuple(r) for r in rows] == [
            ("j1", "u1", "queued", 30, '{"a": 1}', '{"b":2,"a":1}', at, None),
            ("j2", "u2", "queued", 20, None, None, None, True),
            ("j3", None, "done", 0, None, None, None, None),
        ]
        assert await conn.fetchval("SELECT erased_at FROM scan_users_v1") is None


async def test_a_unix_time_in_a_timestamptz_column_is_written_as_its_event_time(
    pool: asyncpg.Pool,
) -> None:
    # What ``scans`` records per event (``envelope.timestamp``): converted once per row, to
    # what ``event_time`` gives; other columns, and datetimes, are left as they are.
    first, last = 1_790_000_000.123456, 1_790_000_007.654321
    changes = Changes(tables.SCANS)
    changes.set("scans", "j1", progress=40, updated_at=first, created_at=first)
    changes.set("scans", "j1", progress=55, updated_at=last)
    changes.set("scans", "j2", progress=0, updated_at=datetime.fromtimestamp(first, UTC))
    changes.set("scan_users", "u1", erased_at=1_790_000_001)
    expected = {
        ("scans", ("j1",)): {"progress": 55, "updated_at": datetime.fromtimestamp(last, UTC),
                             "created_at": datetime.fromtimestamp(first, UTC)},
        ("scans", ("j2",)): {"progress": 0, "updated_at": datetime.fromtimestamp(first, UTC)},
        ("scan_users", ("u1",)): {"erased_at": datetime.fromtimestamp(1_790_000_001, UTC)},
    }
    steps = changes.steps()
    assert {(s.table, s.key): s.sets for s in steps if isinstance(s, RowChange)} == expected
    async with pool.acquire() as conn:
        async with conn.transaction():
            await changes.write(conn, "v1")
        rows = await conn.fetch(
            "SELECT job_id, progress, updated_at, created_at FROM scans_v1 ORDER BY job_id"
        )
        assert [tuple(r) for r in rows] == [
            ("j1", 55, datetime.fromtimestamp(last, UTC), datetime.fromtimestamp(first, UTC)),
            ("j2", 0, datetime.fromtimestamp(first, UTC), None),
        ]
        erased = await conn.fetchval("SELECT erased_at FROM scan_users_v1 WHERE user_id = 'u1'")
        assert erased == datetime.fromtimestamp(1_790_000_001, UTC)


@pytest.mark.parametrize("timestamp", [1e20, -1e20, float("nan"), float("inf")])
def test_a_scan_event_whose_time_is_no_datetime_fails_at_its_event(timestamp: float) -> None:
    # Not when the batch is written (``Changes`` converts the Unix times then): the handler
    # fails, so the fold halts at this very event (``EventRejected``), as before.
    changes = SCANS.changes()
    event = StageStarted(stage=Stage.VISION, progress=10)
    late = Envelope(aggregate_id="j1", type="scan.stage_started", version=2, timestamp=timestamp)
    with pytest.raises((ValueError, OverflowError)):
        SCANS.handlers[StageStarted](changes, event, late)
    on_time = late.model_copy(update={"timestamp": 1_790_000_000.5})
    SCANS.handlers[StageStarted](changes, event, on_time)
    [row] = [s for s in changes.steps() if isinstance(s, RowChange)]
    assert row.sets["updated_at"] == datetime.fromtimestamp(1_790_000_000.5, UTC)
