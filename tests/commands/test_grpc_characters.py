"""The character service over real gRPC (loopback): catalog, match, default, timeouts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import grpc
import pytest

from characters import CharacterServiceUnavailable
from characters import characters_pb2 as pb
from characters.client import GrpcCharacters
from characters.server import CharacterServicer, start_server
from eventstore.consumer import RetryLater
from schemas.scan import RewardCompleted
from schemas.users import CharacterGranted
from tests.commands.conftest import ScanWorld, knowledge

pytestmark = pytest.mark.asyncio


class SlowServicer(CharacterServicer):
    """Answers ``Match`` only after ``delay_s`` (a service too slow for the client's timeout)."""

    delay_s = 0.0

    async def Match(
        self, request: pb.MatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.MatchReply:
        await asyncio.sleep(self.delay_s)
        return await super().Match(request, context)


@pytest.fixture
async def service() -> AsyncIterator[tuple[SlowServicer, GrpcCharacters]]:
    from characters import characters_pb2_grpc as pb_grpc

    servicer = SlowServicer(knowledge().characters())
    server = grpc.aio.server()
    pb_grpc.add_CharacterServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    # 1 s: prompt answers (the first one connects the channel) beat it on a loaded machine too;
    # the slow answers wait 30 s (cancelled when the server stops).
    client = GrpcCharacters(f"127.0.0.1:{port}", timeout_s=1.0)
    try:
        yield servicer, client
    finally:
        await client.aclose()
        await server.stop(grace=None)


async def test_catalog_match_and_default(
    service: tuple[SlowServicer, GrpcCharacters],
) -> None:
    _, client = service
    catalog = await client.catalog()
    assert len(catalog) == 13 and catalog[0].name == "이코" and catalog[0].is_default
    assert len({c.match_label for c in catalog[1:]}) == 12
    petty = await client.match("무색페트병")
    assert petty is not None and (petty.code, petty.name) == ("char-petty", "페티")
    assert await client.match("음식물류") is None
    default = await client.default()
    assert default.name == "이코" and default.match_label is None
    assert catalog[1:] == [c for c in knowledge().characters() if not c.is_default]


async def test_slow_service_times_out_as_unavailable(
    service: tuple[SlowServicer, GrpcCharacters],
) -> None:
    servicer, client = service
    servicer.delay_s = 30.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CharacterServiceUnavailable, match="DEADLINE_EXCEEDED"):
        await client.match("금속류")
    assert loop.time() - started < 10  # the client's deadline, not the service's 30 s


async def test_unreachable_service_is_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with GrpcCharacters(f"127.0.0.1:{port}", timeout_s=0.5) as client:
        with pytest.raises(CharacterServiceUnavailable):
            await client.match("금속류")


async def test_start_server_serves_on_an_ephemeral_port() -> None:
    server, port = await start_server(knowledge().characters(), port=0)
    try:
        async with GrpcCharacters(f"127.0.0.1:{port}", timeout_s=1.0) as client:
            assert (await client.default()).code == "char-eco"
    finally:
        await server.stop(grace=None)


@pytest.mark.redis
async def test_grpc_timeout_defers_the_reward_and_the_retry_grants_it(
    world: ScanWorld, service: tuple[SlowServicer, GrpcCharacters]
) -> None:
    servicer, client = service
    user = "user-grpc"
    envelope = world.command(await world.upload(), "유리병", user_id=user)
    await world.run_chain(envelope)
    job_id = envelope.aggregate_id

    servicer.delay_s = 30.0  # slower than the client's 1 s timeout
    with pytest.raises(RetryLater):
        await world.run_reward(job_id, characters=client)
    reward = [m for m in await world.messages(job_id) if isinstance(m, RewardCompleted)]
    assert len(reward) == 1 and reward[0].deferred and reward[0].reward is None

    servicer.delay_s = 0.0
    before = await world.messages(job_id)
    await world.run_reward(job_id, characters=client)  # the redelivery grants it
    await world.run_reward(job_id, characters=client)
    granted = [m for m in await world.messages(user) if isinstance(m, CharacterGranted)]
    assert [g.character_name for g in granted] == ["글래시"]
    assert granted[0].source_job_id == job_id
    assert await world.messages(job_id) == before
