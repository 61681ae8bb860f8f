"""What every ``eco2 bench`` shares: ratios taken within a repetition, min / median / max over
the repetitions, one option shape, recorded sections only ever appended, a lazy import."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from infra.bench.repeat import Spread, append_section, ratio_name, section, summarize
from infra.cli import app

BENCHES = ("append", "sse", "chat", "scan", "locations", "rebuild", "archive")


def test_a_ratio_is_taken_within_each_repetition_then_summarised() -> None:
    # The machine got twice as slow in the second repetition, for the figure and its baseline
    # alike: the ratio stays 2 while the figures spread.
    runs = [{"store": 200.0, "raw": 100.0}, {"store": 100.0, "raw": 50.0},
            {"store": 150.0, "raw": 75.0}]
    spreads = {s.name: s for s in summarize(runs, [("store", "raw")])}
    assert spreads["store"] == Spread("store", 100.0, 150.0, 200.0)
    assert spreads["raw"] == Spread("raw", 50.0, 75.0, 100.0)
    assert spreads[ratio_name("store", "raw")] == Spread(ratio_name("store", "raw"), 2.0, 2.0, 2.0)


def test_a_missing_figure_or_zero_baseline_is_left_out_not_counted_as_zero() -> None:
    runs = [{"p95": 6.0, "ideal": 0.0}, {"p95": 4.0}, {"p95": 5.0, "ideal": 2.0}]
    spreads = {s.name: s for s in summarize(runs, [("p95", "ideal")])}
    assert spreads["ideal"] == Spread("ideal", 0.0, 1.0, 2.0)
    assert spreads[ratio_name("p95", "ideal")] == Spread(ratio_name("p95", "ideal"), 2.5, 2.5, 2.5)
    nothing = Spread.of("none", [math.nan])
    assert math.isnan(nothing.median)
    unmeasured = summarize(runs, [("p95 on a cluster", "p95")])
    assert [s.name for s in unmeasured] == ["p95", "ideal"]


def test_recording_appends_and_leaves_every_earlier_section_as_written(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    earlier = "# Benchmarks\n\n## SSE: `eco2 bench sse`\n\n| old | 1.00 |\n<!-- runs -->\n"
    path.write_text(earlier, "utf-8")
    text = section("eco2 bench x", "eco2 bench x --repeat 3",
                   summarize([{"a": 1500.0}, {"a": 1000.0}, {"a": 2000.0}]), 3, ["a note"])
    append_section(path, text)
    written = path.read_text("utf-8")
    assert written.startswith(earlier)
    assert "| a | 1,000 | 1,500 | 2,000 |" in written
    assert "- command: `eco2 bench x --repeat 3`" in written and "- a note" in written
    assert "3 repetitions" in written


def _options(bench: str) -> list[str]:
    result = CliRunner().invoke(app, ["bench", bench, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return re.findall(r"--[a-z-]+", result.output)


def test_every_bench_has_the_same_repeat_and_results_options() -> None:
    for bench in BENCHES:
        options = _options(bench)
        for shared in ("--repeat", "--write", "--no-write", "--output"):
            assert shared in options, (bench, shared)
        for old in ("--runs", "--record", "--no-record"):
            assert old not in options, (bench, old)


def test_recording_fewer_than_three_repetitions_is_refused_before_anything_runs() -> None:
    result = CliRunner().invoke(app, ["bench", "locations", "--repeat", "2"])
    assert result.exit_code == 2
    assert "--repeat" in result.output


def test_the_command_line_imports_no_benchmark_until_one_is_asked_for() -> None:
    code = ("import sys, infra.cli; "
            "print(sorted(m for m in sys.modules if m.startswith('infra.bench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
