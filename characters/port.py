"""The character service as its users (reward handler, chat graph) see it: a port and its
in-memory twin.

The 13 characters (이코 the default) are loaded from the knowledge base by the composition root.
The real adapter is the gRPC client in ``characters.client``; tests use ``InMemoryCharacters``
(optionally made to fail, to exercise the deferred-reward path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from characters.model import Character


class CharacterServiceUnavailable(Exception):
    """The character service did not answer in time or at all (the reward is deferred)."""


class CharacterService(Protocol):
    async def catalog(self) -> list[Character]:
        """Every character, the default one first."""
        ...

    async def match(self, middle_category: str) -> Character | None:
        """The character whose match label is ``middle_category``, or None.

        Raises ``CharacterServiceUnavailable`` when the service cannot be reached in time.
        """
        ...

    async def default(self) -> Character:
        """The default character (이코), which every user owns from the start."""
        ...


class CharacterCatalog:
    """The catalog's lookups, shared by the in-memory twin and the gRPC servicer."""

    def __init__(self, characters: Sequence[Character]) -> None:
        defaults = [c for c in characters if c.is_default]
        if len(defaults) != 1:
            raise ValueError(f"exactly one default character expected, got {len(defaults)}")
        self.default = defaults[0]
        self.characters = [self.default, *(c for c in characters if not c.is_default)]
        self._by_label = {c.match_label: c for c in characters if c.match_label}

    def match(self, middle_category: str) -> Character | None:
        return self._by_label.get(middle_category.strip())


class InMemoryCharacters:
    """``CharacterService`` in process; ``fail`` makes every call raise (an outage)."""

    def __init__(self, characters: Sequence[Character], *, fail: bool = False) -> None:
        self._catalog = CharacterCatalog(characters)
        self.fail = fail
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.fail:
            raise CharacterServiceUnavailable("character service is down (in-memory outage)")

    async def catalog(self) -> list[Character]:
        self._check()
        return list(self._catalog.characters)

    async def match(self, middle_category: str) -> Character | None:
        self._check()
        return self._catalog.match(middle_category)

    async def default(self) -> Character:
        self._check()
        return self._catalog.default
