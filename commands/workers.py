"""The scan workers: consumer groups running the scan chain and the reward handler.

``eco2 worker scan``   group ``scan``,   commands log, ``RequestScan``     → ``handle_request_scan``
``eco2 worker reward`` group ``reward``, events log,   ``AnswerCompleted`` → ``handle_answer_completed``
``eco2 worker chat``   group ``chat``,   commands log, ``SendChatMessage``/``ProvideInput`` → the
                       chat turn handler (``commands.chat.worker``) with the graph built once

Both are built by ``subscription`` from the bootstrap ``Resources``; the model of each scan is
chosen per request (``RequestScan.model`` through the resources' ``ModelRouter``) and the
simulated latency comes from ``settings.latency_profile`` (wired into the local adapters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Literal, get_args

from prometheus_client import CollectorRegistry, Gauge, generate_latest

import schemas
from commands.reward import handle_answer_completed
from commands.scan.chain import handle_request_scan
from eventstore.consumer import Runner, RunnerOptions, Subscription, consumer_name
from eventstore.later import RetryBudget
from infra.bootstrap import Resources, open_resources
from infra.media import key_from_url
from infra.probes import MetricsSource, redis_ready, serve_probes
from infra.settings import Settings
from schemas.envelope import Envelope
from schemas.registry import Message
from schemas.scan import AnswerCompleted, RequestScan

log = logging.getLogger(__name__)

WorkerKind = Literal["scan", "reward", "chat", "snapshot"]
WORKER_KINDS: tuple[WorkerKind, ...] = get_args(WorkerKind)


def subscription(kind: WorkerKind, resources: Resources) -> Subscription:
    """The consumer group of worker ``kind`` with its handler bound to ``resources``."""
    if kind == "scan":

        async def on_request_scan(envelope: Envelope, message: Message) -> None:
            if not isinstance(message, RequestScan):
                raise TypeError(f"scan worker got {type(message).__name__}")
            await handle_request_scan(
                envelope,
                message,
                store=resources.store,
                vision=resources.vision,
                llm=resources.llm,
                kb=resources.kb,
                media=resources.media,
                media_key=lambda url: key_from_url(url, resources.settings),
            )

        return Subscription("scan", "commands", {RequestScan: on_request_scan})

    if kind == "reward":

        async def on_answer_completed(envelope: Envelope, message: Message) -> None:
            if not isinstance(message, AnswerCompleted):
                raise TypeError(f"reward worker got {type(message).__name__}")
            await handle_answer_completed(
                envelope,
                message,
                store=resources.store,
                characters=resources.characters,
                wait_s=resources.settings.reward_wait_s,
            )

        return Subscription("reward", "events", {AnswerCompleted: on_answer_completed})

    if kind == "snapshot":
        from projections.snapshot import snapshot_subscription

        return snapshot_subscription(
            resources.redis, resources.layout, archive=resources.store.archive
        )

    if kind == "chat":
        from commands.chat.worker import chat_subscription  # loads LangGraph: chat only
        from infra.bootstrap import build_chat_graph_for

        return chat_subscription(resources.store, build_chat_graph_for(resources))

    raise ValueError(f"unknown worker {kind!r}; known: {', '.join(WORKER_KINDS)}")


def runner_options(settings: Settings) -> RunnerOptions:
    """Delivery settings of the workers (concurrency, claims, dead-lettering)."""
    return RunnerOptions(
        workers=settings.handler_workers,
        max_deliveries=settings.max_deliveries,
        claim_idle_ms=settings.claim_idle_ms,
        claim_interval_s=settings.claim_interval_s,
        retry_budget=RetryBudget(
            budget_s=settings.retry_budget_s,
            initial_s=settings.retry_initial_s,
            max_s=settings.retry_max_s,
        ),
    )


def build_runner(kind: WorkerKind, resources: Resources, *, consumer: str | None = None) -> Runner:
    """A runner of worker ``kind`` over every shard."""
    sub = subscription(kind, resources)
    return Runner(
        resources.redis,
        resources.layout,
        schemas.registry,
        sub,
        consumer=consumer or consumer_name(sub.group),
        options=runner_options(resources.settings),
    )


async def drain(runner: Runner, task: asyncio.Task[None], grace_s: float) -> None:
    """Stop ``runner`` reading and let ``run`` finish in-flight work and flush acks; cancel it
    after ``grace_s`` (its unacked messages are claimed by another consumer later)."""
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
    """Run worker ``kind`` until SIGINT/SIGTERM, then drain: stop reading, finish in-flight
    messages and ack them, within ``settings.drain_grace_s``; what is still unfinished then stays
    pending and is redelivered to another consumer by a claim."""
    async with open_resources(settings) as resources:
        if kind == "snapshot":
            await _run_snapshot(resources)
            return
        runner = build_runner(kind, resources)
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
        resources.redis, resources.layout, options=runner_options(resources.settings)
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
