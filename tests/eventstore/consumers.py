"""What the consumer tests share: appending test items, a runner over them, waits (the
``store`` fixture is in this package's conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

from eventstore.consumer import RunnerOptions, Subscription
from eventstore.runtime import Runner
from eventstore.store import EventStore
from tests.background import in_background
from tests.eventstore.messages import ItemAdded, test_registry

# Claims are for dead consumers: one that is merely slow (a loaded machine can hold an entry
# between read and handler for longer than a short claim_idle_ms) must not have its entries
# taken and handled twice, which at-least-once delivery allows and these tests count exactly.
# The tests of claiming set their own short idle time.
FAST = RunnerOptions(block_ms=50, claim_idle_ms=10_000, claim_interval_s=0.05,
                     retry_backoff_s=0.01)


async def append_items(store: EventStore, names: list[str], aggregate: str | None = None) -> str:
    agg = aggregate or str(uuid.uuid4())
    for name in names:
        env = test_registry.envelope(ItemAdded(name=name), aggregate_id=agg)
        await store.append([env], expected_version="any")
    return agg


@contextlib.asynccontextmanager
async def running(runner: Runner) -> AsyncIterator[Runner]:
    async with in_background(runner.run()):
        yield runner


async def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def runner(store: EventStore, group: str, handler: object, **kw: object) -> Runner:
    return Runner(
        store.redis,
        store.layout,
        test_registry,
        Subscription(group, "events", {ItemAdded: handler}),  # type: ignore[dict-item]
        options=kw.pop("options", FAST),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
