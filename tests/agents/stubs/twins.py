"""In-memory twins of the chat's ports that record when they ran, and ones that misbehave."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.chat.errors import SourceUnavailable
from agents.chat.subagents.places import InMemoryLocations, Place
from agents.chat.subagents.waste_rag import LocalKnowledge
from agents.chat.subagents.weather import WeatherReport
from agents.knowledge import RuleHit
from agents.llm.local import LocalLLM
from agents.llm.ports import ChatMessage, Completion, LLMUnavailable, ToolSpec


@dataclass
class Spans:
    """Start/end times (perf_counter) of calls, by name."""

    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, name: str, start: float, end: float) -> None:
        self.spans.setdefault(name, []).append((start, end))

    def overlap(self, a: str, b: str) -> bool:
        (a0, a1), (b0, b1) = self.spans[a][0], self.spans[b][0]
        return a0 < b1 and b0 < a1


class RecordingKnowledge(LocalKnowledge):
    """The knowledge base, slowed down and timed (a remote retriever would take this long)."""

    def __init__(self, kb: Any, spans: Spans, delay_s: float = 0.05) -> None:
        super().__init__(kb)
        self.spans_ = spans
        self.delay_s = delay_s

    async def search(self, query: str, k: int = 3) -> list[RuleHit]:
        start = time.perf_counter()
        await asyncio.sleep(self.delay_s)
        hits = await super().search(query, k)
        self.spans_.add("waste_rag", start, time.perf_counter())
        return hits


class RecordingLocations(InMemoryLocations):
    def __init__(self, places: Sequence[Place], spans: Spans, delay_s: float = 0.05) -> None:
        super().__init__(places)
        self.spans_ = spans
        self.delay_s = delay_s

    async def nearest(
        self, lat: float, lon: float, radius_m: int, category: str | None, limit: int
    ) -> list[Place]:
        start = time.perf_counter()
        await asyncio.sleep(self.delay_s)
        found = await super().nearest(lat, lon, radius_m, category, limit)
        self.spans_.add("locations", start, time.perf_counter())
        return found


class Misbehaving:
    """Wraps any port: every call to ``method`` raises ``error``, hangs, or works, and counts."""

    def __init__(
        self, inner: Any, method: str, *, error: Exception | None = None, hang: bool = False
    ) -> None:
        self._inner = inner
        self._method = method
        self.error = error
        self.hang = hang
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.hang:
                await asyncio.sleep(30)
            if self.error is not None:
                raise self.error
            return await attr(*args, **kwargs)

        return call


class FixedWeather:
    def __init__(self, report: WeatherReport) -> None:
        self.report = report
        self.calls = 0

    async def current(self, lat: float, lon: float) -> WeatherReport:
        self.calls += 1
        return self.report


class FlakyLLM:
    """The local LLM with failures: ``complete`` fails ``complete_failures`` times; ``stream``
    fails before its first delta ``stream_failures`` times, or after ``break_after`` deltas."""

    def __init__(
        self,
        inner: LocalLLM,
        *,
        complete_failures: int = 0,
        stream_failures: int = 0,
        break_after: int | None = None,
        stall_s: float = 0.0,
    ) -> None:
        self.inner = inner
        self.complete_failures = complete_failures
        self.stream_failures = stream_failures
        self.break_after = break_after
        self.stall_s = stall_s
        self.complete_calls = 0
        self.stream_calls = 0

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        self.complete_calls += 1
        if self.complete_calls <= self.complete_failures:
            raise LLMUnavailable("provider down (test)")
        return await self.inner.complete(messages, model=model, tools=tools)

    async def structured(
        self, messages: Sequence[ChatMessage], schema: Any, *, model: str | None = None
    ) -> Any:
        return await self.inner.structured(messages, schema, model=model)

    async def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        self.stream_calls += 1
        if self.stream_calls <= self.stream_failures:
            raise LLMUnavailable("provider down before the first token (test)")
        n = 0
        async for delta in self.inner.stream(messages, model=model):
            if self.break_after is not None and n >= self.break_after:
                raise SourceUnavailable("stream broke mid-answer (test)")
            if self.stall_s and n == 1:
                await asyncio.sleep(self.stall_s)
            n += 1
            yield delta
