"""The PWA sends its model picker's choice on every chat turn (``"gpt-5.2"`` or
``"gemini-3-flash-preview"``). With no provider keys (the default), the turn is answered by the
configured default model — completed, never failed — and the assistant message's metadata and a
log line say which model answered and why. Real HTTP, the real chat graph, default settings."""

# ruff: noqa: F811  (fixtures imported from test_chat_support are used as parameters)
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from agents.chat.deps import offline_chat_deps
from agents.chat.graph import ChatGraph, build_chat_graph
from agents.knowledge import KnowledgeBase
from agents.llm.local import LocalLLM, LocalVision
from agents.llm.providers import ModelRouter
from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import ServerThread
from tests.gateway.test_chat_support import (  # noqa: F401  (fixtures)
    chat_projector,
    chat_settings,
    chat_worker,
    done_of,
    pg,
    read_sse,
    text_of,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

PWA_MODELS = ["gpt-5.2", "gemini-3-flash-preview"]


@pytest.fixture
def graph(settings: Settings) -> ChatGraph:
    """The chat worker's graph as ``eco2 up`` builds it without provider keys."""
    kb = KnowledgeBase.load()
    router = ModelRouter(default_model=settings.default_model, llms={"local": LocalLLM(kb)},
                         visions={"local": LocalVision(kb)})
    return build_chat_graph(offline_chat_deps(kb, llm=router, vision=router,
                                              default_model=settings.default_model))


@pytest.fixture
def server(chat_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_gateway(chat_settings, live=FAST)) as running:
        yield running


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def history_until_answered(
    http: httpx.AsyncClient, chat: str, who: dict[str, str]
) -> list[dict[str, object]]:
    async with asyncio.timeout(15):
        while True:
            body = (await http.get(f"/api/v1/chat/{chat}", headers=who)).json()
            messages: list[dict[str, object]] = body.get("messages", [])
            if any(m["role"] == "assistant" for m in messages):
                return messages
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("model", PWA_MODELS)
async def test_pwa_model_without_its_provider_answers_with_the_default(
    http: httpx.AsyncClient, alice: dict[str, str], chat_worker: object, chat_projector: None,
    model: str, caplog: pytest.LogCaptureFixture,
) -> None:
    chat = (await http.post("/api/v1/chat", json={}, headers=alice)).json()["id"]
    # the PWA's SendMessageRequest, verbatim
    r = await http.post(f"/api/v1/chat/{chat}/messages",
                        json={"message": "페트병은 어떻게 버려?", "model": model}, headers=alice)
    assert r.status_code == 202, r.text
    with caplog.at_level(logging.WARNING, logger="agents.chat.graph"):
        events = await read_sse(http, r.json()["stream_url"], alice)
    done = done_of(events)
    assert done["status"] == "completed", done
    answer = done["result"]["answer"]
    assert "페트" in answer and text_of(events) == answer
    assert "error" not in {e.event for e in events}
    assert any(model in rec.getMessage() and "local" in rec.getMessage()
               for rec in caplog.records), [rec.getMessage() for rec in caplog.records]

    messages = await history_until_answered(http, chat, alice)
    assistant = next(m for m in messages if m["role"] == "assistant")
    metadata = assistant["metadata"]
    assert isinstance(metadata, dict)
    provider = "openai" if model.startswith("gpt") else "gemini"
    assert metadata["model_fallback"] == {
        "requested": model, "used": "local",
        "reason": f"the {provider} provider is not configured",
    }


async def test_default_model_turn_says_nothing_about_a_fallback(
    http: httpx.AsyncClient, alice: dict[str, str], chat_worker: object, chat_projector: None,
) -> None:
    chat = (await http.post("/api/v1/chat", json={}, headers=alice)).json()["id"]
    r = await http.post(f"/api/v1/chat/{chat}/messages",
                        json={"message": "페트병은 어떻게 버려?", "model": "local"}, headers=alice)
    assert done_of(await read_sse(http, r.json()["stream_url"], alice))["status"] == "completed"
    assistant = next(m for m in await history_until_answered(http, chat, alice)
                     if m["role"] == "assistant")
    assert "model_fallback" not in assistant["metadata"]  # type: ignore[operator]
