"""The log's figures: per shard its head, stream lengths and dead letters; per consumer group
its pending entries, lag and retry backlog (what ``/metrics`` and the operations page show).

Redis 7 reports a group's lag; on Redis 6.2 the event log's lag is computed from its contiguous
positions (head − last delivered position). A stream that does not exist yet counts as empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis


@dataclass(frozen=True)
class ShardFigures:
    shard: int
    head: int  # last position of {tag}:events (0: empty)
    events: int  # entries still in {tag}:events (less than head once trimmed)
    commands: int  # entries in {tag}:commands
    dead_letters: int


@dataclass(frozen=True)
class GroupFigures:
    stream: str  # "events" | "commands"
    group: str
    shard: int
    pending: int
    lag: int | None
    retry_backlog: int


@dataclass(frozen=True)
class LogFigures:
    shards: list[ShardFigures]
    groups: list[GroupFigures]


async def log_figures(redis: AsyncRedis, layout: Layout) -> LogFigures:
    """Every shard's and every group's figures, in two pipelined round trips."""
    async with redis.pipeline(transaction=False) as pipe:
        for keys in layout.all():
            pipe.get(keys.head)
            pipe.xlen(keys.events)
            pipe.xlen(keys.commands)
            pipe.xlen(keys.dlq)
            pipe.xinfo_groups(keys.events)
            pipe.xinfo_groups(keys.commands)
        replies = await pipe.execute(raise_on_error=False)
    shards: list[ShardFigures] = []
    found: list[tuple[str, int, dict[str, Any], int]] = []
    for k in range(layout.shards):
        head, events, commands, dlq, event_groups, command_groups = replies[6 * k: 6 * k + 6]
        figures = ShardFigures(k, _int(head), _int(events), _int(commands), _int(dlq))
        shards.append(figures)
        for stream, groups in (("events", event_groups), ("commands", command_groups)):
            if isinstance(groups, list):  # an error reply: the stream does not exist yet
                found += [(stream, k, g, figures.head) for g in groups]
    async with redis.pipeline(transaction=False) as pipe:
        for _, k, g, _ in found:
            pipe.xinfo_groups(layout.keys(k).retry(str(g["name"])))
        infos = await pipe.execute(raise_on_error=False)
    groups = [
        GroupFigures(
            stream, str(g["name"]), k, int(g.get("pending") or 0), _lag(stream, g, head),
            _retry_backlog(info, str(g["name"])),
        )
        for (stream, k, g, head), info in zip(found, infos, strict=True)
    ]
    return LogFigures(shards, groups)


def _int(reply: Any) -> int:
    if isinstance(reply, int):
        return reply
    if isinstance(reply, str | bytes) and reply.isdigit():
        return int(reply)
    return 0  # missing key or an error reply: nothing there yet


def _lag(stream: str, group: dict[str, Any], head: int) -> int | None:
    lag = group.get("lag")
    if isinstance(lag, int):
        return lag
    if stream == "events":  # positions are contiguous: head − last delivered position
        last = str(group.get("last-delivered-id") or "0-0").split("-", 1)[0]
        return max(head - int(last), 0) if last.isdigit() else None
    return None


def _retry_backlog(info: object, group: str) -> int:
    """Retry entries stay in their stream after processing: the backlog is what the group has
    not read yet (lag) plus what it holds unacknowledged, not the stream's length."""
    if not isinstance(info, list):
        return 0
    for g in info:
        if isinstance(g, dict) and str(g.get("name")) == group:
            return int(g.get("lag") or 0) + int(g.get("pending") or 0)
    return 0
