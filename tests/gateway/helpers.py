"""Helpers for gateway tests: scan events, an in-process server, a lifespan-aware ASGI client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

import schemas
from eventstore.store import ANY, EventStore
from schemas.classification import Classification, ScanAnswer
from schemas.envelope import Envelope, Metadata
from schemas.registry import Event
from schemas.scan import (
    SCAN_JOB,
    AnswerCompleted,
    Reward,
    RewardCompleted,
    RuleCompleted,
    ScanCompleted,
    ScanFailed,
    ScanQueued,
    Stage,
    StageStarted,
    VisionCompleted,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64

CLASSIFICATION = Classification(
    major_category="재활용폐기물", middle_category="무색페트병", minor_category="음료PET병"
)


def scan_event(job_id: str, event: Event, user_id: str) -> Envelope:
    return schemas.registry.envelope(
        event, aggregate_id=job_id, aggregate_type=SCAN_JOB, metadata=Metadata(user_id=user_id)
    )


def full_scan(user_id: str) -> list[Event]:
    """A successful scan's ten events, in order."""
    return [
        ScanQueued(user_id=user_id, image_url="http://testserver/media/scan/x.png"),
        StageStarted(stage=Stage.VISION, progress=5),
        VisionCompleted(classification=CLASSIFICATION, situation_tags=["label_attached"]),
        StageStarted(stage=Stage.RULE, progress=45),
        RuleCompleted(disposal_rules={"steps": ["라벨 제거"]}),
        StageStarted(stage=Stage.ANSWER, progress=60),
        AnswerCompleted(
            user_id=user_id, classification=CLASSIFICATION, rule_found=True,
            answer=ScanAnswer(disposal_steps={"1": "라벨을 떼세요"}, user_answer="페트병이에요"),
        ),
        StageStarted(stage=Stage.REWARD, progress=90),
        RewardCompleted(
            reward=Reward(code="char-petty", name="페티", dialog="안녕", match_reason="무색페트병",
                          type="재활용")
        ),
        ScanCompleted(user_id=user_id),
    ]


def failed_scan(user_id: str) -> list[Event]:
    return [
        ScanQueued(user_id=user_id, image_url="http://testserver/media/scan/x.png"),
        StageStarted(stage=Stage.VISION, progress=5),
        ScanFailed(user_id=user_id, stage=Stage.VISION, error="이미지를 읽을 수 없어요"),
    ]


async def append(store: EventStore, job_id: str, user_id: str, *events: Event) -> int:
    """Append ``events`` to the job; its new version."""
    result = await store.append(
        [scan_event(job_id, e, user_id) for e in events], expected_version=ANY
    )
    return result.last_version


@asynccontextmanager
async def asgi_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on ``app`` with its lifespan run (state passed like uvicorn does)."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(
            scope: MutableMapping[str, Any],
            receive: Callable[[], Awaitable[Any]],
            send: Callable[[Any], Awaitable[None]],
        ) -> None:
            scope = {**scope, "state": dict(state or {})}
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def until_reached(
    count: Callable[[], int], target: int, *, what: str, tasks: list[asyncio.Task[None]],
    stall_s: float = 60.0,
) -> None:
    """Wait until ``count()`` reaches ``target``. Fails only when nothing moves for ``stall_s``
    (a loaded machine is slow, not broken) or when one of ``tasks`` failed."""
    seen, since = count(), time.monotonic()
    while seen < target:
        failed = next((t for t in tasks if t.done() and not t.cancelled() and t.exception()), None)
        if failed is not None:
            raise failed.exception()  # type: ignore[misc]
        if time.monotonic() - since > stall_s:
            raise AssertionError(f"{what}: stuck at {seen} of {target} for {stall_s:.0f} s")
        await asyncio.sleep(0.05)
        if count() != seen:
            seen, since = count(), time.monotonic()


class ServerThread:
    """uvicorn serving ``app`` on a free loopback port, in a thread of this process."""

    def __init__(self, app: Starlette) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1,
            backlog=4096, limit_concurrency=None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60  # the lifespan opens Redis and Postgres resources
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        with contextlib.suppress(OSError):
            self.sock.close()


def as_user(settings: Any, user_id: str) -> dict[str, str]:
    """Request headers acting as ``user_id``: a Bearer access token once the auth issue's
    token module is there, else the development header it replaced."""
    try:
        from gateway.auth_tokens import bearer
    except ImportError:
        return {"X-User-Id": user_id}
    headers: dict[str, str] = bearer(settings, user_id)
    return headers
