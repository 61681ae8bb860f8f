"""``eco2 dlq …``: operator commands over the dead-letter streams, with readable tables."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from eventstore.dlq import DeadLetter, DeadLetterFilter, DeadLetters
from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from infra.settings import Settings

dlq_app = typer.Typer(help="Dead letters: list, inspect, replay to the failed group, purge.")
console = Console()
T = TypeVar("T")

Shard = Annotated[int | None, typer.Option(help="Only this shard.")]
Group = Annotated[str | None, typer.Option(help="Only this consumer group.")]
EventType = Annotated[str | None, typer.Option("--type", help="Only this message type.")]
Error = Annotated[str | None, typer.Option(help="Only errors containing this text.")]
Ids = Annotated[list[str] | None, typer.Option("--id", help="Only these DLQ entry ids.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")]


def _with_letters(action: Callable[[DeadLetters], Awaitable[T]]) -> T:
    settings = Settings.from_env()
    if settings.redis_url is None:
        console.print("[red]REDIS_URL is not set[/red] (eco2 up prints the URL it uses)")
        raise typer.Exit(2)
    url = settings.redis_url

    async def run() -> T:
        redis = await open_redis(url, decode_responses=True, socket_connect_timeout=5)
        try:
            return await action(DeadLetters(redis, Layout(settings.namespace, settings.shards)))
        finally:
            await redis.aclose()

    return asyncio.run(run())


def _filter(shard: int | None, group: str | None, type_: str | None, error: str | None,
            ids: list[str] | None) -> DeadLetterFilter:
    return DeadLetterFilter(shard=shard, group=group, type=type_, error=error, ids=tuple(ids or ()))


def _table(title: str, letters: list[DeadLetter]) -> Table:
    table = Table(title=title)
    for column in ("shard", "dlq id", "group", "type", "attempts", "failed at", "error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        when = dt.datetime.fromtimestamp(letter.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(letter.shard), letter.id, letter.group, letter.type,
                      str(letter.attempts), when, letter.error[:120])
    return table


@dlq_app.command("list")
def list_(shard: Shard = None, group: Group = None, type_: EventType = None, error: Error = None,
          limit: int = 100) -> None:
    """Dead letters matching the filters."""
    where = _filter(shard, group, type_, error, None)
    letters = _with_letters(lambda dlq: dlq.find(where, limit=limit))
    console.print(_table(f"{len(letters)} dead letter(s)", letters))


@dlq_app.command("show")
def show(dlq_id: str, shard: Shard = None) -> None:
    """Everything recorded about one dead letter: origin, error, attempts, payload."""
    where = _filter(shard, None, None, None, [dlq_id])
    letters = _with_letters(lambda dlq: dlq.find(where))
    if not letters:
        console.print(f"[red]no dead letter {dlq_id}[/red]")
        raise typer.Exit(1)
    for letter in letters:
        table = Table(title=f"dead letter {letter.id} (shard {letter.shard})", show_header=False)
        for key, value in sorted(letter.fields.items()):
            table.add_row(key, value)
        console.print(table)


@dlq_app.command("replay")
def replay(shard: Shard = None, group: Group = None, type_: EventType = None, error: Error = None,
           ids: Ids = None, dry_run: DryRun = False) -> None:
    """Send matching dead letters back to their failed group only (its retry stream)."""
    where = _filter(shard, group, type_, error, ids)
    letters = _with_letters(lambda dlq: dlq.replay(where, dry_run=dry_run))
    verb = "would replay" if dry_run else "replayed"
    console.print(_table(f"{verb} {len(letters)} dead letter(s)", letters))


@dlq_app.command("purge")
def purge(shard: Shard = None, group: Group = None, type_: EventType = None, error: Error = None,
          ids: Ids = None, dry_run: DryRun = False) -> None:
    """Delete matching dead letters for good."""
    where = _filter(shard, group, type_, error, ids)
    letters = _with_letters(lambda dlq: dlq.purge(where, dry_run=dry_run))
    verb = "would purge" if dry_run else "purged"
    console.print(_table(f"{verb} {len(letters)} dead letter(s)", letters))
