"""The answer stage: streams the LLM's reply as ``Token``s under the ``answer`` policy.

Deltas are emitted as they arrive; the concatenation of the emitted deltas *is* the answer.
A failure before the first delta is retried (per the policy); after it, a retry would repeat
text, so the turn fails (CLOSE). Each wait for the next delta is bounded by the policy's
timeout. A model that streams nothing gets the composed context as its answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType

from agents.chat.errors import CircuitOpen, TurnAborted
from agents.chat.policies import RETRY_ON, NodeGuard
from agents.chat.stages import Emit
from agents.chat.turn import NodeUpdate, Token
from agents.llm.ports import LLM, ChatMessage

STAGE = "answer"
FAILED = "답변을 쓰는 중 문제가 생겼어요. 잠시 후 다시 시도해 주세요."


class _Stall:
    """Every wait for the next delta bounded by ``timeout_s``, with one timer per timeout
    period rather than one per delta (a timeout context per delta schedules and cancels a timer
    for every token; tokens come many times a second, the timeout is seconds): the timer looks
    at when the last delta came and either expires the wait or sets itself for later."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._scope: asyncio.Timeout | None = None
        self._timer: asyncio.TimerHandle | None = None

    def progressed(self) -> None:
        """A delta came: the next wait starts now."""
        self._last = self._loop.time()

    def _check(self) -> None:
        late_at = self._last + self.timeout_s
        if self._loop.time() >= late_at:
            assert self._scope is not None
            self._scope.reschedule(self._loop.time())  # expire: the wait raises TimeoutError
        else:
            self._timer = self._loop.call_at(late_at, self._check)

    async def __aenter__(self) -> _Stall:
        self._scope = asyncio.timeout(None)
        await self._scope.__aenter__()
        self._timer = self._loop.call_at(self._last + self.timeout_s, self._check)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        assert self._scope is not None
        await self._scope.__aexit__(exc_type, exc, tb)


async def stream_answer(
    llm: LLM,
    messages: Sequence[ChatMessage],
    *,
    model: str | None,
    fallback_text: str,
    guard: NodeGuard,
    emit: Emit,
) -> str:
    """Stream the answer, emitting ``Token``s; returns the full text. Raises ``TurnAborted``."""
    policy = guard.policy(STAGE)
    breaker = guard.breaker(STAGE)
    try:
        breaker.check()
    except CircuitOpen as exc:
        emit(
            NodeUpdate(
                node=STAGE, status="failed", message=FAILED, detail={"reason": "circuit_open"}
            )
        )
        raise TurnAborted(FAILED, node=STAGE) from exc
    emit(NodeUpdate(node=STAGE, status="started"))
    parts: list[str] = []
    attempts = 0
    while True:
        attempts += 1
        try:
            deltas = llm.stream(messages, model=model)
            try:
                async with _Stall(policy.timeout_ms / 1000) as stall:
                    async for delta in deltas:
                        stall.progressed()
                        if delta:
                            parts.append(delta)
                            emit(Token(content=delta, node=STAGE))
            finally:
                close = getattr(deltas, "aclose", None)
                if close is not None:  # release the provider's HTTP stream on any exit
                    await close()
            break
        except Exception as exc:
            if not parts and isinstance(exc, RETRY_ON) and attempts <= policy.retries:
                continue
            breaker.record_failure()
            reason = "timeout" if isinstance(exc, TimeoutError) else "error"
            emit(
                NodeUpdate(
                    node=STAGE,
                    status="failed",
                    message=FAILED,
                    detail={
                        "reason": reason,
                        "attempts": attempts,
                        "error": f"{type(exc).__name__}: {exc}"[:200],
                    },
                )
            )
            raise TurnAborted(FAILED, node=STAGE) from exc
    breaker.record_success()
    if not "".join(parts).strip():
        # the model said nothing: the composed context is a complete answer on its own
        parts.append(fallback_text)
        emit(Token(content=fallback_text, node=STAGE))
    text = "".join(parts)
    emit(
        NodeUpdate(
            node=STAGE, status="completed", detail={"chars": len(text), "attempts": attempts}
        )
    )
    return text
