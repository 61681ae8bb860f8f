"""A write whose answer is its outcome: appended as a command, answered once its event exists.

Without a handler running, the request answers 503 ``command_pending`` with ``Retry-After``
after the configured wait, and the command stays in the log: once a handler runs, it is
recorded, and the client's retry (same idempotency key) finds the outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import schemas
from commands.awaited import awaited_subscription
from eventstore.consumer import Runner, RunnerOptions
from gateway.app import create_app
from infra.gateway_app import gateway_config, gateway_resources
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import asgi_client

pytestmark = pytest.mark.redis


async def test_no_handler_means_503_then_the_retry_finds_the_outcome(
    settings: Settings, alice: dict[str, str]
) -> None:
    config = dataclasses.replace(gateway_config(settings), command_wait_s=0.3)
    app = create_app(config, lambda: gateway_resources(settings, config), live=FAST)
    headers = {**alice, "X-Idempotency-Key": "first-chat"}
    async with asgi_client(app) as api:
        r = await api.post("/api/v1/chat", json={"title": "분리수거"}, headers=headers)
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "command_pending" and r.headers["Retry-After"]

        async with gateway_resources(settings, config) as res:
            runner = Runner(res.redis, res.layout, schemas.registry,
                            awaited_subscription(res.store),
                            options=RunnerOptions(block_ms=100, claim_interval_s=0.1))
            task = asyncio.create_task(runner.run())
            try:
                r = await api.post("/api/v1/chat", json={"title": "분리수거"}, headers=headers)
                assert r.status_code == 201, r.text
                chat = r.json()
                assert chat["title"] == "분리수거"
                again = await api.post("/api/v1/chat", json={"title": "분리수거"},
                                       headers=headers)
                assert again.json() == chat
                history = await api.get(f"/api/v1/chat/{chat['id']}", headers=alice)
                assert history.status_code == 200 and history.json()["title"] == "분리수거"
            finally:
                runner.stop()
                await asyncio.wait_for(task, 10)
