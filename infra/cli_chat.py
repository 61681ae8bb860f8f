"""``eco2 chat "질문"``: ask the chat from the terminal, straight through the log.

It appends a ``SendChatMessage`` command (in a new chat, or ``--chat ID`` to continue one),
follows the turn's own stream (``{tag}:agg:<job>``) and prints the answer as it is written, the
stages on stderr, and at the end the intents and subagents that answered. A running chat
worker (``eco2 worker chat`` or ``eco2 up``) does the work; no gateway is needed. A question
that needs the user's location uses ``--lat/--lon`` or asks for it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import schemas
from eventstore.keys import Layout
from eventstore.store import ANY, EventStore
from infra.bootstrap import redis_client
from infra.settings import Settings, SettingsError
from schemas.chat import (
    CHAT,
    CHAT_TURN,
    ChatCreated,
    NodeProgressed,
    ProvideInput,
    SendChatMessage,
    TokensEmitted,
    TurnCompleted,
    TurnFailed,
    TurnWaiting,
    UserLocation,
)
from schemas.envelope import Envelope, Metadata

out = Console(highlight=False, soft_wrap=True)
err = Console(highlight=False, stderr=True)

# Options may follow the question: the group has no subcommands to confuse them with.
chat_app = typer.Typer(
    help="Ask the chat a question and print the streamed answer.",
    context_settings={"allow_interspersed_args": True},
)


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if settings.redis_url is None:
        err.print("[red]REDIS_URL is not set[/red] (run `eco2 up`, or `eco2 services` first)")
        raise typer.Exit(2)
    return settings


@chat_app.callback(invoke_without_command=True)
def chat(
    question: Annotated[str, typer.Argument(help="What to ask (Korean works best).")],
    lat: Annotated[float | None, typer.Option(help="Your latitude (for nearby places).")] = None,
    lon: Annotated[float | None, typer.Option(help="Your longitude.")] = None,
    chat_id: Annotated[str | None, typer.Option("--chat", help="Continue this chat.")] = None,
    user: Annotated[str, typer.Option(help="Ask as this user id.")] = "cli",
    model: Annotated[str | None, typer.Option(help="local | gpt-* | gemini-*")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 120.0,
) -> None:
    """Ask QUESTION; needs a running chat worker (`eco2 worker chat` or `eco2 up`)."""
    if (lat is None) != (lon is None):
        err.print("[red]--lat and --lon go together[/red]")
        raise typer.Exit(2)
    location = UserLocation(latitude=lat, longitude=lon) if lat is not None and lon is not None \
        else None
    code = asyncio.run(ask(_settings(), question, location=location, chat_id=chat_id,
                           user_id=user, model=model, timeout_s=timeout))
    raise typer.Exit(code)


async def ask(
    settings: Settings, question: str, *, location: UserLocation | None, chat_id: str | None,
    user_id: str, model: str | None, timeout_s: float,
) -> int:
    """Send ``question`` and print its turn until ``done``; the exit code (0 = answered)."""
    redis = await redis_client(settings)
    try:
        store = EventStore(redis, Layout(settings.namespace, settings.shards), schemas.registry)
        meta = Metadata(user_id=user_id)
        if chat_id is None:
            chat_id = str(uuid.uuid4())
            created = ChatCreated(user_id=user_id, title=None)
            await store.append([schemas.registry.envelope(
                created, aggregate_id=chat_id, aggregate_type=CHAT, metadata=meta)],
                expected_version=ANY)
            err.print(f"[dim]new chat {chat_id} (continue it with --chat {chat_id})[/dim]")
        job_id = str(uuid.uuid4())
        command = SendChatMessage(job_id=job_id, chat_id=chat_id, user_id=user_id,
                                  message=question, user_location=location, model=model)
        await store.append_command(schemas.registry.envelope(
            command, aggregate_id=job_id, aggregate_type=CHAT_TURN, metadata=meta))
        return await follow(store, job_id, user_id=user_id, location=location,
                            timeout_s=timeout_s)
    finally:
        await redis.aclose()


async def follow(
    store: EventStore, job_id: str, *, user_id: str, location: UserLocation | None,
    timeout_s: float,
) -> int:
    key = store.layout.keys_for(job_id).aggregate(job_id)
    last, deadline, streaming = "0-0", time.monotonic() + timeout_s, False
    while time.monotonic() < deadline:
        reply: Any = await store.redis.xread({key: last}, count=200, block=1000)
        for _, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                envelope = Envelope.from_fields(fields)
                event = schemas.registry.decode_envelope(envelope)
                if isinstance(event, TokensEmitted):
                    out.print(event.content, end="")
                    streaming = True
                    continue
                if streaming:
                    out.print()
                    streaming = False
                if isinstance(event, NodeProgressed):
                    note = f" — {event.message}" if event.message else ""
                    err.print(f"[dim]· {event.node} {event.status}{note}[/dim]")
                elif isinstance(event, TurnWaiting):
                    await answer_question(store, job_id, user_id, envelope.version, event,
                                          location)
                elif isinstance(event, TurnCompleted):
                    summary(event)
                    return 0
                elif isinstance(event, TurnFailed):
                    err.print(f"[red]{event.message}[/red] [dim]({event.code})[/dim]")
                    return 1
    err.print(f"[red]no answer within {timeout_s:.0f} s[/red] — is a chat worker running "
              "(`eco2 worker chat` or `eco2 up`)?")
    return 2


async def answer_question(
    store: EventStore, job_id: str, user_id: str, version: int, waiting: TurnWaiting,
    location: UserLocation | None,
) -> None:
    """Answer a ``needs_input``: the given location, else ask for one (empty = cancel)."""
    err.print(f"[yellow]{waiting.message}[/yellow]")
    if location is None:
        raw = await asyncio.to_thread(
            typer.prompt, "latitude,longitude (empty to cancel)", default="", show_default=False
        )
        try:
            lat, lon = (float(x) for x in raw.split(","))
            location = UserLocation(latitude=lat, longitude=lon)
        except ValueError:
            location = None
    command = ProvideInput(
        job_id=job_id, user_id=user_id, type="location" if location else "cancel",
        data=location.model_dump() if location else {}, location=location,
        waiting_version=version,
    )
    await store.append_command(schemas.registry.envelope(
        command, aggregate_id=job_id, aggregate_type=CHAT_TURN, metadata=Metadata(user_id=user_id)))


def summary(done: TurnCompleted) -> None:
    result = done.result
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("[bold]intent[/bold]", result.intent)
    table.add_row("[bold]intents[/bold]", ", ".join(result.intents) or "–")
    table.add_row("[bold]subagents[/bold]", ", ".join(result.subagents) or "–")
    skipped = [s.get("node", str(s)) if isinstance(s, dict) else str(s) for s in result.skipped]
    table.add_row("[bold]skipped[/bold]", ", ".join(skipped) or "–")
    table.add_row("[bold]sources[/bold]", str(len(result.sources)))
    table.add_row("[bold]chat[/bold]", result.persistence.conversation_id)
    err.print(table)
