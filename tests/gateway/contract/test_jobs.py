"""Scans and chats: submitting a job, following its stream, reading its result."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

import schemas
from eventstore.store import ANY
from tests.gateway.contract.endpoints import (
    NONE,
    STR_OR_NONE,
    Gateway,
    contract,
    has,
    projector,
    projectors,
    sse,
    upload,
    user_id_of,
)
from tests.gateway.helpers import append, full_scan

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


# ---- scan -------------------------------------------------------------------------------------

@contract(("POST", "/api/v1/scan"), ("GET", "/api/v1/scan/{job_id}/result"),
          ("GET", "/api/v1/scan/{job_id}/events"), ("GET", "/api/v1/scan/categories"))
async def test_scan(user: httpx.AsyncClient, gw: Gateway) -> None:
    ticket = await upload(user)
    r = await user.post("/api/v1/scan", json={"image_url": ticket["cdn_url"], "user_input": "생수병"})
    assert r.status_code == 202, r.text
    accepted = has(r.json(), job_id=str, stream_url=str, result_url=str, status=str)
    job = accepted["job_id"]
    assert accepted["stream_url"] == f"/api/v1/scan/{job}/events"
    assert accepted["result_url"] == f"/api/v1/scan/{job}/result"
    assert accepted["status"] == "queued"

    running = await user.get(accepted["result_url"])
    assert running.status_code == 202 and "retry-after" in running.headers
    has(running.json(), status=str, current_stage=STR_OR_NONE, progress=(int, float))

    owner = await user_id_of(user)
    async with projector(gw):
        await append(gw.store, job, owner, *full_scan(owner))
        events = await sse(user, accepted["stream_url"], until="done")
    names = [name for name, _ in events]
    assert names[0] == "queued" and names[-1] == "done"
    for name, data in events:
        has(data, job_id=str, stage=str, status=str, seq=int)
        assert data["stage"] == name or name == "done"
    result = await user.get(accepted["result_url"])
    assert result.status_code == 200
    body = has(result.json(), task_id=str, status=str, message=STR_OR_NONE,
               pipeline_result=dict, reward=(dict, NONE), error=(dict, NONE))
    assert body["status"] == "completed"
    pipeline = has(body["pipeline_result"], classification_result=dict, disposal_rules=(dict, NONE),
                   final_answer=dict)
    has(pipeline["classification_result"], classification=dict, situation_tags=list)
    has(pipeline["classification_result"]["classification"], major_category=str,
        middle_category=str, minor_category=STR_OR_NONE)
    has(pipeline["final_answer"], disposal_steps=dict, insufficiencies=list, user_answer=str)
    has(body["reward"], name=str, dialog=str, match_reason=STR_OR_NONE, type=str)

    categories = (await user.get("/api/v1/scan/categories")).json()
    assert isinstance(categories, list) and categories
    assert (await user.get(f"/api/v1/scan/{uuid.uuid4()}/result")).status_code == 404


# ---- chat ---------------------------------------------------------------------------------------


@contract(("POST", "/api/v1/chat"), ("GET", "/api/v1/chat"), ("GET", "/api/v1/chat/{chat_id}"),
          ("PATCH", "/api/v1/chat/{chat_id}"), ("DELETE", "/api/v1/chat/{chat_id}"))
async def test_chat_sessions(user: httpx.AsyncClient, gw: Gateway) -> None:
    created = await user.post("/api/v1/chat", json={"title": "분리배출 질문"})
    assert created.status_code == 201, created.text
    chat = has(created.json(), id=str, title=STR_OR_NONE, created_at=STR_OR_NONE)
    async with projectors(gw.settings):  # the list is a read model: let it catch up
        async with asyncio.timeout(15):
            while True:
                listing = (await user.get("/api/v1/chat", params={"limit": 10})).json()
                has(listing, chats=list, next_cursor=STR_OR_NONE)
                mine = [c for c in listing["chats"] if c["id"] == chat["id"]]
                if mine:
                    break
                await asyncio.sleep(0.1)
    has(mine[0], id=str, title=STR_OR_NONE, preview=STR_OR_NONE, message_count=int,
        last_message_at=STR_OR_NONE, created_at=STR_OR_NONE)
    history = (await user.get(f"/api/v1/chat/{chat['id']}")).json()
    has(history, id=str, title=STR_OR_NONE, messages=list, has_more=bool,
        next_cursor=STR_OR_NONE, created_at=STR_OR_NONE)
    for message in history["messages"]:
        has(message, id=str, role=str, content=str, image_url=STR_OR_NONE, intent=STR_OR_NONE,
            metadata=(dict, NONE), created_at=STR_OR_NONE)
    renamed = await user.patch(f"/api/v1/chat/{chat['id']}", json={"title": "새 제목"})
    assert renamed.status_code == 204
    assert (await user.get(f"/api/v1/chat/{chat['id']}")).json()["title"] == "새 제목"
    assert (await user.delete(f"/api/v1/chat/{chat['id']}")).status_code == 204
    assert (await user.get(f"/api/v1/chat/{chat['id']}")).status_code == 404


@contract(("POST", "/api/v1/chat/{chat_id}/messages"), ("POST", "/api/v1/chat/{job_id}/input"),
          ("GET", "/api/v1/chat/{job_id}/events"))
async def test_chat_turn(user: httpx.AsyncClient, gw: Gateway) -> None:
    from schemas.chat import CHAT_TURN, TurnQueued, TurnWaiting
    from schemas.envelope import Metadata

    chat = (await user.post("/api/v1/chat", json={})).json()
    r = await user.post(f"/api/v1/chat/{chat['id']}/messages",
                        json={"message": "근처 폐건전지 수거함 어디야?"})
    assert r.status_code == 202, r.text
    turn = has(r.json(), job_id=str, stream_url=str, status=str)
    job = turn["job_id"]
    assert turn["stream_url"] == f"/api/v1/chat/{job}/events" and turn["status"] == "submitted"

    # No chat worker runs here: the turn's first events are written as the worker would.
    owner = await user_id_of(user)
    envelopes = [schemas.registry.envelope(
        event, aggregate_id=job, aggregate_type=CHAT_TURN, metadata=Metadata(user_id=owner))
        for event in (
            TurnQueued(chat_id=chat["id"], user_id=owner, message="근처 폐건전지 수거함 어디야?",
                       user_message_id=str(uuid.uuid4())),
            TurnWaiting(input_type="location", message="위치를 알려 주세요"),
        )]
    await gw.store.append(envelopes, expected_version=ANY)
    events = await sse(user, turn["stream_url"], until="needs_input")
    assert events[-1][0] == "needs_input"
    for _, data in events:
        has(data, job_id=str, stage=str, status=str, seq=int)

    answered = await user.post(f"/api/v1/chat/{job}/input",
                               json={"type": "location",
                                     "data": {"latitude": 37.5665, "longitude": 126.978}})
    assert answered.status_code == 200, answered.text
    assert has(answered.json(), status=str, job_id=str) == {"status": "received", "job_id": job}
