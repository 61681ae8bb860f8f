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
import math
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated

import typer

from infra.bench.chat_users import ChatPart, ChatTally, chat_client
from infra.bench.clients import run_measured, worst_lag
from infra.bench.cpu import CpuMeter
from infra.bench.processes import slices
from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    WriteOption,
    bench_services,
    check_repeat,
    percentile,
    print_summary,
    record,
    run_repetitions,
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
class ChatResult:
    users: int
    latency: str
    think_s: float
    duration_s: float
    seen: ChatTally = field(default_factory=ChatTally)  # every client process's users, merged
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-min load average at start and end
    cpu: CpuMeter | None = None  # CPU seconds per role over the asking period
    lags: list[list[float]] = field(default_factory=list)  # each process's event-loop lags

    def lag(self, p: float) -> float:
        """The worst client process's event-loop lag percentile ``p`` (seconds)."""
        return worst_lag(self.lags, p)

    @property
    def turns_per_min(self) -> float:
        return self.seen.completed * 60.0 / self.duration_s


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


DEPLOYED_CLAIM_INTERVAL_S = 1.0  # ECO2_CLAIM_INTERVAL_S in infra/deploy and the settings' default
USERS_PER_CLIENT = 700  # simulated users per load-generating process (see --clients)


async def run_bench(*, settings: Settings, users: int, latency: str, duration_s: float,
                    ramp_s: float, think_s: float, chat_workers: int,
                    clients: int = 0) -> ChatResult:
    ideal = await ideal_ttft(latency)
    result = ChatResult(users, latency, think_s, duration_s)
    stack = ChatStack(settings, namespace=f"bench{uuid.uuid4().hex[:8]}", latency=latency,
                      chat_workers=chat_workers, handler_workers=max(64, users))
    # Claim sweeps as deployed (infra/deploy: 1 s), not the stacks' 0.2 s (made for the e2e
    # tests that kill a worker and wait for its claim): every group's reaper polls each shard's
    # XAUTOCLAIM once per interval, ~220 a second over the stack at 0.2 s, ~10 per turn at 800
    # users, in every role's CPU per turn.
    stack.env["ECO2_CLAIM_INTERVAL_S"] = str(DEPLOYED_CLAIM_INTERVAL_S)
    processes = clients or math.ceil(users / USERS_PER_CLIENT)
    async with stack:
        await stack.wait_for_workers()
        headers = [stack.auth(f"chat-bench-{i}") for i in range(users)]
        rng = random.Random(11)
        seeds = [rng.random() for _ in range(users)]
        parts = [
            ChatPart(stack.base_url, [headers[i] for i in part],
                     [ramp_s * i / users for i in part], [seeds[i] for i in part], QUESTIONS,
                     ideal, duration_s, think_s, timeout_s=120)
            for part in slices(users, processes)
        ]
        run = await run_measured(
            chat_client, parts, redis=stack.redis, timeout_s=duration_s + 300,
            roles={name: p.pid for name, p in stack.processes.items()})
        result.seen, result.duration_s = run.tally, run.duration_s
        result.cpu, result.lags = run.cpu, run.lags
        result.load = (run.load_at_start, os.getloadavg()[0])
        await stack.forget()
    return result


IDEAL_P50, IDEAL_P95 = "ideal TTFT p50 s", "ideal TTFT p95 s"


def figures(r: ChatResult) -> dict[str, float]:
    """One repetition's figures; the baseline is the ideal TTFT of the same turns, measured in
    the same repetition on an idle in-process graph."""
    p, seen = percentile, r.seen
    return {
        "completion %": seen.completion,
        "turns/min": r.turns_per_min,
        "TTFT p50 s": p(seen.ttft, 50),
        "TTFT p95 s": p(seen.ttft, 95),
        "end to end p50 s": p(seen.e2e, 50),
        "end to end p95 s": p(seen.e2e, 95),
        IDEAL_P50: p(seen.ideal, 50),
        IDEAL_P95: p(seen.ideal, 95),
        "text mismatches": float(seen.text_mismatches),
        "SSE events per turn": _mean(seen.frames),
        "token events per turn": _mean(seen.tokens),
        "load average at the end": r.load[1],
        "client loop lag p95 ms": 1000 * r.lag(95),
        **(r.cpu.figures(seen.completed, "turn") if r.cpu else {}),
    }


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


