"""The gRPC server of the character service (``grpc.aio``).

``eco2 grpc characters`` runs ``serve`` as its own process; tests start ``start_server`` on an
ephemeral port in their event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from characters import characters_pb2 as pb
from characters import characters_pb2_grpc as pb_grpc
from characters.convert import to_message
from characters.model import Character
from characters.port import CharacterCatalog

log = logging.getLogger(__name__)


class CharacterServicer(pb_grpc.CharacterServiceServicer):
    """Catalog, match by middle category and the default character, from a fixed catalog."""

    def __init__(self, characters: Sequence[Character]) -> None:
        self.catalog = CharacterCatalog(characters)

    async def Catalog(
        self, request: pb.CatalogRequest, context: grpc.aio.ServicerContext
    ) -> pb.CatalogReply:
        return pb.CatalogReply(characters=[to_message(c) for c in self.catalog.characters])

    async def Match(
        self, request: pb.MatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.MatchReply:
        found = self.catalog.match(request.middle_category)
        if found is None:
            return pb.MatchReply(found=False)
        return pb.MatchReply(found=True, character=to_message(found))

    async def Default(
        self, request: pb.DefaultRequest, context: grpc.aio.ServicerContext
    ) -> pb.Character:
        return to_message(self.catalog.default)


async def start_server(
    characters: Sequence[Character], *, host: str = "127.0.0.1", port: int = 0
) -> tuple[grpc.aio.Server, int]:
    """Start serving ``characters``; returns the server and the bound port (``port=0``: any)."""
    server = grpc.aio.server()
    pb_grpc.add_CharacterServiceServicer_to_server(  # type: ignore[no-untyped-call]
        CharacterServicer(characters), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the character service to {host}:{port}")
    await server.start()
    return server, bound


async def serve(
    characters: Sequence[Character], *, host: str, port: int, grace_s: float = 1.0
) -> None:
    """Serve until cancelled, then stop gracefully (in-flight calls get ``grace_s`` to finish)."""
    server, bound = await start_server(characters, host=host, port=port)
    log.info("character service listening on %s:%d (%d characters)", host, bound, len(characters))
    try:
        await server.wait_for_termination()
    finally:
        await asyncio.shield(server.stop(grace=grace_s))
