"""How far every reader of a shard's streams has come: the floors trimming must respect.

An entry may leave Redis only when every consumer group has delivered it and none holds it
pending, and no dead letter points at it. Stream ids are compared as ``(ms, seq)`` pairs; for the
shard log the first number is the position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

StreamId = tuple[int, int]
NO_ID: StreamId = (0, 0)


def parse_id(text: str) -> StreamId:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def id_text(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def successor(stream_id: StreamId) -> StreamId:
    return stream_id[0], stream_id[1] + 1


def last_position_before(keep_from: StreamId) -> int:
    """The highest shard-log position (ids ``<position>-0``) below ``keep_from``."""
    return keep_from[0] if keep_from[1] > 0 else keep_from[0] - 1


@dataclass(frozen=True)
class GroupFloor:
    """The first entry of a stream that one group still needs (everything before it is
    delivered and acknowledged)."""

    group: str
    keep_from: StreamId


async def group_floors(redis: aioredis.Redis, stream: str) -> list[GroupFloor] | None:
    """Per group of ``stream``: the first id it still needs. None when the stream is missing."""
    try:
        groups = cast(list[dict[str, Any]], await redis.xinfo_groups(stream))
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise
    floors = []
    for info in groups:
        name = str(info["name"])
        keep = successor(parse_id(str(info["last-delivered-id"])))
        if int(info.get("pending", 0)):
            summary = cast(dict[str, Any], await redis.xpending(stream, name))
            if summary.get("min"):
                keep = min(keep, parse_id(str(summary["min"])))
        floors.append(GroupFloor(name, keep))
    return floors


async def dead_letter_floors(redis: aioredis.Redis, dlq: str) -> dict[str, StreamId]:
    """Per source stream: the oldest entry a dead letter of ``dlq`` points at."""
    floors: dict[str, StreamId] = {}
    last = "-"
    while True:
        page = cast(list[tuple[str, dict[str, str]]], await redis.xrange(dlq, min=last, count=1000))
        for _, fields in page:
            stream, entry = fields.get("dlq_stream"), fields.get("dlq_entry")
            if not stream or not entry:
                continue
            try:
                pointed = parse_id(entry)
            except ValueError:
                continue
            floors[stream] = min(floors.get(stream, pointed), pointed)
        if len(page) < 1000:
            return floors
        last = "(" + page[-1][0]
