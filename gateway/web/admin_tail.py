"""``GET /api/v1/admin/tail?backlog=N``: a live tail of every shard's event log, as SSE.

First the last ``N`` events over all shards (oldest first), then each new one as it is
appended (``XREAD BLOCK`` on all ``{tag}:events`` streams). Every ``entry`` event carries its
shard and position, so a client that reconnects and receives the backlog again drops what it
already shows. The log holds no personal fields (commands.users), so showing a short preview
of each event's data is safe.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis, read_streams
from eventstore.tracing import trace_id_of
from gateway.params import strict_int
from gateway.sse import raise_if_cancelled
from gateway.state import gateway_state
from gateway.web.admin_auth import require_admin

MAX_BACKLOG = 200
BLOCK_MS = 1000
KEEPALIVE_S = 15.0
PREVIEW_CHARS = 160


def entry_summary(shard: int, entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """One log entry as a tail row."""
    return {
        "shard": shard,
        "position": int(entry_id.split("-", 1)[0]),
        "type": fields.get("type", "?"),
        "aggregate_type": fields.get("atype", ""),
        "aggregate_id": fields.get("agg", ""),
        "version": int(fields.get("ver", "0") or 0),
        "ts": float(fields.get("ts", "0") or 0),
        "preview": fields.get("data", "")[:PREVIEW_CHARS],
        "trace_id": trace_id_of(fields),
    }


async def backlog(redis: AsyncRedis, layout: Layout, count: int) -> list[dict[str, Any]]:
    """The last ``count`` entries over all shards, oldest first."""
    if count == 0:
        return []
    rows: list[dict[str, Any]] = []
    for keys in layout.all():
        for entry_id, fields in await redis.xrevrange(keys.events, count=count):
            rows.append(entry_summary(keys.shard, entry_id, fields))
    rows.sort(key=lambda r: (r["ts"], r["shard"], r["position"]))
    return rows[-count:]


async def follow(
    redis: AsyncRedis, layout: Layout, after: dict[int, str], *, block_ms: int = BLOCK_MS
) -> list[dict[str, Any]]:
    """Entries appended after the ids in ``after`` (waits up to ``block_ms``); advances it."""
    streams = {layout.keys(s).events: entry for s, entry in after.items()}
    shard_of = {layout.keys(s).events: s for s in after}
    reply = await read_streams(redis, streams, count=100, block_ms=block_ms)
    rows = []
    for stream, entries in reply or []:
        shard = shard_of[stream]
        for entry_id, fields in entries:
            after[shard] = entry_id
            rows.append(entry_summary(shard, entry_id, fields))
    rows.sort(key=lambda r: (r["ts"], r["shard"], r["position"]))
    return rows


async def _heads(redis: AsyncRedis, layout: Layout) -> dict[int, str]:
    """Where following starts: each shard's current last entry id ("0-0" when empty)."""
    after = {}
    for keys in layout.all():
        last = await redis.xrevrange(keys.events, count=1)
        after[keys.shard] = last[0][0] if last else "0-0"
    return after


async def tail_events(request: Request) -> Response:
    await require_admin(request)
    count = strict_int(request.query_params.get("backlog"), "backlog", minimum=0,
                       maximum=MAX_BACKLOG, default=30)
    res = gateway_state(request).resources

    async def events() -> AsyncIterator[ServerSentEvent]:
        after = await _heads(res.redis, res.layout)  # first: nothing appended from now is missed
        for row in await backlog(res.redis, res.layout, count):
            yield ServerSentEvent(data=json.dumps(row, ensure_ascii=False), event="entry")
        quiet_since = time.monotonic()
        while True:
            rows = await follow(res.redis, res.layout, after)
            raise_if_cancelled()  # see gateway.sse: redis-py may swallow a cancellation
            for row in rows:
                yield ServerSentEvent(data=json.dumps(row, ensure_ascii=False), event="entry")
            if rows:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield ServerSentEvent(comment="keepalive")

    return EventSourceResponse(events(), ping=0)
