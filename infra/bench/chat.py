"""``eco2 bench chat``: N users chatting through the HTTP API and the SSE stream, like the PWA.

Each simulated user opens a chat, then until the time is up: ``POST /chat/{id}/messages`` →
read the turn's stream (reconnecting with ``Last-Event-ID`` if it drops) → time to first token
(first ``token``/``token_recovery``) and end to end (``done``) → think → again. The stack
(gateway, character service, chat worker(s), snapshot projector) runs as child processes on a
fresh namespace with the chosen latency profile.

The ideal of each question is its *simulated* time before the first answer delta (the model
calls of the stages before the answer, plus the first delta's share of the answer's time),
measured on an idle in-process graph; the target is 100 % completion and TTFT p95 ≤ 1.25 × the
ideal p95 of the same turns.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer

from infra.bench.http import http_clients, sse_events
from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    WriteOption,
    check_repeat,
    print_summary,
    record,
    summarize,
)
from infra.settings import Settings
from infra.stacks import ChatStack

bench_app = typer.Typer(help="Chat load benchmark.")

SEOUL_CITY_HALL = {"latitude": 37.5665, "longitude": 126.9780}
# What users ask (with the location the app sends when it has one).
QUESTIONS: tuple[tuple[str, dict[str, float] | None], ...] = (
    ("페트병 어떻게 버려?", None),
    ("페트병 어떻게 버려? 근처 수거함도 알려줘", SEOUL_CITY_HALL),
    ("우유팩은 종이류로 버리면 돼?", None),
    ("깨진 유리는 어떻게 버려야 해?", None),
    ("스티로폼 상자 분리배출 방법 알려줘", None),
    ("근처 폐건전지 수거함 어디 있어?", SEOUL_CITY_HALL),
    ("소파 버리려면 수수료 얼마야?", None),
    ("요즘 고철 시세 얼마야?", None),
    ("캐릭터는 어떻게 모아?", None),
    ("헌 옷은 어디에 버려?", SEOUL_CITY_HALL),
    ("분리수거 왜 해야 돼?", None),
)


@dataclass
class Turn:
    ttft: float | None = None
    status: str | None = None
    answer_ok: bool = False  # the streamed text equals done.result.answer
    # Where the time to first token went (wall clock; the events carry their own `ts`):
    queued_at: float | None = None  # the worker recorded TurnQueued
    first_delta_at: float | None = None  # the worker recorded the first delta
    seen_at: float | None = None  # this client received it


@dataclass
class ChatResult:
    users: int
    latency: str
    think_s: float
    duration_s: float
    ttft: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    ideal: list[float] = field(default_factory=list)  # the ideal TTFT of each completed turn
    pickup: list[float] = field(default_factory=list)  # submit → TurnQueued recorded
    graph: list[float] = field(default_factory=list)  # TurnQueued → first delta recorded
    delivery: list[float] = field(default_factory=list)  # first delta recorded → client
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    errors: int = 0
    text_mismatches: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-min load average at start and end

    @property
    def completion(self) -> float:
        return 100.0 * self.completed / self.submitted if self.submitted else 0.0

    @property
    def turns_per_min(self) -> float:
        return self.completed * 60.0 / self.duration_s

    @staticmethod
    def pct(values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def read_turn(base_url: str, url: str, headers: dict[str, str], started: float) -> Turn:
    """Follow one turn's stream like the PWA: text replaced by ``token_recovery``, appended by
    ``token``; reconnect with ``Last-Event-ID`` when the stream drops before ``done``."""
    turn, text, last_id = Turn(), "", ""
    for _ in range(10):
        extra = {"Last-Event-ID": last_id} if last_id else {}
        async for event, event_id, data in sse_events(base_url, url, {**headers, **extra}):
            last_id = event_id or last_id
            if event == "queued":
                turn.queued_at = json.loads(data).get("ts")
            if event in ("token", "token_recovery") and turn.ttft is None:
                turn.ttft = time.monotonic() - started
                turn.seen_at = time.time()
                turn.first_delta_at = json.loads(data).get("ts") if event == "token" else None
            if event == "token":
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
    client: httpx.AsyncClient, headers: dict[str, str], chat_id: str, result: ChatResult,
    ideal: dict[str, float], *, deadline: float, start_delay: float, rng: random.Random,
    timeout_s: float,
) -> None:
    await asyncio.sleep(start_delay)
    while time.monotonic() < deadline:
        question, location = rng.choice(QUESTIONS)
        body: dict[str, Any] = {"message": question}
        if location:
            body["user_location"] = location
        started, submitted_at = time.monotonic(), time.time()
        result.submitted += 1
        reply = await client.post(f"/api/v1/chat/{chat_id}/messages", json=body, headers=headers)
        if reply.status_code != 202:
            result.errors += 1
            await asyncio.sleep(1)
            continue
        try:
            async with asyncio.timeout(timeout_s):
                turn = await read_turn(str(client.base_url), reply.json()["stream_url"],
                                       headers, started)
        except (TimeoutError, OSError, ValueError, httpx.HTTPError):
            result.errors += 1
            continue
        if turn.status != "completed" or turn.ttft is None:
            result.failed += 1
            continue
        result.completed += 1
        result.ttft.append(turn.ttft)
        result.e2e.append(time.monotonic() - started)
        result.ideal.append(ideal[question])
        if turn.queued_at and turn.first_delta_at and turn.seen_at:
            result.pickup.append(turn.queued_at - submitted_at)
            result.graph.append(turn.first_delta_at - turn.queued_at)
            result.delivery.append(turn.seen_at - turn.first_delta_at)
        result.text_mismatches += not turn.answer_ok
        if result.think_s > 0:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * result.think_s)


async def ideal_ttft(latency: str) -> dict[str, float]:
    """Each question's simulated time to its first answer delta, on an idle in-process graph."""
    from agents.chat.deps import offline_chat_deps
    from agents.chat.graph import build_chat_graph
    from agents.chat.turn import GeoPoint, Token, TurnInput
    from agents.knowledge import KnowledgeBase
    from agents.llm.latency import LatencyProfile
    from agents.llm.local import LocalLLM

    kb = KnowledgeBase.load()
    graph = build_chat_graph(offline_chat_deps(kb, llm=LocalLLM(kb,
                             latency=LatencyProfile.named(latency))))

    async def first_token(question: str, location: dict[str, float] | None) -> float:
        turn = TurnInput(chat_id="ideal", user_id="ideal", message=question,
                         location=GeoPoint(**location) if location else None)
        began = time.monotonic()
        async for update in graph.run(turn):
            if isinstance(update, Token):
                return time.monotonic() - began
        return time.monotonic() - began

    values = await asyncio.gather(*(first_token(q, loc) for q, loc in QUESTIONS))
    return {q: v for (q, _), v in zip(QUESTIONS, values, strict=True)}


