"""All wiring in one place: pools, clients, stores and adapters, built from settings.

Entry points (gateway lifespan, workers, projectors, CLI) call ``open_resources``; tests call it
with their own settings (and may replace adapters with in-memory twins afterwards).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

import schemas
from agents.knowledge import KnowledgeBase
from agents.llm.gemini_adapter import GeminiAdapter
from agents.llm.latency import LatencyProfile
from agents.llm.local import LocalLLM, LocalVision
from agents.llm.openai_adapter import OpenAIAdapter
from agents.llm.ports import LLM, Vision
from agents.llm.providers import ModelRouter, Provider
from characters import CharacterService
from characters.cache import CachedCharacters
from characters.client import GrpcCharacters
from eventstore.archive import Archive
from eventstore.keys import Layout
from eventstore.memory_policy import check_memory_policy
from eventstore.redis_client import AsyncRedis, open_redis
from eventstore.store import EventStore
from infra.media import FileMediaStore
from infra.media_owners import OwnedMediaStore
from infra.settings import Settings
from media.keys import key_from_url
from media.owners import OwnedMedia
from media.store import MediaStore
from projections.context import ReadSide
from readmodels.db import create_pool

if TYPE_CHECKING:
    from agents.chat.graph import ChatGraph


@dataclass
class Resources:
    """What handlers, projectors and the gateway are given. Built only by ``open_resources``."""

    settings: Settings
    layout: Layout
    redis: AsyncRedis
    store: EventStore
    pg: asyncpg.Pool[asyncpg.Record] | None  # read models; None when DATABASE_URL is unset
    media: OwnedMedia  # uploaded images (gateway writes, scan handler reads)
    kb: KnowledgeBase  # disposal rules, items, characters (loaded once, read-only)
    llm: ModelRouter  # LLM port; the provider is picked per call by its `model`
    vision: ModelRouter  # Vision port: the same router as `llm`
    characters: CharacterService  # the character gRPC service's client (explicit timeout)


async def redis_client(settings: Settings, **kwargs: Any) -> AsyncRedis:
    """A decoded-responses async Redis client with explicit timeouts (a cluster client when
    the server runs in cluster mode)."""
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not resolved (start embedded services first)")
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "max_connections": 256,
    }
    options.update(kwargs)
    # Blocking pool: with more concurrent handlers than connections, a call waits for a free
    # connection (up to `timeout`) instead of failing at once with "Too many connections".
    return await open_redis(settings.redis_url, blocking_pool_timeout=20, **options)


@asynccontextmanager
async def open_resources(
    settings: Settings, *, redis_connections: int = 256, redis_name: str | None = None
) -> AsyncIterator[Resources]:
    """Open every shared resource for ``settings``; close them all on exit.

    ``redis_connections`` caps the shared pool: workers run many handlers at once; the gateway
    keeps it small so a burst of requests waits briefly instead of opening a connection each.
    ``redis_name`` names the pool's connections (``CLIENT LIST`` shows who holds them).
    """
    async with AsyncExitStack() as stack:
        redis = await redis_client(
            settings, max_connections=redis_connections, client_name=redis_name
        )
        stack.push_async_callback(redis.aclose)
        await check_memory_policy(redis)  # never run on a Redis that may evict the log
        layout = Layout(settings.namespace, settings.shards)
        pg = None
        if settings.database_url is not None:
            # min_size=0: nothing connects until used; search_path = settings.db_schema.
            pg = await create_pool(settings.database_url, settings.db_schema)
            stack.push_async_callback(pg.close)
        # Reads merge the archive tier (Postgres) with the hot log once Redis has been trimmed.
        store = EventStore(
            redis, layout, schemas.registry, archive=Archive(pg) if pg is not None else None
        )
        media = FileMediaStore(settings.data_dir / "media")
        kb = KnowledgeBase.load()
        images = await media_store(settings, stack, local=media)
        owned_images = OwnedMediaStore(images, redis, settings.namespace)
        router = await stack.enter_async_context(model_router(settings, kb))
        # The channel connects lazily: opening resources never waits for the service.
        client = GrpcCharacters(settings.characters_target, timeout_s=settings.grpc_timeout_s)
        stack.push_async_callback(client.aclose)
        characters: CharacterService = client
        if settings.characters_cache_s > 0:
            characters = CachedCharacters(client, ttl_s=settings.characters_cache_s)
        yield Resources(
            settings=settings, layout=layout, redis=redis, store=store, media=owned_images, pg=pg,
            kb=kb, llm=router, vision=router, characters=characters,
        )


async def media_store(
    settings: Settings, stack: AsyncExitStack, *, local: MediaStore
) -> MediaStore:
    """The images' store: S3 for ``ECO2_MEDIA_URL=s3://…``, else ``local`` (the data dir's)."""
    if settings.media_url is not None:
        from infra.media_s3 import open_s3_media  # loads botocore only when S3 is used

        return await stack.enter_async_context(open_s3_media(settings))
    return local


@asynccontextmanager
async def model_router(settings: Settings, kb: KnowledgeBase) -> AsyncIterator[ModelRouter]:
    """The LLM/vision router: local always (with the simulated latency profile), OpenAI and
    Gemini when their keys are set; remote adapters are closed on exit."""
    latency = LatencyProfile.named(settings.latency_profile)
    llms: dict[Provider, LLM] = {"local": LocalLLM(kb, latency=latency)}
    visions: dict[Provider, Vision] = {"local": LocalVision(kb, latency=latency)}
    async with AsyncExitStack() as stack:
        if settings.openai_api_key:
            openai = await stack.enter_async_context(
                OpenAIAdapter(
                    settings.openai_api_key, settings.openai_base_url,
                    settings.llm_timeout_s, settings.llm_retries,
                )
            )
            llms["openai"] = visions["openai"] = openai
        if settings.gemini_api_key:
            gemini = await stack.enter_async_context(
                GeminiAdapter(
                    settings.gemini_api_key, settings.gemini_base_url,
                    settings.llm_timeout_s, settings.llm_retries,
                )
            )
            llms["gemini"] = visions["gemini"] = gemini
        yield ModelRouter(default_model=settings.default_model, llms=llms, visions=visions)


def build_chat_graph_for(resources: Resources) -> ChatGraph:
    """The chat graph over these resources, for the chat worker (built once per process).

    Models go through the resources' router (the turn's ``model`` picks the provider), images
    through the upload media store; the data sources are the offline adapters over the shipped
    samples until the live ones are wired here. LangGraph is imported only by this call, so
    processes without chat never load it.
    """
    from agents.chat.deps import offline_chat_deps
    from agents.chat.graph import build_chat_graph
    from agents.chat.media import StoreChatMedia

    settings = resources.settings
    media = StoreChatMedia(
        resources.media,
        base_url=settings.public_url or f"http://{settings.host}:{settings.port}",
        media_key=lambda url: key_from_url(url, settings),
    )
    deps = offline_chat_deps(
        resources.kb, llm=resources.llm, vision=resources.vision,
        characters=resources.characters, media=media, default_model=settings.default_model,
    )
    if resources.pg is not None:  # the locations read model, not the in-memory sample
        from dataclasses import replace

        from agents.chat.subagents.places_pg import ReadModelLocations

        deps = replace(deps, locations=ReadModelLocations(resources.pg))
    return build_chat_graph(deps)


def read_side(resources: Resources) -> ReadSide:
    """What the projectors, rebuilds and read-side commands need, from ``resources``."""
    settings = resources.settings
    if resources.pg is None or settings.database_url is None:
        raise RuntimeError("DATABASE_URL is not resolved (start embedded services first)")
    return ReadSide(
        pool=resources.pg,
        dsn=settings.database_url,
        schema=settings.db_schema,
        redis=resources.redis,
        layout=resources.layout,
        registry=schemas.registry,
        redis_url=settings.redis_url,
    )
