"""Chat on the read side: the ``chat`` read model, its queries, and the turn's live view.

- ``CHAT`` projects the chat aggregate into ``chat_sessions`` / ``chat_messages`` (every event
  of a chat is on the chat's shard, so rows are written by one shard only and in order);
- the query functions below are the only readers of those tables (the gateway's chat API);
- the ``live_mapping`` reducers turn the turn's events into the SSE messages of API.md
  (``queued``, stages named after nodes, ``token``, ``needs_input``, ``done``), plus
  ``token_recovery``, which the gateway builds for fresh connections from the turn's history.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from projections.changes import Changes
from projections.live_view import JobView, Transition, live_mapping
from projections.projection import Projection, event_time
from readmodels import tables
from schemas.chat import (
    NODE_PROGRESS,
    PREVIEW_CHARS,
    SUBAGENT_PROGRESS,
    ChatCreated,
    ChatDeleted,
    ChatRenamed,
    InputReceived,
    MessageRecorded,
    NodeProgressed,
    TokenRecovery,
    TokensEmitted,
    TurnCompleted,
    TurnFailed,
    TurnQueued,
    TurnWaiting,
    auto_title,
    clip,
)
from schemas.envelope import Envelope, EnvelopeView
from schemas.registry import Message
from schemas.users import UserDeleted

if TYPE_CHECKING:
    from readmodels.db import Conn, Pool

    Executor: TypeAlias = Pool | Conn

CHAT = Projection("chat", tables.CHAT.code_version, tables.CHAT, shared=frozenset({"chat_users"}))

# A deleted user's own words leave the read model: chat titles and previews, and the content
# and image of the messages they typed (ids, roles, counts and times stay). Chats and the
# deletion come from different shards, in any order: as in ``projections.scans``, both write
# the user's ``chat_users`` row or the chat's row, and every batch ends with these scrubs.
_ERASED = (
    " FROM {chat_users} u WHERE u.user_id = s.user_id AND u.erased_at IS NOT NULL AND s.%s"
    " = ANY($1::text[])"
)
# Every session of the user, even one with nothing to scrub: the row lock is what orders this
# batch after a concurrent one that is adding a message to it.
_SCRUB_SESSIONS = "UPDATE {chat_sessions} s SET title = NULL, preview = NULL" + _ERASED
_SCRUB_MESSAGES = (
    "UPDATE {chat_messages} m SET content = '', image_url = NULL"
    " FROM {chat_sessions} s, {chat_users} u WHERE m.chat_id = s.id AND m.role = 'user'"
    " AND (m.content <> '' OR m.image_url IS NOT NULL)"
    " AND u.user_id = s.user_id AND u.erased_at IS NOT NULL AND s.%s = ANY($1::text[])"
)
SCRUB_BY_CHAT = (_SCRUB_SESSIONS % "id", _SCRUB_MESSAGES % "id")
SCRUB_BY_USER = (_SCRUB_SESSIONS % "user_id", _SCRUB_MESSAGES % "user_id")


def _scrub(changes: Changes, statements: tuple[str, str], key: str) -> None:
    # Sessions first: waiting for their row locks orders this batch after a concurrent one
    # that wrote the chat, and the message scrub that follows then sees its messages.
    for sql in statements:
        changes.execute_last(sql, key)


# -- the read model --------------------------------------------------------------------------


@CHAT.on(ChatCreated)
def _created(changes: Changes, event: ChatCreated, envelope: EnvelopeView) -> None:
    changes.set(
        "chat_sessions", envelope.aggregate_id, user_id=event.user_id, title=event.title,
        created_at=event_time(envelope), deleted=False,
    )
    changes.add("chat_users", event.user_id, chats=1)
    _scrub(changes, SCRUB_BY_CHAT, envelope.aggregate_id)


# Later events of a chat UPDATE its row rather than upsert it: the row's NOT NULL columns
# (owner, creation time) are known only to ``ChatCreated``, always the chat's first event.


@CHAT.on(ChatRenamed)
def _renamed(changes: Changes, event: ChatRenamed, envelope: EnvelopeView) -> None:
    changes.execute(
        "UPDATE {chat_sessions} SET title = $2 WHERE id = $1", envelope.aggregate_id, event.title
    )
    _scrub(changes, SCRUB_BY_CHAT, envelope.aggregate_id)


@CHAT.on(ChatDeleted)
def _deleted(changes: Changes, event: ChatDeleted, envelope: EnvelopeView) -> None:
    changes.execute("UPDATE {chat_sessions} SET deleted = true WHERE id = $1", envelope.aggregate_id)
    # The conversation leaves the read model with the chat (the log keeps the events).
    changes.execute("DELETE FROM {chat_messages} WHERE chat_id = $1", envelope.aggregate_id)


@CHAT.on(MessageRecorded)
def _message(changes: Changes, event: MessageRecorded, envelope: EnvelopeView) -> None:
    at = event_time(envelope)
    changes.insert_once(
        "chat_messages", event.message_id, chat_id=envelope.aggregate_id, role=event.role,
        content=event.content, image_url=event.image_url, intent=event.intent,
        metadata=json.dumps(event.metadata, ensure_ascii=False, sort_keys=True), created_at=at,
    )
    # An untitled chat is named after its first question (the same rule as the Redis fold).
    title = auto_title(event.content) if event.role == "user" else None
    changes.execute(
        "UPDATE {chat_sessions} SET preview = $2, last_message_at = $3,"
        " message_count = message_count + 1, title = coalesce(title, $4) WHERE id = $1",
        envelope.aggregate_id, clip(event.content, PREVIEW_CHARS), at, title,
    )
    _scrub(changes, SCRUB_BY_CHAT, envelope.aggregate_id)


@CHAT.on(UserDeleted)
def _user_deleted(changes: Changes, event: UserDeleted, envelope: EnvelopeView) -> None:
    changes.set("chat_users", envelope.aggregate_id, erased_at=event_time(envelope))
    _scrub(changes, SCRUB_BY_USER, envelope.aggregate_id)


# -- queries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatSummary:
    id: str
    user_id: str
    title: str | None
    preview: str | None
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    deleted: bool

    @property
    def activity(self) -> datetime:
        """What lists are ordered by: the last message, else the creation."""
        return self.last_message_at or self.created_at


@dataclass(frozen=True)
class ChatMessageRow:
    id: str
    chat_id: str
    role: str
    content: str
    image_url: str | None
    intent: str | None
    metadata: dict[str, Any]
    created_at: datetime


Cursor = tuple[datetime, str]  # (time, id) of the last item of the previous page


async def list_chats(
    db: Executor, user_id: str, *, limit: int, after: Cursor | None = None
) -> list[ChatSummary]:
    """The user's chats, most recent activity first; ``limit`` rows after ``after``."""
    rows = await db.fetch(
        "SELECT * FROM chat_sessions WHERE user_id = $1 AND NOT deleted"
        " AND ($2::timestamptz IS NULL OR (coalesce(last_message_at, created_at), id) < ($2, $3))"
        " ORDER BY coalesce(last_message_at, created_at) DESC, id DESC LIMIT $4",
        user_id, after[0] if after else None, after[1] if after else "", limit,
    )
    return [ChatSummary(**dict(r)) for r in rows]