RATIOS = [("TTFT p50 s", IDEAL_P50), ("TTFT p95 s", IDEAL_P95)]
NOTE = (
    "Users open a chat, then ask, read the turn's SSE stream to `done`, think, ask again. "
    "TTFT = submit → first `token`; ideal = the simulated time before the first answer delta, "
    f"per question on an idle graph. Target: 100 % and TTFT p95 ≤ 1.25 × ideal. {len(QUESTIONS)}"
    " mixed questions; think time uniform 0.5–1.5 × the mean."
)


def report(r: ChatResult) -> str:
    p, seen = percentile, r.seen
    target = 1.25 * p(seen.ideal, 95)
    met = seen.completion == 100 and p(seen.ttft, 95) <= target
    return (
        f"users={r.users} latency={r.latency} think={r.think_s:g}s load={r.load[0]:.1f}→"
        f"{r.load[1]:.1f} submitted={seen.submitted} "
        f"completed={seen.completed} failed={seen.failed} errors={seen.errors} "
        f"text_mismatches={seen.text_mismatches} sse events/turn={_mean(seen.frames):.1f} "
        f"(tokens {_mean(seen.tokens):.1f})\n"
        f"completion={seen.completion:.2f}% turns/min={r.turns_per_min:.0f} "
        f"ttft p50={p(seen.ttft, 50):.2f}s p95={p(seen.ttft, 95):.2f}s "
        f"e2e p50={p(seen.e2e, 50):.2f}s p95={p(seen.e2e, 95):.2f}s "
        f"ideal ttft p50={p(seen.ideal, 50):.2f}s p95={p(seen.ideal, 95):.2f}s "
        f"→ target {'met' if met else 'missed'} (ttft p95 ≤ {target:.2f}s)\n"
        f"ttft breakdown p50/p95: pickup {p(seen.pickup, 50):.2f}/{p(seen.pickup, 95):.2f}s, "
        f"graph to first delta {p(seen.graph, 50):.2f}/{p(seen.graph, 95):.2f}s, "
        f"delivery {p(seen.delivery, 50):.2f}/{p(seen.delivery, 95):.2f}s\n"
        + (f"errors: {seen.error_kinds}\n" if seen.error_kinds else "")
        + f"client loop lag p50/p95/max {1000 * r.lag(50):.0f}/{1000 * r.lag(95):.0f}/"
        f"{1000 * r.lag(100):.0f} ms over {len(r.lags)} process(es)"
        + (f"\n{r.cpu.report(seen.completed, 'turn')}" if r.cpu else "")
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
    clients: Annotated[int, typer.Option(
        help=f"Load-generating processes (0: one per {USERS_PER_CLIENT} users), so the "
        "generator's own CPU does not set the pace of what it measures."
    )] = 0,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
) -> None:
    """Drive N chatting users against a fresh stack; uses REDIS_URL or an embedded Redis."""
    check_repeat(repeat, write)
    with bench_services(Settings.from_env()) as settings:
        runs = run_repetitions(repeat, lambda: asyncio.run(run_bench(
            settings=settings, users=users, latency=latency, duration_s=duration,
            ramp_s=ramp, think_s=think, chat_workers=chat_workers, clients=clients,
        )), report, figures)
    spreads = summarize(runs, RATIOS)
    print_summary("Chat: eco2 bench chat", spreads, repeat)
    if write:
        command = (f"eco2 bench chat --users {users} --latency {latency} --duration "
                   f"{duration:g} --ramp {ramp:g} --think {think:g} --chat-workers "
                   f"{chat_workers} --clients {clients} --repeat {repeat}")
        record(output, "Chat: `eco2 bench chat`", command, spreads, repeat,
               [f"workers at nice +{Settings.from_env().worker_nice} (ECO2_WORKER_NICE)", NOTE])
