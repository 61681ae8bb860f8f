"""What every ``eco2 bench`` shares: its options for repetitions and results, the Redis it runs
on, the min / median / max over the repetitions, and the section it appends to ``BENCHMARKS.md``.

A benchmark runs ``--repeat`` times; each repetition measures its figures *and* the baseline
they are compared with, so the ratio is taken within one repetition (the same load on the
machine for both) and only then summarised over the repetitions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import platform
import statistics
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from infra.settings import Settings

RepeatOption = Annotated[int, typer.Option(
    min=1, help="Repetitions; min / median / max are printed over them (recording needs ≥ 3).",
)]
WriteOption = Annotated[bool, typer.Option(
    "--write/--no-write", help="Append this run's min / median / max to the output file.",
)]
TracedOption = Annotated[bool, typer.Option(
    "--traced/--no-traced",
    help="Also measure the rows with tracing on (OTLP/HTTP to a local sink), paired with the "
    "same rows untraced in every repetition.",
)]
OutputOption = Annotated[Path, typer.Option(help="Markdown file the results are appended to.")]
BENCHMARKS = Path("BENCHMARKS.md")
MIN_RECORDED = 3

# One repetition's figures, by name (e.g. {"raw XADD events/s": 91000.0, ...}).
Figures = Mapping[str, float]


def check_repeat(repeat: int, write: bool) -> None:
    """Refuse to record a figure measured fewer than :data:`MIN_RECORDED` times."""
    if write and repeat < MIN_RECORDED:
        raise typer.BadParameter(
            f"recording needs --repeat ≥ {MIN_RECORDED} (or --no-write for a quick look)",
            param_hint="--repeat",
        )


def percentile(values: Sequence[float], p: float) -> float:
    """Percentile ``p`` (0–100) of one repetition's samples: the one nearest to ``p`` % of the
    way up their sorted list; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Spread:
    """One figure over the repetitions."""

    name: str
    low: float
    median: float
    high: float

    @classmethod
    def of(cls, name: str, values: Sequence[float]) -> Spread:
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return cls(name, math.nan, math.nan, math.nan)
        return cls(name, min(finite), statistics.median(finite), max(finite))


def ratio_name(figure: str, baseline: str) -> str:
    return f"{figure} ÷ {baseline}"


def summarize(
    runs: Sequence[Figures], ratios: Sequence[tuple[str, str]] = ()
) -> list[Spread]:
    """Every figure's spread, then each ``(figure, baseline)`` ratio's, computed per repetition.

    A figure missing from a repetition (or a zero baseline) counts as NaN and is left out of
    that figure's spread; a ratio whose figure or baseline no repetition measured is left out."""
    names = list(dict.fromkeys(name for run in runs for name in run))
    spreads = [Spread.of(n, [run.get(n, math.nan) for run in runs]) for n in names]
    for figure, baseline in ratios:
        if figure not in names or baseline not in names:
            continue  # not measured in this run (e.g. the cluster rows with --no-cluster)
        per_run = [_ratio(run.get(figure, math.nan), run.get(baseline, math.nan)) for run in runs]
        spreads.append(Spread.of(ratio_name(figure, baseline), per_run))
    return spreads


def _ratio(figure: float, baseline: float) -> float:
    return figure / baseline if baseline and not math.isnan(baseline) else math.nan


def cell(value: float) -> str:
    """A figure as written in the tables: counts and thousands without decimals, small values
    with two."""
    if math.isnan(value):
        return "–"
    if abs(value) >= 1000 or value.is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def print_summary(title: str, spreads: Sequence[Spread], repeat: int) -> None:
    table = Table("measure", "min", "median", "max", title=f"{title} — {repeat} repetitions")
    for s in spreads:
        table.add_row(s.name, cell(s.low), cell(s.median), cell(s.high))
    Console(highlight=False).print(table)


# The embedded Redis of a bench holds everything a repetition appends (nothing archives or trims
# it): a 120 s scan run at 450 scans/s writes about 1.1 GB of log, past ``eco2 up``'s 1 GB,
# and a full Redis refuses the rest of the run's writes. ECO2_REDIS_MAXMEMORY still decides.
BENCH_REDIS_MAXMEMORY = 8 * 1024**3


def bench_maxmemory() -> str:
    """The bench's Redis limit: ``BENCH_REDIS_MAXMEMORY``, or half the machine's memory if less
    (a full Redis refuses writes; one that swaps measures the disk)."""
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return str(min(BENCH_REDIS_MAXMEMORY, physical // 2))


@contextlib.contextmanager
def bench_services(settings: Settings, *, postgres: bool = False) -> Iterator[Settings]:
    """``settings`` with the servers a bench needs for the block: ``REDIS_URL``'s (and, with
    ``postgres``, ``DATABASE_URL``'s), else our own, started for the block (AOF on, like ``eco2
    up``; ``bench_maxmemory``) in a fresh directory under ``data_dir`` and stopped after it:
    never on the data of an ``eco2 up`` in the same directory, which may be running, nor on an
    earlier run's AOF, which Redis would load and soon rewrite while the bench measures."""
    if not postgres:
        settings = settings.with_(database_url="unused")  # keeps Postgres from starting
    if settings.redis_url is not None and settings.database_url is not None:
        yield settings
        return
    from infra.embedded import resolve_services

    settings = settings.with_(redis_maxmemory=settings.redis_maxmemory or bench_maxmemory())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=settings.data_dir) as tmp:
        data_dir = Path(tmp)
        data_dir.chmod(0o755)  # the embedded Postgres runs as an unprivileged user when root
        settings, services = resolve_services(settings.with_(data_dir=data_dir))
        with services:
            yield settings


R = TypeVar("R")


def run_repetitions(
    repeat: int, run: Callable[[], R], report: Callable[[R], str],
    figures: Callable[[R], Figures],
) -> list[Figures]:
    """Each repetition's figures, its ``report`` printed as it ends."""
    runs: list[Figures] = []
    for n in range(1, repeat + 1):
        result = run()
        typer.echo(f"repetition {n}/{repeat}:\n" + report(result))
        runs.append(figures(result))
    return runs


def print_repetition(n: int, repeat: int, figures: Figures) -> None:
    shown = ", ".join(f"{name} {cell(value)}" for name, value in figures.items())
    Console(highlight=False).print(f"[dim]repetition {n}/{repeat}:[/dim] {shown}", soft_wrap=True)


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def section(
    title: str, command: str, spreads: Sequence[Spread], repeat: int, notes: Sequence[str] = ()
) -> str:
    """The markdown of one recorded run: command, date, machine, the min / median / max table."""
    lines = [
        f"## {title} — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f}",
        f"- {repeat} repetitions; each ratio is taken within one repetition (figure and baseline"
        " measured back to back), then summarised",
        *(f"- {note}" for note in notes),
        "",
        "| measure | min | median | max |",
        "|---|---:|---:|---:|",
        *(f"| {s.name} | {cell(s.low)} | {cell(s.median)} | {cell(s.high)} |" for s in spreads),
    ]
    return "\n".join(lines) + "\n"


def append_section(output: Path, text: str) -> None:
    """Append ``text`` at the end of ``output``: earlier sections are never rewritten."""
    with output.open("a", encoding="utf-8") as out:
        out.write("\n" + text)
    Console(highlight=False).print(f"appended to {output}")


def record(
    output: Path, title: str, command: str, spreads: Sequence[Spread], repeat: int,
    notes: Sequence[str] = (),
) -> None:
    append_section(output, section(title, command, spreads, repeat, notes))
