"""In-order subscriptions with a batch handler: runs of entries per call, the same guarantees.

A run the batch handler fails is handled again entry by entry, so a failing entry is retried
in place and dead-lettered as without batches, nothing later overtakes it, and nothing is
skipped; the entries of the run before it are handled again (at least once, idempotently).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from eventstore.consumer import Subscription
from eventstore.dlq import DeadLetterFilter, DeadLetters
from eventstore.runtime import Runner
from eventstore.store import EventStore
from schemas.envelope import Envelope
from schemas.registry import Message
from tests.eventstore.consumers import FAST, append_items, running, wait_for
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis


async def test_batches_keep_log_order_through_failures_and_poison(store: EventStore) -> None:
    handled: list[str] = []
    failures: Counter[str] = Counter()
    runs: list[int] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        if message.name == "poison":
            raise ValueError("cannot digest poison")
        # a Redis hiccup that outlives the run's call and one attempt on its own
        if message.name.endswith("3") and failures[message.name] < 2:
            failures[message.name] += 1
            raise ConnectionError("Redis went away for a moment")
        handled.append(message.name)

    async def handle_run(events: Sequence[tuple[Envelope, Message]]) -> None:
        runs.append(len(events))
        for envelope, message in events:
            await handle(envelope, message)

    names = [f"n{i}" for i in range(40)]
    names.insert(20, "poison")
    agg = await append_items(store, names)
    shard = store.layout.shard_of(agg)
    keys = store.layout.keys(shard)
    garbage = await store.head(shard) + 1
    await store.redis.xadd(keys.events, {"garbage": "yes"}, id=f"{garbage}-0")
    await store.redis.set(keys.head, garbage)
    await append_items(store, ["last"], aggregate=agg)
    subscription = Subscription("g", "events", {ItemAdded: handle}, in_order=True,
                                batch_handler=handle_run)
    async with running(Runner(store.redis, store.layout, test_registry, subscription,
                              options=FAST)):
        await wait_for(lambda: "last" in handled)
    expected = [n for n in names if n != "poison"] + ["last"]
    assert list(dict.fromkeys(handled)) == expected  # in log order, none skipped
    assert set(handled) == set(expected)
    assert max(runs) > 1  # entries did go to the batch handler together
    assert failures == {"n3": 2, "n13": 2, "n23": 2, "n33": 2}
    letters = await DeadLetters(store.redis, store.layout).find(DeadLetterFilter(group="g"))
    assert sorted(letter.error.split(":")[0] for letter in letters) == [
        "MalformedEntry", "ValueError"
    ]
    assert await store.redis.xlen(keys.retry("g")) == 0  # retried in place
    assert (await store.redis.xpending(keys.events, "g"))["pending"] == 0


async def test_a_smooth_backlog_is_handled_in_few_calls(store: EventStore) -> None:
    """Without failures every entry is handled exactly once, in order, a run per read."""
    handled: list[str] = []
    runs: list[int] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        raise AssertionError("entry by entry only after a failed run")

    async def handle_run(events: Sequence[tuple[Envelope, Message]]) -> None:
        runs.append(len(events))
        handled.extend(m.name for _, m in events if isinstance(m, ItemAdded))

    names = [f"n{i}" for i in range(120)]
    agg = await append_items(store, names)
    keys = store.layout.keys(store.layout.shard_of(agg))
    subscription = Subscription("g", "events", {ItemAdded: handle}, in_order=True,
                                batch_handler=handle_run)
    async with running(Runner(store.redis, store.layout, test_registry, subscription,
                              options=FAST)):
        await wait_for(lambda: len(handled) >= len(names))
    assert handled == names
    assert len(runs) < len(names) // 10
    assert (await store.redis.xpending(keys.events, "g"))["pending"] == 0
