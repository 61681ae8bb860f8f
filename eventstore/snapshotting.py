"""Loading a state folded from an aggregate: its newest snapshot, then the events after it.

An aggregate that only grows (a user's logins) would otherwise be read and folded whole on
every load, and once its first events are trimmed from Redis every load would ask the archive.
``load_state`` reads the newest snapshot and the events after its version in one round trip
(``EventStorePort.read_from_snapshot``), folds them on the snapshot's state, and writes a new
snapshot when it folded ``SNAPSHOT_EVERY`` events or more, had to read the archive, or found
the stored snapshot unusable. A snapshot of another kind or format, or one that does not parse,
is ignored: the aggregate is read whole, as without snapshots, and the snapshot replaced, even
at the same version (a user with no new events would otherwise keep it forever), unless it is
in a newer release's format; it is never an error.

A fold is never made over a gap: when events it needs were trimmed from Redis and no archive is
wired to supply them, the load raises ``HistoryGap`` (as ``read_aggregate`` does) instead of
returning, or snapshotting, a state folded from part of the history.

A snapshot is written only from a fold that understood every event (one written by a release
that skipped an event type it did not know would hide that event from newer releases). The
state's ``SNAPSHOT_FORMAT`` must change whenever the fold or the stored shape changes: a
snapshot at version ``v`` must be the fold of versions 1..v for every reader that accepts it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Protocol, Self, TypeVar

from eventstore.errors import HistoryGap
from eventstore.port import EventStorePort
from eventstore.snapshots import Snapshot
from schemas.envelope import Envelope
from schemas.registry import MessageRegistry

SNAPSHOT_EVERY = 64  # events folded since the snapshot that make the next one worth writing


class SnapshotState(Protocol):
    """A state folded from one aggregate's events that can be snapshotted."""

    SNAPSHOT_KIND: ClassVar[str]  # what the snapshot holds (e.g. ``user.state``)
    SNAPSHOT_FORMAT: ClassVar[int]  # bumped whenever the fold or the stored shape changes
    version: int  # the last version folded

    @classmethod
    def empty(cls, aggregate_id: str) -> Self:
        """The state before the aggregate's first event."""
        ...

    @classmethod
    def from_snapshot(cls, aggregate_id: str, data: str) -> Self:
        """The state a snapshot's ``data`` holds; ``ValueError`` when it cannot be read."""
        ...

    def snapshot_data(self) -> str:
        """This state as a snapshot's ``data`` (``from_snapshot`` reads it back)."""
        ...

    def fold(self, envelopes: Iterable[Envelope], registry: MessageRegistry) -> bool:
        """Apply ``envelopes`` in version order; False when any was not understood (skipped)."""
        ...


S = TypeVar("S", bound=SnapshotState)


async def load_state(
    store: EventStorePort,
    state_type: type[S],
    aggregate_id: str,
    registry: MessageRegistry,
    *,
    snapshot_every: int = SNAPSHOT_EVERY,
) -> S:
    """The ``state_type`` of ``aggregate_id`` at its current version, from its newest usable
    snapshot on (snapshotting it again when that saves later loads real work). Raises
    ``HistoryGap`` when events it needs were trimmed and no archive is wired."""
    read = await store.read_from_snapshot(aggregate_id)
    state = _restored(state_type, aggregate_id, read.snapshot)
    events, unusable = read.events, state is None and read.after > 0
    if state is None:
        state = state_type.empty(aggregate_id)
        if unusable:  # a snapshot this release cannot use: fold everything before it too
            events = await store.read_aggregate(aggregate_id)
    _check_follows(aggregate_id, state.version, events)
    understood = state.fold(events, registry)
    worth = len(events) >= snapshot_every or read.archived or unusable
    # Not a newer release's snapshot: during a rolling deploy the two would replace each
    # other's on every load.
    replacing = unusable and not _newer(state_type, read.snapshot)
    if understood and worth and (state.version > read.after or replacing):
        await store.save_snapshot(Snapshot(
            aggregate_id, state.version, state_type.SNAPSHOT_KIND, state_type.SNAPSHOT_FORMAT,
            state.snapshot_data(),
        ), replacing=replacing)
    return state


def _newer(state_type: type[S], snapshot: Snapshot | None) -> bool:
    """Whether ``snapshot`` is ``state_type``'s in a format newer than this release's."""
    return (snapshot is not None and snapshot.kind == state_type.SNAPSHOT_KIND
            and snapshot.format > state_type.SNAPSHOT_FORMAT)


def _check_follows(aggregate_id: str, version: int, events: list[Envelope]) -> None:
    """Refuse (``HistoryGap``) to fold ``events`` on a state at ``version`` unless they are the
    versions right after it: the stores raise on the gaps they can see, this is the last guard
    before a fold that may be snapshotted, whatever the store."""
    if events and (events[0].version != version + 1
                   or events[-1].version - events[0].version + 1 != len(events)):
        raise HistoryGap(aggregate_id, version, f"read versions {events[0].version}.."
                         f"{events[-1].version} to fold on version {version}")


def _restored(state_type: type[S], aggregate_id: str, snapshot: Snapshot | None) -> S | None:
    """The state of ``snapshot`` when it is one of ``state_type``'s, in its format."""
    if snapshot is None or snapshot.kind != state_type.SNAPSHOT_KIND:
        return None
    if snapshot.format != state_type.SNAPSHOT_FORMAT:
        return None
    try:
        state = state_type.from_snapshot(aggregate_id, snapshot.data)
    except ValueError:
        return None
    return state if state.version == snapshot.version else None
