"""Row changes recorded by projection handlers, folded per row and written per batch.

Handlers do not talk to Postgres one event at a time: a batch of a few thousand events touches
far fewer rows (a scan job's ten events update one row), so handlers record *what* changes and
``Changes.write`` sends one ``INSERT … SELECT … FROM unnest(…) ON CONFLICT`` per table and
shape of row, each column one array parameter (one round trip and one statement execution for
the whole run of rows, not one per row). That is what lets a rebuild run at tens of thousands
of events per second.

Kinds of change, by table and primary key:

- ``set``: these columns take these values (later events win, the row is created if missing);
- ``add``: these counters grow by these amounts (created from 0 if missing);
- ``insert_once``: create the row with these values unless it already exists (first wins);
- ``execute``: an arbitrary statement, run in order after the changes recorded before it
  (an escape hatch; ``{model}`` placeholders become the physical table names);
- ``execute_last``: a statement run once at the end of the batch over every value recorded for
  it (``$1`` is their array): how a handler revisits rows that events of *other* aggregates
  may have written, e.g. scrubbing the free text of a deleted user's scans.

Rows of *shared* tables (rows that batches of several shards write: a user's points,
statistics) are written in key order, so concurrent batches never deadlock on them; other tables
are written with one statement per shape of row.

A ``timestamptz`` column may be ``set`` to a Unix time (seconds, a ``float`` such as
``envelope.timestamp`` or an ``int``): it becomes ``datetime.fromtimestamp(value, UTC)`` (``event_time``)
when the batch is written, once per row instead of once per event (each of a scan job's ten
events sets ``updated_at``, and only the last one's value is written). A handler sets only
times that are datetimes (``scans`` checks the range): one that is not would fail the write of
the whole batch instead of halting at its event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from readmodels.tables import TableGroup

if TYPE_CHECKING:
    from readmodels.db import Conn

Key = tuple[Any, ...]
Shape = tuple[bool, tuple[str, ...], tuple[str, ...]]  # once, set columns, added columns


class _Row:
    """One row's folded change (a plain class: one is made per distinct row of a batch)."""

    __slots__ = ("adds", "once", "sets")

    def __init__(self, once: bool) -> None:
        self.once = once
        self.sets: dict[str, Any] = {}
        self.adds: dict[str, Any] = {}


@dataclass(frozen=True)
class RowChange:
    """One row's folded change: ``insert_once`` (``once``) or ``set`` columns and ``add``
    counters."""

    table: str
    key: Key
    once: bool
    sets: Mapping[str, Any]
    adds: Mapping[str, Any]


@dataclass(frozen=True)
class Statement:
    """An ``execute`` statement with its arguments, or an ``execute_last`` one with the
    sorted array of its values; ``{model}`` placeholders not yet resolved."""

    sql: str
    args: tuple[Any, ...]


