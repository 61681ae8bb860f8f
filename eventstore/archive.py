"""The archive tier of the log in Postgres (ARCHITECTURE §7): ``event_log`` and its checkpoint.

Rows are the shard-log entries with their envelope fields typed; reads give them back as the
same ``(entry id, fields)`` pairs XRANGE returns (``<position>-0`` for the shard log,
``<version>-1`` with a ``pos`` field for an aggregate), so every reader merges both tiers
without a second decoding path. ``Archive`` works on a pool whose connections have the read
side's ``search_path``; before anything is archived its tables may not exist, which reads as an
empty archive.
"""

from __future__ import annotations

import operator
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    Pool = asyncpg.Pool[asyncpg.Record]

Entry = tuple[str, dict[str, str]]  # (entry id, fields) as XRANGE returns them
# The same, undecoded (what the archiver copies); the fields as a dict or as the flat
# [name, value, …] list of the unparsed reply.
RawEntry = tuple[bytes, dict[bytes, bytes] | list[bytes]]
PARTITION_SIZE = 1_000_000  # positions per range partition of a shard
COLUMNS = (
    "shard", "position", "event_id", "aggregate_id", "aggregate_type", "version", "type",
    "schema_version", "data", "metadata", "ts",
)
_SELECT = (
    # ``ver``, not ``version``: ORDER BY version must sort the column, not this text.
    "SELECT position, event_id::text AS id, aggregate_id, aggregate_type,"
    " version::text AS ver, type, schema_version, data, metadata, ts FROM event_log"
)


class ArchiveError(Exception):
    """The archive disagrees with the hot log (e.g. Redis lost entries it had archived)."""


def schema_sql() -> str:
    return resources.files("eventstore").joinpath("sql/archive.sql").read_text("utf-8")


async def ensure_schema(conn: Conn) -> None:
    """Create the archive's tables (idempotent; serialised by an advisory lock)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('eco2-archive-schema'))")
        await conn.execute(schema_sql())


async def ensure_partitions(
    conn: Conn, shard: int, first: int, last: int, known: set[tuple[int, int]] | None = None
) -> None:
    """Create the partitions that will hold positions ``first..last`` of ``shard``
    (``known``: chunks this process already created, skipped without a statement)."""
    known = known if known is not None else set()
    chunks = [c for c in range(first // PARTITION_SIZE, last // PARTITION_SIZE + 1)
              if (shard, c) not in known]
    if not chunks:
        return
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS event_log_s{shard} PARTITION OF event_log"
        f" FOR VALUES IN ({shard}) PARTITION BY RANGE (position)"
    )
    for chunk in chunks:
        low, high = chunk * PARTITION_SIZE, (chunk + 1) * PARTITION_SIZE
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS event_log_s{shard}_p{chunk} PARTITION OF"
            f" event_log_s{shard} FOR VALUES FROM ({low}) TO ({high})"
        )
        known.add((shard, chunk))


def row_of(shard: int, entry_id: str, fields: dict[str, str]) -> tuple[Any, ...]:
    """The ``event_log`` row of one shard-log entry (raises ``KeyError``/``ValueError`` when the
    entry is not an envelope: archiving stops there rather than skip it)."""
    if len(fields) == 9:  # what append.lua writes: every field present, no defaults needed
        try:
            return (
                shard, int(entry_id[: entry_id.index("-")]), fields["id"], fields["agg"],
                fields["atype"], int(fields["ver"]), fields["type"], fields["sv"],
                fields["data"], fields["meta"], float(fields["ts"]),
            )
        except KeyError:
            pass  # nine fields, but not these: the general path below
    return (
        shard,
        int(entry_id.split("-", 1)[0]),
        fields["id"],
        fields["agg"],
        fields.get("atype", ""),
        int(fields.get("ver", "0")),
        fields["type"],
        fields.get("sv", "1"),
        fields.get("data", "{}"),
        fields.get("meta", "{}"),
        float(fields.get("ts", "0")),
    )


# The envelope fields in COPY column order after (shard, position), with the defaults of
# ``row_of`` (None: required).
_RAW_FIELDS: tuple[tuple[bytes, bytes | None], ...] = (
    (b"id", None), (b"agg", None), (b"atype", b""), (b"ver", b"0"), (b"type", None),
    (b"sv", b"1"), (b"data", b"{}"), (b"meta", b"{}"), (b"ts", b"0"),
)
_NAMES = [name for name, _ in _RAW_FIELDS]  # also the order append.lua writes them in
_all_fields = operator.itemgetter(*_NAMES)
_SPECIAL = re.compile(rb"[\\\t\n\r]")


def _copy_text(value: bytes) -> bytes:
    """``value`` escaped for COPY's text format."""
    return (value.replace(b"\\", b"\\\\").replace(b"\t", b"\\t")
            .replace(b"\n", b"\\n").replace(b"\r", b"\\r"))


