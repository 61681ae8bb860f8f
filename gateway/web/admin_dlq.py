"""Dead letters over HTTP: the same ``eventstore.dlq.DeadLetters`` calls as ``eco2 dlq``.

- ``GET  /api/v1/admin/dlq?shard&group&type&error&limit`` → ``{"dead_letters": [...]}``
- ``GET  /api/v1/admin/dlq/{shard}/{dlq_id}`` → one dead letter with every recorded field
- ``POST /api/v1/admin/dlq/replay`` ``{shard?, group?, type?, error?, ids?, dry_run?}`` → what
  was (or would be) sent back to its failed group's retry stream
- ``POST /api/v1/admin/dlq/purge`` (same body) → what was (or would be) deleted

A replay or purge with no filter at all is refused: acting on every dead letter of every
shard must be asked for explicitly (``"all": true``), as on a command line one would type it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from eventstore.dlq import DeadLetter, DeadLetterFilter, DeadLetters
from eventstore.tracing import trace_id_of
from gateway.bodies import parse_body
from gateway.errors import InvalidRequest, NotFound
from gateway.params import strict_int
from gateway.state import gateway_state
from gateway.web.admin_auth import require_admin

MAX_LIST = 500


class DeadLetterAction(BaseModel):
    """Which dead letters a replay or purge applies to (empty fields match everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shard: int | None = Field(default=None, ge=0)
    group: str | None = Field(default=None, min_length=1, max_length=200)
    type: str | None = Field(default=None, min_length=1, max_length=200)
    error: str | None = Field(default=None, min_length=1, max_length=500)
    ids: tuple[str, ...] = Field(default=(), max_length=1000)
    dry_run: bool = False
    all: bool = False  # required when no other filter is given

    def where(self) -> DeadLetterFilter:
        return DeadLetterFilter(
            shard=self.shard, group=self.group, type=self.type, error=self.error, ids=self.ids
        )

    @property
    def unfiltered(self) -> bool:
        return (self.shard, self.group, self.type, self.error) == (None,) * 4 and not self.ids


def summary(letter: DeadLetter, trace_url: str | None = None) -> dict[str, Any]:
    """A dead letter as a table row (no payload); ``trace_link`` is ``trace_url`` (a trace
    UI's address template) filled with the trace of the request that caused the message."""
    trace_id = trace_id_of(letter.fields)
    return {
        "shard": letter.shard, "id": letter.id, "group": letter.group, "stream": letter.stream,
        "entry": letter.entry, "type": letter.type, "attempts": letter.attempts,
        "error": letter.error, "at": letter.at,
        "at_iso": dt.datetime.fromtimestamp(letter.at, dt.UTC).isoformat(timespec="seconds"),
        "aggregate_id": letter.fields.get("agg", ""),
        "trace_id": trace_id,
        "trace_link": trace_link(trace_url, trace_id),
    }


def trace_link(trace_url: str | None, trace_id: str | None) -> str | None:
    """``trace_url`` with ``{trace_id}`` filled in (None unless both are known)."""
    if trace_url is None or trace_id is None:
        return None
    return trace_url.replace("{trace_id}", trace_id)


def _trace_url(request: Request) -> str | None:
    return gateway_state(request).resources.settings.trace_url


def _dead_letters(request: Request) -> DeadLetters:
    res = gateway_state(request).resources
    return DeadLetters(res.redis, res.layout)


def _shard(request: Request, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    shards = gateway_state(request).resources.layout.shards
    return strict_int(raw, "shard", minimum=0, maximum=shards - 1)


async def list_dead_letters(request: Request) -> JSONResponse:
    await require_admin(request)
    q = request.query_params
    limit = strict_int(q.get("limit"), "limit", minimum=1, maximum=MAX_LIST, default=100)
    where = DeadLetterFilter(
        shard=_shard(request, q.get("shard")), group=q.get("group") or None,
        type=q.get("type") or None, error=q.get("error") or None,
    )
    letters = await _dead_letters(request).find(where, limit=limit)
    trace_url = _trace_url(request)
    return JSONResponse({"dead_letters": [summary(x, trace_url) for x in letters]})


async def show_dead_letter(request: Request) -> JSONResponse:
    await require_admin(request)
    shard = _shard(request, request.path_params["shard"])
    dlq_id = request.path_params["dlq_id"]
    letters = await _dead_letters(request).find(DeadLetterFilter(shard=shard, ids=(dlq_id,)))
    if not letters:
        raise NotFound(f"no dead letter {dlq_id} on shard {shard}")
    letter = letters[0]
    return JSONResponse({**summary(letter, _trace_url(request)), "fields": dict(sorted(letter.fields.items()))})


async def _action(request: Request) -> DeadLetterAction:
    await require_admin(request)
    body = await parse_body(request, DeadLetterAction)
    if body.unfiltered and not body.all:
        raise InvalidRequest("all", "no filter given: send \"all\": true to act on every dead letter")
    if body.ids and body.shard is None:
        # Entry ids are unique per shard only (two shards can dead-letter in one millisecond).
        raise InvalidRequest("shard", "required with ids: DLQ entry ids are per shard")
    if body.shard is not None:
        _shard(request, str(body.shard))
    return body


async def replay_dead_letters(request: Request) -> JSONResponse:
    body = await _action(request)
    letters = await _dead_letters(request).replay(body.where(), dry_run=body.dry_run)
    return JSONResponse({"dry_run": body.dry_run, "replayed": [summary(x) for x in letters]})


async def purge_dead_letters(request: Request) -> JSONResponse:
    body = await _action(request)
    letters = await _dead_letters(request).purge(body.where(), dry_run=body.dry_run)
    return JSONResponse({"dry_run": body.dry_run, "purged": [summary(x) for x in letters]})
