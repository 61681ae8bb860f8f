"""``GET /api/v1/admin/tail?backlog=N``: a live tail of every shard's event log, as SSE.

First the last ``N`` events over all shards (oldest first), then each new one as it is
appended (``LogReader.follow`` of every shard from its head). Every ``entry`` event carries its
shard and position, so a client that reconnects and receives the backlog again drops what it
already shows. The log holds no personal fields (commands.users), so showing a short preview
of each event's data is safe.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from eventstore.cancellation import raise_if_cancelled
from eventstore.reading import LogReader, ShardBatch
from eventstore.tracing import trace_id_of
from gateway.params import strict_int
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


async def backlog(reader: LogReader, count: int) -> list[dict[str, Any]]:
    """The last ``count`` entries over all shards, oldest first."""
    rows: list[dict[str, Any]] = []
    for shard in range(reader.layout.shards):
        for entry_id, fields in await reader.latest(shard, count):
            rows.append(entry_summary(shard, entry_id, fields))
    rows.sort(key=lambda r: (r["ts"], r["shard"], r["position"]))
    return rows[-count:] if count else []


def rows_of(found: list[ShardBatch]) -> list[dict[str, Any]]:
    """One item of ``LogReader.follow`` as tail rows, in the order they were appended."""
    rows = [entry_summary(b.shard, *entry) for b in found for entry in b.entries]
    rows.sort(key=lambda r: (r["ts"], r["shard"], r["position"]))
    return rows


async def tail_events(request: Request) -> Response:
    await require_admin(request)
    count = strict_int(request.query_params.get("backlog"), "backlog", minimum=0,
                       maximum=MAX_BACKLOG, default=30)
    res = gateway_state(request).resources

    async def events() -> AsyncIterator[ServerSentEvent]:
        reader = LogReader(res.redis, res.layout, res.store.archive)
        # The heads first: nothing appended from now on is missed.
        after = {shard: await reader.head(shard) for shard in range(res.layout.shards)}
        for row in await backlog(reader, count):
            yield ServerSentEvent(data=json.dumps(row, ensure_ascii=False), event="entry")
        quiet_since = time.monotonic()
        async with aclosing(reader.follow(after, batch=100, block_ms=BLOCK_MS)) as tail:
            async for found in tail:
                raise_if_cancelled()  # redis-py may swallow a cancellation (eventstore.cancellation)
                for row in rows_of(found):
                    yield ServerSentEvent(data=json.dumps(row, ensure_ascii=False), event="entry")
                if found:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > KEEPALIVE_S:
                    quiet_since = time.monotonic()
                    yield ServerSentEvent(comment="keepalive")

    return EventSourceResponse(events(), ping=0)
