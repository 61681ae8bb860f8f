"""The answer text of a turn that may be run more than once: only ever appended to.

A redelivered turn regenerates its answer, but part of it may already be *committed* (emitted
as ``TokensEmitted`` and possibly shown). ``AnswerText`` decides what to emit so that the
concatenated deltas always equal the final answer, with no text repeated:

- while the new text is a prefix of the committed text, nothing is emitted (already there);
- once it runs past the committed text and continues it, only the rest is emitted;
- if it *diverges* from the committed text (a non-deterministic model wrote something else),
  the committed part cannot be taken back: the new answer is emitted in full after a blank
  line, and the final answer is ``committed + "\\n\\n" + new``. The client shows exactly that,
  and the recorded message is exactly that.

``TokenBuffer`` coalesces deltas into events: every ``max_tokens`` tokens or ``interval_s``
seconds, whichever comes first (ARCHITECTURE §2: not one event per token). ``Coalescing``
stretches the interval as a process streams more turns at once: every delta event costs the
log, the snapshot projector and each SSE client alike, so under load fewer, larger deltas keep
time to first token and throughput up (the first delta of a turn always goes out at once).
Under load a client sees about one larger delta a second instead of twenty small ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

SEPARATOR = "\n\n"


class _Mode(Enum):
    REPLAY = "replay"  # the new text is still inside the committed text
    EXTEND = "extend"  # the new text continues the committed text
    DIVERGED = "diverged"  # the new text differs: it follows the committed text in full


class AnswerText:
    """What to emit while a (re)generated answer streams in."""

    def __init__(self, committed: str = "") -> None:
        self.committed = committed
        self.emitted = committed  # everything in the log plus what this run emitted
        self.generated = ""  # this run's text
        self._mode = _Mode.REPLAY if committed else _Mode.EXTEND

    @property
    def diverged(self) -> bool:
        return self._mode is _Mode.DIVERGED

    def feed(self, chunk: str) -> str:
        """Take the next chunk of this run's text; returns the text to emit now."""
        if not chunk:
            return ""
        self.generated += chunk
        out = chunk
        if self._mode is _Mode.REPLAY:
            if self.committed.startswith(self.generated):
                return ""
            if self.generated.startswith(self.committed):
                self._mode = _Mode.EXTEND
                out = self.generated[len(self.committed):]
            else:
                self._mode = _Mode.DIVERGED
                out = SEPARATOR + self.generated
        self.emitted += out
        return out

    def finish(self, answer: str | None) -> str:
        """The run's final answer is ``answer``: returns what is still to emit. Afterwards
        ``emitted`` is the turn's answer (equal to the concatenated deltas)."""
        if answer and answer.startswith(self.generated):
            return self.feed(answer[len(self.generated):])
        # The graph's answer is not what it streamed (or it streamed nothing that matters):
        # what was streamed stands; an answer never streamed is emitted now.
        if answer and not self.generated:
            return self.feed(answer)
        return ""


@dataclass
class TokenBuffer:
    """Deltas waiting to become one ``TokensEmitted``."""

    max_tokens: int = 20
    interval_s: float = 0.05
    text: str = ""
    node: str = "answer"
    tokens: int = 0
    since: float = field(default=0.0)

    def add(self, text: str, node: str, *, now: float | None = None) -> None:
        if not text:
            return
        if not self.text:
            self.since = time.monotonic() if now is None else now
            self.node = node
        self.text += text
        self.tokens += 1

    @property
    def full(self) -> bool:
        return self.tokens >= self.max_tokens

    def due_in(self, *, now: float | None = None) -> float | None:
        """Seconds until the pending text must go out (None: nothing pending)."""
        if not self.text:
            return None
        now = time.monotonic() if now is None else now
        return max(0.0, self.since + self.interval_s - now)

    def take(self) -> tuple[str, str]:
        """(text, node) pending, and empty the buffer."""
        text, node = self.text, self.node
        self.text, self.tokens = "", 0
        return text, node


@dataclass(frozen=True)
class Coalescing:
    """Every ``tokens(streaming)`` tokens or ``interval(streaming)`` seconds: ``max_tokens`` /
    ``interval_s`` for a lone turn, growing linearly to ``busy_max_tokens`` /
    ``max_interval_s`` at ``busy_turns`` concurrent turns.

    Every delta event costs an append, the snapshot projector's fold and publish, the
    gateway's dispatch and write and each client's parse (~1 ms of CPU across them): under
    load, about one delta a second instead of two halves the token events of a turn (8.4 → ~4
    at 800 users) and so buys throughput and time to first token (the first delta still goes
    out at once). ``busy_max_tokens`` grows with the interval so that a busy turn's deltas are
    set by time, not cut every 20 chunks."""

    max_tokens: int = 20
    interval_s: float = 0.05
    max_interval_s: float = 1.0
    busy_turns: int = 100
    busy_max_tokens: int = 100

    def _share(self, streaming: int) -> float:
        return min(1.0, max(0, streaming - 1) / self.busy_turns)

    def interval(self, streaming: int) -> float:
        share = self._share(streaming)
        return self.interval_s + (max(self.max_interval_s, self.interval_s) - self.interval_s) * share

    def tokens(self, streaming: int) -> int:
        grow = max(self.busy_max_tokens, self.max_tokens) - self.max_tokens
        return self.max_tokens + int(grow * self._share(streaming))


class StreamingTurns:
    """How many turns one worker process is streaming right now."""

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def streaming(self) -> Iterator[None]:
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
