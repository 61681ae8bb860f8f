"""``eco2 bench sse`` records each run in BENCHMARKS.md: newest first, older runs and the
section's hand-written text kept, the rest of the file untouched."""

from __future__ import annotations

from pathlib import Path

from infra.bench.sse_record import END, RUNS, START, SseBenchResult, record


def _result(p50: float) -> SseBenchResult:
    return SseBenchResult(
        connections=10, jobs=5, rate=50, duration_s=1, appended=4, expected=4,
        latencies_ms=[p50, p50, p50, p50], baseline_ms=[0.5], load_avg=(0.5, 0.4, 0.3),
    )


def test_runs_are_prepended_and_the_section_text_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Other\n\nkept\n", "utf-8")
    record(_result(1.0), "eco2 bench sse --first", path)
    text = path.read_text("utf-8")
    assert text.startswith("# Benchmarks\n\n## Other\n\nkept\n")
    assert "## SSE: `eco2 bench sse`" in text and text.count(START) == text.count(END) == 1

    summary = "**Target met** in the run of the first command."
    path.write_text(text.replace(RUNS, f"{summary}\n\n{RUNS}"), "utf-8")
    record(_result(2.0), "eco2 bench sse --second", path)
    text = path.read_text("utf-8")
    assert summary in text and "## SSE: `eco2 bench sse`" in text
    assert text.index(summary) < text.index(RUNS) < text.index("--second") < text.index("--first")
    assert "| 10 (5 jobs) | 50 | 4 | 2.00 |" in text and "| 10 (5 jobs) | 50 | 4 | 1.00 |" in text
    assert text.count(START) == text.count(END) == 1 and text.count(RUNS) == 1
