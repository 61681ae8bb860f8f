"""The cyclic garbage collector of a long-running process.

A process of Eco² holds ~80,000 objects once it has started (modules, pydantic schemas and
validators, settings), all alive for good, and every full collection walked them all again: in
the append benchmark's writer that was a quarter of its CPU (4 full collections of ~140 ms in
3.5 s, mostly triggered by the envelopes in flight). ``gc.freeze`` moves what exists at start-up
into a generation the collector no longer visits; what is created afterwards is collected as
before. Start-up garbage is collected first, so only live objects are frozen.

The youngest generation is collected after ``YOUNG_THRESHOLD`` net allocations instead of
CPython's 700. A process works on runs of events (an append of 100 events, a read batch of up
to 1,000), each event several tracked objects (envelope, its dicts, wire row, result) that are
alive until the run is done and are never cyclic garbage. At 700, a run in flight set off a
young collection every few events and a middle one every ten, each walking the run's live
objects again: in ``eco2 bench append``'s batched writer that was 440 + 39 + 3 collections
and 3.3-4.7 µs of its 11-13 µs of CPU per event (~30 %, gc callbacks). At 50,000 the same
writer ran no collection at all. The price: a young collection may walk up to that many
objects at once, and cyclic garbage waits that much longer to be freed.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def freeze_startup_heap() -> None:
    """Collect, then exempt every object alive now from later collections (call once, when the
    process has imported and built what it keeps), and collect the young generation after
    ``YOUNG_THRESHOLD`` net allocations (the older generations keep their ratios)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
