"""The snapshot projector: each job's latest state in ``{tag}:state:<job>``, then its live message.

It takes a shard's events a batch at a time, in log order (``project_snapshots``), folds each
into its job's ``JobView`` (``live_view``) and, in ONE Lua call for the batch, compare-and-sets
each job's snapshot at its last event of the batch (only a higher version replaces it), then
PUBLISHes the events' SSE messages on ``{tag}:live`` in log order (one PUBLISH for the batch, see
``live_messages``). Because both happen in the
same script, a subscriber that receives a message can already read a snapshot at least as new
as the message (read-your-writes for the result endpoint), and a crash can never leave a
written snapshot whose messages were not published. One call per batch, not per event: the
script call and the snapshot's JSON were half the projector's CPU, and a chat turn's token
events come many to a batch.

Under the consumer runner (``snapshot_subscription``) each shard's events are handled in log
order, so every job's messages are published in version order and SSE clients see no gaps.
Redelivery is harmless: an event at or below the snapshot's version is a no-op. Out-of-order
delivery (a crashed consumer's entry claimed late) is harmless too: when the snapshot is behind
by more than one version, the missing events are folded from the job's own stream first, so
the snapshot never skips facts (the skipped versions' messages are not published late).

Tests may run it with the simple tail ``run_snapshot_tail`` instead (the
log's one ``LogReader.follow`` loop, without a group). The snapshot key (role ``state``) is this
projector's: the log only keeps it under the job's shard tag.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

import schemas
from eventstore.archive import Archive
from eventstore.cancellation import raise_if_cancelled
from eventstore.consumer import Subscription
from eventstore.keys import Layout
from eventstore.reading import LogReader, position_of
from eventstore.redis_client import AsyncRedis, sharded_pubsub
from projections.live_view import JobView, LiveEvent, apply_event, mapped_classes
from projections.metrics import projection_metrics
from projections.snapshot_reads import (
    SNAPSHOT_ROLE,
    SNAPSHOT_TTL_S,
    parse_snapshot,
)
from schemas.envelope import Envelope, MalformedEntry
from schemas.registry import Message, MessageRegistry, RegistryError

log = logging.getLogger(__name__)

SNAPSHOT_GROUP = "snapshot"
# After a run of BUSY_RUN to FULL_RUN - 1 events, the projector waits this long before it reads
# again (see ``_lingering``).
SNAPSHOT_LINGER_MS = 30
BUSY_RUN, FULL_RUN = 4, 50

# KEYS[1] {tag}:live  KEYS[2..] {tag}:state:<job>, one per job of the batch
# ARGV[1] ttl s  ARGV[2] "1" = sharded pub/sub (SPUBLISH, a Redis Cluster: only the shard's
# master relays it)  ARGV[3] n, the batch's jobs; then per job (in KEYS order): its version and
# snapshot JSON; then per SSE message, in log order: its job's index (1-based) and version,
# and its JSON.
# Each job's snapshot is compare-and-set (only a higher version replaces it), then the messages
# of the jobs written are published, in log order, except those the stored snapshot already
# held (another writer published them): all of them in ONE message, joined by line breaks
# (``live_messages`` splits it). Returns per job the version its snapshot held before
# (written when below the job's version in ARGV).
CAS_SCRIPT = """
local ttl, jobs = tonumber(ARGV[1]), tonumber(ARGV[3])
local publish = ARGV[2] == '1' and 'SPUBLISH' or 'PUBLISH'
local written, stored = {}, {}
for j = 1, jobs do
  local version = tonumber(ARGV[2 + 2 * j])
  local held = 0
  local current = redis.call('GET', KEYS[1 + j])
  if current then
    local ok, decoded = pcall(cjson.decode, current)
    if ok and type(decoded) == 'table' then held = tonumber(decoded['version']) or 0 end
  end
  stored[j] = held
  if held < version then
    redis.call('SET', KEYS[1 + j], ARGV[3 + 2 * j], 'EX', ttl)
    written[j] = 1
  else
    written[j] = 0
  end
