"""Simulated model latency, so offline load tests wait like production does.

Profiles (seconds per stage): ``none`` 0/0, ``production`` vision 5.2 / answer 3.7 (the original
system's measured LLM time, DOMAIN.md), ``fast`` 0.05/0.05, ``short`` production / 4 (chaos runs). Adapters call ``vision()`` or
``answer()`` once per model call; the local adapters use it, the OpenAI/Gemini wrappers may too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyProfile:
    name: str
    vision_s: float = 0.0
    answer_s: float = 0.0

    def __post_init__(self) -> None:
        if self.vision_s < 0 or self.answer_s < 0:
            raise ValueError(f"latency profile {self.name!r}: seconds must be >= 0")

    @classmethod
    def named(cls, name: str) -> LatencyProfile:
        """The profile called ``name`` (``none`` | ``production`` | ``fast``), as in settings."""
        try:
            return _PROFILES[name]
        except KeyError:
            raise ValueError(
                f"unknown latency profile {name!r}; known: {sorted(_PROFILES)}"
            ) from None

    @property
    def total_s(self) -> float:
        """Simulated model time of one scan (vision + answer): the ideal end-to-end latency."""
        return self.vision_s + self.answer_s

    async def vision(self) -> None:
        """Wait as long as one vision call."""
        if self.vision_s > 0:
            await asyncio.sleep(self.vision_s)

    async def answer(self, fraction: float = 1.0) -> None:
        """Wait as long as one answer call (or ``fraction`` of it, for streamed chunks)."""
        if self.answer_s > 0 and fraction > 0:
            await asyncio.sleep(self.answer_s * fraction)


NO_LATENCY = LatencyProfile("none")
_PROFILES = {
    "none": NO_LATENCY,
    "production": LatencyProfile("production", vision_s=5.2, answer_s=3.7),
    "fast": LatencyProfile("fast", vision_s=0.05, answer_s=0.05),
    # Production's shape at a quarter of its length: chaos runs keep jobs in flight while
    # faults hit, without taking production's minutes.
    "short": LatencyProfile("short", vision_s=1.3, answer_s=0.925),
}
