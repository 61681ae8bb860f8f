"""The process-wide collector settings every long-running Eco² process applies at start-up."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from infra.heap import YOUNG_THRESHOLD, freeze_startup_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_freeze_startup_heap_freezes_and_raises_only_the_young_threshold() -> None:
    _, middle, old = gc.get_threshold()
    freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)


@pytest.mark.usefixtures("restored_collector")
def test_cyclic_garbage_made_after_start_up_is_still_collected() -> None:
    freeze_startup_heap()

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    ref = weakref.ref(node)
    del node
    gc.collect()
    assert ref() is None
