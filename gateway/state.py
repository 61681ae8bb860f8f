"""What routes are given: the resources opened in the gateway's lifespan, on ``request.state``."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from starlette.requests import Request

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis
from eventstore.store import EventStore
from gateway.config import GatewayConfig
from gateway.job_reads import JobReads
from gateway.live_hub import LiveHub
from gateway.metrics import GatewayMetrics
from media.owners import OwnedMedia


@dataclass(frozen=True)
class LiveConfig:
    """Tuning of the SSE streams (tests shorten the intervals)."""

    keepalive_s: float = 15.0  # a `keepalive` event after this much silence
    queue_size: int = 256  # live messages buffered per client before it is disconnected
    done_wait_s: float = 5.0  # how long a replayed `done` waits for the snapshot (see sse.py)
    send_timeout_s: float = 30.0  # a client that accepts no bytes this long is dropped
    read_pool_size: int = 8  # Redis connections for catch-up reads, per process


@dataclass(frozen=True)
class GatewayResources:
    """What the composition root opens for the gateway (``infra.gateway_app``)."""

    settings: GatewayConfig
    layout: Layout
    redis: AsyncRedis
    store: EventStore
    pg: asyncpg.Pool[asyncpg.Record] | None  # read models; None when DATABASE_URL is unset
    media: OwnedMedia  # uploaded images, hidden once their owner is erased


@dataclass(frozen=True)
class GatewayState:
    resources: GatewayResources
    hub: LiveHub
    reads: JobReads
    metrics: GatewayMetrics
    live: LiveConfig


STATE_KEY = "gateway"


def gateway_state(request: Request) -> GatewayState:
    """The gateway's resources (set by the lifespan)."""
    state: GatewayState = getattr(request.state, STATE_KEY)
    return state
