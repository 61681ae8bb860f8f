"""A write whose answer is its outcome: appended as a command, answered once its event exists.

Without a handler running, the request answers 503 ``command_pending`` with ``Retry-After``
after the configured wait, and the command stays in the log: once a handler runs, it is
recorded, and the client's retry (same idempotency key) finds the outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

import schemas
from commands.awaited import awaited_subscription
from eventstore.consumer import RunnerOptions
from eventstore.runtime import Runner
from eventstore.store import EventStore
from gateway.app import create_app
from infra.gateway_app import gateway_config, gateway_resources
from infra.settings import Settings
from schemas.user_state import hashed_subject, user_id_for
from schemas.users import USER, UserRegistered
from tests.gateway.conftest import FAST
from tests.gateway.helpers import as_user, asgi_client

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
                # The client retries (as Retry-After says) until its outcome exists: the
                # handler may need longer than the 0.3 s wait on a loaded machine.
                async with asyncio.timeout(30):
                    while (r := await api.post("/api/v1/chat", json={"title": "분리수거"},
                                               headers=headers)).status_code == 503:
                        assert r.json()["code"] == "command_pending", r.text
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


async def test_a_profile_change_retried_with_its_key_is_recorded_once(
    client: httpx.AsyncClient, store: EventStore, settings: Settings
) -> None:
    user_id = user_id_for("kakao", "42")
    registered = UserRegistered(username="", nickname="", provider="kakao",
                                provider_user_id=hashed_subject("kakao", "42"))
    await store.append([schemas.registry.envelope(registered, aggregate_id=user_id,
                                                  aggregate_type=USER)], expected_version=0)
    headers = {**as_user(settings, user_id), "X-Idempotency-Key": "rename-1"}
    for _ in range(2):
        r = await client.patch("/api/v1/users/me", json={"nickname": "분리왕"}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["nickname"] == "분리왕"
    types = [e.type for e in await store.read_aggregate(user_id)]
    assert types == ["user.registered", "user.profile_updated"]
