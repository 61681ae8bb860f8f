"""Chat end to end with real processes and the real graph: a worker killed mid-answer.

Gateway, snapshot projector and one chat worker run as processes (local model, production
latency, so the answer streams for seconds). A client follows the turn over SSE; once text has
arrived the worker is killed with SIGKILL and a second worker is started, which claims the
command and finishes the turn. The client's text — the concatenated ``token`` contents — must
equal ``done.result.answer`` with no event twice, and the log must hold one ``done`` and one
user and one assistant message.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from httpx_sse import aconnect_sse

import schemas
from eventstore.store import EventStore
from infra.settings import Settings
from infra.stacks import ChatStack
from schemas.chat import MessageRecorded, TokensEmitted, TurnCompleted

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.slow, pytest.mark.asyncio]


async def wait_healthy(base_url: str, within_s: float = 120) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=base_url, timeout=1) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("gateway did not start")


async def test_a_worker_killed_mid_answer_the_turn_completes_once(redis_targets: str) -> None:
    """On a single Redis node and on a Redis Cluster (``redis_targets``)."""
    namespace = f"e2e{uuid.uuid4().hex[:8]}"
    stack = ChatStack(Settings(redis_url=redis_targets), namespace=namespace,
                      latency="production", chat_workers=2, handler_workers=8)
    stack.env["ECO2_CLAIM_IDLE_MS"] = "1500"  # the survivor claims the dead worker's command
    try:
        await stack.open_redis()
        for name in ("gateway", "snapshot", "chat-0"):
            stack.start(name)
        await wait_healthy(stack.base_url)
        await stack.wait_for_workers()
        headers = stack.auth("e2e-user")
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
            chat = (await http.post("/api/v1/chat", json={}, headers=headers)).json()["id"]
            r = await http.post(f"/api/v1/chat/{chat}/messages",
                                json={"message": "페트병 어떻게 버려?"}, headers=headers)
            assert r.status_code == 202, r.text
            job = r.json()
            events: list[tuple[str, str, dict[str, object]]] = []
            killed = False
            # 120 s: after the kill, chat-1 starts (imports on a loaded 2-core machine) and
            # claims the command; the turn's end returns at once.
            async with asyncio.timeout(120), aconnect_sse(
                http, "GET", job["stream_url"], headers=headers
            ) as source:
                async for sse in source.aiter_sse():
                    if sse.event == "keepalive":
                        continue
                    events.append((sse.event, sse.id, json.loads(sse.data)))
                    tokens = sum(e[0] == "token" for e in events)
                    if tokens >= 3 and not killed:
                        stack.kill("chat-0")  # SIGKILL in the middle of the answer
                        stack.start("chat-1")
                        killed = True
                    if sse.event == "done":
                        break
        assert killed
        done = events[-1][2]
        assert events[-1][0] == "done" and done["status"] == "completed", events[-1]
        text = "".join(str(e[2]["content"]) for e in events if e[0] == "token")
        result = done["result"]
        assert isinstance(result, dict) and text == result["answer"] and "페트병" in text
        ids = [int(e[1]) for e in events if e[1]]
        assert ids == sorted(set(ids))

        store = EventStore(stack.redis, stack.layout, schemas.registry)
        turn = [schemas.registry.decode_envelope(e)
                for e in await store.read_aggregate(job["job_id"])]
        assert sum(isinstance(m, TurnCompleted) for m in turn) == 1
        assert "".join(m.content for m in turn if isinstance(m, TokensEmitted)) == text
        messages = [schemas.registry.decode_envelope(e) for e in await store.read_aggregate(chat)]
        recorded = [m for m in messages if isinstance(m, MessageRecorded)]
        assert [m.role for m in recorded] == ["user", "assistant"]
        assert recorded[1].content == text
    finally:
        await stack.__aexit__(None, None, None)
        await stack.forget()
