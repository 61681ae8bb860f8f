"""Two complete hosts sharing only the Redis Cluster and S3 (the scan path reads no Postgres).

Each host is its own process group with its own ports and data dir: gateway, character
service, scan and reward workers and the snapshot projector (``ScanStack``). They share the
namespace on the session's Redis Cluster and one S3 bucket (moto's server), as
two machines of a deployment would. An image uploaded through host A is served by host B;
scans submitted on A stream on B; host A is killed (SIGKILL, every process) mid-load and no
accepted scan is lost or done twice: B's workers claim A's in-flight commands and B's snapshot
projector takes over A's shards when their leases expire.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from httpx_sse import aconnect_sse

import schemas
from eventstore.store import EventStore
from infra.media_s3 import open_s3_media
from infra.settings import Settings
from infra.stacks import ScanStack
from schemas.scan import ScanCompleted, VisionCompleted
from tests.gateway.helpers import PNG
from tests.s3_server import s3_endpoint, s3_settings

__all__ = ["s3_endpoint"]

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.slow, pytest.mark.asyncio]
SCANS = 40


def host(cluster_url: str, namespace: str, shared: dict[str, str]) -> ScanStack:
    stack = ScanStack(
        Settings(redis_url=cluster_url), namespace=namespace, latency="production",
        claim_idle_ms=1500,
    )
    stack.commands["snapshot"] = (sys.executable, "-m", "infra.cli", "worker", "snapshot")
    stack.env.update(shared)
    stack.start_timeout_s = 120  # two hosts' processes import at once on 2 cores
    return stack


def kill_host(stack: ScanStack) -> None:
    for proc in stack.processes.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


async def completed(store: EventStore, job: str) -> int:
    envelopes = await store.read_aggregate(job)
    messages = [schemas.registry.decode_envelope(e) for e in envelopes]
    assert [e.version for e in envelopes] == list(range(1, len(envelopes) + 1))
    return sum(isinstance(m, ScanCompleted) for m in messages)


async def test_two_hosts_share_only_the_cluster_and_s3(
    redis_cluster_url: str, s3_endpoint: str
) -> None:
    s3 = s3_settings(s3_endpoint)
    async with open_s3_media(s3) as media:
        await media.client.create_bucket(Bucket=media.bucket)
    shared = {
        "ECO2_MEDIA_URL": str(s3.media_url),
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        # One secret for every host, as production requires: a session or upload URL signed
        # by host A is honoured by host B (each data dir would otherwise make its own).
        "ECO2_SECRET_KEY": "two-hosts-" + uuid.uuid4().hex,
    }
    namespace = f"two{uuid.uuid4().hex[:8]}"
    a = host(redis_cluster_url, namespace, shared)
    b = host(redis_cluster_url, namespace, shared)
    assert a.port != b.port and a.data_dir != b.data_dir
    try:
        async with a, b, httpx.AsyncClient(timeout=30) as http:
            headers = a.auth("two-hosts-user")
            ticket = (await http.post(
                f"{a.base_url}/api/v1/images/scan",
                json={"filename": "p.png", "content_type": "image/png"}, headers=headers,
            )).raise_for_status().json()
            put = await http.put(ticket["upload_url"], content=PNG,
                                 headers=ticket.get("required_headers") or {})
            assert put.status_code == 200, put.text
            served = await http.get(b.base_url + urlsplit(ticket["cdn_url"]).path)
            assert served.status_code == 200 and served.content == PNG  # uploaded via A

            async def submit(n: int) -> str:
                r = await http.post(
                    f"{a.base_url}/api/v1/scan",
                    json={"image_url": ticket["cdn_url"], "user_input": "페트병"},
                    headers=headers,
                )
                assert r.status_code == 202, r.text
                return str(r.json()["job_id"])

            jobs = await asyncio.gather(*(submit(n) for n in range(SCANS)))
            store = EventStore(b.redis, b.layout, schemas.registry)

            # A scan submitted on A streams on B.
            stream: list[tuple[str, dict[str, object]]] = []
            unfinished_at_kill: list[str] = []

            async def kill_a_mid_load() -> None:
                # Once the last scan has its vision, every scan waits for its answer model
                # (3.7 s): A dies with scans in flight. Watched on its own, not at the events
                # of the stream below, which may all come after the last scan is done.
                while not any(isinstance(schemas.registry.decode_envelope(e), VisionCompleted)
                              for e in await store.read_aggregate(jobs[-1])):
                    await asyncio.sleep(0.05)
                unfinished_at_kill.extend(
                    [job for job in jobs if await completed(store, job) == 0]
                )
                kill_host(a)
                a.processes.clear()

            killer = asyncio.create_task(kill_a_mid_load())
            try:
                async with asyncio.timeout(60), aconnect_sse(
                    http, "GET", f"{b.base_url}/api/v1/scan/{jobs[0]}/events", headers=headers
                ) as source:
                    async for sse in source.aiter_sse():
                        if sse.event == "keepalive":
                            continue
                        stream.append((sse.event, json.loads(sse.data)))
                        if sse.event == "done":
                            break
                async with asyncio.timeout(60):
                    await killer
            finally:
                killer.cancel()
            assert stream[-1][0] == "done" and stream[-1][1]["status"] == "completed"
            assert unfinished_at_kill  # A died with scans in flight

            async with asyncio.timeout(120):
                while True:
                    counts = [await completed(store, job) for job in jobs]
                    if all(c >= 1 for c in counts):
                        break
                    await asyncio.sleep(0.5)
            assert counts == [1] * SCANS  # nothing lost, nothing done twice
            # ... and their streams end on B (A's snapshot shards were taken over).
            for job in unfinished_at_kill[:3]:
                async with asyncio.timeout(60), aconnect_sse(
                    http, "GET", f"{b.base_url}/api/v1/scan/{job}/events", headers=headers
                ) as source:
                    events = [sse.event async for sse in source.aiter_sse()
                              if sse.event != "keepalive"]
                assert events[-1] == "done" and events.count("done") == 1
    finally:
        await b.forget()