class Changes:
    """What one batch does to a projection's tables."""

    def __init__(self, group: TableGroup, *, shared: frozenset[str] = frozenset()) -> None:
        self.group = group
        self.shared = shared  # tables whose rows several shards write: strict key order
        self._rows: dict[tuple[str, Key], _Row] = {}  # the segment being recorded
        self._segments: list[dict[tuple[str, Key], _Row] | Statement] = [self._rows]
        self._last: dict[str, set[Any]] = {}
        self._key_sizes = {spec.name: len(spec.key) for spec in group.tables}
        self._times = {  # each table's ``timestamptz`` columns (see ``_at``)
            spec.name: frozenset(c for c, t in spec.column_types.items() if t == "timestamptz")
            for spec in group.tables
        }

    def __bool__(self) -> bool:
        return bool(self._last) or any(self._segments_with_content())

    def _segments_with_content(self) -> list[dict[tuple[str, Key], _Row] | Statement]:
        return [s for s in self._segments if not isinstance(s, dict) or s]

    def _row(self, table: str, key: Any, *, once: bool) -> _Row | None:
        # Called once per handled event: the key is checked when its row is created only (a
        # row found under (table, key) was checked then).
        full_key: Key = key if isinstance(key, tuple) else (key,)
        rows = self._rows
        row = rows.get((table, full_key))
        if row is None:
            size = self._key_sizes.get(table)
            if size is None:
                self.group.table(table)  # raises KeyError naming the group and table
            if len(full_key) != size:
                spec = self.group.table(table)
                raise ValueError(f"{table} is keyed by {spec.key}, got {full_key!r}")
            row = rows[(table, full_key)] = _Row(once)
            return row
        if row.once != once:
            raise ValueError(f"{table} {full_key!r}: insert_once cannot mix with set/add")
        return None if once else row

    def set(self, table: str, key: Any, **values: Any) -> None:
        """Columns of the row ``key`` take ``values`` (creating the row if needed)."""
        self.set_columns(table, key, values)

    def set_columns(self, table: str, key: Any, values: dict[str, Any]) -> None:
        """``set`` with the columns in a dict (read, not kept): a handler that builds the
        dict anyway passes it on without the copy that ``**values`` makes."""
        # Most calls update a row recorded before (a scan job's later events): one lookup.
        row = self._rows.get((table, key if type(key) is tuple else (key,)))
        if row is None or row.once or row.adds:
            row = self._row(table, key, once=False)
            assert row is not None
            if row.adds and values.keys() & row.adds.keys():
                raise ValueError(f"{table}: a column is both set and added")
        row.sets.update(values)

    def add(self, table: str, key: Any, **deltas: Any) -> None:
        """Counters of the row ``key`` grow by ``deltas`` (from 0 if the row is new)."""
        row = self._row(table, key, once=False)
        assert row is not None
        if row.sets and deltas.keys() & row.sets.keys():
            raise ValueError(f"{table}: a column is both set and added")
        for column, delta in deltas.items():
            row.adds[column] = row.adds.get(column, 0) + delta

    def insert_once(self, table: str, key: Any, **values: Any) -> None:
        """Create the row ``key`` with ``values`` unless it exists (the first insert wins)."""
        row = self._row(table, key, once=True)
        if row is not None:
            row.sets.update(values)

    def execute(self, sql: str, *args: Any) -> None:
        """Run ``sql`` after everything recorded so far; ``{model}`` names a table."""
        self._segments.append(Statement(sql, args))
        self._rows = {}
        self._segments.append(self._rows)

    def execute_last(self, sql: str, value: Any) -> None:
        """Run ``sql`` once, after everything else of the batch, with ``$1`` the sorted array of
        every ``value`` recorded for it; ``{model}`` names a table."""
        values = self._last.get(sql)  # not ``setdefault``: it would build a set per call
        if values is None:
            values = self._last[sql] = set()
        values.add(value)

    def steps(self) -> Iterator[RowChange | Statement]:
        """What ``write`` does, in its order, without a database: how a test checks a
        projection's fold (the rows it reaches) on plain data."""
        for segment in self._segments:
            if isinstance(segment, Statement):
                yield segment
                continue
            for (table, key), row in segment.items():
                times = self._times[table]
                sets = {c: _at(v) if c in times else v for c, v in row.sets.items()}
                yield RowChange(table, key, row.once, sets, dict(row.adds))
        for sql, values in self._last.items():
            yield Statement(sql, (sorted(values),))

    async def write(self, conn: Conn, suffix: str) -> int:
        """Write everything to the tables of version ``suffix``; returns statements' rows."""
        written = 0
        names = {spec.name: spec.physical(suffix) for spec in self.group.tables}
        for segment in self._segments:
            if isinstance(segment, Statement):
                await conn.execute(segment.sql.format(**names), *segment.args)
                written += 1
                continue
            for sql, arrays, count in self._statements(segment, names):
                await conn.execute(sql, *arrays)
                written += count
        for sql, values in self._last.items():
            await conn.execute(sql.format(**names), sorted(values))
            written += 1
        return written

    def _statements(
        self, rows: dict[tuple[str, Key], _Row], names: dict[str, str]
    ) -> list[tuple[str, list[list[Any]], int]]:
        """One ``(sql, column arrays, row count)`` per table and run of same-shaped rows."""
        by_table: dict[str, list[tuple[Shape, Key, _Row]]] = {}
        for (table, key), row in rows.items():  # each row's shape, worked out once
            by_table.setdefault(table, []).append((_shape(row), key, row))
        out = []
        for table in sorted(by_table):
            spec, members = self.group.table(table), by_table[table]
            if table in self.shared:
                # Batches of other shards write these rows too: every transaction locks them
                # in the same (key) order (``unnest`` yields the rows in array order), one
                # statement per run of same-shaped rows.
                members.sort(key=_KEY)
            else:
                # Rows of one shard only: fewest statements, one per shape.
                members.sort(key=_SHAPE_AND_KEY)
            for shape, run in groupby(members, key=_SHAPE):
                once, set_cols, add_cols = shape
                sql = _upsert_sql(
                    names[table], spec.key, set_cols, add_cols, spec.column_types, once=once
                )
                run_rows = list(run)
                arrays = [
                    list(column) for column in zip(*(key for _, key, _ in run_rows), strict=True)
                ]
                if set_cols:
                    columns = _columns([r.sets for _, _, r in run_rows], set_cols)
                    times = self._times[table]
                    for i, name in enumerate(set_cols):
                        if name in times:
                            columns[i] = _datetimes(columns[i])
                    arrays += columns
                if add_cols:
                    arrays += _columns([r.adds for _, _, r in run_rows], add_cols)
                out.append((sql, arrays, len(run_rows)))
        return out


