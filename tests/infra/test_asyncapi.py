"""The workers' AsyncAPI document: generated from their FastStream brokers, printed by
``eco2 docs asyncapi`` and served by the gateway at ``/docs/asyncapi`` (page) and
``/docs/asyncapi.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from commands.workers import WORKER_KINDS
from eventstore.keys import Layout
from infra.asyncapi import asyncapi_document
from infra.cli import app
from infra.gateway_app import create_app
from infra.settings import Settings
from tests.gateway.helpers import asgi_client

SOURCES = {"scan": "commands", "reward": "events", "chat": "commands", "snapshot": "events"}


def readers(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(consumer group, stream) of every channel the document describes."""
    out = set()
    for channel in doc["channels"].values():
        binding = channel["bindings"]["redis"]
        out.add((binding["groupName"], binding["channel"]))
    return out


def expected(namespace: str, shards: int) -> set[tuple[str, str]]:
    layout = Layout(namespace, shards)
    out = set()
    for kind in WORKER_KINDS:
        for shard in range(shards):
            keys = layout.keys(shard)
            source = keys.commands if SOURCES[kind] == "commands" else keys.events
            out |= {(kind, source), (kind, keys.retry(kind))}
    return out


def test_eco2_docs_asyncapi_prints_every_group_on_every_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECO2_NAMESPACE", "docs")
    monkeypatch.setenv("ECO2_SHARDS", "3")
    printed = CliRunner().invoke(app, ["docs", "asyncapi"])
    assert printed.exit_code == 0, printed.output
    doc = json.loads(printed.stdout)
    assert doc["asyncapi"].startswith("3.") and doc["info"]["title"]
    assert readers(doc) == expected("docs", 3)
    assert all(op["action"] == "receive" for op in doc["operations"].values())

    out = tmp_path / "asyncapi.json"
    written = CliRunner().invoke(app, ["docs", "asyncapi", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert json.loads(out.read_text("utf-8")) == doc


@pytest.mark.redis
async def test_the_gateway_serves_the_document_infra_generated(
    redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"REDIS_URL": redis_url, "ECO2_NAMESPACE": namespace,
                        "ECO2_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings.from_env()
    gateway = create_app()  # the composition root's app, as uvicorn runs it
    async with asgi_client(gateway) as client:  # type: ignore[arg-type]
        served = await client.get("/docs/asyncapi.json")
        page = await client.get("/docs/asyncapi")
    assert served.status_code == 200
    assert served.json() == asyncapi_document(settings)
    assert readers(served.json()) == expected(namespace, settings.shards)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert Layout(namespace, settings.shards).keys(0).commands in page.text
    assert "/docs/asyncapi.json" in page.text
