"""The gateway as ``eco2 up`` runs it: ``uvicorn infra.gateway_app:create_app --factory``.

The composition root's wrapper of ``gateway.app.create_app``: the process's logging and tracing
are configured here, and with tracing on every request is a server span
(``OpenTelemetryMiddleware``) whose context the commands it appends carry on.
"""

from __future__ import annotations

import atexit
from typing import Any

from starlette.types import ASGIApp

from gateway.app import create_app as create_gateway
from infra.settings import Settings
from infra.telemetry import configure_logging, configure_tracing


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    from infra.asyncapi import asyncapi_document as generate

    return generate(settings)


def create_app() -> ASGIApp:
    settings = Settings.from_env()
    configure_logging("gateway", level=settings.log_level, as_json=settings.log_json)
    gateway = create_gateway(settings)
    # Served at /docs/asyncapi; made on its first request (it loads the handlers' code).
    gateway.state.asyncapi = lambda: asyncapi_document(settings)
    app: ASGIApp = gateway
    if settings.tracing:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        atexit.register(configure_tracing("gateway", settings))
        app = OpenTelemetryMiddleware(app, excluded_urls="health,ready,metrics")
    return app
