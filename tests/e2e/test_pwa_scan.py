"""Scans the way the Eco² PWA makes them, against the processes of a default deployment (local
provider, no keys): its model preference is answered by the default model, and a photo nothing
recognises still gets a complete 미분류 answer. HTTP in, SSE until ``done``, then the result."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from commands.scan.unclassified import RETAKE_SUGGESTION, UNKNOWN_ITEM
from infra.bench.scan import upload_photo
from infra.settings import Settings
from infra.stacks import ScanStack
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.slow, pytest.mark.asyncio]


async def scan(http: httpx.AsyncClient, who: dict[str, str], body: dict[str, str]) -> (
    tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]
):
    """POST /scan, follow its stream until ``done``, then GET the result once (as the PWA)."""
    r = await http.post("/api/v1/scan", json=body, headers=who)
    assert r.status_code == 202, r.text
    accepted = r.json()
    events: list[tuple[str, dict[str, Any]]] = []
    async with asyncio.timeout(60), aconnect_sse(
        http, "GET", accepted["stream_url"], headers=who
    ) as source:
        async for sse in source.aiter_sse():
            if sse.event != "keepalive":
                events.append((sse.event, json.loads(sse.data)))
            if sse.event == "done":
                break
    result = await http.get(accepted["result_url"], headers=who)
    assert result.status_code == 200, result.text
    return events, result.json()


async def test_pwa_scans_on_a_default_deployment(namespace: str) -> None:
    async with ScanStack(Settings(redis_url=REDIS_URL), namespace=namespace, scan_workers=1,
                         reward_workers=1) as stack, \
            httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        who = stack.auth("pwa-user")
        image = await upload_photo(http, who)
        # As `eco2 up` runs them: the workers behind the request path.
        priority = {name: os.getpriority(os.PRIO_PROCESS, proc.pid)
                    for name, proc in stack.processes.items()}
        ours, behind = os.getpriority(os.PRIO_PROCESS, 0), Settings().worker_nice
        assert behind > 0
        assert priority == {"grpc": ours, "gateway": ours, "scan-0": min(ours + behind, 19),
                            "reward-0": min(ours + behind, 19)}

        # A model whose provider is not configured: the default model answers the scan.
        events, result = await scan(http, who, {"image_url": image, "user_input": "페트병",
                                                "model": "gpt-5.2"})
        assert events[-1][1]["status"] == "completed", events[-1]
        assert result["status"] == "completed"
        classified = result["pipeline_result"]["classification_result"]["classification"]
        assert classified["middle_category"] == "무색페트병"
        queued = next(data for name, data in events if name == "queued")
        assert queued["result"]["model_fallback"] == {
            "requested": "gpt-5.2", "used": "local",
            "reason": "the openai provider is not configured"}
        assert "'gpt-5.2' cannot be served" in stack.log_of("scan-0")

        # Nothing recognisable (no hint, a neutral file name): a complete 미분류 answer.
        events, result = await scan(http, who, {"image_url": image})
        assert result["status"] == "completed", result
        pipeline = result["pipeline_result"]
        classified = pipeline["classification_result"]["classification"]
        assert classified == {"major_category": "미분류", "middle_category": "미분류",
                              "minor_category": UNKNOWN_ITEM}
        final = pipeline["final_answer"]
        assert len(final["disposal_steps"]) >= 3
        assert all(name.strip() and text.strip() for name, text in final["disposal_steps"].items())
        assert final["user_answer"].strip() and RETAKE_SUGGESTION in final["user_answer"]
        assert all(issue.strip() for issue in final["insufficiencies"])
