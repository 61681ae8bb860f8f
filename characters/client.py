"""The gRPC client of the character service: ``CharacterService`` with an explicit timeout.

Any RPC failure (unreachable, deadline exceeded, server error) becomes
``CharacterServiceUnavailable``, so the reward handler defers the reward instead of failing the
scan.
"""

from __future__ import annotations

from types import TracebackType

import grpc

from characters import characters_pb2 as pb
from characters import characters_pb2_grpc as pb_grpc
from characters.convert import from_message
from characters.model import Character
from characters.port import CharacterServiceUnavailable


class GrpcCharacters:
    """``CharacterService`` over one ``grpc.aio`` channel; create it inside the running loop."""

    def __init__(self, target: str, *, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError("the character service timeout must be positive")
        self.target = target
        self.timeout_s = timeout_s
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = pb_grpc.CharacterServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def catalog(self) -> list[Character]:
        """Every character, the default one first."""
        try:
            reply: pb.CatalogReply = await self._stub.Catalog(
                pb.CatalogRequest(), timeout=self.timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable("Catalog", exc) from exc
        return [from_message(c) for c in reply.characters]

    async def match(self, middle_category: str) -> Character | None:
        """The character matched by ``middle_category``, or None."""
        try:
            reply: pb.MatchReply = await self._stub.Match(
                pb.MatchRequest(middle_category=middle_category), timeout=self.timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable("Match", exc) from exc
        return from_message(reply.character) if reply.found else None

    async def default(self) -> Character:
        """The default character (이코)."""
        try:
            reply: pb.Character = await self._stub.Default(
                pb.DefaultRequest(), timeout=self.timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable("Default", exc) from exc
        return from_message(reply)

    async def aclose(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> GrpcCharacters:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _unavailable(method: str, exc: grpc.aio.AioRpcError) -> CharacterServiceUnavailable:
    return CharacterServiceUnavailable(
        f"character service {method} failed: {exc.code().name} {exc.details() or ''}".strip()
    )
