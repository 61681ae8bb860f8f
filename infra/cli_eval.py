"""``eco2 eval scan|chat``: the labelled sets' figures, for the dev and the test part."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from agents.knowledge import KnowledgeBase
from infra.eval_run import eval_chat, eval_scan
from infra.eval_sets import PARTS, PartScore, render

eval_app = typer.Typer(help="Evaluate the labelled scan and chat sets (evals/data).")

PartOption = Annotated[str, typer.Option("--part", help="dev, test or both (default: both)")]
MissesOption = Annotated[int, typer.Option("--misses", help="list up to N misses per part")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]


def _parts(part: str) -> tuple[str, ...]:
    if part == "both":
        return PARTS
    if part not in PARTS:
        raise typer.BadParameter(f"--part must be dev, test or both, not {part!r}")
    return (part,)


def _print(kind: str, scores: list[PartScore], misses: int, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([s.summary() for s in scores], ensure_ascii=False))
        return
    for score in scores:
        typer.echo(render(kind, score, show_misses=misses))


@eval_app.command("scan")
def scan(part: PartOption = "both", misses: MissesOption = 0, as_json: JsonOption = False) -> None:
    """Category accuracy and answer rubric of the scan set, per category."""
    kb = KnowledgeBase.load()
    _print("scan", [eval_scan(p, kb) for p in _parts(part)], misses, as_json)


@eval_app.command("chat")
def chat(part: PartOption = "both", misses: MissesOption = 0, as_json: JsonOption = False) -> None:
    """Exact intent sets, multi-intent recall, follow-ups and answer rubric of the chat set."""
    kb = KnowledgeBase.load()

    async def run() -> list[PartScore]:
        return [await eval_chat(p, kb) for p in _parts(part)]

    _print("chat", asyncio.run(run()), misses, as_json)
