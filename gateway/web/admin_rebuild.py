"""Projection rebuilds started from the operations page, with live progress.

``POST /api/v1/admin/projections/{name}/rebuild`` runs ``projections.rebuild.rebuild`` — the
function behind ``eco2 projections rebuild NAME`` — in a child process (folding is CPU-bound:
on this gateway's event loop it would stall its SSE clients), followed by a task of this
gateway, and answers 202 at once. Progress is written to Redis (``<ns>:admin:rebuild:<name>``, JSON, kept a
day) a few times a second, so every gateway process can report it:
``GET .../rebuild`` (the latest state) and ``GET .../rebuild/events`` (SSE ``progress`` events
until the rebuild ends). A second rebuild of the same projection — from this page, another
gateway or the CLI — fails with the rebuild lock's "already running" message.

If the gateway stops mid-rebuild the task is cancelled and the child killed; the state then
stops being updated
(``updated_at`` shows it) and the next rebuild drops the unfinished tables and starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import NotFound, NotReady
from gateway.state import GatewayResources as Resources
from gateway.state import gateway_state
from gateway.web.admin_auth import require_admin
from projections.builtin import UnknownProjection, get_projection
from projections.projection import Projection
from projections.rebuild_child import RebuildSpec, rebuild_in_child

log = logging.getLogger(__name__)

STATE_TTL_S = 86_400
FLUSH_EVERY_S = 0.25
POLL_EVERY_S = 0.25
KEEPALIVE_S = 15.0
FINAL = ("done", "failed")
TASKS_ATTR = "eco2_rebuild_tasks"  # app.state attribute: name -> running task (this process)


def state_key(namespace: str, name: str) -> str:
    return f"{namespace}:admin:rebuild:{name}"


class RebuildRunning(HTTPException):
    def __init__(self, name: str) -> None:
        super().__init__(status_code=409, detail=f"a rebuild of {name} is already running here")


def _projection(request: Request) -> Projection:
    try:
        return get_projection(request.path_params["name"])
    except UnknownProjection as exc:
        raise NotFound(str(exc.args[0])) from exc


def _tasks(request: Request) -> dict[str, asyncio.Task[None]]:
    tasks: dict[str, asyncio.Task[None]] | None = getattr(request.app.state, TASKS_ATTR, None)
    if tasks is None:
        tasks = {}
        setattr(request.app.state, TASKS_ATTR, tasks)
    return tasks


class ProgressWriter:
    """Keeps the rebuild's latest figures and writes them to Redis (from its own task, since
    the rebuild's progress callback is synchronous)."""

    def __init__(self, resources: Resources, name: str) -> None:
        self.redis = resources.redis
        self.key = state_key(resources.settings.namespace, name)
        self.state: dict[str, Any] = {
            "name": name, "state": "running", "done": 0, "total": None, "rate": 0.0,
            "started_at": time.time(), "updated_at": time.time(),
        }
        self._dirty = True

    def on_progress(self, figures: dict[str, Any]) -> None:
        self.state.update(
            done=figures["done"], total=figures["total"], rate=round(figures["rate"], 1)
        )
        if "pid" in figures:
            self.state["worker_pid"] = figures["pid"]  # the process folding (not this one)
        self._dirty = True

    def finish(self, **fields: Any) -> None:
        self.state.update(fields)
        self._dirty = True

    async def flush(self) -> None:
        if self._dirty:
            self._dirty = False
            self.state["updated_at"] = time.time()
            await self.redis.set(self.key, json.dumps(self.state), ex=STATE_TTL_S)

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.flush()


async def run_rebuild(resources: Resources, projection: Projection, writer: ProgressWriter) -> None:
    """Rebuild ``projection`` while ``writer`` publishes the progress; never raises (the
    outcome is the final state)."""
    flusher = asyncio.create_task(writer.flush_forever())
    try:
        settings = resources.settings
        assert settings.database_url is not None and settings.redis_url is not None
        spec = RebuildSpec(
            settings.database_url, settings.db_schema, settings.redis_url, settings.namespace,
            settings.shards, projection.name,
        )
        report = await rebuild_in_child(spec, writer.on_progress)
    except asyncio.CancelledError:
        writer.finish(state="failed", error="the gateway stopped during the rebuild")
        raise
    except Exception as exc:  # the outcome is shown to the operator, not raised into the loop
        log.warning("rebuild of %s failed: %s", projection.name, exc, exc_info=True)
        writer.finish(state="failed", error=str(exc) or type(exc).__name__)
    else:
        writer.finish(
            state="done", version=report.version, previous=report.previous,
            done=report.entries, total=report.entries, applied=report.applied,
            skipped=report.skipped, seconds=round(report.seconds, 3), rate=round(report.rate, 1),
        )
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await asyncio.shield(writer.flush())


async def start_rebuild(request: Request) -> JSONResponse:
    """``POST /api/v1/admin/projections/{name}/rebuild`` → 202 with the initial state."""
    await require_admin(request)
    projection = _projection(request)
    res = gateway_state(request).resources
    if res.pg is None:
        raise NotReady("DATABASE_URL is not set: no read models to rebuild")
    tasks = _tasks(request)
    running = tasks.get(projection.name)
    if running is not None and not running.done():
        raise RebuildRunning(projection.name)
    writer = ProgressWriter(res, projection.name)
    await writer.flush()
    task = asyncio.create_task(run_rebuild(res, projection, writer))
    tasks[projection.name] = task

    def forget(done: asyncio.Task[None]) -> None:
        if tasks.get(projection.name) is done:
            del tasks[projection.name]

    task.add_done_callback(forget)
    return JSONResponse(writer.state, status_code=202)


async def _read_state(request: Request, name: str) -> dict[str, Any] | None:
    res = gateway_state(request).resources
    raw = await res.redis.get(state_key(res.settings.namespace, name))
    state: dict[str, Any] | None = json.loads(raw) if raw else None
    return state


async def rebuild_state(request: Request) -> JSONResponse:
    """``GET .../rebuild`` → the latest state, or ``{"name", "state": "none"}``."""
    await require_admin(request)
    name = _projection(request).name
    return JSONResponse(await _read_state(request, name) or {"name": name, "state": "none"})


async def rebuild_events(request: Request) -> Response:
    """``GET .../rebuild/events`` → SSE ``progress`` events (each a state) until it ends."""
    await require_admin(request)
    name = _projection(request).name

    async def events() -> AsyncIterator[ServerSentEvent]:
        last: dict[str, Any] | None = None
        quiet_since = time.monotonic()
        while True:
            state = await _read_state(request, name) or {"name": name, "state": "none"}
            if state != last:
                last, quiet_since = state, time.monotonic()
                yield ServerSentEvent(data=json.dumps(state), event="progress")
                if state["state"] in (*FINAL, "none"):
                    return
            elif time.monotonic() - quiet_since > KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield ServerSentEvent(comment="keepalive")
            await asyncio.sleep(POLL_EVERY_S)

    return EventSourceResponse(events(), ping=0)
