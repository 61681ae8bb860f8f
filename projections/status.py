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

    @property
    def stale(self) -> bool:
        """The running code is newer than the tables: a rebuild is needed."""
        return self.built_by is not None and self.built_by != self.code_version

    code_version: int = 0


async def projection_status(conn: Conn, projection: Projection) -> ProjectionStatus:
    active = await versions.active_version(conn, projection.name)
    infos = await versions.list_versions(conn, projection.name)
    built_by = next((i.code_version for i in infos if i.version == active), None)
    positions = (
        {}
        if active is None
        else await load_checkpoints(conn, projection.name, versions.suffix_of(active))
    )
    return ProjectionStatus(
        name=projection.name,
        active=active,
        built_by=built_by,
        positions=positions,
        versions=[f"v{i.version} {i.state}" for i in infos if i.state != "dropped"],
        code_version=projection.version,
    )
