"""The chat stream over real HTTP (uvicorn in a thread): the client's text — ``token_recovery``
replaces it, ``token`` appends to it — equals ``done.result.answer`` on a straight read, across
a reconnect with ``Last-Event-ID``, and from a fresh connection in the middle of the answer or
after it; ``needs_input`` is answered by ``POST /input`` and the turn resumes."""

# ruff: noqa: F811  (fixtures imported from test_chat_support are used as parameters)
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from commands.chat.scripted import ScriptedChatGraph
from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import ServerThread
from tests.gateway.test_chat_support import (  # noqa: F401  (fixtures)
    Sse,
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
def graph() -> ScriptedChatGraph:  # slower tokens: room to cut the stream
    return ScriptedChatGraph(token_delay_s=0.03)


@pytest.fixture
def server(chat_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_gateway(chat_settings, live=FAST)) as running:
        yield running


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def ask(http: httpx.AsyncClient, who: dict[str, str], message: str) -> str:
    chat = (await http.post("/api/v1/chat", json={}, headers=who)).json()["id"]
    r = await http.post(f"/api/v1/chat/{chat}/messages", json={"message": message}, headers=who)
    assert r.status_code == 202, r.text
    return str(r.json()["stream_url"])


def tokens(events: list[Sse]) -> int:
    return sum(e.event == "token" for e in events)


async def test_straight_read_and_reconnect_with_last_event_id(
    http: httpx.AsyncClient, alice: dict[str, str], chat_worker: object, projector: None
) -> None:
    url = await ask(http, alice, "페트병 어떻게 버려?")
    first = await read_sse(http, url, alice, stop=lambda es: tokens(es) >= 2)
    assert first[-1].event == "token" and first[-1].id is not None
    rest = await read_sse(http, url, {**alice, "Last-Event-ID": first[-1].id})
    ids = [int(e.id) for e in first + rest if e.id]
    assert ids == sorted(set(ids))  # nothing twice, in order
    assert "token_recovery" not in {e.event for e in rest}  # exact replay, deltas one by one
    assert text_of(first + rest) == done_of(rest)["result"]["answer"]
    token = next(e for e in first if e.event == "token")
    assert set(token.data) >= {"content", "seq", "node"} and token.data["seq"] == int(token.id)

    whole = await read_sse(http, url, alice)  # fresh, after done: the text at once, then done
    assert [e.event for e in whole].count("token_recovery") == 1 and tokens(whole) == 0
    recovery = next(e for e in whole if e.event == "token_recovery")
    assert recovery.data["completed"] is True
    assert recovery.data["accumulated"] == done_of(whole)["result"]["answer"]
    gone = await http.get(url, headers={**alice, "Last-Event-ID": whole[-1].id or ""})
    assert gone.status_code == 204  # it had done: EventSource stops


# Tokens 100 ms apart: the fresh connection must come while the answer is still streaming,
# and a loaded machine can take half a second between closing one stream and opening the next
# (at 30 ms the whole answer took 0.6 s).
@pytest.mark.parametrize("graph", [ScriptedChatGraph(token_delay_s=0.1)], ids=["slow"])
async def test_fresh_connection_mid_answer_gets_token_recovery_then_deltas(
    http: httpx.AsyncClient, alice: dict[str, str], chat_worker: object, projector: None
) -> None:
    url = await ask(http, alice, "페트병 어떻게 버려?")
    await read_sse(http, url, alice, stop=lambda es: tokens(es) >= 3)
    late = await read_sse(http, url, alice)
    names = [e.event for e in late]
    assert names.count("token_recovery") == 1 and "token" in names
    assert names.index("token_recovery") < names.index("token")
    recovery = late[names.index("token_recovery")]
    assert recovery.data["accumulated"] and recovery.data["completed"] is False
    assert recovery.data["last_seq"] == int(recovery.id or 0)
    assert text_of(late) == done_of(late)["result"]["answer"]


async def test_needs_input_is_answered_and_the_turn_resumes(
    http: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str], chat_worker: object,
    projector: None,
) -> None:
    url = await ask(http, alice, "근처 수거함 알려줘")
    job = url.split("/")[-2]
    first = await read_sse(http, url, alice, stop=lambda es: es[-1].event == "needs_input")
    waiting = first[-1]
    assert waiting.data["status"] == "waiting" and waiting.data["input_type"] == "location"
    input_url = f"/api/v1/chat/{job}/input"
    location = {"latitude": 37.5, "longitude": 127.0}
    assert (await http.post(input_url, json={"type": "location", "data": {}},
                            headers=alice)).status_code == 422
    assert (await http.post(input_url, json={"type": "location", "data": location},
                            headers=bob)).status_code == 404
    r = await http.post(input_url, json={"type": "location", "data": location}, headers=alice)
    assert r.status_code == 200 and r.json() == {"status": "received", "job_id": job}
    rest = await read_sse(http, url, {**alice, "Last-Event-ID": waiting.id or ""})
    answer = done_of(rest)["result"]["answer"]
    assert "37.5000" in answer and text_of(rest) == answer
    r = await http.post(input_url, json={"type": "cancel"}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "conflict"
