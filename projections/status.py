"""The state of a projection as operators see it: versions, checkpoints, staleness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from projections.commit import load_checkpoints
from projections.projection import Projection
from readmodels import versions

if TYPE_CHECKING:
    from readmodels.db import Conn


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    active: int | None  # table version readers see
    built_by: int | None  # code version that built it
    positions: dict[int, int]  # checkpoints of the active version, by shard
    versions: list[str]  # every version still on disk, e.g. ["v2 active", "v3 building"]
    building: Building | None = None  # the version a rebuild is filling, if any

    @property
    def stale(self) -> bool:
        """The running code is newer than the tables: a rebuild is needed."""
        return self.built_by is not None and self.built_by != self.code_version

    code_version: int = 0


@dataclass(frozen=True)
class Building:
    """A table version a rebuild is filling, with its checkpoints by shard. (Read from the
    checkpoint table, so it is seen whichever process rebuilds.)"""

    name: str
    version: int
    positions: dict[int, int]

    def progress(self, heads: dict[int, int]) -> RebuildProgress:
        """How far it is, against the shard heads ``heads``."""
        position = sum(min(self.positions.get(s, 0), h) for s, h in heads.items())
        return RebuildProgress(self.version, position, sum(heads.values()))


@dataclass(frozen=True)
class RebuildProgress:
    """A rebuild's replay, summed over shards: checkpoints of the new version / log heads."""

    version: int
    position: int
    target: int

    @property
    def ratio(self) -> float:
        return min(1.0, self.position / self.target) if self.target else 1.0


async def projection_status(conn: Conn, projection: Projection) -> ProjectionStatus:
    active = await versions.active_version(conn, projection.name)
    infos = await versions.list_versions(conn, projection.name)
    built_by = next((i.code_version for i in infos if i.version == active), None)
    positions = (
        {}
        if active is None
        else await load_checkpoints(conn, projection.name, versions.suffix_of(active))
    )
    newest = max((i.version for i in infos if i.state == "building"), default=None)
    return ProjectionStatus(
        name=projection.name,
        active=active,
        built_by=built_by,
        positions=positions,
        versions=[f"v{i.version} {i.state}" for i in infos if i.state != "dropped"],
        building=None if newest is None else await _building(conn, projection.name, newest),
        code_version=projection.version,
    )


async def running_rebuilds(conn: Conn) -> list[Building]:
    """The version each projection's rebuild is filling (one query when none runs)."""
    rows = await conn.fetch(
        "SELECT name, max(version) AS version FROM projection_versions"
        " WHERE state = 'building' GROUP BY name ORDER BY name"
    )
    return [await _building(conn, str(r["name"]), int(r["version"])) for r in rows]


async def _building(conn: Conn, name: str, version: int) -> Building:
    return Building(name, version, await load_checkpoints(conn, name, versions.suffix_of(version)))
