"""Fixtures for the scan chain, reward and chat turn handlers: the event store (the in-memory
twin, and real Redis under the ``redis`` mark), in-memory twins for the other ports (local
vision/LLM are deterministic), and helpers to deliver messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pytest

import schemas
from agents.knowledge import KnowledgeBase
from agents.llm.local import LocalLLM, LocalVision
from agents.llm.ports import LLM, ImageInput, Vision, VisionResult
from characters import CharacterService, InMemoryCharacters
from commands.reward import handle_answer_completed
from commands.scan.chain import handle_request_scan
from eventstore.keys import Layout
from eventstore.memory import MemoryEventStore
from eventstore.port import EventStorePort
from eventstore.store import EventStore
from infra.settings import Settings
from media.keys import cdn_url, key_from_url
from media.store import InMemoryMediaStore
from schemas.envelope import Envelope
from schemas.registry import Message
from schemas.scan import SCAN_JOB, AnswerCompleted, RequestScan

BASE_URL = "http://testserver"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@lru_cache(maxsize=1)
def knowledge() -> KnowledgeBase:
    return KnowledgeBase.load()


class CountingVision:
    """A ``Vision`` that counts calls before delegating (to prove a stage never runs twice)."""

    def __init__(self, inner: Vision) -> None:
        self.inner = inner
        self.calls = 0

    async def classify(
        self, image: ImageInput, *, hint: str | None = None, model: str | None = None
    ) -> VisionResult:
        self.calls += 1
        return await self.inner.classify(image, hint=hint, model=model)


@dataclass
class ScanWorld:
    """Everything a handler needs, plus delivery helpers."""

    store: EventStorePort
    media: InMemoryMediaStore
    vision: CountingVision
    llm: LLM
    characters: CharacterService
    settings: Settings = field(default_factory=lambda: Settings(public_url=BASE_URL))

    @property
    def kb(self) -> KnowledgeBase:
        return knowledge()

    async def upload(self, data: bytes = PNG) -> str:
        key = f"scan/{uuid.uuid4().hex}.png"
        await self.media.put(key, data)
        return cdn_url(BASE_URL, key)

    def command(
        self, image_url: str, hint: str | None, *, user_id: str | None = None, **kw: Any
    ) -> Envelope:
        job_id = str(uuid.uuid4())
        message = RequestScan(
            job_id=job_id,
            user_id=user_id or f"user-{uuid.uuid4().hex[:8]}",
            image_url=image_url,
            user_input=hint,
            **kw,
        )
        return schemas.registry.envelope(message, aggregate_id=job_id, aggregate_type=SCAN_JOB)

    async def run_chain(self, envelope: Envelope, *, llm: LLM | None = None) -> None:
        command = schemas.registry.decode_envelope(envelope)
        assert isinstance(command, RequestScan)
        await handle_request_scan(
            envelope,
            command,
            store=self.store,
            vision=self.vision,
            llm=llm or self.llm,
            kb=self.kb,
            media=self.media,
            media_key=lambda url: key_from_url(url, self.settings),
        )

    async def answer_event(self, job_id: str) -> tuple[Envelope, AnswerCompleted]:
        for envelope in await self.store.read_aggregate(job_id):
            message = schemas.registry.decode_envelope(envelope)
            if isinstance(message, AnswerCompleted):
                return envelope, message
        raise AssertionError(f"job {job_id} has no AnswerCompleted")

    async def run_reward(
        self, job_id: str, *, characters: CharacterService | None = None, wait_s: float = 0.0
    ) -> None:
        envelope, event = await self.answer_event(job_id)
        await handle_answer_completed(
            envelope,
            event,
            store=self.store,
            characters=characters or self.characters,
            wait_s=wait_s,
        )

    async def scan(self, hint: str | None, *, user_id: str | None = None) -> str:
        """A whole scan (chain, then reward); returns the job id."""
        envelope = self.command(await self.upload(), hint, user_id=user_id)
        await self.run_chain(envelope)
        await self.run_reward(envelope.aggregate_id)
        return envelope.aggregate_id

    async def messages(self, aggregate_id: str) -> list[Message]:
        envelopes = await self.store.read_aggregate(aggregate_id)
        return [schemas.registry.decode_envelope(e) for e in envelopes]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> EventStorePort:
    """Every handler test runs on the in-memory twin and, marked ``redis``, on real Redis."""
    if request.param == "memory":
        return MemoryEventStore(Layout(namespace="memory", shards=4), schemas.registry)
    return redis_store(request)


def redis_store(request: pytest.FixtureRequest) -> EventStore:
    redis_client, layout = request.getfixturevalue("redis_client"), request.getfixturevalue("layout")
    return EventStore(redis_client, layout, schemas.registry)


@pytest.fixture
def world(store: EventStorePort) -> ScanWorld:
    return world_on(store)


def world_on(store: EventStorePort) -> ScanWorld:
    kb = knowledge()
    return ScanWorld(
        store=store,
        media=InMemoryMediaStore(),
        vision=CountingVision(LocalVision(kb)),
        llm=LocalLLM(kb),
        characters=InMemoryCharacters(kb.characters()),
    )
