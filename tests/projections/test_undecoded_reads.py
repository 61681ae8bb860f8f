"""A replay reads the log through a client of its own that leaves XRANGE replies undecoded
(``projections.reading.undecoded_client``): on a single node and on a Redis Cluster, what it
decodes is what a reader by name decodes, and a rebuild through it is clean."""

from __future__ import annotations

import pytest

from eventstore.store import EventStore
from projections.builtin import get_projection
from projections.context import ReadSide
from projections.reading import Decoded, ShardReader, Skip, fields_of, undecoded_client
from projections.rebuild import rebuild
from projections.synthetic import SyntheticLog
from tests.projections.helpers import describe, load, verify_all

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def redis_url(redis_targets: str) -> str:
    """Each test on a single node and on a Redis Cluster."""
    return redis_targets


async def test_a_replay_reads_entries_undecoded_and_decodes_them_as_by_name(
    side: ReadSide, store: EventStore
) -> None:
    await load(store, SyntheticLog(side.registry), 40)
    assert side.redis_url is not None
    scans = get_projection("scans")
    by_name = ShardReader(side.redis, side.layout, side.registry, scans.wire_names(side.registry))
    async with undecoded_client(side.redis_url, timeout_s=5.0) as raw:
        undecoded = ShardReader(raw, side.layout, side.registry, by_name.wire_names)
        for shard in range(side.layout.shards):
            named, sent = await by_name.read(shard, 0, 1000), await undecoded.read(shard, 0, 1000)
            assert sent.last_position == named.last_position > 0
            for entry, flat in zip(named.entries, sent.entries, strict=True):
                assert type(flat[1]) is list and flat[0] == entry[0]
                assert fields_of(flat) == entry[1]
                expected, got = by_name.decode(shard, entry), undecoded.decode(shard, flat)
                if isinstance(expected, Skip):
                    assert got is expected
                    continue
                assert isinstance(got, Decoded)
                assert got.message == expected.message
                assert tuple(got.envelope)[:-1] == tuple(expected.envelope)[:-1]


async def test_a_rebuild_through_undecoded_reads_is_clean(side: ReadSide, store: EventStore) -> None:
    await load(store, SyntheticLog(side.registry), 300)
    report = await rebuild(side, get_projection("scans"), batch_size=50, workers=2)
    assert (report.previous, report.version) == (1, 2)
    reports = await verify_all(side)
    assert all(r.clean for r in reports), describe(reports)