def copy_lines(shard: int, after: int, entries: Sequence[RawEntry]) -> bytes:
    """``entries`` (positions ``after+1, after+2, …``) as ``event_log`` rows in COPY text
    format, the field bytes moved as they are (no decoding, no parsing).

    Raises ``ArchiveError`` when an entry is not an envelope or the positions are not
    contiguous from ``after``; values that do not parse (a version that is no number) are
    refused by Postgres during the COPY.
    """
    prefix = str(shard).encode()
    lines = []
    expected = after
    for entry_id, fields in entries:
        expected += 1
        position = entry_id[: entry_id.find(b"-")]
        if int(position) != expected or not entry_id.endswith(b"-0"):
            raise ArchiveError(
                f"shard {shard}: expected position {expected}, the log has {entry_id.decode()}"
            )
        values: tuple[bytes, ...] | list[bytes]
        if isinstance(fields, list):
            if fields[0::2] == _NAMES:  # what append.lua writes: every field, in this order
                values = fields[1::2]
            else:
                values = _with_defaults(shard, expected, dict(zip(fields[0::2], fields[1::2], strict=True)))
        else:
            try:
                values = _all_fields(fields)
            except KeyError:
                values = _with_defaults(shard, expected, fields)
        if _SPECIAL.search(b"".join(values)):
            values = [_copy_text(v) for v in values]
        lines.append(b"\t".join((prefix, position, *values)))
    lines.append(b"")
    return b"\n".join(lines)


def _with_defaults(shard: int, position: int, fields: dict[bytes, bytes]) -> tuple[bytes, ...]:
    values = tuple(fields.get(name, default) for name, default in _RAW_FIELDS)
    if None in values:
        raise ArchiveError(
            f"shard {shard}: the entry at {position} is not an envelope"
            f" (fields {sorted(fields)!r})"
        )
    return cast(tuple[bytes, ...], values)


def _fields(row: asyncpg.Record) -> dict[str, str]:
    # Unpacked by position (a rebuild reads every row through here); the integers come as
    # text from the server, the float is formatted here as the log wrote it (repr).
    _, eid, agg, atype, ver, type_, sv, data, meta, ts = row
    return {"id": eid, "agg": agg, "atype": atype, "ver": ver, "type": type_, "sv": sv,
            "data": data, "meta": meta, "ts": repr(ts)}


@dataclass(frozen=True)
class AggregateHead:
    """An aggregate's last archived version (None: none) read with the shard's archive
    checkpoint in one snapshot."""

    version: int | None
    archived: int


