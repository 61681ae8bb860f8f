"""The character service as one unit: the ``Character`` model, the port every user of the
service codes against (``CharacterService``, its error and its in-memory twin), and the service
over gRPC (``.proto``, generated modules, server, client) with its clients' cache (``cache``).

``characters_pb2*.py`` are generated (see the command at the top of ``characters.proto``) and
committed; they are excluded from ruff and mypy. This package imports only ``schemas``, pydantic
and grpc: ``commands``, ``agents``, ``readmodels`` and ``infra`` all import it.
"""

from characters.model import Character
from characters.port import (
    CharacterCatalog,
    CharacterService,
    CharacterServiceUnavailable,
    InMemoryCharacters,
)

__all__ = [
    "Character",
    "CharacterCatalog",
    "CharacterService",
    "CharacterServiceUnavailable",
    "InMemoryCharacters",
]
