"""The snapshot projector: each job's latest state in ``{tag}:state:<job>``, then its live message.

For every event of a job it folds the event into the job's ``JobView`` (``live_view``) and, in
ONE Lua call, compare-and-sets the snapshot (only a higher version replaces it) and PUBLISHes the
event's SSE message on ``{tag}:live``. Because both happen in the same script, a subscriber that
receives a message can already read the snapshot it belongs to (read-your-writes for the result
endpoint), and a crash can never leave a written snapshot whose message was not published.

Under the consumer runner (``snapshot_subscription``) each shard's events are handled in log
order, so every job's messages are published in version order and SSE clients see no gaps.
Redelivery is harmless: an event at or below the snapshot's version is a no-op. Out-of-order
delivery (a crashed consumer's entry claimed late) is harmless too: when the snapshot is behind
by more than one version, the missing events are folded from the job's own stream first, so
the snapshot never skips facts (the skipped versions' messages are not published late).

Tests and the benchmark may run it with the simple tail ``run_snapshot_tail`` instead (the
log's one ``LogReader.follow`` loop, without a group). The snapshot key (role ``state``) is this
projector's: the log only keeps it under the job's shard tag.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from contextlib import aclosing
from functools import partial

from pydantic import ValidationError
from redis.exceptions import NoScriptError

import schemas
from eventstore.archive import Archive
from eventstore.consumer import Subscription
from eventstore.keys import Layout
from eventstore.reading import LogReader, position_of
from eventstore.redis_client import AsyncRedis, sharded_pubsub
from projections.live_view import JobView, apply_event, mapped_classes
from projections.metrics import projection_metrics
from schemas.envelope import Envelope, MalformedEntry
from schemas.registry import Message, MessageRegistry, RegistryError

log = logging.getLogger(__name__)

SNAPSHOT_GROUP = "snapshot"
SNAPSHOT_ROLE = "state"  # this projector's document beside each job's stream: {tag}:state:<job>
SNAPSHOT_TTL_S = 7 * 24 * 3600  # a finished job's snapshot lives a week; the log keeps the rest

# KEYS[1] {tag}:state:<job>  KEYS[2] {tag}:live
# ARGV[1] version  ARGV[2] snapshot JSON  ARGV[3] SSE message JSON ("" = none)  ARGV[4] ttl s
# ARGV[5] "1" = sharded pub/sub (SPUBLISH, a Redis Cluster: only the shard's master relays it)
# Returns 1 when written (and published), 0 when the stored snapshot is at or past ARGV[1].
CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' then
    local stored = tonumber(decoded['version'])
    if stored and stored >= tonumber(ARGV[1]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[4]))
if ARGV[3] ~= '' then
  redis.call(ARGV[5] == '1' and 'SPUBLISH' or 'PUBLISH', KEYS[2], ARGV[3])
end
return 1
"""
_CAS_SHA = hashlib.sha1(CAS_SCRIPT.encode()).hexdigest()


def snapshot_key(layout: Layout, job_id: str) -> str:
    """Where the job's snapshot is kept (beside its stream, on its shard)."""
    return layout.keys_for(job_id).document(SNAPSHOT_ROLE, job_id)


async def read_snapshot(redis: AsyncRedis, layout: Layout, job_id: str) -> JobView | None:
    """The job's stored snapshot, or None (none yet, expired, or unreadable)."""
    return parse_snapshot(await LogReader(redis, layout).document(job_id, SNAPSHOT_ROLE))


