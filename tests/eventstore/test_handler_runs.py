"""The runtime's per-entry bookkeeping: worker slots, a batch's runs, in-flight entries, fields."""

from __future__ import annotations

import asyncio

import pytest

from eventstore.handler_runs import InFlight, Slots, all_of, text_fields


async def test_slots_bound_runs_and_pass_a_freed_slot_to_the_oldest_waiter() -> None:
    slots, order = Slots(1), []
    release = asyncio.Event()

    async def run(name: str) -> None:
        if slots.free > 0:
            slots.free -= 1
        else:
            await slots.wait()
        order.append(name)
        try:
            await release.wait()
        finally:
            slots.give()

    first = asyncio.create_task(run("first"))
    await asyncio.sleep(0)
    second, third = asyncio.create_task(run("second")), asyncio.create_task(run("third"))
    await asyncio.sleep(0.01)
    assert order == ["first"]  # one slot: the others wait
    release.set()
    await asyncio.gather(first, second, third)
    assert order == ["first", "second", "third"] and slots.free == 1


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    slots = Slots(1)
    slots.free -= 1  # taken
    waiter = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    slots.give()  # handed to the waiter…
    waiter.cancel()  # …which is cancelled before it runs: the slot must not be lost
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.free == 1


async def test_all_of_returns_results_in_order_and_cancels_the_rest_when_cancelled() -> None:
    async def after(seconds: float, value: bool) -> bool:
        await asyncio.sleep(seconds)
        return value

    assert await all_of([after(0.02, True), after(0, False), after(0.01, True)]) == [
        True, False, True]

    started = asyncio.Event()
    cancelled: list[bool] = []

    async def slow() -> bool:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return True

    batch = asyncio.create_task(all_of([after(0, True), slow()]))
    await started.wait()
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert cancelled == [True]


def test_in_flight_holds_a_batch_until_released() -> None:
    held = InFlight()
    batch = held.hold("s", ["1-0", "2-0"])
    parked = held.hold("s", ["2-0"])
    assert held.holds("s", "1-0") and held.by_stream() == [("s", ["1-0", "2-0"])]
    held.release("s", batch)
    assert not held.holds("s", "1-0") and held.holds("s", "2-0")
    held.release("s", parked)
    assert held.by_stream() == [] and not held.holds("s", "2-0")


def test_text_fields_from_bytes_or_text() -> None:
    assert text_fields({b"type": b"x.y", b"data": b"{}"}) == {"type": "x.y", "data": "{}"}
    assert text_fields({"type": "x.y"}) == {"type": "x.y"}  # type: ignore[dict-item]


def test_text_fields_learns_a_new_name_and_decodes_utf8() -> None:
    fields = {b"a-name-no-other-test-uses": "분리수거".encode()}
    assert text_fields(fields) == {"a-name-no-other-test-uses": "분리수거"}  # learnt here
    assert text_fields(fields) == {"a-name-no-other-test-uses": "분리수거"}  # known now


async def test_until_free_waits_for_enough_free_slots_after_the_waiting_takers() -> None:
    slots = Slots(3)
    for _ in range(3):
        await slots.take()
    taker = asyncio.create_task(slots.take())
    gate = asyncio.create_task(slots.until_free(2))
    await asyncio.sleep(0)
    slots.give()  # goes to the taker first
    slots.give()  # one free
    await asyncio.sleep(0)
    assert taker.done() and not gate.done() and slots.free == 1
    slots.give()
    await asyncio.wait_for(gate, 1)  # two free (the taker still holds one)
    assert slots.free == 2
    await slots.until_free(2)  # enough free already: no wait


async def test_open_gates_lets_every_waiter_of_until_free_go() -> None:
    slots = Slots(1)
    await slots.take()
    gates = [asyncio.create_task(slots.until_free(1)) for _ in range(2)]
    await asyncio.sleep(0)
    slots.open_gates()
    await asyncio.wait_for(asyncio.gather(*gates), 1)
    assert slots.free == 0
