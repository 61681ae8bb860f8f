"""What readers of the snapshot projector's output need: where a job's snapshot is kept and
how it is parsed, and how a message published on ``{tag}:live`` splits into SSE messages."""

from __future__ import annotations

from pydantic import ValidationError

from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.redis_client import AsyncRedis
from projections.live_view import JobView

SNAPSHOT_ROLE = "state"  # this projector's document beside each job's stream: {tag}:state:<job>
SNAPSHOT_TTL_S = 7 * 24 * 3600  # a finished job's snapshot lives a week; the log keeps the rest

LIVE_SEPARATOR = "\n"


def live_messages(published: str) -> list[str]:
    """The SSE messages (their JSON data texts, in log order) of one message published on
    ``{tag}:live``: a batch's messages go out in one PUBLISH, joined by line breaks, which
    JSON text never holds raw (one PUBLISH per message, and the subscriber's parse of each,
    cost the projector, Redis and every gateway once per event)."""
    return published.split(LIVE_SEPARATOR)


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
