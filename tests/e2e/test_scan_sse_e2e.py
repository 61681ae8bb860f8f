"""A scan over real processes, streamed over SSE with a dropped connection, on each Redis.

Gateway, character service, a scan worker, a reward worker and the snapshot projector (the
``eco2 worker snapshot`` role) run as processes on a single Redis node and on a Redis Cluster.
A client uploads a photo, submits a scan, reads its stream, drops the connection after two
events and resumes with ``Last-Event-ID``: it must see every event once, in version order, end
with a completed ``done`` and read the result right after.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import httpx
import pytest
from httpx_sse import aconnect_sse

from infra.bench.scan import upload_photo
from infra.settings import Settings
from infra.stacks import ScanStack
from projections.snapshot import SNAPSHOT_GROUP

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.slow, pytest.mark.asyncio]


async def read_stream(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], stop_after: int | None = None
) -> list[tuple[int, str, dict[str, object]]]:
    out: list[tuple[int, str, dict[str, object]]] = []
    async with asyncio.timeout(60), aconnect_sse(http, "GET", url, headers=headers) as source:
        async for sse in source.aiter_sse():
            if sse.event == "keepalive" or not sse.id:
                continue
            out.append((int(sse.id), sse.event, json.loads(sse.data)))
            if sse.event == "done" or (stop_after is not None and len(out) >= stop_after):
                break
    return out


async def test_a_scan_streams_and_resumes_exactly(redis_targets: str) -> None:
    stack = ScanStack(
        Settings(redis_url=redis_targets), namespace=f"e2e{uuid.uuid4().hex[:8]}",
        latency="production",  # the stream is followed live, over (sharded) pub/sub
    )
    stack.commands["snapshot"] = (sys.executable, "-m", "infra.cli", "worker", "snapshot")
    try:
        async with stack, httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
            # the streams' time limits below are for the scan, not for the processes' start
            await stack.wait_for_group("scan", "scan-0", within_s=stack.start_timeout_s)
            await stack.wait_for_group(SNAPSHOT_GROUP, "snapshot", source="events",
                                       within_s=stack.start_timeout_s)
            headers = stack.auth("e2e-scan-user")
            image = await upload_photo(http, headers)
            reply = await http.post(
                "/api/v1/scan", json={"image_url": image, "user_input": "페트병"}, headers=headers
            )
            assert reply.status_code == 202, reply.text
            job = reply.json()
            try:
                first = await read_stream(http, job["stream_url"], headers, stop_after=2)
                rest = await read_stream(
                    http, job["stream_url"], {**headers, "Last-Event-ID": str(first[-1][0])}
                )
            except TimeoutError as exc:  # what each process said, to tell where it stalled
                logs = "".join(f"\n--- {name}\n{stack.log_of(name)}" for name in stack.processes)
                raise AssertionError(f"the stream of {job['job_id']} stalled:{logs}") from exc
            ids = [e[0] for e in first + rest]
            assert ids == list(range(1, len(ids) + 1))  # no gap, no duplicate
            assert rest[-1][1] == "done" and rest[-1][2]["status"] == "completed", rest[-1]
            result = await http.get(job["result_url"], headers=headers)
            assert result.status_code == 200, result.text
    finally:
        await stack.forget()
