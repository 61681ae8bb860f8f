"""The Chat endpoints over HTTP: shapes of API.md, pagination, read-your-writes, and the 4xx
cases (422 for bad messages, 404 for unknown or foreign chats, 409 for input nobody asked).
The stream itself (resume, token_recovery, needs_input) is in test_chat_sse."""

# ruff: noqa: F811  (fixtures imported from test_chat_support are used as parameters)
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import asgi_client
from tests.gateway.test_chat_support import (  # noqa: F401  (fixtures)
    chat_projector,
    chat_settings,
    chat_worker,
    done_of,
    graph,
    pg,
    read_sse,
    text_of,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
async def api(chat_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_gateway(chat_settings, live=FAST)) as c:
        yield c


async def new_chat(api: httpx.AsyncClient, who: dict[str, str], title: str | None = None) -> str:
    r = await api.post("/api/v1/chat", json={"title": title} if title else {}, headers=who)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_sessions_crud_and_list_pagination(
    api: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str], chat_projector: None
) -> None:
    r = await api.post("/api/v1/chat", json={"title": "분리수거"}, headers=alice)
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "title", "created_at"} and body["title"] == "분리수거"
    ids = [body["id"]] + [await new_chat(api, alice, f"대화 {i}") for i in range(2)]
    await new_chat(api, bob)
    assert (await api.patch(f"/api/v1/chat/{ids[1]}", json={"title": "새 이름"},
                            headers=alice)).status_code == 204
    assert (await api.delete(f"/api/v1/chat/{ids[2]}", headers=alice)).status_code == 204
    assert (await api.get(f"/api/v1/chat/{ids[2]}", headers=alice)).status_code == 404

    seen: list[dict[str, object]] = []
    for _ in range(50):  # the projector catches up within moments
        first = (await api.get("/api/v1/chat?limit=1", headers=alice)).json()
        if first["next_cursor"]:
            second = (await api.get(f"/api/v1/chat?limit=1&cursor={first['next_cursor']}",
                                    headers=alice)).json()
            seen = first["chats"] + second["chats"]
            if len(seen) == 2 and second["next_cursor"] is None and any(
                c["title"] == "새 이름" for c in seen
            ):
                break
        await asyncio.sleep(0.1)
    assert {c["id"] for c in seen} == {ids[0], ids[1]}
    assert set(seen[0]) == {"id", "title", "preview", "message_count", "last_message_at",
                            "created_at"}
    history = (await api.get(f"/api/v1/chat/{ids[0]}", headers=alice)).json()
    assert history["messages"] == [] and history["has_more"] is False
    assert history["id"] == ids[0] and history["title"] == "분리수거"


async def test_a_turn_over_http_and_history_right_after_done(
    api: httpx.AsyncClient, alice: dict[str, str], chat_worker: object, projector: None
) -> None:
    chat_id = await new_chat(api, alice)
    r = await api.post(f"/api/v1/chat/{chat_id}/messages",
                       json={"message": "페트병 어떻게 버려?", "user_location":
                             {"latitude": 37.56, "longitude": 126.97}}, headers=alice)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "submitted"
    assert job["stream_url"] == f"/api/v1/chat/{job['job_id']}/events"
    events = await read_sse(api, job["stream_url"], alice)
    done = done_of(events)
    assert done["status"] == "completed"
    result = done["result"]
    assert text_of(events) == result["answer"] and "37.5600" in result["answer"]
    assert result["intent"] == "waste" and result["persistence"]["conversation_id"] == chat_id
    assert {"queued", "intent", "waste_rag", "answer", "done"} <= {e.event for e in events}
    # No chat projector runs here: history comes from folding the chat (read-your-writes).
    history = (await api.get(f"/api/v1/chat/{chat_id}", headers=alice)).json()
    roles = [(m["role"], m["content"]) for m in history["messages"]]
    assert roles == [("user", "페트병 어떻게 버려?"), ("assistant", result["answer"])]
    assert history["messages"][1]["id"] == result["persistence"]["assistant_message"]
    assert history["title"] == "페트병 어떻게 버려?"
    page = (await api.get(f"/api/v1/chat/{chat_id}?limit=1", headers=alice)).json()
    assert [m["role"] for m in page["messages"]] == ["assistant"] and page["has_more"]
    older = (await api.get(f"/api/v1/chat/{chat_id}?limit=1&cursor={page['next_cursor']}",
                           headers=alice)).json()
    assert [m["role"] for m in older["messages"]] == ["user"] and not older["has_more"]


async def test_bad_requests(
    api: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    chat_id = await new_chat(api, alice)
    send = f"/api/v1/chat/{chat_id}/messages"
    for message in ("", "   ", "가" * 10_000):
        r = await api.post(send, json={"message": message}, headers=alice)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    assert (await api.post(send, json={"message": "hi", "model": "llama"},
                           headers=alice)).status_code == 422
    assert (await api.post(send, json={"message": "hi", "user_location": {"latitude": 100,
            "longitude": 0}}, headers=alice)).status_code == 422
    unknown = "/api/v1/chat/00000000-0000-0000-0000-000000000000"
    assert (await api.get(unknown, headers=alice)).status_code == 404
    assert (await api.post(unknown + "/messages", json={"message": "hi"},
                           headers=alice)).status_code == 404
    for call in (api.get(f"/api/v1/chat/{chat_id}", headers=bob),
                 api.patch(f"/api/v1/chat/{chat_id}", json={"title": "x"}, headers=bob),
                 api.delete(f"/api/v1/chat/{chat_id}", headers=bob),
                 api.post(send, json={"message": "hi"}, headers=bob)):
        r = await call
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert (await api.patch(f"/api/v1/chat/{chat_id}", json={"title": ""},
                            headers=alice)).status_code == 422
    assert (await api.get("/api/v1/chat?limit=0", headers=alice)).status_code == 422
    assert (await api.get("/api/v1/chat?cursor=nonsense!", headers=alice)).status_code == 422
    assert (await api.get("/api/v1/chat")).status_code == 401
    # Input for a turn that asked nothing (queued, never run here): 409; unknown job: 404.
    job = (await api.post(send, json={"message": "hi"}, headers=alice)).json()["job_id"]
    r = await api.post(f"/api/v1/chat/{job}/input", json={"type": "cancel"}, headers=alice)
    assert r.status_code == 409
    assert r.json() == {"detail": "this chat turn is not waiting for input", "code": "conflict"}
    r = await api.post("/api/v1/chat/nope/input", json={"type": "cancel"}, headers=alice)
    assert r.status_code == 404
