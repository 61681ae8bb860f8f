"""The gateway's Starlette application: resources are opened in the lifespan by the opener the
composition root passes (``infra.gateway_app``).

Every route is listed in ``ROUTES`` below — the one place to add more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

import schemas
from gateway import auth_api, chat_api, images, ops, query_api, scan_api, sse, users_api
from gateway.asyncapi import ASYNCAPI_ROUTES
from gateway.config import GatewayConfig
from gateway.edge import EdgeMiddleware
from gateway.errors import exception_handlers
from gateway.info_api import list_datasets, list_news
from gateway.job_reads import JobReads
from gateway.live_hub import LiveHub
from gateway.locations_api import center_detail, list_centers, search_places, suggest_places
from gateway.metrics import GatewayMetrics
from gateway.oauth import dev as dev_login
from gateway.openapi import openapi_json, openapi_viewer
from gateway.params import BigintConvertor  # noqa: F401  (registers the {name:bigint} convertor)
from gateway.state import STATE_KEY, GatewayResources, GatewayState, LiveConfig
from gateway.web_routes import WEB_ROUTES


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


ROUTES: list[BaseRoute] = [
    # operations
    Route("/health", health),
    Route("/ready", ops.ready),
    Route("/metrics", ops.metrics),
    Route("/docs", openapi_json, methods=["GET"]),
    Route("/docs/ui", openapi_viewer, methods=["GET"]),
    *ASYNCAPI_ROUTES,  # the workers' AsyncAPI document, when the composition root gave one
    # images: signed upload URLs, the upload, serving
    Route("/api/v1/images/{channel}", images.create_upload, methods=["POST"]),
    Route("/uploads/{key:path}", images.put_upload, methods=["PUT"]),
    Route("/media/{key:path}", images.serve_media, methods=["GET"]),
    # locations and info, from read models
    Route("/api/v1/locations/centers", list_centers, methods=["GET"]),
    Route("/api/v1/locations/centers/{center_id:bigint}", center_detail, methods=["GET"]),
    Route("/api/v1/locations/search", search_places, methods=["GET"]),
    Route("/api/v1/locations/suggest", suggest_places, methods=["GET"]),
    Route("/api/v1/info/news", list_news, methods=["GET"]),
    Route("/api/v1/info/datasets", list_datasets, methods=["GET"]),
    # scan and its live stream
    Route("/api/v1/scan", scan_api.submit_scan, methods=["POST"]),
    Route("/api/v1/scan/categories", scan_api.scan_categories, methods=["GET"]),
    Route("/api/v1/scan/{job_id}/events", sse.scan_events, methods=["GET"]),
    Route("/api/v1/scan/{job_id}/result", query_api.scan_result, methods=["GET"]),
    # auth: login URL, provider callback, refresh, logout, the dev provider's page
    Route("/api/v1/auth/refresh", auth_api.refresh, methods=["POST"]),
    Route("/api/v1/auth/logout", auth_api.logout, methods=["POST"]),
    Route("/api/v1/auth/dev/authorize", dev_login.authorize_page, methods=["GET"]),
    Route("/api/v1/auth/dev/authorize", dev_login.authorize_submit, methods=["POST"]),
    Route("/api/v1/auth/{provider}", auth_api.start_login, methods=["GET"]),
    Route("/api/v1/auth/{provider}/callback", auth_api.callback, methods=["GET"]),
    # users and characters, from read models
    Route("/api/v1/users/me", users_api.get_me, methods=["GET"]),
    Route("/api/v1/users/me", users_api.patch_me, methods=["PATCH"]),
    Route("/api/v1/users/me", users_api.delete_me, methods=["DELETE"]),
    Route("/api/v1/users/me/characters", query_api.my_characters, methods=["GET"]),
    Route(
        "/api/v1/users/me/characters/{character_name}/ownership",
        query_api.character_ownership, methods=["GET"],
    ),
    Route("/api/v1/character/catalog", query_api.character_catalog, methods=["GET"]),
    # chat: sessions, history, messages, input, and the turn's stream
    Route("/api/v1/chat", chat_api.list_chats, methods=["GET"]),
    Route("/api/v1/chat", chat_api.create_chat, methods=["POST"]),
    Route("/api/v1/chat/{chat_id}", chat_api.get_chat, methods=["GET"]),
    Route("/api/v1/chat/{chat_id}", chat_api.rename_chat, methods=["PATCH"]),
    Route("/api/v1/chat/{chat_id}", chat_api.delete_chat, methods=["DELETE"]),
    Route("/api/v1/chat/{chat_id}/messages", chat_api.send_message, methods=["POST"]),
    Route("/api/v1/chat/{job_id}/input", chat_api.provide_input, methods=["POST"]),
    Route("/api/v1/chat/{job_id}/events", sse.chat_events, methods=["GET"]),
    # the user page, the operations page and its admin API
    *WEB_ROUTES,
]


OpenResources = Callable[[], AbstractAsyncContextManager[GatewayResources]]
Alongside = Callable[[GatewayState], AbstractAsyncContextManager[object]]


def create_app(
    config: GatewayConfig, open_resources: OpenResources, *, live: LiveConfig | None = None,
    alongside: Alongside | None = None,
) -> Starlette:
    """Build the gateway over the resources ``open_resources`` opens in the lifespan (the
    composition root, ``infra.gateway_app``, passes them); ``alongside`` runs for as long as
    the app serves (probes, the handlers of the commands it waits for)."""
    live = live or LiveConfig()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_resources() as resources:
            if config.redis_url is None:
                raise RuntimeError("the gateway needs REDIS_URL")
            async with LiveHub.open(
                config.redis_url, resources.layout,
                queue_size=live.queue_size, read_pool_size=live.read_pool_size,
            ) as hub:
                state = GatewayState(
                    resources=resources,
                    hub=hub,
                    reads=JobReads(
                        hub.reader, resources.layout, schemas.registry, resources.store.archive
                    ),
                    metrics=GatewayMetrics(),
                    live=live,
                )
                async with alongside(state) if alongside else nullcontext():
                    yield {STATE_KEY: state}

    return Starlette(
        routes=list(ROUTES), lifespan=lifespan, exception_handlers=exception_handlers(),
        middleware=[Middleware(EdgeMiddleware, settings=config)],
    )