end
local out = {}
for a = 4 + 2 * jobs, #ARGV, 3 do
  local j = tonumber(ARGV[a])
  if written[j] == 1 and tonumber(ARGV[a + 1]) > stored[j] then
    out[#out + 1] = ARGV[a + 2]
  end
end
if #out > 0 then redis.call(publish, KEYS[1], table.concat(out, '\\n')) end
return stored
"""
_CAS_SHA = hashlib.sha1(CAS_SCRIPT.encode()).hexdigest()


class ViewCache:
    """The views this process wrote last, so the next event of a job skips reading its
    snapshot back (one Redis round trip less per event). Only a hint: the compare-and-set
    still decides, and a lost race drops the entry."""

    def __init__(self, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self._views: OrderedDict[str, JobView] = OrderedDict()

    def get(self, job_id: str) -> JobView | None:
        view = self._views.get(job_id)
        if view is not None:
            self._views.move_to_end(job_id)
        return view

    def put(self, view: JobView) -> None:
        self._views[view.job_id] = view
        self._views.move_to_end(view.job_id)
        while len(self._views) > self.max_items:
            self._views.popitem(last=False)

    def drop(self, job_id: str) -> None:
        self._views.pop(job_id, None)


async def project_snapshot(
    envelope: Envelope,
    message: Message,
    *,
    redis: AsyncRedis,
    layout: Layout,
    registry: MessageRegistry = schemas.registry,
    ttl_s: int = SNAPSHOT_TTL_S,
    cache: ViewCache | None = None,
    archive: Archive | None = None,
) -> bool:
    """Move the job's snapshot to ``envelope.version`` and publish its SSE message.

    Returns False (nothing written) for events without a live mapping and for versions the
    snapshot already holds. ``redis`` must decode responses.
    """
    return bool(await project_snapshots(
        [(envelope, message)], redis=redis, layout=layout, registry=registry, ttl_s=ttl_s,
        cache=cache, archive=archive,
    ))


@dataclass
class _Job:
    """One job's part of a batch: its key, its index among the batch's jobs (1-based, as the
    script counts) and its view after the batch's last event of it."""

    key: str
    index: int
    view: JobView


@dataclass
class _Channel:
    """What a batch writes on one shard: its jobs, and their SSE messages in log order."""

    jobs: dict[str, _Job] = field(default_factory=dict)
    messages: list[tuple[_Job, LiveEvent]] = field(default_factory=list)


async def project_snapshots(
    events: Sequence[tuple[Envelope, Message]],
    *,
    redis: AsyncRedis,
    layout: Layout,
    registry: MessageRegistry = schemas.registry,
    ttl_s: int = SNAPSHOT_TTL_S,
    cache: ViewCache | None = None,
    archive: Archive | None = None,
) -> list[LiveEvent]:
    """Fold ``events`` (in log order) into their jobs' snapshots and publish their SSE
    messages, with one script call per shard: each job's snapshot is written once, at its
    last event of the batch, and its messages are published after it, in log order.

    Returns the messages published: none for events without a live mapping, for versions a
    snapshot already holds, or for a job another writer has moved past this batch's last
    event. ``redis`` must decode responses.
    """
    mapped = mapped_classes()
    log_reader = LogReader(redis, layout, archive)
    channels: dict[str, _Channel] = {}
    for envelope, message in events:
        if type(message) not in mapped:
            continue
        job_id = envelope.aggregate_id
        keys = layout.keys_for(job_id)
        channel = channels.setdefault(keys.live, _Channel())
        job = channel.jobs.get(job_id)
        view = job.view if job else cache.get(job_id) if cache is not None else None
        if view is not None and view.version >= envelope.version:
            continue
        if job is None and envelope.version > 1 and (
            view is None or view.version != envelope.version - 1
        ):
            view = parse_snapshot(await log_reader.document(job_id, SNAPSHOT_ROLE))
        base = view.version if view else 0
        if base >= envelope.version:
            continue
        if base < envelope.version - 1:
            # Events this projector has not folded yet (out-of-order or redelivered): read them.
            entries = await log_reader.aggregate(
                job_id, after=base, limit=envelope.version - 1 - base
            )
            for _, fields in entries:
                earlier = Envelope.from_fields(fields, shard=keys.shard)
                view, _ = apply_event(view, earlier, registry.decode_envelope(earlier))
        view, live = apply_event(view, envelope, message)
        if job is None:
            job = channel.jobs[job_id] = _Job(
                keys.document(SNAPSHOT_ROLE, job_id), len(channel.jobs) + 1, view
            )
        job.view = view
        if live is not None:
            channel.messages.append((job, live))
    published: list[LiveEvent] = []
    for live_key, channel in channels.items():
        published += await _write(redis, live_key, channel, ttl_s, cache)
    return published


async def _write(
    redis: AsyncRedis, live_key: str, channel: _Channel, ttl_s: int, cache: ViewCache | None
) -> list[LiveEvent]:
    """One shard's part of a batch in one script call; the messages it published."""
    jobs = list(channel.jobs.values())
    args: list[str | int] = [ttl_s, "1" if sharded_pubsub(redis) else "0", len(jobs)]
    for job in jobs:
        args += (job.view.version, job.view.model_dump_json())
    for job, live in channel.messages:
        args += (job.index, live.version, live.data)
    keys = [live_key, *(job.key for job in jobs)]
    try:
        held = await redis.evalsha(_CAS_SHA, len(keys), *keys, *args)
    except NoScriptError:
        held = await redis.eval(CAS_SCRIPT, len(keys), *keys, *args)
    if cache is not None:
        for job, before in zip(jobs, held, strict=True):
            if before < job.view.version and not job.view.terminal:
                cache.put(job.view)
            else:  # another writer is ahead, or the job is over
                cache.drop(job.view.job_id)
    return [live for job, live in channel.messages if held[job.index - 1] < live.version]


def snapshot_subscription(
    redis: AsyncRedis,
    layout: Layout,
    registry: MessageRegistry = schemas.registry,
    archive: Archive | None = None,
    *,
    linger_ms: int = SNAPSHOT_LINGER_MS,
) -> Subscription:
    """The snapshot projector as a consumer-group subscription on every shard's event log,
    in log order (a job's live messages leave in version order), a run of entries per call;
    after a busy but not full run it waits ``linger_ms`` (see ``_lingering``)."""
    projection_metrics()  # registered at start (the publish latency), before any event
    handle = partial(
        _handle, redis=redis, layout=layout, registry=registry, cache=ViewCache(), archive=archive
    )
    return Subscription(
        group=SNAPSHOT_GROUP,
        source="events",
        # only logged classes (live-only ones, e.g. TokenRecovery, never arrive here)
        handlers={cls: partial(_handle_one, handle) for cls in mapped_classes()
                  if registry.registered(cls)},
        in_order=True,
        batch_handler=partial(_lingering, handle, linger_ms / 1000) if linger_ms > 0 else handle,
    )


async def _lingering(
    handle: Callable[[Sequence[tuple[Envelope, Message]]], Awaitable[None]],
    linger_s: float,
    events: Sequence[tuple[Envelope, Message]],
) -> None:
    """``handle`` a run, then, when it was busy but not full, wait ``linger_s`` before the
    runner reads again, so that a busy log is read in fuller runs.

    Each run costs an XREADGROUP, a script call and an XACK whatever its size, and under load
    those round trips (FastStream's reading and acking around them) were ~70 % of the
    projector's CPU at ~7 events a run. The runner's own ``linger_ms`` is off for in-order
    readers; waiting here, after the run's messages are published and before its ack, is the
    same thing for this group: the next read (of this shard only) starts ``linger_s`` later, so
    a message waits at most that much longer before it is published.

    A run of fewer than ``BUSY_RUN`` events is a quiet log (at 200 events/s over 4 shards a run
    holds 1 event): reading again at once keeps append → client within the SSE latency target,
    and there is little to save. ``BUSY_RUN`` or more in one read means events arrive faster
    than the projector reads them one by one (the chat at 2,500 users: ~7 a run), and the wait
    buys runs of 15-30."""
    await handle(events)
    if BUSY_RUN <= len(events) < FULL_RUN:
        await asyncio.sleep(linger_s)


async def _handle_one(
    handle: Callable[[Sequence[tuple[Envelope, Message]]], Awaitable[None]],
    envelope: Envelope,
    message: Message,
) -> None:
    await handle([(envelope, message)])


async def _handle(
    events: Sequence[tuple[Envelope, Message]],
    *,
    redis: AsyncRedis,
    layout: Layout,
    registry: MessageRegistry,
    cache: ViewCache,
    archive: Archive | None,
) -> None:
    published = await project_snapshots(
        events, redis=redis, layout=layout, registry=registry, cache=cache, archive=archive,
    )
    if published:
        latency, now = projection_metrics().published, time.time()
        for live in published:
            latency.observe(max(0.0, now - live.appended_at))


async def run_snapshot_tail(
    redis: AsyncRedis,
    layout: Layout,
    registry: MessageRegistry = schemas.registry,
    *,
    shards: list[int] | None = None,
    after: dict[int, int] | None = None,
    block_ms: int = 1000,
    batch: int = 500,
    archive: Archive | None = None,
    linger_ms: int = 0,
) -> None:
    """Project every shard's log from ``after[shard]`` (default 0) on, until cancelled.

    A single-process stand-in for the consumer runner (tests, benchmark): no group, no
    checkpoint; restarting it re-projects from the start, which the snapshot ignores. A read
    that fails on Redis (restarted, or too slow for the socket timeout) is followed again from
    the last position projected.
    ``linger_ms``: after a short batch, wait this long before reading again (fuller batches,
    fewer script calls, for up to that much more delivery latency).
    """
    starts = after or {}
    cache = ViewCache()
    log_reader = LogReader(redis, layout, archive)

    async def tail(shard: int) -> None:
        done = starts.get(shard, 0)  # the last position projected
        while True:
            try:
                done = await tail_from(shard, done)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # A Redis restart, or a read timed out on a loop too busy to take its reply:
                # follow again from the last position projected (projecting is idempotent).
                raise_if_cancelled()  # the error may be a cancellation redis-py turned into one
                log.warning("snapshot: shard %d read failed (%s); resuming at %d", shard, exc, done)
                await asyncio.sleep(0.1)

    async def tail_from(shard: int, done: int) -> int:
        follow = log_reader.follow_shard(shard, after=done, batch=batch, block_ms=block_ms)
        async with aclosing(follow) as batches:
            async for entries in batches:
                events = []
                for entry_id, fields in entries:
                    try:
                        envelope = Envelope.from_fields(
                            fields, position=position_of(entry_id), shard=shard
                        )
                        events.append((envelope, registry.decode_envelope(envelope)))
                    except (MalformedEntry, RegistryError) as exc:
                        log.warning("snapshot: skipping shard %d entry %s: %s", shard, entry_id, exc)
                await project_snapshots(
                    events, redis=redis, layout=layout, registry=registry, cache=cache,
                    archive=archive,
                )
                if entries:
                    done = position_of(entries[-1][0])
                if linger_ms and 0 < len(entries) < batch:
                    await asyncio.sleep(linger_ms / 1000)
        return done

    async with asyncio.TaskGroup() as group:
        for shard in shards if shards is not None else range(layout.shards):
            group.create_task(tail(shard))
