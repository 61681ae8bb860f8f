"""Query endpoints served from the read models, with read-your-writes where the client needs it.

A read model lags the log by the projectors' batch delay. Where a client may read right after a
write it caused, the query first asks whether the model already covers the aggregate's last
event (``covers``: the projection's checkpoint on that shard ≥ the event's position) and
otherwise — or when Postgres is unreachable — folds the aggregate's events from Redis, which is
the source of truth:

- ``GET /scan/{job}/result``: 200 from the ``scans`` model once it has the job finished; else,
  if the job's stream already holds ``done``, 200 from the folded events (the client reads the
  result once, right after ``done``); else 202 with ``Retry-After``.
- ``GET /users/me/characters`` and ``.../ownership``: the ``characters`` model when it covers
  the user's aggregate, else the folded ``CharacterGranted`` events.
- ``GET /character/catalog``: reference data (the seeded table, else the built-in list).
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

import schemas
from characters import Character
from eventstore.snapshotting import load_state
from gateway.auth import current_user
from gateway.errors import NotFound
from gateway.state import GatewayState, gateway_state
from projections.live_view import COMPLETED_MESSAGE, JobView, fold
from readmodels import queries
from readmodels.catalog import DEFAULT_CHARACTER, FALLBACK_CHARACTERS
from readmodels.queries import ScanView
from schemas.scan import SCAN_JOB, Stage
from schemas.user_state import UserState

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
RETRY_AFTER_S = 1
# What a read model being down looks like; the log answers instead.
PG_ERRORS = (asyncpg.PostgresError, OSError, asyncio.TimeoutError, asyncpg.InterfaceError)


def iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


async def covers(gw: GatewayState, projection: str, aggregate_id: str) -> bool:
    """True if ``projection``'s read model already reflects every event of the aggregate."""
    res = gw.resources
    if res.pg is None:
        return False
    keys = res.layout.keys_for(aggregate_id)
    last = await res.store.last_event(aggregate_id)
    if last is None:
        return True
    position = last.position or 0
    try:
        applied = await queries.applied_position(res.pg, projection, keys.shard)
    except PG_ERRORS as exc:
        log.warning("read model %s unreachable (%s): answering from the log", projection, exc)
        return False
    return applied >= position


# -- scan result ------------------------------------------------------------------------


def result_from_row(row: ScanView) -> dict[str, Any]:
    """The API's scan result from a finished ``scans`` row (the shape of ``live_view``)."""
    classified = row.classification or {}
    reward = None
    if row.reward:
        reward = {k: row.reward.get(k) for k in ("name", "dialog", "match_reason", "type", "code")}
    failed = row.status == "failed"
    return {
        "task_id": row.job_id,
        "status": "failed" if failed else "completed",
        "message": (row.error or {}).get("message", "") if failed else COMPLETED_MESSAGE,
        "pipeline_result": {
            "classification_result": {
                "classification": classified.get("classification"),
                "situation_tags": classified.get("situation_tags", []),
            },
            "disposal_rules": row.disposal_rules,
            "final_answer": row.answer,
        },
        "reward": reward,
        "error": row.error if failed else None,
    }


def _processing(stage: str | None, progress: int) -> JSONResponse:
    return JSONResponse(
        {"status": "processing", "current_stage": stage or Stage.QUEUED.value,
         "progress": progress},
        status_code=202, headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def scan_result(request: Request) -> JSONResponse:
    """``GET /scan/{job_id}/result``: 200 finished, 202 running, 404 unknown or not yours."""
    user_id = await current_user(request)
    gw = gateway_state(request)
    job_id = request.path_params["job_id"]
    if not _JOB_ID.fullmatch(job_id):
        raise NotFound("job not found")
    owner = await gw.reads.owner(job_id)
    if owner is None or owner.user_id != user_id or owner.kind not in ("", SCAN_JOB):
        raise NotFound("job not found")
    row: ScanView | None = None
    if gw.resources.pg is not None:
        try:
            row = await queries.get_scan(gw.resources.pg, job_id, user_id)
        except PG_ERRORS as exc:
            log.warning("scans read model unreachable (%s): answering from the log", exc)
    if row is not None and row.finished:
        return JSONResponse(result_from_row(row))
    # Read-your-writes: the job's own stream is ahead of (or instead of) the read model.
    history = [(e, m) for e, m in await gw.reads.events(job_id) if m is not None]
    view: JobView | None = fold(history)
    if view is not None and view.terminal and view.result is not None:
        return JSONResponse(view.result)
    if view is not None:
        return _processing(view.stage, view.progress)
    return _processing(row.stage if row else None, row.progress if row else 0)


# -- characters -------------------------------------------------------------------------


async def _catalog(gw: GatewayState) -> list[Character]:
    if gw.resources.pg is not None:
        try:
            found = await queries.catalog(gw.resources.pg)
            if found:
                return found
        except PG_ERRORS as exc:
            log.warning("catalog unreachable (%s): the built-in list answers", exc)
    return list(FALLBACK_CHARACTERS)


async def load_user(gw: GatewayState, user_id: str) -> UserState:
    """The user's state from its own stream (read-your-writes): its newest snapshot and the
    events after it."""
    return await load_state(gw.resources.store, UserState, user_id, schemas.registry)


async def owned_characters(gw: GatewayState, user_id: str) -> list[dict[str, Any]]:
    """The user's characters (default first), from the read model or the user's events."""
    if await covers(gw, "characters", user_id):
        try:
            assert gw.resources.pg is not None
            owned = await queries.list_characters(gw.resources.pg, user_id)
            return [_character(o.code, o.name, o.type, o.dialog, iso(o.acquired_at))
                    for o in owned]
        except PG_ERRORS as exc:
            log.warning("characters read model unreachable (%s): folding events", exc)
    catalog = {c.code: c for c in await _catalog(gw)}
    state = await load_user(gw, user_id)
    default = next((c for c in catalog.values() if c.is_default), None) or next(
        c for c in FALLBACK_CHARACTERS if c.name == DEFAULT_CHARACTER)
    out = []
    if all(o.code != default.code for o in state.characters):
        out.append(_character(default.code, default.name, default.type, default.dialog,
                              iso(state.registered_at)))
    for o in sorted(state.characters, key=lambda c: (c.acquired_at, c.code)):
        known = catalog.get(o.code)
        out.append(_character(o.code, o.name, known.type if known else "",
                              known.dialog if known else "", iso(o.acquired_at)))
    return out


def _character(code: str, name: str, type_: str, dialog: str, acquired: str | None
               ) -> dict[str, Any]:
    return {"id": code, "code": code, "name": name, "type": type_, "dialog": dialog,
            "acquired_at": acquired}


async def my_characters(request: Request) -> JSONResponse:
    """``GET /users/me/characters`` (a user with none gets the default character)."""
    user_id = await current_user(request)
    return JSONResponse(await owned_characters(gateway_state(request), user_id))


async def character_ownership(request: Request) -> JSONResponse:
    """``GET /users/me/characters/{character_name}/ownership``."""
    user_id = await current_user(request)
    name = request.path_params["character_name"]
    owned = await owned_characters(gateway_state(request), user_id)
    return JSONResponse({"character_name": name, "owned": any(c["name"] == name for c in owned)})


async def character_catalog(request: Request) -> JSONResponse:
    """``GET /character/catalog``: every character with the category that earns it."""
    await current_user(request)
    catalog = await _catalog(gateway_state(request))
    return JSONResponse([
        {"name": c.name, "type": c.type, "dialog": c.dialog, "match": c.match_label,
         "code": c.code}
        for c in catalog
    ])