async def get_chat(db: Executor, chat_id: str) -> ChatSummary | None:
    """One chat (deleted ones too: the caller decides what the user may see)."""
    row = await db.fetchrow("SELECT * FROM chat_sessions WHERE id = $1", chat_id)
    return None if row is None else ChatSummary(**dict(row))


async def list_messages(
    db: Executor, chat_id: str, *, limit: int, before: Cursor | None = None
) -> list[ChatMessageRow]:
    """Up to ``limit`` messages of the chat older than ``before``, newest first."""
    rows = await db.fetch(
        "SELECT * FROM chat_messages WHERE chat_id = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))"
        " ORDER BY created_at DESC, id DESC LIMIT $4",
        chat_id, before[0] if before else None, before[1] if before else "", limit,
    )
    out = []
    for r in rows:
        fields = dict(r)
        fields["metadata"] = json.loads(fields["metadata"]) if fields["metadata"] else {}
        out.append(ChatMessageRow(**fields))
    return out


async def caught_up(db: Executor, shard: int, position: int) -> bool:
    """True when the chat projection (active tables) has applied shard ``shard`` up to
    ``position`` — the read model then holds every event of an aggregate that ends there."""
    value = await db.fetchval(
        "SELECT c.position FROM checkpoints c JOIN projections p ON p.name = c.projection"
        " AND c.suffix = 'v' || p.active_version WHERE c.projection = $1 AND c.shard = $2",
        CHAT.name, shard,
    )
    return value is not None and int(value) >= position


