"""``eco2 docs``: the generated API documents (the workers' AsyncAPI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from infra.settings import Settings

docs_app = typer.Typer(help="Generated API documents.", no_args_is_help=True)


@docs_app.command("asyncapi")
def asyncapi(
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of printing it.")]
    = None,
) -> None:
    """The AsyncAPI document of the handler workers (from their FastStream brokers)."""
    from infra.asyncapi import asyncapi_document

    text = json.dumps(asyncapi_document(Settings.from_env()), indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
