"""``eco2 bench …``: every benchmark of the project under one command group."""

from __future__ import annotations

import importlib

import typer

bench_app = typer.Typer(help="Benchmarks; each appends its table to BENCHMARKS.md.")

# Each module defines its own ``bench_app`` with one or more commands.
BENCH_MODULES = (
    "infra.bench.append",
    "infra.bench.sse",
    "infra.bench.chat",
    "infra.bench.scan",
    "infra.bench.locations",
    "infra.bench.rebuild",
    "infra.bench.archive",
)

for _module in BENCH_MODULES:
    _source: typer.Typer = importlib.import_module(_module).bench_app
    bench_app.registered_commands.extend(_source.registered_commands)
