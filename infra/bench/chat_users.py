"""The simulated users of ``eco2 bench chat``: ask, follow the turn's SSE stream to ``done``,
think, ask again. ``chat_client`` runs one slice of them in a client process of its own (see
``infra.bench.processes``): thousands of SSE streams parsed in one loop made the generator the
busiest process of the run.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from infra.bench.clients import ClientLoad, Tally, run_users, submit
from infra.bench.http import StreamRefused, UserConnection, sse_events
from infra.bench.processes import Started

QuestionList = tuple[tuple[str, dict[str, float] | None], ...]


@dataclass
class ChatTally(Tally):
    """What chatting users saw: the counts of every bench, and each completed turn's times."""

    ttft: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    ideal: list[float] = field(default_factory=list)  # the ideal TTFT of each completed turn
    pickup: list[float] = field(default_factory=list)  # submit → TurnQueued recorded
    graph: list[float] = field(default_factory=list)  # TurnQueued → first delta recorded
    delivery: list[float] = field(default_factory=list)  # first delta recorded → client
    frames: list[int] = field(default_factory=list)  # SSE events each completed turn's client got
    tokens: list[int] = field(default_factory=list)  # of them, `token` events
    text_mismatches: int = 0


@dataclass
class Turn:
    ttft: float | None = None
    status: str | None = None
    answer_ok: bool = False  # the streamed text equals done.result.answer
    # Where the time to first token went (wall clock; the events carry their own `ts`):
    queued_at: float | None = None  # the worker recorded TurnQueued
    first_delta_at: float | None = None  # the worker recorded the first delta
    seen_at: float | None = None  # this client received it
    frames: int = 0  # SSE events received (every connection of the turn)
    tokens: int = 0  # of them, `token` events


async def read_turn(base_url: str, url: str, headers: dict[str, str], started: float) -> Turn:
    """Follow one turn's stream like the PWA: text replaced by ``token_recovery``, appended by
    ``token``; reconnect with ``Last-Event-ID`` when the stream drops before ``done``."""
    turn, text, last_id = Turn(), "", ""
    for _ in range(10):
        extra = {"Last-Event-ID": last_id} if last_id else {}
        async for event, event_id, data in sse_events(base_url, url, {**headers, **extra}):
            last_id = event_id or last_id
            turn.frames += 1
            if event == "queued":
                turn.queued_at = json.loads(data).get("ts")
            if event in ("token", "token_recovery") and turn.ttft is None:
                turn.ttft = time.monotonic() - started
                turn.seen_at = time.time()
                turn.first_delta_at = json.loads(data).get("ts") if event == "token" else None
            if event == "token":
                turn.tokens += 1
                text += json.loads(data)["content"]
            elif event == "token_recovery":
                text = json.loads(data)["accumulated"]
            elif event == "done":
                payload = json.loads(data)
                turn.status = payload.get("status")
                turn.answer_ok = (payload.get("result") or {}).get("answer") == text
                return turn
    return turn


async def user_loop(
    conn: UserConnection, headers: dict[str, str], chat_id: str, result: ChatTally,
    part: ChatPart, *, deadline: float, start_delay: float, rng: random.Random,
) -> None:
    await asyncio.sleep(start_delay)
    while time.monotonic() < deadline:
        question, location = rng.choice(part.questions)
        body: dict[str, Any] = {"message": question}
        if location:
            body["user_location"] = location
        started, submitted_at = time.monotonic(), time.time()
        reply = await submit(result, conn.post_once(f"/api/v1/chat/{chat_id}/messages", body))
        if reply is None:
            continue
        try:
            async with asyncio.timeout(part.timeout_s):
                turn = await read_turn(part.base_url, reply["stream_url"], headers, started)
        except TimeoutError:
            result.error(f"no done within {part.timeout_s:.0f} s")
            continue
        except (OSError, ValueError, StreamRefused) as exc:
            result.error(f"stream: {type(exc).__name__} {exc}"[:100])
            continue
        if turn.status != "completed" or turn.ttft is None:
            result.failed += 1
            continue
        result.completed += 1
        result.ttft.append(turn.ttft)
        result.e2e.append(time.monotonic() - started)
        result.ideal.append(part.ideal[question])
        if turn.queued_at and turn.first_delta_at and turn.seen_at:
            result.pickup.append(turn.queued_at - submitted_at)
            result.graph.append(turn.first_delta_at - turn.queued_at)
            result.delivery.append(turn.seen_at - turn.first_delta_at)
        result.text_mismatches += not turn.answer_ok
        result.frames.append(turn.frames)
        result.tokens.append(turn.tokens)
        if part.think_s > 0:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * part.think_s)


@dataclass(frozen=True)
class ChatPart:
    """One client process's users and where to find the stack."""

    base_url: str
    headers: list[dict[str, str]]
    start_delays: list[float]
    seeds: list[float]
    questions: QuestionList
    ideal: dict[str, float]
    duration_s: float
    think_s: float
    timeout_s: float


async def chat_client(part: ChatPart, started: Started) -> tuple[ChatTally, ClientLoad]:
    """Open one chat per user, then run them from the common start for ``duration_s``."""
    conns = [UserConnection(part.base_url, headers) for headers in part.headers]
    gate = asyncio.Semaphore(32)

    async def open_chat(conn: UserConnection) -> str:
        async with gate:
            status, body = await conn.post("/api/v1/chat", {})
            if status != 201 and status != 200:
                raise RuntimeError(f"opening a chat answered {status}: {body}")
            return str(body["id"])

    chats = await asyncio.gather(*(open_chat(conn) for conn in conns))
    tally = ChatTally()
    load = await run_users(started, lambda began: (
        user_loop(conn, headers, chat_id, tally, part, deadline=began + part.duration_s,
                  start_delay=delay, rng=random.Random(seed))
        for conn, headers, chat_id, delay, seed in zip(
            conns, part.headers, chats, part.start_delays, part.seeds, strict=True)
    ))
    for conn in conns:
        conn.close()
    return tally, load