def parse_snapshot(raw: str | bytes | None) -> JobView | None:
    """A stored snapshot as a ``JobView``, or None when absent or unreadable."""
    if not raw:
        return None
    try:
        return JobView.model_validate_json(raw)
    except ValidationError:
        return None  # written by an incompatible release: rebuilt from the log


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
    if type(message) not in mapped_classes():
        return False
    job_id = envelope.aggregate_id
    keys = layout.keys_for(job_id)
    log = LogReader(redis, layout, archive)
    view = cache.get(job_id) if cache is not None else None
    if view is not None and view.version >= envelope.version:
        return False
    if view is None or view.version != envelope.version - 1:
        view = parse_snapshot(await log.document(job_id, SNAPSHOT_ROLE))
    base = view.version if view else 0
    if base >= envelope.version:
        return False
    if base < envelope.version - 1:
        # Events this projector has not folded yet (out-of-order or redelivered): read them.
        entries = await log.aggregate(job_id, after=base, limit=envelope.version - 1 - base)
        for _, fields in entries:
            earlier = Envelope.from_fields(fields, shard=keys.shard)
            view, _ = apply_event(view, earlier, registry.decode_envelope(earlier))
    view, live = apply_event(view, envelope, message)
    args: list[str | int] = [
        envelope.version, view.model_dump_json(), live.data if live else "", ttl_s,
        "1" if sharded_pubsub(redis) else "0",
    ]
    state = snapshot_key(layout, job_id)
    try:
        written = await redis.evalsha(_CAS_SHA, 2, state, keys.live, *args)
    except NoScriptError:
        written = await redis.eval(CAS_SCRIPT, 2, state, keys.live, *args)
    if cache is not None:
        if written and not view.terminal:
            cache.put(view)
        else:  # another writer is ahead, or the job is over
            cache.drop(job_id)
    return bool(written)


def snapshot_subscription(
    redis: AsyncRedis,
    layout: Layout,
    registry: MessageRegistry = schemas.registry,
    archive: Archive | None = None,
) -> Subscription:
    """The snapshot projector as a consumer-group subscription on every shard's event log,
    in log order (a job's live messages leave in version order)."""
    projection_metrics()  # registered at start (the publish latency), before any event
    handler = partial(
        _handle, redis=redis, layout=layout, registry=registry, cache=ViewCache(), archive=archive
    )
    return Subscription(
        group=SNAPSHOT_GROUP,
        source="events",
        # only logged classes (live-only ones, e.g. TokenRecovery, never arrive here)
        handlers={cls: handler for cls in mapped_classes() if registry.registered(cls)},
        in_order=True,
    )


async def _handle(
    envelope: Envelope,
    message: Message,
    *,
    redis: AsyncRedis,
    layout: Layout,
    registry: MessageRegistry,
    cache: ViewCache,
    archive: Archive | None,
) -> None:
    if await project_snapshot(
        envelope, message, redis=redis, layout=layout, registry=registry, cache=cache,
        archive=archive,
    ):
        projection_metrics().published.observe(max(0.0, time.time() - envelope.timestamp))


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
) -> None:
    """Project every shard's log from ``after[shard]`` (default 0) on, until cancelled.

    A single-process stand-in for the consumer runner (tests, benchmark): no group, no
    checkpoint; restarting it re-projects from the start, which the snapshot ignores.
    """
    starts = after or {}
    cache = ViewCache()
    log_reader = LogReader(redis, layout, archive)

    async def tail(shard: int) -> None:
        follow = log_reader.follow_shard(
            shard, after=starts.get(shard, 0), batch=batch, block_ms=block_ms
        )
        async with aclosing(follow) as batches:
            async for entries in batches:
                for entry_id, fields in entries:
                    try:
                        envelope = Envelope.from_fields(
                            fields, position=position_of(entry_id), shard=shard
                        )
                        message = registry.decode_envelope(envelope)
                    except (MalformedEntry, RegistryError) as exc:
                        log.warning("snapshot: skipping shard %d entry %s: %s", shard, entry_id, exc)
                        continue
                    await project_snapshot(
                        envelope, message, redis=redis, layout=layout, registry=registry,
                        cache=cache, archive=archive,
                    )

    async with asyncio.TaskGroup() as group:
        for shard in shards if shards is not None else range(layout.shards):
            group.create_task(tail(shard))