async def run_bench(*, settings: Settings, users: int, latency: str, duration_s: float,
                    ramp_s: float, think_s: float, chat_workers: int) -> ChatResult:
    ideal = await ideal_ttft(latency)
    result = ChatResult(users, latency, think_s, duration_s)
    stack = ChatStack(settings, namespace=f"bench{uuid.uuid4().hex[:8]}", latency=latency,
                      chat_workers=chat_workers, handler_workers=max(64, users))
    async with stack:
        await stack.wait_for_workers()
        # Enough small pools for one streaming connection per user.
        async with http_clients(stack.base_url, max(1, math.ceil(users / 24)),
                                connections=32) as pool:
            headers = [stack.auth(f"chat-bench-{i}") for i in range(users)]
            gate = asyncio.Semaphore(32)

            async def open_chat(i: int) -> str:
                async with gate:
                    r = await pool[i % len(pool)].post("/api/v1/chat", json={}, headers=headers[i])
                    return str(r.raise_for_status().json()["id"])

            chats = await asyncio.gather(*(open_chat(i) for i in range(users)))
            rng = random.Random(11)
            load_before = os.getloadavg()[0]
            began = time.monotonic()
            await asyncio.gather(*(
                user_loop(pool[i % len(pool)], headers[i], chats[i], result, ideal,
                          deadline=began + duration_s, start_delay=ramp_s * i / users,
                          rng=random.Random(rng.random()), timeout_s=120)
                for i in range(users)
            ))
            result.duration_s = time.monotonic() - began
            result.load = (load_before, os.getloadavg()[0])
        await stack.forget()
    return result


IDEAL_P50, IDEAL_P95 = "ideal TTFT p50 s", "ideal TTFT p95 s"


