"""Several ``EVALSHA`` calls in one round trip, with every reply (an error reply as its
``ResponseError``) in call order: the transport of group commit (``eventstore.group_commit``).

On a single node the calls are packed by hand and written on one connection of the client's
pool, and the replies read back from it: redis-py's pipeline object (its command stack, per
command callbacks and options, bookkeeping around the write) cost about 160 µs of client CPU per
round trip, a tenth of what 64 concurrent single-event appends cost the client in all. The
connection's own retry policy applies as it does to a pipeline. A Redis Cluster keeps
redis-py's cluster pipeline, which routes each call to the master of its slot and follows
moved slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from hiredis import pack_command  # what redis-py packs with, minus its Python layer
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from redis.asyncio.connection import Connection
from redis.exceptions import ResponseError

from eventstore.redis_client import AsyncRedis
from eventstore.tracing import tracer

# One script call: its KEYS (UTF-8 bytes) and its ARGV.
Call = tuple[Sequence[bytes], Sequence[Any]]


class ScriptCalls:
    """Sends batches of calls of one script (by SHA) to ``redis``.

    ``combined``: the script also takes several calls as one, in its ``"s"`` form (ARGV
    ``"s"``, then per call its key count and its ARGV; KEYS all calls' keys in order; the reply
    one reply per call), as ``append.lua`` does. On a single node a batch then goes as ONE
    script run: each run costs Redis ~15-25 µs before the script's first write (the call, the
    script's set-up, its reads of the shard's head and cold marker), paid once per round trip
    instead of once per shard. A cluster cannot: the calls' keys are in different slots.
    """

    def __init__(self, redis: AsyncRedis, sha: str, *, combined: bool = False) -> None:
        self.redis = redis
        self.sha = sha.encode()
        self.combined = combined
        self.round_trips = 0  # how many batches went out (tests see grouping with it)

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        """The replies of ``calls``, sent together; a connection failure raises."""
        self.round_trips += 1
        if isinstance(self.redis, aioredis.Redis):
            if not trace.get_current_span().is_recording():
                return await self._on_node(self.redis, calls)
            # The span redis-py's instrumentation made for the pipeline, which this bypasses.
            with tracer().start_as_current_span(
                "EVALSHA", kind=SpanKind.CLIENT,
                attributes={"db.system": "redis", "db.redis.pipeline_length": len(calls)},
            ):
                return await self._on_node(self.redis, calls)
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    async def _on_node(self, redis: aioredis.Redis, calls: Sequence[Call]) -> list[Any]:
        sha = self.sha
        if self.combined and len(calls) > 1:
            keys = [key for call_keys, _ in calls for key in call_keys]
            argv: list[Any] = [b"s"]
            for call_keys, args in calls:
                argv += (len(call_keys), *args)
            packed = pack_command((b"EVALSHA", sha, len(keys), *keys, *argv))
            [reply] = await self._send(redis, packed, 1)
            if isinstance(reply, ResponseError):  # NOSCRIPT, BADARGS: no call ran
                return [reply] * len(calls)
            return list(reply)
        packed = b"".join(
            pack_command((b"EVALSHA", sha, len(keys), *keys, *args)) for keys, args in calls
        )
        return await self._send(redis, packed, len(calls))

    async def _send(self, redis: aioredis.Redis, packed: bytes, count: int) -> list[Any]:
        pool = redis.connection_pool
        conn: Connection = await pool.get_connection()
        try:
            replies: list[Any] = await conn.retry.call_with_retry(
                lambda: _round_trip(conn, packed, count),
                lambda _error: conn.disconnect(),
            )
            return replies
        finally:
            await pool.release(conn)


async def _round_trip(conn: Connection, packed: bytes, count: int) -> list[Any]:
    """Write ``packed`` and read its ``count`` replies. Every reply is read before an error
    leaves, or the connection is dropped: a reply left on the socket would be read as the
    answer to the next caller that borrows it from the pool."""
    await conn.send_packed_command(packed, check_health=False)
    replies: list[Any] = []
    try:
        for _ in range(count):
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:  # this call's error reply (NOSCRIPT, BADARGS)
                replies.append(exc)
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
    return replies
