"""One run of the chat graph turned into turn events: progress, coalesced text, the end.

``AnswerStream.consume`` runs the graph and reads what it puts (``paced``, so pending text goes out within
the coalescing interval even while the graph is quiet), appends node progress and text deltas
through the ``TurnWriter`` and returns the run's terminal update. Errors of the graph come out
as the graph's ``TurnAborted`` or as ``GraphCrashed``; errors of the store propagate unchanged
(the runner retries those).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from agents.chat.turn import NeedsInput, NodeUpdate, Token, TurnAborted, TurnResult
from commands.chat.pacing import Idle, Producer, Tick, paced
from commands.chat.text import AnswerText, Coalescing, StreamingTurns, TokenBuffer
from commands.chat.writer import TurnWriter
from schemas.chat import TurnFailed, TurnWaiting

ChatUpdate = NodeUpdate | Token | NeedsInput | TurnResult


class GraphCrashed(Exception):
    """The graph raised something other than its ``TurnAborted`` (a bug, an unguarded call)."""


class AnswerStream:
    """The text and progress of one run, appended as they come."""

    def __init__(
        self, writer: TurnWriter, coalescing: Coalescing, turns: StreamingTurns
    ) -> None:
        self.writer = writer
        self.text = AnswerText(writer.turn.text)
        self.coalescing = coalescing
        self.turns = turns
        self.buffer = TokenBuffer(coalescing.tokens(turns.count), coalescing.interval(turns.count))
        self._tokens_put = 0  # answer deltas the graph put so far …
        self._tokens_taken = 0  # … and those of them this stream has taken
        self._held_until: float | None = None  # staged progress goes out by then (monotonic)

    def stage_text(self) -> None:
        """Move the coalesced text into the next write."""
        pending, node = self.buffer.take()
        self.writer.tokens(pending, node)

    async def flush(self) -> None:
        """Write the text and everything staged before it."""
        self.stage_text()
        await self._write()

    async def _write(self) -> None:
        self._held_until = None
        await self.writer.write()

    def _due(self) -> float | None:
        """Seconds until something pending must be written: the coalesced text, or progress
        held since it was staged (None: nothing pending)."""
        due = self.buffer.due_in()
        if self._held_until is None:
            return due
        held = max(0.0, self._held_until - time.monotonic())
        return held if due is None else min(due, held)

    async def consume(self, run: Producer[ChatUpdate]) -> TurnResult | NeedsInput | None:
        """Run the graph (``run(put)``), appending its progress and text; its ``TurnResult``
        or ``NeedsInput`` (with ``TurnWaiting`` appended), or None when it ended without
        either."""
        paced_updates = paced(run, self._due, self._quiet)
        with self.turns.streaming():
            async with contextlib.aclosing(paced_updates) as items:
                return await self._consume(items)

    async def _consume(
        self, items: AsyncIterator[ChatUpdate | Tick | Idle]
    ) -> TurnResult | NeedsInput | None:
        while True:
            try:
                item = await anext(items)
            except StopAsyncIteration:
                await self.flush()
                return None
            except TurnAborted:
                raise
            except Exception as exc:
                raise GraphCrashed(f"{type(exc).__name__}: {exc}") from exc
            if isinstance(item, Idle):
                # A burst is over: one append for all of it when it holds text. Progress alone
                # waits (up to the coalescing interval) for what follows: the stages before
                # the answer mostly take a fraction of that, so a turn's progress, its first
                # delta included, is one append, one projector run and one SSE write instead
                # of four or five (the first delta is never held: time to first token).
                if self.writer.text_staged:
                    await self._write()
                elif self.writer.staged and self._held_until is None:
                    interval = self.coalescing.interval(self.turns.count)
                    self._held_until = time.monotonic() + interval
            elif isinstance(item, Tick):
                await self.flush()
            elif isinstance(item, Token):
                self._token(item)
            elif isinstance(item, NodeUpdate):
                self.stage_text()
                self.writer.progress(item.node, item.status, item.message, item.detail)
            elif isinstance(item, NeedsInput):
                self.stage_text()
                waiting = TurnWaiting(input_type=item.input_type, message=item.message)
                self._held_until = None
                await self.writer.append(waiting, "waiting", str(self.writer.turn.input_version))
                return item
            elif isinstance(item, TurnResult):
                return item

    def _quiet(self, update: ChatUpdate) -> bool:
        """True for a delta that will only add to the pending text, below ``max_tokens``
        counting the deltas already put before it: waking the handler for it (each delta
        woke it) would change nothing before the text's deadline. Asked as the graph puts it;
        the buffer's state is the handler's, as of the last item it took."""
        if not isinstance(update, Token):
            return False
        self._tokens_put += 1
        waiting = self._tokens_put - self._tokens_taken  # put, not yet taken (this one too)
        return (
            bool(self.buffer.text)
            and update.node == self.buffer.node
            and self.buffer.tokens + waiting < self.buffer.max_tokens
        )

    def _token(self, token: Token) -> None:
        self._tokens_taken += 1
        if self.buffer.text and token.node != self.buffer.node:
            self.stage_text()
        if not self.buffer.text:  # a new delta starts: how much it may gather, given the load
            self.buffer.interval_s = self.coalescing.interval(self.turns.count)
            self.buffer.max_tokens = self.coalescing.tokens(self.turns.count)
        self.buffer.add(self.text.feed(token.content), token.node)
        # The turn's first text goes out at once (time to first token); later text coalesces.
        if self.buffer.full or (self.buffer.text and not self.writer.has_text):
            self.stage_text()

    async def finish(self, answer: str) -> str:
        """Emit whatever of ``answer`` is still missing; the turn's answer (= all deltas)."""
        self.buffer.add(self.text.finish(answer), "answer")
        await self.flush()
        return self.text.emitted

    async def fail(self, message: str, code: str) -> None:
        """End the turn with a failed ``done`` after the text generated so far."""
        self.stage_text()
        queued = self.writer.turn.queued
        assert queued is not None
        failed = TurnFailed(user_id=queued.user_id, chat_id=queued.chat_id, message=message,
                            code=code)
        self._held_until = None
        await self.writer.append(failed, "failed")
