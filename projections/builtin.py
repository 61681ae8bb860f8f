"""Every projection this release runs, by name (the names of ``eco2 projections``)."""

from __future__ import annotations

from collections.abc import Iterable

from projections.characters import CHARACTERS
from projections.chat import CHAT
from projections.projection import Projection
from projections.scans import SCANS
from projections.stats import STATS
from projections.users import USERS

PROJECTIONS: dict[str, Projection] = {
    p.name: p for p in (SCANS, USERS, CHARACTERS, STATS, CHAT)
}


class UnknownProjection(KeyError):
    """A projection name this release does not have."""


def get_projection(name: str) -> Projection:
    try:
        return PROJECTIONS[name]
    except KeyError:
        known = ", ".join(PROJECTIONS)
        raise UnknownProjection(f"no projection {name!r} (known: {known})") from None


def select(names: Iterable[str] | None = None) -> list[Projection]:
    """The named projections (all when ``names`` is None)."""
    return list(PROJECTIONS.values()) if names is None else [get_projection(n) for n in names]