def _at(value: Any) -> Any:
    """A ``timestamptz`` column's value: a Unix time (seconds) as an aware UTC datetime."""
    kind = type(value)
    return datetime.fromtimestamp(value, UTC) if kind is float or kind is int else value


def _datetimes(values: list[Any]) -> list[Any]:
    """``_at`` of each value of a column (inlined: one call per column, not per value)."""
    at = datetime.fromtimestamp
    return [at(v, UTC) if type(v) is float or type(v) is int else v for v in values]


def _shape(row: _Row) -> Shape:
    return row.once, tuple(sorted(row.sets)), tuple(sorted(row.adds))


_SHAPE, _KEY, _SHAPE_AND_KEY = itemgetter(0), itemgetter(1), itemgetter(0, 1)


def _columns(values: list[dict[str, Any]], names: tuple[str, ...]) -> list[list[Any]]:
    """The column arrays of ``names`` over rows' ``values`` (every row has each name): one
    ``itemgetter`` call per row and a transposition instead of a look-up per value."""
    if len(names) == 1:
        (name,) = names
        return [[row[name] for row in values]]
    return [list(column) for column in zip(*map(itemgetter(*names), values), strict=True)]


def _upsert_sql(
    table: str,
    key: tuple[str, ...],
    sets: tuple[str, ...],
    adds: tuple[str, ...],
    types: Mapping[str, str],
    *,
    once: bool,
) -> str:
    """One upsert of many rows: ``$i`` is the array of column ``i``'s values, typed as the
    column (each value is encoded exactly as it would be as a lone ``$i`` of that column)."""
    columns = (*key, *sets, *adds)
    arrays = ", ".join(f"${i}::{types[c]}[]" for i, c in enumerate(columns, 1))
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)})"
        f" SELECT * FROM unnest({arrays}) AS r({', '.join(columns)})"
    )
    updates = [f"{c} = EXCLUDED.{c}" for c in sets] + [
        f"{c} = {table}.{c} + EXCLUDED.{c}" for c in adds
    ]
    if once or not updates:
        return f"{sql} ON CONFLICT ({', '.join(key)}) DO NOTHING"
    return f"{sql} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(updates)}"