def figures(r: ChatResult) -> dict[str, float]:
    """One repetition's figures; the baseline is the ideal TTFT of the same turns, measured in
    the same repetition on an idle in-process graph."""
    p = ChatResult.pct
    return {
        "completion %": r.completion,
        "turns/min": r.turns_per_min,
        "TTFT p50 s": p(r.ttft, 50),
        "TTFT p95 s": p(r.ttft, 95),
        "end to end p50 s": p(r.e2e, 50),
        "end to end p95 s": p(r.e2e, 95),
        IDEAL_P50: p(r.ideal, 50),
        IDEAL_P95: p(r.ideal, 95),
        "text mismatches": float(r.text_mismatches),
        "load average at the end": r.load[1],
    }


RATIOS = [("TTFT p50 s", IDEAL_P50), ("TTFT p95 s", IDEAL_P95)]
NOTE = (
    "Users open a chat, then ask, read the turn's SSE stream to `done`, think, ask again. "
    "TTFT = submit → first `token`; ideal = the simulated time before the first answer delta, "
    f"per question on an idle graph. Target: 100 % and TTFT p95 ≤ 1.25 × ideal. {len(QUESTIONS)}"
    " mixed questions; think time uniform 0.5–1.5 × the mean."
)


def report(r: ChatResult) -> str:
    p = ChatResult.pct
    target = 1.25 * p(r.ideal, 95)
    met = r.completion == 100 and p(r.ttft, 95) <= target
    return (
        f"users={r.users} latency={r.latency} think={r.think_s:g}s load={r.load[0]:.1f}→"
        f"{r.load[1]:.1f} submitted={r.submitted} "
        f"completed={r.completed} failed={r.failed} errors={r.errors} "
        f"text_mismatches={r.text_mismatches}\n"
        f"completion={r.completion:.2f}% turns/min={r.turns_per_min:.0f} "
        f"ttft p50={p(r.ttft, 50):.2f}s p95={p(r.ttft, 95):.2f}s "
        f"e2e p50={p(r.e2e, 50):.2f}s p95={p(r.e2e, 95):.2f}s "
        f"ideal ttft p50={p(r.ideal, 50):.2f}s p95={p(r.ideal, 95):.2f}s "
        f"→ target {'met' if met else 'missed'} (ttft p95 ≤ {target:.2f}s)\n"
        f"ttft breakdown p50/p95: pickup {p(r.pickup, 50):.2f}/{p(r.pickup, 95):.2f}s, "
        f"graph to first delta {p(r.graph, 50):.2f}/{p(r.graph, 95):.2f}s, "
        f"delivery {p(r.delivery, 50):.2f}/{p(r.delivery, 95):.2f}s"
    )


@bench_app.command("chat")
def chat(
    users: Annotated[int, typer.Option(min=1, help="Concurrent users.")] = 100,
    latency: Annotated[str, typer.Option(help="none | fast | production")] = "production",
    duration: Annotated[float, typer.Option(help="Seconds of asking.")] = 90.0,
    ramp: Annotated[float, typer.Option(help="Seconds over which users start.")] = 30.0,
    think: Annotated[float, typer.Option(help="Mean seconds a user reads before asking "
                                              "again (0.5–1.5 × this).")] = 20.0,
    chat_workers: Annotated[int, typer.Option(help="Chat worker processes.")] = 2,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
) -> None:
    """Drive N chatting users against a fresh stack; uses REDIS_URL or an embedded Redis."""
    from infra.embedded import resolve_services

    check_repeat(repeat, write)
    settings = Settings.from_env()
    services = None
    if settings.redis_url is None:
        settings, services = resolve_services(settings.with_(database_url="unused"))
    runs: list[dict[str, float]] = []
    try:
        for n in range(1, repeat + 1):
            result = asyncio.run(run_bench(
                settings=settings, users=users, latency=latency, duration_s=duration,
                ramp_s=ramp, think_s=think, chat_workers=chat_workers,
            ))
            typer.echo(f"repetition {n}/{repeat}:\n" + report(result))
            runs.append(figures(result))
    finally:
        if services is not None:
            services.close()
    spreads = summarize(runs, RATIOS)
    print_summary("Chat: eco2 bench chat", spreads, repeat)
    if write:
        command = (f"eco2 bench chat --users {users} --latency {latency} --duration "
                   f"{duration:g} --ramp {ramp:g} --think {think:g} --chat-workers "
                   f"{chat_workers} --repeat {repeat}")
        record(output, "Chat: `eco2 bench chat`", command, spreads, repeat, [NOTE])