# -- the turn's live view (SSE) --------------------------------------------------------------


@live_mapping(TurnQueued)
def _live_queued(view: JobView, envelope: Envelope, m: TurnQueued) -> Transition:
    return Transition(
        "queued", "completed", NODE_PROGRESS["queued"], {"chat_id": m.chat_id},
        user_id=m.user_id, facts={"chat_id": m.chat_id},
    )


@live_mapping(NodeProgressed)
def _live_node(view: JobView, envelope: Envelope, m: NodeProgressed) -> Transition:
    result: dict[str, Any] = {"node": m.node, **m.detail}
    status: str = m.status
    if m.status == "skipped":  # not a status of API.md: a completed stage that says so
        status, result["skipped"] = "completed", True
    progress = None
    if status in ("completed", "failed"):
        progress = max(view.progress, NODE_PROGRESS.get(m.node, SUBAGENT_PROGRESS))
    return Transition(m.node, status, progress, result, message=m.message)


@live_mapping(TokensEmitted)
def _live_tokens(view: JobView, envelope: Envelope, m: TokensEmitted) -> Transition:
    return Transition("token", "streaming", extra={"content": m.content, "node": m.node})


@live_mapping(TokenRecovery)
def _live_recovery(view: JobView, envelope: Envelope, m: TokenRecovery) -> Transition:
    extra = {"accumulated": m.accumulated, "last_seq": m.last_seq, "completed": m.completed,
             "node": m.node}
    return Transition("token_recovery", "completed" if m.completed else "streaming", extra=extra)


@live_mapping(TurnWaiting)
def _live_waiting(view: JobView, envelope: Envelope, m: TurnWaiting) -> Transition:
    result = {"input_type": m.input_type, "message": m.message}
    return Transition("needs_input", "waiting", result=result, message=m.message,
                      extra={"input_type": m.input_type})


@live_mapping(InputReceived)
def _live_input(view: JobView, envelope: Envelope, m: InputReceived) -> Transition:
    # Not an event the client listens for: it only keeps versions contiguous.
    return Transition("input", "completed", result={"type": m.type})


@live_mapping(TurnCompleted)
def _live_completed(view: JobView, envelope: Envelope, m: TurnCompleted) -> Transition:
    result = m.result.model_dump(mode="json")
    return Transition("done", "completed", NODE_PROGRESS["done"], result, user_id=m.user_id,
                      final={"status": "completed", **result})


@live_mapping(TurnFailed)
def _live_failed(view: JobView, envelope: Envelope, m: TurnFailed) -> Transition:
    error = {"code": m.code, "message": m.message}
    return Transition("done", "failed", None, {"error": error}, message=m.message,
                      user_id=m.user_id, final={"status": "failed", "error": error})


def with_token_recovery(
    history: Sequence[tuple[Envelope, Message | None]],
) -> list[tuple[Envelope, Message | None]]:
    """The history a fresh connection is sent: the text's deltas collapsed into one
    ``TokenRecovery`` at the version of the last delta (its ``id:``), everything else as is.
    A later reconnect with that ``Last-Event-ID`` gets the deltas after it, one by one."""
    deltas = [(e, m) for e, m in history if isinstance(m, TokensEmitted)]
    if not deltas:
        return list(history)
    last, last_delta = deltas[-1]
    recovery = TokenRecovery(
        accumulated="".join(m.content for _, m in deltas),
        last_seq=last.version,
        completed=any(isinstance(m, TurnCompleted | TurnFailed) for _, m in history),
        node=last_delta.node,
    )
    out: list[tuple[Envelope, Message | None]] = []
    for envelope, message in history:
        if isinstance(message, TokensEmitted):
            if envelope.version == last.version:
                out.append((envelope, recovery))
            continue
        out.append((envelope, message))
    return out
