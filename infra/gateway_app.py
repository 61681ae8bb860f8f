"""The gateway as ``eco2 up`` runs it: ``uvicorn infra.gateway_app:create_app --factory``.

The composition root of the gateway: its config is filled from the settings (and the LLM
catalogue), its resources are opened here and handed down, and beside the app run its probes
and the handlers of the commands its requests wait for (the ``awaited`` group: sign-in, profile
and chat-session commands), so every gateway process can answer them; with several processes,
the group shares the work and a crashed process's commands are claimed by another. The process's
logging and tracing are configured here, and with tracing on every request is a server span
(``OpenTelemetryMiddleware``) whose context the commands it appends carry on.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp

import schemas
from agents.llm.providers import MODEL_CATALOGUE
from commands.awaited import awaited_subscription
from eventstore.consumer import consumer_name
from eventstore.runtime import Runner
from gateway.app import create_app as build_gateway
from gateway.config import GatewayConfig, OAuthClient
from gateway.state import GatewayResources, GatewayState, LiveConfig
from infra.bootstrap import open_resources
from infra.gateway_probes import gateway_probes
from infra.heap import freeze_startup_heap
from infra.process_limits import raise_open_files_limit
from infra.settings import Settings
from infra.telemetry import configure_logging, configure_tracing
from infra.worker_process import runner_options

OAUTH_PROVIDERS = ("kakao", "google", "naver")
# A burst of requests waits for a connection (up to the pool's timeout) rather than opening
# more. A scan submission makes ~5 Redis round trips (rate limit, revocation, image owner,
# pending owner, append), each holding a connection until the event loop reads the reply, which
# on a busy loop takes tens of ms: 16 connections queued most round trips, and requests that
# waited past the pool's 20 s timeout became 503s (the scan bench's errors at 5,000 users).
# 128 did the same again on a slow host once the scan worker kept up (18-21 503s per run).
GATEWAY_REDIS_CONNECTIONS = 512
GATEWAY_REDIS_NAME = "eco2-gateway"


def gateway_config(settings: Settings) -> GatewayConfig:
    """The gateway's values from ``settings``; the model catalogue from the LLM providers'."""
    clients = {
        name: OAuthClient(
            client_id, getattr(settings, f"{name}_client_secret"),
            getattr(settings, f"{name}_base_url"),
        )
        for name in OAUTH_PROVIDERS
        if (client_id := getattr(settings, f"{name}_client_id"))
    }
    return GatewayConfig(
        namespace=settings.namespace, shards=settings.shards, secret_key=settings.secret_key,
        redis_url=settings.redis_url, database_url=settings.database_url,
        db_schema=settings.db_schema, public_url=settings.public_url, tls=settings.tls,
        production=settings.production, upload_max_bytes=settings.upload_max_bytes,
        upload_ttl_s=settings.upload_ttl_s, image_hosts=settings.image_hosts,
        models=dict(MODEL_CATALOGUE), access_token_ttl_s=settings.access_token_ttl_s,
        refresh_token_ttl_s=settings.refresh_token_ttl_s,
        refresh_grace_s=settings.refresh_grace_s, oauth_state_ttl_s=settings.oauth_state_ttl_s,
        oauth_timeout_s=settings.oauth_timeout_s, oauth_clients=clients,
        dev_login=settings.dev_login, admins=settings.admins,
        command_wait_s=settings.command_wait_s, cors_origins=settings.cors_origins,
        rate_limit_window_s=settings.rate_limit_window_s,
        rate_limit_user=settings.rate_limit_user, rate_limit_ip=settings.rate_limit_ip,
        max_body_bytes=settings.max_body_bytes, trust_forwarded=settings.trust_forwarded,
        trusted_proxies=settings.trusted_proxies, trace_url=settings.trace_url,
    )


@contextlib.asynccontextmanager
async def gateway_resources(
    settings: Settings, config: GatewayConfig
) -> AsyncIterator[GatewayResources]:
    """The shared resources, opened for the gateway (a small Redis pool)."""
    name = f"{GATEWAY_REDIS_NAME}-{os.getpid()}"  # who holds a connection, in CLIENT LIST
    async with open_resources(
        settings, redis_connections=GATEWAY_REDIS_CONNECTIONS, redis_name=name
    ) as res:
        yield GatewayResources(
            settings=config, layout=res.layout, redis=res.redis, store=res.store, pg=res.pg,
            media=res.media,
        )


@contextlib.asynccontextmanager
async def awaited_handlers(settings: Settings, gw: GatewayState) -> AsyncIterator[Runner]:
    """The ``awaited`` group's handlers running on the gateway's resources until exit."""
    res = gw.resources
    sub = awaited_subscription(res.store)
    runner = Runner(res.redis, res.layout, schemas.registry, sub,
                    consumer=consumer_name(sub.group), options=runner_options(settings))
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.stop()
        done, _ = await asyncio.wait({task}, timeout=settings.drain_grace_s)
        if not done:  # what is unfinished stays pending: another process claims it
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def create_gateway(settings: Settings | None = None, *, live: LiveConfig | None = None) -> Starlette:
    """The gateway for ``settings`` (the environment's by default) with everything it runs
    beside it."""
    settings = settings or Settings.from_env()
    config = gateway_config(settings)

    @contextlib.asynccontextmanager
    async def alongside(gw: GatewayState) -> AsyncIterator[None]:
        async with gateway_probes(settings, gw), awaited_handlers(settings, gw):
            yield

    return build_gateway(
        config, lambda: gateway_resources(settings, config), live=live, alongside=alongside,
    )


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    from infra.asyncapi import asyncapi_document as generate

    return generate(settings)


def create_app() -> ASGIApp:
    settings = Settings.from_env()
    configure_logging("gateway", level=settings.log_level, as_json=settings.log_json)
    raise_open_files_limit()  # every SSE stream holds a socket: 10,000 streams pass 1,024
    gateway = create_gateway(settings)
    # Served at /docs/asyncapi; made on its first request (it loads the handlers' code).
    gateway.state.asyncapi = lambda: asyncapi_document(settings)
    app: ASGIApp = gateway
    if settings.tracing:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        atexit.register(configure_tracing("gateway", settings))
        app = OpenTelemetryMiddleware(app, excluded_urls="health,ready,metrics")
    freeze_startup_heap()
    return app
