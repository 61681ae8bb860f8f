"""The benches' split load generator and their CPU accounting."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from eventstore.broker import ACK_CONNECTIONS_CAP, broker_connections
from eventstore.consumer import RunnerOptions
from eventstore.keys import Layout
from gateway.scan_api import job_id_for
from infra.bench.chat_users import ChatTally
from infra.bench.clients import submit, worst_lag
from infra.bench.cpu import CpuMeter, process_cpu_s
from infra.bench.processes import Started, run_clients, slices
from infra.bench.repeat import percentile
from infra.bench.scan import watched_shards
from infra.bench.scan_users import ScanTally, key_on_shards


def test_slices_cover_every_user_once_and_interleave() -> None:
    parts = slices(10, 3)
    assert [list(p) for p in parts] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert slices(2, 5) == [range(0, 2, 2), range(1, 2, 2)]  # never an empty process


def test_client_processes_split_the_shards_they_tail_and_their_jobs_land_there() -> None:
    assert [watched_shards(4, 2, n) for n in range(2)] == [(0, 2), (1, 3)]
    assert [watched_shards(4, 4, n) for n in range(4)] == [(0,), (1,), (2,), (3,)]
    assert watched_shards(4, 3, 1) == (0, 1, 2, 3)  # uneven: every process tails every shard
    layout = Layout("bench", shards=4)
    for wanted in [(1,), (0, 2), (3,)]:
        keys = {key_on_shards("bench-7", layout, wanted) for _ in range(50)}
        assert len(keys) == 50  # fresh keys, never a repeated job
        assert {layout.shard_of(job_id_for("bench-7", key)) for key in keys} <= set(wanted)


def test_process_cpu_counts_this_process_and_nothing_once_gone() -> None:
    before = process_cpu_s(os.getpid())
    sum(i * i for i in range(300_000))
    assert process_cpu_s(os.getpid()) > before
    assert process_cpu_s(2**22 + 1) == 0.0  # above the kernel's pid limit: no such process


class _FakeRedis:
    def __init__(self) -> None:
        self.cpu = 1.0

    async def info(self, section: str) -> dict[str, float]:
        assert section == "cpu"
        self.cpu += 2.0
        return {"used_cpu_sys": self.cpu / 2, "used_cpu_user": self.cpu / 2}


def test_meter_reports_each_role_per_unit() -> None:
    async def measure() -> CpuMeter:
        meter = CpuMeter(_FakeRedis(), {"bench-0": os.getpid()})  # type: ignore[arg-type]
        await meter.start()
        sum(i * i for i in range(300_000))
        await meter.stop()
        return meter

    meter = asyncio.run(measure())
    assert meter.seconds["redis"] == 2.0
    assert meter.seconds["bench"] > 0
    figures = meter.figures(4, "scan")
    assert figures["CPU ms per scan, redis"] == 500.0
    assert figures["CPU ms per scan, total"] == sum(
        v for k, v in figures.items() if k != "CPU ms per scan, total")
    assert "ms per scan" in meter.report(4, "scan")


async def _echo(part: int, started: Started) -> tuple[int, int]:
    await started()
    return part, os.getpid()


def test_clients_run_in_their_own_processes_and_start_together() -> None:
    calls: list[str] = []

    async def on_start() -> None:
        calls.append("start")

    results = asyncio.run(run_clients(_echo, [1, 2], on_start=on_start, timeout_s=60))
    assert sorted(part for part, _ in results) == [1, 2]
    assert len({pid for _, pid in results} | {os.getpid()}) == 3
    assert calls == ["start"]


def test_the_broker_pool_holds_every_reader_and_every_finishing_handler() -> None:
    shards = [0, 1, 2, 3]
    assert broker_connections(RunnerOptions(workers=64), shards) >= 64 + 4 * len(shards)
    big = broker_connections(RunnerOptions(workers=100_000), shards)
    assert big == 4 * len(shards) + ACK_CONNECTIONS_CAP + 8


def test_tallies_of_client_processes_merge_field_by_field() -> None:
    first, second = ScanTally(submitted=3, completed=2, latencies=[0.5]), ScanTally(
        submitted=2, completed=1, failed=1, latencies=[0.2, 0.9])
    first.error("HTTP 503")
    second.error("HTTP 503")
    second.error("no done within 60 s")
    merged = ScanTally()
    for tally in (first, second):
        merged.add(tally)
    assert (merged.submitted, merged.completed, merged.failed, merged.errors) == (5, 3, 1, 3)
    assert merged.error_kinds == {"HTTP 503": 2, "no done within 60 s": 1}
    assert merged.latencies == [0.5, 0.2, 0.9]
    assert merged.completion == 60.0
    chat = ChatTally(text_mismatches=1, ttft=[0.1])
    chat.add(ChatTally(text_mismatches=2, ttft=[0.3]))
    assert chat.text_mismatches == 3 and chat.ttft == [0.1, 0.3]


def test_the_worst_process_sets_the_lag() -> None:
    assert percentile([], 95) != percentile([], 95)  # NaN: nothing measured
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([3.0, 1.0, 2.0], 100) == 3.0
    assert worst_lag([[0.001, 0.002], [0.05, 0.01]], 100) == 0.05


def test_a_submission_is_counted_and_a_refusal_or_drop_tallied_as_an_error() -> None:
    async def answer(status: int, reply: Any) -> tuple[int, Any]:
        return status, reply

    async def dropped() -> tuple[int, Any]:
        raise ConnectionResetError("reset by peer")

    async def submit_three(tally: ScanTally) -> list[Any]:
        return [await submit(tally, answer(202, {"job_id": "j"})),
                await submit(tally, answer(503, "busy")), await submit(tally, dropped())]

    tally = ScanTally()
    assert asyncio.run(submit_three(tally)) == [{"job_id": "j"}, None, None]
    assert tally.submitted == 3 and tally.errors == 2
    assert tally.error_kinds == {"HTTP 503 busy": 1,
                                 "connection: ConnectionResetError: reset by peer": 1}
