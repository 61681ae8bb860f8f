"""The Chat endpoints of API.md: sessions, messages, input and history (the turn's SSE stream
is in ``gateway.sse``).

Writes never wait for a model: a session change is one command whose event the request waits
for (the ``awaited`` handlers record it within milliseconds); a message or an input is one
command for the chat worker (202 at once).
Reads come from the ``chat`` read model (``projections.chat``), except when it has not applied
the chat's last event yet or Postgres is unreachable — then the chat's own events are folded
from Redis, so history read right after a turn's ``done`` already holds the answer
(read-your-writes). The chat list has no log fallback: 503 with ``Retry-After`` meanwhile.
Unknown chats and other users' chats are both 404 (no oracle).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import schemas
from gateway.auth import current_user
from gateway.bodies import parse_body
from gateway.edge import command_metadata
from gateway.errors import Conflict, DatabaseUnavailable, InvalidRequest, NotFound, NotReady
from gateway.images import public_base
from gateway.job_reads import OWNER_ROLE
from gateway.models import CATALOGUE_KEY, check_model
from gateway.outcomes import append_command, outcome
from gateway.params import idempotency_key, load_json, strict_int
from gateway.query_api import PG_ERRORS
from gateway.scan_api import check_image_url
from gateway.state import GatewayState, gateway_state
from projections import chat as read
from schemas.chat import (
    CHAT,
    CHAT_TURN,
    MAX_MESSAGE_CHARS,
    MAX_TITLE_CHARS,
    ChatDeleted,
    CreateChat,
    DeleteChat,
    ProvideInput,
    RenameChat,
    SendChatMessage,
    UserLocation,
)
from schemas.chat_state import ChatSession, TurnState
from schemas.envelope import Envelope
from schemas.registry import Command

log = logging.getLogger(__name__)

# uuid5 namespaces of ids derived from (user, idempotency key): a retry gets the same id.
CHAT_NAMESPACE = uuid.UUID("7d3c1b9e-0a4f-5e62-8c17-3b9f2e6a4d58")
TURN_NAMESPACE = uuid.UUID("a2e95c4d-6b18-5f03-9d7e-1c4b8f2a6e39")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


# -- bodies ----------------------------------------------------------------------------------

_BODY = ConfigDict(extra="ignore", str_strip_whitespace=True)


class CreateChatBody(BaseModel):
    model_config = _BODY
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)


class RenameChatBody(BaseModel):
    model_config = _BODY
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)


class MessageBody(BaseModel):
    model_config = _BODY
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    image_url: str | None = Field(default=None, max_length=2048)
    user_location: UserLocation | None = None
    model: str | None = Field(default=None, max_length=100)

    _known_model = field_validator("model")(check_model)  # 422 naming "model" if unknown


class InputBody(BaseModel):
    model_config = _BODY
    type: Literal["location", "confirmation", "cancel"]
    data: Any = None


# -- helpers ---------------------------------------------------------------------------------


def _iso(ts: float | datetime | None) -> str | None:
    if ts is None:
        return None
    moment = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return moment.astimezone(UTC).isoformat()


def encode_cursor(cursor: read.Cursor) -> str:
    raw = json.dumps([cursor[0].astimezone(UTC).isoformat(), cursor[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> read.Cursor | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        decoded = load_json(raw)
        moment, key = decoded if isinstance(decoded, list) else (None, None)
        if not isinstance(moment, str) or not isinstance(key, str):
            raise ValueError("not [timestamp, id]")
        at = datetime.fromisoformat(moment)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidRequest("cursor", "not a cursor this API returned") from exc
    if at.tzinfo is None:  # ours always carry their offset; a naive one cannot be compared
        raise InvalidRequest("cursor", "not a cursor this API returned")
    return at, key


def _limit(request: Request, default: int, maximum: int) -> int:
    return strict_int(request.query_params.get("limit"), "limit", minimum=1, maximum=maximum,
                      default=default)


def _new_id(namespace: uuid.UUID, user_id: str, key: str | None) -> str:
    return str(uuid.uuid4() if key is None else uuid.uuid5(namespace, f"{user_id}\x1f{key}"))


async def _load_chat(gw: GatewayState, chat_id: str) -> ChatSession:
    events = await gw.resources.store.read_aggregate(chat_id)
    return ChatSession.from_events(chat_id, events, schemas.registry)


async def _own_chat(gw: GatewayState, request: Request, user_id: str) -> ChatSession:
    chat_id = request.path_params["chat_id"]
    if not _ID.fullmatch(chat_id):
        raise NotFound("chat not found")
    chat = await _load_chat(gw, chat_id)
    if not chat.visible_to(user_id):
        raise NotFound("chat not found")
    return chat


async def _change_chat(gw: GatewayState, request: Request, chat: ChatSession, user_id: str,
                       command: Command) -> Envelope:
    """Append a session ``command`` and wait for the event it causes — or for the chat's
    deletion, which a rename racing with it must not wait out."""
    sent = await append_command(
        gw.resources.store, command, aggregate_id=chat.chat_id, aggregate_type=CHAT,
        metadata=command_metadata(request, user_id),
    )
    deleted = schemas.registry.wire_name(ChatDeleted)[0]
    return await outcome(
        gw.resources.store, chat.chat_id, after_version=chat.version,
        match=lambda envelope: sent.caused(envelope) or envelope.type == deleted,
        within_s=gw.resources.settings.command_wait_s,
    )


async def _append_command(gw: GatewayState, request: Request, job_id: str, user_id: str, command: Command,
                          store_key: str | None, *, new_job: bool = False) -> str:
    """Append ``command`` for ``job_id``; a ``new_job``'s pending owner goes with it (written
    before the command, in the same round trip), so a stream opened right after the 202 finds
    its owner (``job_reads``)."""
    envelope = schemas.registry.envelope(
        command, aggregate_id=job_id, aggregate_type=CHAT_TURN,
        metadata=command_metadata(request, user_id),
    )
    if store_key is not None:
        store_key = "chat:" + hashlib.sha256(f"{user_id}\x1f{store_key}".encode()).hexdigest()[:40]
    receipt = await gw.resources.store.append_command(
        envelope, idempotency_key=store_key, document=(OWNER_ROLE, user_id) if new_job else None
    )
    return receipt.aggregate_id


# -- sessions --------------------------------------------------------------------------------


async def list_chats(request: Request) -> JSONResponse:
    user_id = await current_user(request)
    gw = gateway_state(request)
    limit = _limit(request, 20, 100)
    after = decode_cursor(request.query_params.get("cursor"))
    if gw.resources.pg is None:
        raise NotReady("chat read models are not configured (DATABASE_URL)")
    try:
        rows = await read.list_chats(gw.resources.pg, user_id, limit=limit + 1, after=after)
    except PG_ERRORS as exc:  # the log has no per-user index of chats to answer instead
        raise DatabaseUnavailable("the chat list is unavailable for a moment") from exc
    page, more = rows[:limit], len(rows) > limit
    chats = [
        {"id": r.id, "title": r.title, "preview": r.preview, "message_count": r.message_count,
         "last_message_at": _iso(r.last_message_at), "created_at": _iso(r.created_at)}
        for r in page
    ]
    cursor = encode_cursor((page[-1].activity, page[-1].id)) if more and page else None
    return JSONResponse({"chats": chats, "next_cursor": cursor})


async def create_chat(request: Request) -> JSONResponse:
    user_id = await current_user(request)
    gw = gateway_state(request)
    body = await parse_body(request, CreateChatBody)
    chat_id = _new_id(CHAT_NAMESPACE, user_id, idempotency_key(request))
    existing = await _load_chat(gw, chat_id)
    if existing.created_at is None:  # a retry with the same key finds the chat created
        command = CreateChat(chat_id=chat_id, user_id=user_id, title=body.title or None)
        await append_command(
            gw.resources.store, command, aggregate_id=chat_id, aggregate_type=CHAT,
            metadata=command_metadata(request, user_id),
        )
        await outcome(gw.resources.store, chat_id, after_version=0, match=lambda e: True,
                      within_s=gw.resources.settings.command_wait_s)
        existing = await _load_chat(gw, chat_id)
    return JSONResponse(
        {"id": chat_id, "title": existing.title, "created_at": _iso(existing.created_at)},
        status_code=201,
    )


async def get_chat(request: Request) -> JSONResponse:
    user_id = await current_user(request)
    gw = gateway_state(request)
    limit = _limit(request, 50, 200)
    before = decode_cursor(request.query_params.get("cursor"))
    chat_id = request.path_params["chat_id"]
    if not _ID.fullmatch(chat_id):
        raise NotFound("chat not found")
    try:
        page = await _history_from_read_model(gw, chat_id, user_id, limit, before)
    except PG_ERRORS as exc:
        log.warning("chat read model unreachable (%s): folding the chat's events", exc)
        page = None
    if page is None:  # the read model is behind this chat (or absent): fold its events
        chat = await _own_chat(gw, request, user_id)
        page = _history_from_fold(chat, limit, before)
    return JSONResponse(page)


async def _history_from_read_model(
    gw: GatewayState, chat_id: str, user_id: str, limit: int, before: read.Cursor | None
) -> dict[str, Any] | None:
    pg, layout = gw.resources.pg, gw.resources.layout
    if pg is None:
        return None
    keys = layout.keys_for(chat_id)
    last = await gw.resources.store.last_event(chat_id)
    if last is None:
        raise NotFound("chat not found")
    position = last.position or 0
    if not position or not await read.caught_up(pg, keys.shard, position):
        return None
    summary = await read.get_chat(pg, chat_id)
    if summary is None or summary.deleted or summary.user_id != user_id:
        raise NotFound("chat not found")
    rows = await read.list_messages(pg, chat_id, limit=limit + 1, before=before)
    page, more = rows[:limit], len(rows) > limit
    return _history_body(
        chat_id, summary.title, summary.created_at, [_message(m.id, m) for m in reversed(page)],
        (page[-1].created_at, page[-1].id) if more else None,
    )


def _history_from_fold(chat: ChatSession, limit: int, before: read.Cursor | None) -> dict[str, Any]:
    def key(m: Any) -> tuple[datetime, str]:
        return datetime.fromtimestamp(m.created_at, UTC), m.message_id

    newest_first = sorted(chat.messages, key=key, reverse=True)
    if before is not None:
        newest_first = [m for m in newest_first if key(m) < before]
    page, more = newest_first[:limit], len(newest_first) > limit
    return _history_body(
        chat.chat_id, chat.title, chat.created_at,
        [_message(m.message_id, m) for m in reversed(page)], key(page[-1]) if more else None,
    )


def _message(message_id: str, m: Any) -> dict[str, Any]:
    """One message of a history page, from a read-model row or from the folded chat."""
    return {"id": message_id, "role": m.role, "content": m.content, "image_url": m.image_url,
            "intent": m.intent, "metadata": m.metadata, "created_at": _iso(m.created_at)}


def _history_body(
    chat_id: str, title: str | None, created_at: float | datetime | None,
    messages: list[dict[str, Any]], next_cursor: read.Cursor | None,
) -> dict[str, Any]:
    """One page of a chat's history (oldest first), however it was read; ``next_cursor`` is
    where the next (older) page starts, None when this one is the last."""
    return {
        "id": chat_id, "title": title, "messages": messages, "has_more": next_cursor is not None,
        "next_cursor": None if next_cursor is None else encode_cursor(next_cursor),
        "created_at": _iso(created_at),
    }


async def rename_chat(request: Request) -> Response:
    user_id = await current_user(request)
    gw = gateway_state(request)
    body = await parse_body(request, RenameChatBody)
    chat = await _own_chat(gw, request, user_id)
    command = RenameChat(chat_id=chat.chat_id, user_id=user_id, title=body.title)
    if isinstance(schemas.registry.decode_envelope(
        await _change_chat(gw, request, chat, user_id, command)
    ), ChatDeleted):
        raise NotFound("chat not found")
    return Response(status_code=204)


async def delete_chat(request: Request) -> Response:
    user_id = await current_user(request)
    gw = gateway_state(request)
    chat = await _own_chat(gw, request, user_id)
    await _change_chat(gw, request, chat, user_id, DeleteChat(chat_id=chat.chat_id, user_id=user_id))
    return Response(status_code=204)


# -- turns -----------------------------------------------------------------------------------


async def send_message(request: Request) -> JSONResponse:
    user_id = await current_user(request)
    gw = gateway_state(request)
    res = gw.resources
    body = await parse_body(request, MessageBody, context={CATALOGUE_KEY: res.settings.models})
    if body.image_url:
        await check_image_url(body.image_url, public_base(request, res.settings), res.settings,
                              res.media)
    chat = await _own_chat(gw, request, user_id)
    key = idempotency_key(request)
    job_id = _new_id(TURN_NAMESPACE, user_id, key)
    command = SendChatMessage(
        job_id=job_id, chat_id=chat.chat_id, user_id=user_id, message=body.message,
        image_url=body.image_url, user_location=body.user_location, model=body.model,
    )
    job_id = await _append_command(gw, request, job_id, user_id, command, key and f"msg:{key}",
                                   new_job=True)
    return JSONResponse(
        {"job_id": job_id, "stream_url": f"/api/v1/chat/{job_id}/events", "status": "submitted"},
        status_code=202,
    )


def _location(data: Any) -> UserLocation | None:
    if not isinstance(data, dict):
        return None
    lat = data.get("latitude", data.get("lat"))
    lon = data.get("longitude", data.get("lon", data.get("lng")))
    if lat is None or lon is None:
        return None
    try:
        return UserLocation(latitude=lat, longitude=lon)
    except ValidationError as exc:
        raise InvalidRequest("data", "latitude/longitude are out of range") from exc


async def provide_input(request: Request) -> JSONResponse:
    user_id = await current_user(request)
    gw = gateway_state(request)
    body = await parse_body(request, InputBody)
    job_id = request.path_params["job_id"]
    if not _ID.fullmatch(job_id):
        raise NotFound("chat turn not found")
    owner = await gw.reads.owner(job_id)
    if owner is None or owner.user_id != user_id or owner.kind not in ("", CHAT_TURN):
        raise NotFound("chat turn not found")
    turn = TurnState.from_events(
        job_id, await gw.resources.store.read_aggregate(job_id), schemas.registry
    )
    if not turn.is_waiting or turn.waiting is None:
        raise Conflict("this chat turn is not waiting for input")
    location = _location(body.data)
    if body.type != "cancel" and turn.waiting.input_type == "location" and location is None:
        raise InvalidRequest("data", "the turn needs {\"latitude\", \"longitude\"}")
    data = body.data if isinstance(body.data, dict) else {}
    command = ProvideInput(
        job_id=job_id, user_id=user_id, type=body.type, data=cast(dict[str, Any], data),
        location=location, waiting_version=turn.waiting_version,
    )
    # One input per question: a double submit is the same command.
    await _append_command(gw, request, job_id, user_id, command, f"input:{job_id}:{turn.waiting_version}")
    return JSONResponse({"status": "received", "job_id": job_id})