class Archive:
    """Reads of the archive tier (one instance per pool)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def log_entries(
        self, shard: int, *, after: int, upto: int, limit: int
    ) -> list[Entry]:
        """Shard-log entries with ``after < position <= upto``, in order, at most ``limit``."""
        rows = await self._fetch(
            f"{_SELECT} WHERE shard = $1 AND position > $2 AND position <= $3"
            " ORDER BY position LIMIT $4",
            shard, after, upto, limit,
        )
        return [(f"{r[0]}-0", _fields(r)) for r in rows]

    async def aggregate_entries(
        self,
        shard: int,
        aggregate_id: str,
        *,
        after: int = 0,
        below: int | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """The aggregate's archived events with ``after < version < below``, as stream entries
        (``<version>-1`` with ``pos``)."""
        rows = await self._fetch(
            f"{_SELECT} WHERE shard = $1 AND aggregate_id = $2 AND version > $3"
            " AND ($4::bigint IS NULL OR version < $4) ORDER BY version LIMIT $5",
            shard, aggregate_id, after, below, limit,
        )
        out = []
        for r in rows:
            fields = _fields(r)
            fields["pos"] = str(r["position"])
            out.append((f"{r['ver']}-1", fields))
        return out

    async def last_aggregate_entry(self, shard: int, aggregate_id: str) -> Entry | None:
        """The aggregate's last archived event as a stream entry (None: none archived)."""
        rows = await self._fetch(
            f"{_SELECT} WHERE shard = $1 AND aggregate_id = $2 ORDER BY version DESC LIMIT 1",
            shard, aggregate_id,
        )
        if not rows:
            return None
        fields = _fields(rows[0])
        fields["pos"] = str(rows[0]["position"])
        return f"{rows[0]['ver']}-1", fields

    async def aggregate_head(self, shard: int, aggregate_id: str) -> AggregateHead:
        """The aggregate's last archived version and the shard's archive checkpoint, read in
        one statement (one snapshot)."""
        rows = await self._fetch(
            "SELECT (SELECT max(version) FROM event_log WHERE shard = $1 AND aggregate_id = $2)"
            " AS version, (SELECT position FROM event_log_archived WHERE shard = $1) AS archived",
            shard, aggregate_id,
        )
        if not rows:
            return AggregateHead(None, 0)
        version, archived = rows[0]["version"], rows[0]["archived"]
        return AggregateHead(None if version is None else int(version), int(archived or 0))

    async def checkpoints(self) -> dict[int, tuple[int, str | None]]:
        """Per shard: (archived up to, event id of that entry)."""
        rows = await self._fetch("SELECT shard, position, event_id::text AS id FROM event_log_archived")
        return {int(r["shard"]): (int(r["position"]), r["id"]) for r in rows}

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self.pool.acquire() as conn:
                return list(await conn.fetch(sql, *args))
        except asyncpg.UndefinedTableError:
            return []  # nothing archived yet in this schema


async def load_checkpoint(conn: Conn, shard: int) -> tuple[int, str | None]:
    """The shard's archive checkpoint, row-locked until the transaction ends."""
    await conn.execute(
        "INSERT INTO event_log_archived (shard) VALUES ($1) ON CONFLICT DO NOTHING", shard
    )
    row = await conn.fetchrow(
        "SELECT position, event_id::text AS id FROM event_log_archived WHERE shard = $1"
        " FOR UPDATE",
        shard,
    )
    assert row is not None
    return int(row["position"]), row["id"]


async def _once(payload: bytes) -> AsyncIterator[bytes]:
    yield payload


async def write_batch(
    conn: Conn,
    shard: int,
    after: int,
    entries: Sequence[RawEntry],
    known: set[tuple[int, int]] | None = None,
) -> int:
    """COPY ``entries`` (positions ``after+1, after+2, …``) into the archive and move the
    checkpoint, in one transaction. Returns the new checkpoint.

    Raises ``ArchiveError`` when the checkpoint is not at ``after`` (another archiver moved it),
    the entries are not contiguous from it or one is not an envelope: nothing is written then.
    """
    if not entries:
        return after
    payload = copy_lines(shard, after, entries)
    last = after + len(entries)
    fields = entries[-1][1]
    if isinstance(fields, list):
        fields = dict(zip(fields[0::2], fields[1::2], strict=True))
    last_id = fields[b"id"].decode()  # present: copy_lines checked it
    async with conn.transaction():
        # synchronous_commit stays on: Redis is trimmed after this commit returns, so the
        # rows must be durable by then.
        position, _ = await load_checkpoint(conn, shard)
        if position != after:
            raise ArchiveError(f"shard {shard}: archive checkpoint is {position}, not {after}")
        await ensure_partitions(conn, shard, after + 1, last, known)
        try:
            await conn.copy_to_table(
                "event_log", source=_once(payload), columns=COLUMNS, format="text"
            )
        except asyncpg.DataError as exc:  # never skipped: archiving this shard stops here
            raise ArchiveError(
                f"shard {shard}: an entry after {after} is not an envelope: {exc}"
            ) from exc
        await conn.execute(
            "UPDATE event_log_archived SET position = $2, event_id = $3, updated_at = now()"
            " WHERE shard = $1",
            shard, last, last_id,
        )
    return last
