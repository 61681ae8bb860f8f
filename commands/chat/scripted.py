"""An in-memory twin of the chat graph: deterministic updates at a chosen pace.

It speaks the contract of ``agents.chat.turn`` (progress, answer deltas, ``NeedsInput``,
``TurnResult``, ``TurnAborted``) without models or data sources, so the handler, the worker, the
stream and the benchmark harness can be exercised on their own: the answer is a function of the
turn's input, tokens can be slowed down (to kill a worker mid-answer), and a run can be made to
fail, crash, or ask for the user's location.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from agents.chat.turn import (
    NeedsInput,
    NodeUpdate,
    Token,
    TurnAborted,
    TurnInput,
    TurnResult,
)
from commands.chat.pacing import pushed

ChatUpdate = NodeUpdate | Token | NeedsInput | TurnResult
ASK_LOCATION = "근처 수거함을 찾으려면 현재 위치가 필요해요. 위치를 알려 주세요."
_PIECE = re.compile(r"\S+\s*|\s+")


def default_answer(turn: TurnInput) -> str:
    """A deterministic answer that shows what the run was given."""
    parts = [
        "페트병은 내용물을 비우고 헹군 뒤 라벨을 떼어 투명 페트병 전용 수거함에 버려 주세요.",
        f"(이전 대화 {len(turn.history)}개, 이전 의도 {turn.previous_intent or '없음'})",
    ]
    if turn.location is not None:
        parts.append(
            f"가장 가까운 수거함은 위치 {turn.location.latitude:.4f}, "
            f"{turn.location.longitude:.4f} 근처에 있어요."
        )
    return " ".join(parts)


def wants_location(turn: TurnInput) -> bool:
    return "근처" in turn.message


def pieces(text: str) -> list[str]:
    """``text`` as token-like pieces (a word and its trailing space) that concatenate back."""
    return _PIECE.findall(text)


@dataclass
class ScriptedChatGraph:
    """``ChatGraph`` twin. ``runs`` counts calls; ``inputs`` keeps what each run was given."""

    answer_for: Callable[[TurnInput], str] = default_answer
    needs_location: Callable[[TurnInput], bool] = wants_location
    token_delay_s: float = 0.0
    node_delay_s: float = 0.0
    fail_with: str | None = None  # raise TurnAborted(message) after the intent stage
    crash: bool = False  # raise a RuntimeError after the intent stage
    stall_after: int | None = None  # hang after this many tokens (a worker that dies mid-answer)
    runs: int = 0
    inputs: list[TurnInput] = field(default_factory=list)

    async def run_into(self, turn: TurnInput, put: Callable[[ChatUpdate], None]) -> None:
        await pushed(self.run(turn))(put)

    async def run(self, turn: TurnInput) -> AsyncIterator[ChatUpdate]:
        self.runs += 1
        self.inputs.append(turn)
        intents = ["waste", "collection_point"] if self.needs_location(turn) else ["waste"]
        yield NodeUpdate(node="intent", status="started")
        await self._pause(self.node_delay_s)
        yield NodeUpdate(node="intent", status="completed", detail={"intents": intents})
        if self.fail_with is not None:
            raise TurnAborted(self.fail_with, node="general")
        if self.crash:
            raise RuntimeError("scripted crash")
        if "collection_point" in intents and turn.location is None:
            yield NodeUpdate(node="collection_point", status="started")
            yield NeedsInput(message=ASK_LOCATION)
            return
        subagents = ["waste_rag", *(["collection_point"] if "collection_point" in intents else [])]
        for node in subagents:
            yield NodeUpdate(node=node, status="started")
        await self._pause(self.node_delay_s)
        for node in subagents:
            yield NodeUpdate(node=node, status="completed")
        yield NodeUpdate(node="weather", status="skipped", message="날씨 정보를 쓸 수 없어요",
                         detail={"reason": "not_configured"})
        yield NodeUpdate(node="answer", status="started")
        answer = self.answer_for(turn)
        for i, piece in enumerate(pieces(answer)):
            if i == self.stall_after:
                await asyncio.Event().wait()  # until cancelled
            yield Token(content=piece)
            await self._pause(self.token_delay_s)
        yield NodeUpdate(node="answer", status="completed")
        yield TurnResult(
            intent=intents[0], intents=intents, answer=answer, subagents=subagents,
            skipped=[{"node": "weather", "reason": "not_configured"}],
            sources=[{"type": "knowledge", "id": "pet"}],
        )

    @staticmethod
    async def _pause(seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(0)  # let the handler's pacing run, like a real graph would
