"""What routes are given: the resources opened in the gateway's lifespan, on ``request.state``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.job_reads import JobReads
from gateway.live_hub import LiveHub
from gateway.metrics import GatewayMetrics
from infra.bootstrap import Resources


@dataclass(frozen=True)
class LiveConfig:
    """Tuning of the SSE streams (tests shorten the intervals)."""

    keepalive_s: float = 15.0  # a `keepalive` event after this much silence
    queue_size: int = 256  # live messages buffered per client before it is disconnected
    done_wait_s: float = 5.0  # how long a replayed `done` waits for the snapshot (see sse.py)
    send_timeout_s: float = 30.0  # a client that accepts no bytes this long is dropped
    read_pool_size: int = 8  # Redis connections for catch-up reads, per process


@dataclass(frozen=True)
class GatewayState:
    resources: Resources
    hub: LiveHub
    reads: JobReads
    metrics: GatewayMetrics
    live: LiveConfig


STATE_KEY = "gateway"


def gateway_state(request: Request) -> GatewayState:
    """The gateway's resources (set by the lifespan)."""
    state: GatewayState = getattr(request.state, STATE_KEY)
    return state
