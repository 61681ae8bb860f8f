"""The character service's launcher: serves over real gRPC until stopped, then drains."""

from __future__ import annotations

import asyncio

from agents.knowledge import KnowledgeBase
from characters.client import GrpcCharacters
from characters.launcher import accepts_connections, probe_host, run_service
from infra.embedded._process import free_port


def test_a_wildcard_host_is_probed_on_loopback() -> None:
    assert probe_host("0.0.0.0") == "127.0.0.1"
    assert probe_host("::") == "127.0.0.1"
    assert probe_host("10.0.0.7") == "10.0.0.7"


async def test_serves_until_stopped_then_drains() -> None:
    characters = KnowledgeBase.load().characters()
    port = free_port()
    assert await accepts_connections("127.0.0.1", port) is not None  # nothing listens yet
    stop = asyncio.Event()
    drained: list[bool] = []
    task = asyncio.create_task(run_service(
        characters, stop, host="127.0.0.1", port=port, grace_s=0.5,
        on_drain=lambda: drained.append(True),
    ))
    while (reason := await accepts_connections("127.0.0.1", port)) is not None:
        assert not task.done(), reason
        await asyncio.sleep(0.02)
    async with GrpcCharacters(f"127.0.0.1:{port}", timeout_s=5) as client:
        assert (await client.default()).name == "이코"
        assert (await client.match("무색페트병")) == next(
            c for c in characters if c.match_label == "무색페트병")
    assert not drained
    stop.set()
    await task
    assert drained == [True]
    # gRPC's core closes the listening socket on its own threads just after stop() returns:
    # the port must refuse connections soon, not necessarily at once.
    async with asyncio.timeout(10):
        while await accepts_connections("127.0.0.1", port) is None:
            await asyncio.sleep(0.05)
