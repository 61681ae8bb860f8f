"""Appending a turn's events: deterministic ids, optimistic versions, coalesced text.

Every event of a turn has the id of its step (``turn_effect(job, step)``), so a run repeated
after a crash re-creates the ids of what the first run already recorded; those are skipped
here (the folded ``TurnState`` knows them) instead of being sent again. Events are *staged* and
written together when the graph pauses (``write``); each write expects the version this writer
last saw: if someone else moved the turn on, ``TurnMoved`` is raised and the handler re-reads
the turn before going on, so two runs never interleave their text.
"""

from __future__ import annotations

from collections import Counter

from commands.chat.turn_state import turn_effect
from eventstore.causation import caused_by
from eventstore.errors import ConcurrencyConflict, PartialDuplicate
from eventstore.port import EventStorePort
from schemas.chat import CHAT_TURN, NodeProgressed, NodeStatus, TokensEmitted
from schemas.chat_state import TurnState
from schemas.envelope import Envelope
from schemas.registry import Event, MessageRegistry


class TurnMoved(Exception):
    """The turn changed under this writer (another run appended): re-read it."""


class TurnWriter:
    """Appends the events of one run of a turn, in order."""

    def __init__(
        self,
        store: EventStorePort,
        registry: MessageRegistry,
        turn: TurnState,
        *,
        cause: Envelope,
        user_id: str,
    ) -> None:
        self.store = store
        self.registry = registry
        self.turn = turn
        self.cause = cause
        self.user_id = user_id
        self._occurrences: Counter[tuple[str, str]] = Counter()
        self._metadata = caused_by(cause, user_id)  # the same for every event of the run
        self._staged: list[tuple[Event, Envelope]] = []
        self._staged_ids: set[str] = set()

    def stage(self, event: Event, *step: str) -> bool:
        """Queue ``event`` as ``step`` for the next ``write`` (False: that step is recorded)."""
        event_id = turn_effect(self.turn.job_id, *step)
        if str(event_id) in self.turn.event_ids or str(event_id) in self._staged_ids:
            return False
        envelope = self.registry.envelope(
            event,
            aggregate_id=self.turn.job_id,
            aggregate_type=CHAT_TURN,
            metadata=self._metadata,
            id=event_id,
        )
        self._staged.append((event, envelope))
        self._staged_ids.add(str(event_id))
        return True

    async def write(self) -> None:
        """Append everything staged, in order, in ONE call (a burst of progress and text costs
        one round trip and one script run, not one per event)."""
        if not self._staged:
            return
        batch, self._staged, self._staged_ids = self._staged, [], set()
        try:
            result = await self.store.append(
                [envelope for _, envelope in batch], expected_version=self.turn.version
            )
        except (ConcurrencyConflict, PartialDuplicate) as exc:
            raise TurnMoved(str(exc)) from exc
        if result.duplicate:  # recorded by another run since we read the turn
            raise TurnMoved("these steps were recorded by another run")
        for (event, envelope), record in zip(batch, result.records, strict=True):
            self.turn.apply(event, envelope, version=record.version)

    async def append(self, event: Event, *step: str) -> bool:
        """Append ``event`` as ``step`` now (with anything staged before it)."""
        staged = self.stage(event, *step)
        await self.write()
        return staged

    @property
    def staged(self) -> bool:
        """Something is staged for the next ``write``."""
        return bool(self._staged)

    @property
    def text_staged(self) -> bool:
        """Answer text is staged for the next ``write``."""
        return any(isinstance(event, TokensEmitted) for event, _ in self._staged)

    @property
    def has_text(self) -> bool:
        """Some answer text is recorded or staged."""
        return bool(self.turn.deltas) or any(
            isinstance(event, TokensEmitted) for event, _ in self._staged
        )

    def progress(
        self, node: str, status: NodeStatus, message: str | None, detail: dict[str, object]
    ) -> None:
        """Stage a node's progress; the n-th (node, status) of a run is the same step in every
        run."""
        k = self._occurrences[(node, status)]
        self._occurrences[(node, status)] += 1
        event = NodeProgressed(node=node, status=status, message=message, detail=dict(detail))
        self.stage(event, "node", node, status, str(k))

    def tokens(self, text: str, node: str) -> None:
        """Stage the next delta of the answer text (``seq`` continues the committed deltas)."""
        if not text:
            return
        staged = sum(isinstance(event, TokensEmitted) for event, _ in self._staged)
        seq = self.turn.last_seq + staged + 1
        self.stage(TokensEmitted(content=text, seq=seq, node=node), "tokens", str(seq))
