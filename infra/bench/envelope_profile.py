"""Profile of a projector's per-event decoding, without Redis or Postgres.

The workload is fixed: the synthetic log of ``projections.synthetic`` (scan chains, users,
character grants) turned into shard-log entries exactly as ``XRANGE`` returns them, then decoded
as the ``scans`` projection decodes them (``ShardReader.decode``: the envelope, then the message
class) and folded (``projections.fold``: decoding, handlers and row changes). Prints CPU
microseconds per event (best of ``--repeat``) and the cProfile table of one pass, as Markdown::

    python -m infra.bench.envelope_profile --events 100000
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from uuid import UUID

import orjson
import typer

from eventstore.archive import Entry
from eventstore.keys import Layout
from projections.fold import fold
from projections.reading import ShardReader, paused_gc
from projections.scans import SCANS
from projections.synthetic import SyntheticLog
from schemas import registry
from schemas.envelope import Envelope, Metadata

app = typer.Typer(add_completion=False)


def entries(events: int) -> list[Entry]:
    """``events`` shard-log entries of the synthetic log, as ``XRANGE`` returns them."""
    log = SyntheticLog(registry, salt=1)
    out: list[Entry] = []
    while len(out) < events:
        for events_of_one, _ in log.scan_job():
            for envelope in events_of_one:
                out.append((f"{len(out) + 1}-0", envelope.to_fields()))
    return out[:events]


def project(reader: ShardReader, batch: list[Entry]) -> None:
    """What a projector does per entry before its handler runs."""
    with paused_gc():
        for entry in batch:
            reader.decode(0, entry)


def fold_batches(reader: ShardReader, batch: list[Entry], size: int = 5000) -> None:
    """What a projector does per entry up to the rows it writes: decoding, the handlers and
    the folded row changes (``projections.fold``), in batches as a rebuild folds them."""
    for start in range(0, len(batch), size):
        fold(SCANS, reader, 0, batch[start : start + size])


def envelopes_only(batch: list[Entry]) -> None:
    with paused_gc():
        for entry_id, fields in batch:
            Envelope.from_fields(fields, position=int(entry_id.split("-", 1)[0]), shard=0)


def envelopes_validated(batch: list[Entry]) -> None:
    """The same envelopes through pydantic's full validation (how ``from_fields`` decoded
    every entry before it trusted the log; what untrusted input still gets)."""
    with paused_gc():
        for entry_id, fields in batch:
            meta = fields.get("meta") or "{}"
            Envelope(
                id=UUID(fields["id"]),
                aggregate_id=fields["agg"],
                aggregate_type=fields.get("atype", ""),
                version=int(fields.get("ver", "0")),
                type=fields["type"],
                schema_version=int(fields.get("sv", "1")),
                data=orjson.loads(fields.get("data") or "{}"),
                metadata=Metadata() if meta == "{}" else Metadata.model_validate_json(meta),
                timestamp=float(fields.get("ts", "0")),
                position=int(entry_id.split("-", 1)[0]),
                shard=0,
            )


def cpu_us_per_event(run: Callable[[], None], events: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / events * 1e6


def profile_table(run: Callable[[], None], top: int) -> str:
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(run)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (path, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{path.rsplit('/', 2)[-2:]!s}" if path != "~" else ""
        label = f"{'/'.join(path.rsplit('/', 2)[-2:])}:{line} {name}" if where else name
        rows.append((tottime, cumtime, calls, label))
    rows.sort(reverse=True)
    lines = ["| tottime s | cumtime s | calls | function |", "|---:|---:|---:|---|"]
    lines += [f"| {t:.3f} | {c:.3f} | {n} | `{label}` |" for t, c, n, label in rows[:top]]
    return "\n".join(lines)


@app.command()
def main(events: int = 100_000, repeat: int = 3, top: int = 15) -> None:
    """Time and profile the decoding of ``events`` synthetic shard-log entries."""
    batch = entries(events)
    reader = ShardReader(None, Layout("profile", 1), registry, SCANS.wire_names(registry))
    handled = sum(1 for _, fields in batch if fields["type"] in reader.wire_names)
    print(f"{events:,} entries, {handled:,} of them handled by `scans`")
    runs: dict[str, Callable[[], None]] = {
        "validated envelopes (pydantic), every entry": lambda: envelopes_validated(batch),
        "Envelope.from_fields, every entry": lambda: envelopes_only(batch),
        "ShardReader.decode for `scans` (envelope + message)": lambda: project(reader, batch),
        "fold for `scans` (decode + handlers + row changes)": lambda: fold_batches(reader, batch),
    }
    for name, run in runs.items():
        print(f"\n{name}: {cpu_us_per_event(run, events, repeat):.2f} CPU µs/entry "
              f"(best of {repeat})\n")
        print(profile_table(run, top))


if __name__ == "__main__":
    app()
