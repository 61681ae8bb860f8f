"""``eco2 worker <kind>``: a handler worker process, as a container runs it.

The composition root of the workers: settings become the runtime's ``RunnerOptions`` and the
resources the handlers' ``WorkerDeps`` (``commands.workers``); the group runs as FastStream
subscribers (``eventstore.runtime.Runner``) next to the process's probes, until SIGINT/SIGTERM,
then drains: stop reading, finish in-flight messages and ack them within
``settings.drain_grace_s``; what is still unfinished stays pending for another consumer's claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from prometheus_client import CollectorRegistry, Gauge, generate_latest

import schemas
from commands.workers import PER_MESSAGE, WorkerDeps, WorkerKind, subscription
from eventstore.consumer import RunnerOptions, consumer_name
from eventstore.later import RetryBudget
from eventstore.runtime import Runner
from infra.bootstrap import Resources, build_chat_graph_for, open_resources
from infra.heap import freeze_startup_heap
from infra.media import key_from_url
from infra.probes import MetricsSource, redis_ready, serve_probes
from infra.settings import Settings

log = logging.getLogger(__name__)


def runner_options(settings: Settings, *, per_message: bool = False) -> RunnerOptions:
    """Delivery settings of the workers (concurrency, claims, dead-lettering)."""
    return RunnerOptions(
        workers=settings.handler_workers,
        per_message=per_message,
        linger_ms=settings.batch_linger_ms,
        block_ms=settings.read_block_ms,
        max_deliveries=settings.max_deliveries,
        claim_idle_ms=settings.claim_idle_ms,
        claim_interval_s=settings.claim_interval_s,
        retry_budget=RetryBudget(
            budget_s=settings.retry_budget_s,
            initial_s=settings.retry_initial_s,
            max_s=settings.retry_max_s,
        ),
    )


def worker_deps(resources: Resources) -> WorkerDeps:
    settings = resources.settings
    return WorkerDeps(
        redis=resources.redis, layout=resources.layout, store=resources.store,
        archive=resources.store.archive, vision=resources.vision, llm=resources.llm,
        kb=resources.kb, media=resources.media,
        media_key=lambda url: key_from_url(url, settings), characters=resources.characters,
        reward_wait_s=settings.reward_wait_s, chat_graph=lambda: build_chat_graph_for(resources),
    )


def build_runner(kind: WorkerKind, resources: Resources, *, consumer: str | None = None) -> Runner:
    """The runner of worker ``kind`` over every shard."""
    sub = subscription(kind, worker_deps(resources))
    return Runner(
        resources.redis, resources.layout, schemas.registry, sub,
        consumer=consumer or consumer_name(sub.group),
        options=runner_options(resources.settings, per_message=kind in PER_MESSAGE),
        url=resources.settings.redis_url,
    )


async def drain(runner: Runner, task: asyncio.Task[None], grace_s: float) -> None:
    """Stop ``runner`` reading and let ``run`` finish in-flight work and acks; cancel it after
    ``grace_s`` (its unacked messages are claimed by another consumer later)."""
    log.info("draining: %d message(s) in flight, up to %.0f s", runner._busy, grace_s)
    runner.stop()
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        log.warning("drain grace of %.0f s exceeded: leaving the rest to a claim", grace_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    task.result()
    log.info("drained: %d message(s) processed in total", runner.processed)


def worker_metrics(kind: WorkerKind, runner: Runner) -> MetricsSource:
    """The worker's own figures for ``/metrics``, read from the runner at scrape time."""
    registry = CollectorRegistry(auto_describe=True)
    processed = Gauge("eco2_worker_processed", "Messages settled by this process",
                      ["group"], registry=registry)
    in_flight = Gauge("eco2_worker_in_flight", "Messages being handled now",
                      ["group"], registry=registry)

    async def render() -> bytes:
        processed.labels(group=kind).set(runner.processed)
        in_flight.labels(group=kind).set(runner._busy)
        return generate_latest(registry)

    return render


async def run_worker(kind: WorkerKind, settings: Settings) -> None:
    """Run worker ``kind`` until SIGINT/SIGTERM, then drain (see the module docstring)."""
    async with open_resources(settings) as resources:
        if kind == "snapshot":
            await _run_snapshot(resources)
            return
        runner = build_runner(kind, resources)
        # What the runner was built with (the chat graph, LangGraph's modules, the knowledge
        # base) is kept for the process's life: out of the garbage collector's walks too.
        freeze_startup_heap()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with serve_probes(
            settings, f"worker-{kind}", lambda: redis_ready(resources.redis),
            worker_metrics(kind, runner),
        ) as probes:
            task = asyncio.create_task(runner.run())
            log.info("worker %s started (consumer group %r)", kind, runner.group.group)
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if task.done():
                task.result()  # the runner died: surface why
                return
            probes.draining = True
            await drain(runner, task, settings.drain_grace_s)


async def _run_snapshot(resources: Resources) -> None:
    """The snapshot projector under per-shard leases, until SIGINT/SIGTERM."""
    from projections.snapshot_service import SnapshotService

    service = SnapshotService(
        resources.redis, resources.layout, options=runner_options(resources.settings),
        url=resources.settings.redis_url,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.stop)
    settings = resources.settings
    async with serve_probes(
        settings, "worker-snapshot", lambda: redis_ready(resources.redis)
    ) as probes:
        log.info("worker snapshot started (consumer %s, a lease per shard)", service.consumer)
        await service.run()
        probes.draining = True
