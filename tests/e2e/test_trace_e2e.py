"""One scan is one trace: real processes (gateway, scan and reward workers, character service,
snapshot projector, projectors) export over OTLP/HTTP to a local receiver, and the spans of the
scan's trace form the chain gateway → command → worker stages → LLM calls → reward and its
gRPC call → projector → snapshot publish."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid

import asyncpg
import pytest

from infra.bench.http import http_clients
from infra.bench.scan import upload_photo, watched
from infra.settings import Settings
from infra.stacks import ScanStack
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.e2e.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

SERVER, CONSUMER, CLIENT = 2, 5, 3  # OTLP span kinds


def one(spans: list[ReceivedSpan], name: str, service: str) -> ReceivedSpan:
    matching = [s for s in spans if s.name == name and s.service == service]
    assert len(matching) == 1, (name, service, sorted({(s.service, s.name) for s in spans}))
    return matching[0]


async def test_one_scan_is_one_trace_from_request_to_projection(namespace: str) -> None:
    schema = f"trace_{uuid.uuid4().hex[:10]}"
    with OtlpReceiver() as receiver:
        stack = ScanStack(Settings(redis_url=REDIS_URL), namespace=namespace, latency="none")
        cli = (sys.executable, "-m", "infra.cli")
        stack.env.update({
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "DATABASE_URL": DATABASE_URL, "ECO2_DB_SCHEMA": schema,
        })
        stack.commands["snapshot"] = (*cli, "worker", "snapshot")
        stack.commands["projectors"] = (*cli, "projections", "run", "scans")
        try:
            async with stack, watched(stack) as watcher, \
                    http_clients(stack.base_url, count=1) as clients:
                client, headers = clients[0], stack.auth("tracer")
                image = await upload_photo(client, headers)
                reply = await client.post("/api/v1/scan", headers=headers,
                                          json={"image_url": image, "user_input": "페트병"})
                assert reply.status_code == 202, reply.text
                job_id = reply.json()["job_id"]
                status, _ = await asyncio.wait_for(watcher.wait(job_id), 60)
                assert status == "completed"
                command = await stack.redis.xrange(stack.layout.keys_for(job_id).commands)
                trace_id = next(
                    f["meta"] for _, f in command if job_id in f["agg"]
                ).split('"traceparent":"')[1].split("-")[1]
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    spans = receiver.of_trace(trace_id)
                    if {s.service for s in spans} >= {
                        "gateway", "worker-scan", "worker-reward", "characters", "projectors",
                        "worker-snapshot"} and any(s.name == "projection scans" for s in spans) \
                            and any(s.name == f"snapshot {'scan.completed'}" for s in spans):
                        break
                    await asyncio.sleep(0.25)
        finally:
            with contextlib.suppress(Exception):
                conn = await asyncpg.connect(DATABASE_URL)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()
        spans = receiver.of_trace(trace_id)
    by_id = {s.span_id: s for s in spans}

    request = one(spans, "POST /api/v1/scan", "gateway")
    assert request.kind == SERVER and request.parent_id == ""
    scan = one(spans, "scan scan.requested", "worker-scan")
    assert scan.kind == CONSUMER and scan.attributes["eco2.aggregate.id"] == job_id

    def ancestors(span: ReceivedSpan) -> list[str]:
        names = []
        while span.parent_id in by_id:
            span = by_id[span.parent_id]
            names.append(span.name)
        return names

    assert "POST /api/v1/scan" in ancestors(scan)
    llm = [s for s in spans if s.name.startswith("llm ") and s.service == "worker-scan"]
    assert {s.attributes["gen_ai.operation.name"] for s in llm} >= {"vision"}
    assert all(s.parent_id == scan.span_id for s in llm)
    reward = one(spans, "reward scan.answer_completed", "worker-reward")
    assert reward.parent_id == scan.span_id and reward.start_ns >= scan.start_ns
    grpc_calls = [s for s in spans if s.kind == CLIENT and s.service == "worker-reward"
                  and "CharacterService" in s.name]
    assert grpc_calls and all(s.parent_id == reward.span_id for s in grpc_calls)
    served = [s for s in spans if s.service == "characters" and s.kind == SERVER]
    assert served and {s.parent_id for s in served} <= {c.span_id for c in grpc_calls}
    projected = [s for s in spans if s.name == "projection scans"]
    assert projected and all(s.parent_id in (scan.span_id, reward.span_id) for s in projected)
    published = [s for s in spans if s.name.startswith("snapshot ")]
    assert {s.name for s in published} >= {"snapshot scan.completed"}
    assert all(s.parent_id in (scan.span_id, reward.span_id) for s in published)
    # in time order: request → handler → reward → what the read side did with the events
    assert request.start_ns <= scan.start_ns <= reward.start_ns
    assert max(s.end_ns for s in projected + published) >= reward.start_ns
