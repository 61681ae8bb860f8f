"""Replaying shards in several processes: a rebuild is CPU-bound in Python (decoding and
folding events), so its bulk phase spreads the shards over processes: the calling one replays
the first group itself, worker processes the others, each with its own connections, reporting
progress as JSON lines on a pipe.

A worker is a fork of the caller, not a new interpreter: a new one spent ≈0.5 s of CPU
importing the code (redis-py with the OpenTelemetry SDK, every message schema) before its
first batch, as much as folding 35,000 events, and its shards finished that much after the
caller's. The fork starts with the code loaded; it uses nothing of its parent's but that code
and the spec: it runs its own event loop with its own connections, never touches the parent's
(inherited sockets are left alone) and ends with ``os._exit`` (no finalizer or buffer of the
parent runs twice). Each batch commits with its checkpoint exactly as in one process, so a
worker that dies loses nothing: the next replay resumes from the checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, NoReturn

import schemas
from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from projections.builtin import get_projection
from projections.context import ReadSide
from projections.projection import Projection
from projections.reading import REPLAY_GC_EVERY, paused_gc
from projections.replay import REPLAY_READ_TIMEOUT_S, ProgressCallback, ReplayProgress, replay
from readmodels.db import create_pool

REPORT_LINE_LIMIT = 1 << 20  # a worker's error line carries its traceback
EXIT_POLL_S = 0.01


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
    procs = [await _Worker.start(spec) for spec in specs]

    async def follow(proc: _Worker, group: dict[int, int]) -> None:
        applied = skipped = 0  # this worker's totals so far
        while line := await proc.lines.readline():
            report = json.loads(line)
            if "error" in report:
                raise RuntimeError(f"replay worker failed: {report['error'][-2000:]}")
            for shard in group:
                progress.position[shard] = int(report["positions"][str(shard)])
            progress.applied += report["applied"] - applied
            progress.skipped += report["skipped"] - skipped
            applied, skipped = report["applied"], report["skipped"]
            if on_progress is not None:
                on_progress(progress)
        if (status := await proc.wait()) != 0:
            raise RuntimeError(f"replay worker failed: exit status {status}")

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
        # The collector stays off meanwhile, as in a worker (``_child``): it would
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
            await proc.stop()
    return progress


class _Worker:
    """A forked replay worker: its report lines (a pipe) and its exit status."""

    def __init__(self, pid: int, lines: asyncio.StreamReader, transport: asyncio.BaseTransport):
        self.pid = pid
        self.lines = lines
        self._transport = transport
        self.status: int | None = None

    @classmethod
    async def start(cls, spec: WorkerSpec) -> _Worker:
        read_fd, write_fd = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # or the child would inherit unwritten output
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            os.close(read_fd)
            _child(spec, write_fd)
        os.close(write_fd)
        lines = asyncio.StreamReader(limit=REPORT_LINE_LIMIT)
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(lines), os.fdopen(read_fd, "rb", buffering=0)
        )
        return cls(pid, lines, transport)

    async def wait(self) -> int:
        """The exit status (a negative signal number when killed), once the child has ended."""
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)  # noqa: ASYNC222 (never blocks)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            else:
                await asyncio.sleep(EXIT_POLL_S)
        self._transport.close()
        return self.status

    async def stop(self) -> None:
        """Kill the child unless it has ended, and reap it."""
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        await self.wait()


def _child(spec: WorkerSpec, fd: int) -> NoReturn:
    """The forked worker's whole life: replay ``spec``, report on ``fd``, exit."""
    code = 1
    try:
        # The collector stays off (see ``REPLAY_GC_EVERY``; ``_work`` collects now and then)
        # and never walks what the fork copied: frozen, not collected first, which would walk
        # the parent's whole heap and copy every page it touches.
        gc.disable()
        gc.freeze()
        # The parent's signal handling is not ours: its wakeup fd is its event loop's socket.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        asyncio.events._set_running_loop(None)  # nor is its loop running here
        # nor its stand-ins for the standard streams (a progress display's, whose lock a thread
        # of the parent may have held at the fork)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        with os.fdopen(fd, "w") as out:
            try:
                asyncio.run(_work(spec, out))
                code = 0
            except BaseException:
                out.write(json.dumps({"error": traceback.format_exc()}) + "\n")
                out.flush()
    finally:
        os._exit(code)


async def _work(spec: WorkerSpec, out: IO[str]) -> None:
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
                gc.collect()  # the collector is off in this process (``_child``)
            line = {
                "positions": progress.position,
                "applied": progress.applied,
                "skipped": progress.skipped,
            }
            out.write(json.dumps(line) + "\n")
            out.flush()

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

