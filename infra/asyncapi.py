"""The AsyncAPI document of the handler workers, generated from their FastStream brokers.

Each worker kind's subscription (``commands.workers.described``: its group, source stream and
message classes, no dependencies) is laid out as the runtime lays it out (``Runner``: a reader
per shard stream and retry stream), and FastStream's AsyncAPI generator describes the brokers.
Nothing connects to Redis. ``eco2 docs asyncapi`` prints it; the gateway serves it at
``/docs/asyncapi`` (given in ``app.state.asyncapi`` by ``infra.gateway_app``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import redis.asyncio as aioredis
from faststream.specification import AsyncAPI

import schemas
from commands.workers import WORKER_KINDS, WorkerDeps, described
from eventstore.consumer import RunnerOptions
from eventstore.keys import Layout
from eventstore.runtime import Runner
from eventstore.store import EventStore
from infra.settings import Settings

DESCRIPTION = (
    "The handler workers of Eco²: consumer groups over every shard's commands and events "
    "streams (and each group's retry stream), run as FastStream Redis stream subscribers. "
    "Entries are the log's envelopes (fields `type`, `aggregate_id`, `version`, `data`, "
    "`metadata`, …), not FastStream's `__data__` wire format."
)


def _version() -> str:
    try:
        return version("eco2")
    except PackageNotFoundError:
        return "0"


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    """The workers' AsyncAPI 3.0 document as a JSON-ready dict."""
    layout = Layout(settings.namespace, settings.shards)
    url = settings.redis_url or "redis://localhost:6379"
    redis = aioredis.Redis.from_url(url, decode_responses=True)  # never connected: describes
    deps = WorkerDeps(redis=redis, layout=layout, store=EventStore(redis, layout, schemas.registry))
    brokers = []
    for kind in WORKER_KINDS:
        runner = Runner(redis, layout, schemas.registry, described(kind, deps),
                        consumer=f"{kind}-<host>-<pid>", options=RunnerOptions(), url=url)
        brokers.append(runner.broker)
    spec = AsyncAPI(*brokers, title="Eco² handler workers", version=_version(),
                    description=DESCRIPTION).to_specification()
    document: dict[str, Any] = spec.to_jsonable()
    return document
