"""The archive tier for the synchronous eventsourcing recorders (psycopg, one connection).

The same ``event_log`` the async ``Archive`` reads (see ``eventstore.archive``), returned as
the byte-keyed entries redis-py gives the recorders without ``decode_responses``, so
``es_store`` merges both tiers exactly as the async store does. Thread-safe: one lock around the
connection (the recorders are called from many threads; archive reads are rare — only for
history older than the hot window).
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

Entry = tuple[bytes, dict[bytes, bytes]]
_SELECT = (
    "SELECT position, event_id::text, aggregate_id, aggregate_type, version, type,"
    " schema_version, data, metadata, ts FROM event_log"
)


def _entry(row: tuple[Any, ...], *, aggregate: bool) -> Entry:
    position, eid, agg, atype, version, type_, sv, data, meta, ts = row
    fields = {
        b"id": eid.encode(), b"agg": agg.encode(), b"atype": atype.encode(),
        b"ver": str(version).encode(), b"type": type_.encode(), b"sv": sv.encode(),
        b"data": data.encode(), b"meta": meta.encode(), b"ts": repr(ts).encode(),
    }
    if aggregate:
        fields[b"pos"] = str(position).encode()
        return f"{version}-1".encode(), fields
    return f"{position}-0".encode(), fields


class SyncArchive:
    """Reads of ``event_log`` in ``schema`` over one lazily opened psycopg connection."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=10,
                    options=f"-c search_path={self.schema}",
                )
            try:
                return list(self._conn.execute(sql, params).fetchall())
            except psycopg.errors.UndefinedTable:
                return []  # nothing archived yet
            except psycopg.OperationalError:
                self._conn.close()
                raise

    def aggregate(self, shard: int, aggregate_id: str, gt: int | None, below: int | None,
                  lte: int | None) -> list[Entry]:
        """Archived events of the aggregate with ``gt < version < below`` and ``<= lte``."""
        rows = self._query(
            f"{_SELECT} WHERE shard = %s AND aggregate_id = %s AND version > %s"
            " AND (%s::bigint IS NULL OR version < %s) AND (%s::bigint IS NULL OR version <= %s)"
            " ORDER BY version",
            (shard, aggregate_id, -1 if gt is None else gt, below, below, lte, lte),
        )
        return [_entry(r, aggregate=True) for r in rows]

    def log(self, shard: int, after: int, upto: int, limit: int) -> list[Entry]:
        """Archived shard-log entries with ``after < position <= upto``."""
        rows = self._query(
            f"{_SELECT} WHERE shard = %s AND position > %s AND position <= %s"
            " ORDER BY position LIMIT %s",
            (shard, after, upto, limit),
        )
        return [_entry(r, aggregate=False) for r in rows]

    def aggregate_head(self, shard: int, aggregate_id: str) -> str:
        """``<last archived version or empty>:<archive checkpoint>`` (the append hint)."""
        rows = self._query(
            "SELECT (SELECT max(version) FROM event_log WHERE shard = %s AND aggregate_id = %s),"
            " (SELECT position FROM event_log_archived WHERE shard = %s)",
            (shard, aggregate_id, shard),
        )
        version, archived = rows[0] if rows else (None, 0)
        return f"{'' if version is None else version}:{archived or 0}"

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
