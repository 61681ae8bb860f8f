"""Replaying shards in several processes: a rebuild is CPU-bound in Python (decoding and
folding events), so its bulk phase spreads the shards over processes: the calling one replays
the first group itself, worker processes the others, each with its own connections, reporting
progress as JSON lines on stdout. The caller takes a group because a worker starts by
importing the code (≈0.7 s of CPU on an idle machine), which the caller has already done: one
start fewer, and the caller folds from the first moment while its workers import.

Run as ``python -m projections.parallel '<json spec>'`` by ``parallel_replay`` only. Each batch
commits with its checkpoint exactly as in one process, so a worker that dies loses nothing: the
next replay resumes from the checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import schemas
from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from projections.builtin import get_projection
from projections.context import ReadSide
from projections.projection import Projection
from projections.reading import REPLAY_GC_EVERY, paused_gc, replay_process_gc
from projections.replay import ProgressCallback, ReplayProgress, replay
from readmodels.db import create_pool

REPLAY_READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WorkerSpec:
    dsn: str
    schema: str
    redis_url: str
    namespace: str
    shards: int
    projection: str
    suffix: str
    targets: dict[int, int]
    batch_size: int


def split(targets: Mapping[int, int], workers: int) -> list[dict[int, int]]:
    """Shards dealt round-robin over at most ``workers`` groups."""
    groups: list[dict[int, int]] = [{} for _ in range(min(workers, len(targets)))]
    for i, shard in enumerate(sorted(targets)):
        groups[i % len(groups)][shard] = targets[shard]
    return groups


async def parallel_replay(
    side: ReadSide,
    projection: Projection,
    suffix: str,
    targets: Mapping[int, int],
    progress: ReplayProgress,
    *,
    workers: int,
    batch_size: int,
    on_progress: ProgressCallback | None = None,
) -> ReplayProgress:
    """Like ``replay``, with the shards spread over ``workers`` processes (this one included)."""
    if side.redis_url is None:
        raise ValueError("parallel replay needs the Redis URL in ReadSide")
    progress.target.update(targets)
    mine, *theirs = split(targets, workers)
    specs = [
        WorkerSpec(
            side.dsn,
            side.schema,
            side.redis_url,
            side.layout.namespace,
            side.layout.shards,
            projection.name,
            suffix,
            group,
            batch_size,
        )
        for group in theirs
    ]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "projections.parallel",
            json.dumps(asdict(spec)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for spec in specs
    ]

    async def follow(proc: asyncio.subprocess.Process, group: dict[int, int]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        applied = skipped = 0  # this worker's totals so far
        while line := await proc.stdout.readline():
            report = json.loads(line)
            for shard in group:
                progress.position[shard] = int(report["positions"][str(shard)])
            progress.applied += report["applied"] - applied
            progress.skipped += report["skipped"] - skipped
            applied, skipped = report["applied"], report["skipped"]
            if on_progress is not None:
                on_progress(progress)
        errors = await proc.stderr.read()
        if await proc.wait() != 0:
            raise RuntimeError(f"replay worker failed: {errors.decode(errors='replace')[-2000:]}")

    batches = 0

    def collect_now_and_then(progress: ReplayProgress) -> None:
        nonlocal batches
        batches += 1
        if batches % REPLAY_GC_EVERY == 0:
            gc.collect()
        if on_progress is not None:
            on_progress(progress)

    try:
        # A task group: a failed worker cancels this process's replay, and the other way round.
        # The collector stays off meanwhile, as in a worker (``replay_process_gc``): it would
        # rescan this process's heap and the batches in flight (an eighth of the CPU of a
        # ``users`` replay here); ``collect_now_and_then`` frees the rare cycles.
        with paused_gc():
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(
                    replay(
                        side, projection, suffix, mine, batch_size=batch_size, progress=progress,
                        on_progress=collect_now_and_then,
                    )
                )
                for proc, spec in zip(procs, specs, strict=True):
                    tasks.create_task(follow(proc, spec.targets))
    except BaseExceptionGroup as group:  # the first error, as ``gather`` raised it
        raise group.exceptions[0] from None
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    return progress


async def _work(spec: WorkerSpec) -> None:
    # A read waits while the loop folds another shard's batch (CPU, up to seconds on a busy
    # machine), and that wait counts against the read's timeout (redis-py's default: 5 s).
    redis = await open_redis(
        spec.redis_url, decode_responses=True, socket_timeout=REPLAY_READ_TIMEOUT_S
    )
    pool = await create_pool(spec.dsn, spec.schema, max_size=len(spec.targets) + 1)
    try:
        layout = Layout(spec.namespace, spec.shards)
        side = ReadSide(
            pool, spec.dsn, spec.schema, redis, layout, schemas.registry, spec.redis_url
        )

        batches = 0

        def report(progress: ReplayProgress) -> None:
            nonlocal batches
            batches += 1
            if batches % REPLAY_GC_EVERY == 0:
                gc.collect()  # the collector is off in this process (``replay_process_gc``)
            line = {
                "positions": progress.position,
                "applied": progress.applied,
                "skipped": progress.skipped,
            }
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

        await replay(
            side,
            get_projection(spec.projection),
            spec.suffix,
            spec.targets,
            batch_size=spec.batch_size,
            on_progress=report,
        )
    finally:
        await pool.close()
        await redis.aclose()


if __name__ == "__main__":
    replay_process_gc()
    raw = json.loads(sys.argv[1])
    raw["targets"] = {int(k): int(v) for k, v in raw["targets"].items()}
    asyncio.run(_work(WorkerSpec(**raw)))
