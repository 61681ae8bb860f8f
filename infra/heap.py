"""The cyclic garbage collector of a long-running process.

A process of Eco² holds ~80,000 objects once it has started (modules, pydantic schemas and
validators, settings), all alive for good, and every full collection walked them all again: in
the append benchmark's writer that was a quarter of its CPU (4 full collections of ~140 ms in
3.5 s, mostly triggered by the envelopes in flight). ``gc.freeze`` moves what exists at start-up
into a generation the collector no longer visits; what is created afterwards is collected as
before. Start-up garbage is collected first, so only live objects are frozen.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect, then exempt every object alive now from later collections (call once, when the
    process has imported and built what it keeps)."""
    gc.collect()
    gc.freeze()
