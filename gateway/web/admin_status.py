"""``GET /api/v1/admin/overview``: the log's health at a glance.

Per shard: the log head (last position), stream lengths and dead letters; per consumer group
and shard: lag, pending and retry backlog (the same figures ``/metrics`` exports, read by the
same ``LogCollector``); per projection: the active table version and, per shard, its
checkpoint and lag behind the head (what ``eco2 projections status`` prints) and a running
rebuild's progress (``eco2_rebuild_position`` / ``eco2_rebuild_target``); this gateway's own
request and SSE figures (``admin_figures``) and the trace UI's address template, if any.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis
from gateway.metrics import LogCollector
from gateway.query_api import PG_ERRORS
from gateway.state import gateway_state
from gateway.web.admin_auth import require_admin
from gateway.web.admin_figures import gateway_figures
from projections.builtin import PROJECTIONS
from projections.checkpoint_check import mismatches
from projections.halts import list_halts
from projections.status import projection_status

if TYPE_CHECKING:
    from readmodels.db import Pool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardFigures:
    shard: int
    head: int  # last position of {tag}:events (0: empty)
    events: int  # entries still in {tag}:events (less than head once trimmed)
    commands: int  # entries in {tag}:commands
    dead_letters: int


async def shard_figures(redis: AsyncRedis, layout: Layout) -> list[ShardFigures]:
    """Head, stream lengths and DLQ size of every shard, in one pipelined round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for keys in layout.all():
            pipe.get(keys.head)
            pipe.xlen(keys.events)
            pipe.xlen(keys.commands)
            pipe.xlen(keys.dlq)
        replies = await pipe.execute(raise_on_error=False)
    out = []
    for k in range(layout.shards):
        head, events, commands, dlq = (_int(r) for r in replies[4 * k: 4 * k + 4])
        out.append(ShardFigures(k, head, events, commands, dlq))
    return out


def _int(reply: Any) -> int:
    if isinstance(reply, int):
        return reply
    if isinstance(reply, str | bytes) and reply.isdigit():
        return int(reply)
    return 0  # missing key or an error reply: nothing there yet


async def projection_figures(pool: Pool, heads: dict[int, int]) -> list[dict[str, Any]]:
    """Every projection's active version, staleness, per-shard checkpoint and lag, and the
    shards stopped at an event they cannot apply (``halted``: what and how to decide) or
    because the log disagrees with their checkpoint (``stopped``: rebuild)."""
    out = []
    async with pool.acquire() as conn:
        halts = {(h.projection, h.shard): h.as_json() for h in await list_halts(conn)}
        stopped = await mismatches(conn)  # projectors stopped: the log disagrees (§7)
        for projection in PROJECTIONS.values():
            st = await projection_status(conn, projection)
            shards: list[dict[str, Any]] = [
                {"shard": s, "position": st.positions.get(s, 0), "head": head,
                 "lag": max(head - st.positions.get(s, 0), 0),
                 "halted": halts.get((st.name, s)),
                 "stopped": stopped.get((projection.name, s))}
                for s, head in sorted(heads.items())
            ]
            rebuild = None if st.building is None else st.building.progress(heads)
            out.append({
                "name": st.name, "active": st.active, "built_by": st.built_by,
                "code_version": st.code_version, "stale": st.stale, "versions": st.versions,
                "rebuild": None if rebuild is None else asdict(rebuild) | {"ratio": rebuild.ratio},
                "lag": sum(s["lag"] for s in shards), "shards": shards,
                "halted": [halts[st.name, s] for s in heads if (st.name, s) in halts],
            })
    return out


async def overview(request: Request) -> JSONResponse:
    """``GET /api/v1/admin/overview`` → ``{"shards", "groups", "projections",
    "projections_error", "figures", "trace_url"}`` (the error is set, and the list empty, when
    Postgres is away)."""
    await require_admin(request)
    gw = gateway_state(request)
    res = gw.resources
    shards = await shard_figures(res.redis, res.layout)
    collector = LogCollector()
    await collector.refresh(res.redis, res.layout)
    groups = sorted(
        (asdict(g) for g in collector.groups), key=lambda g: (g["stream"], g["group"], g["shard"])
    )
    projections: list[dict[str, Any]] = []
    error: str | None = None
    if res.pg is None:
        error = "DATABASE_URL is not set: no read models"
    else:
        try:
            projections = await projection_figures(res.pg, {s.shard: s.head for s in shards})
        except PG_ERRORS as exc:
            log.warning("admin overview: read models unreachable: %s", exc)
            error = f"read models unreachable: {type(exc).__name__}"
    return JSONResponse({
        "namespace": res.settings.namespace,
        "shards": [asdict(s) for s in shards],
        "groups": groups,
        "projections": projections,
        "projections_error": error,
        "figures": gateway_figures(gw.metrics.registry),
        "trace_url": res.settings.trace_url,
    })
