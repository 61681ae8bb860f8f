"""``GET/PATCH/DELETE /users/me``: validation, read-your-writes, and deletion that leaves no
personal field anywhere — not in the log, not in Redis, not in the read models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

import schemas
from commands.chat.scripted import ScriptedChatGraph
from commands.chat.worker import chat_subscription
from eventstore.consumer import RunnerOptions
from eventstore.keys import Layout
from eventstore.runtime import Runner
from gateway.auth_tokens import bearer
from infra.bootstrap import open_resources
from infra.gateway_app import create_gateway
from infra.media import FileMediaStore
from infra.settings import Settings
from infra.worker_process import build_runner
from projections.builtin import select
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.runner import ProjectorService
from projections.worker import ProjectorOptions
from readmodels import queries
from schemas.envelope import Envelope
from tests.background import in_background
from tests.gateway.conftest import FAST
from tests.gateway.helpers import PNG, asgi_client
from tests.gateway.oauth_stub.browser import dev_login
from tests.projections.helpers import wait_caught_up
from tests.readmodels.pg import migrated_pool

pytestmark = pytest.mark.redis

NICK = "분리수거왕"
PHONE = "010-5555-1212"
NEW_NICK = "새닉네임"
SCAN_TEXT = "우리 집 베란다에서 찍은 페트병"
CHAT_TEXT = "아파트 302호 앞 분리수거함에 버려도 되나요?"


async def login(client: httpx.AsyncClient, nickname: str = NICK) -> dict[str, Any]:
    r = await dev_login(client, nickname)
    assert r.headers["location"].endswith("/#/home")
    me = await client.get("/api/v1/users/me")
    assert me.status_code == 200, me.text
    return dict(me.json())


async def everything_in_redis(redis: aioredis.Redis, namespace: str) -> list[str]:
    """Every value under the namespace as text: stream entries, strings, hashes, sets."""
    out: list[str] = []
    async for key in redis.scan_iter(match=f"{{{namespace}:*", count=500):
        kind = await redis.type(key)
        out.append(key)
        if kind == "stream":
            out += [json.dumps(f, ensure_ascii=False) for _, f in await redis.xrange(key)]
        elif kind == "string":
            out.append(str(await redis.get(key)))
        elif kind == "hash":
            out.append(json.dumps(await redis.hgetall(key), ensure_ascii=False))
        elif kind in ("set", "zset", "list"):
            out.append(repr(await redis.execute_command("DUMP", key)))
    return out


async def user_events(redis: aioredis.Redis, settings: Settings, user_id: str) -> list[Envelope]:
    keys = Layout(settings.namespace, settings.shards).keys_for(user_id)
    return [Envelope.from_fields(f) for _, f in await redis.xrange(keys.aggregate(user_id))]


async def test_patch_validates_and_answers_with_the_updated_profile(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, settings: Settings
) -> None:
    me = await login(client)
    for body, field in [
        ({"nickname": ""}, "nickname"), ({"nickname": "x" * 121}, "nickname"),
        ({"phone_number": "010-123"}, "phone_number"),
        ({"phone_number": "0" * 21}, "phone_number"),
        ({"phone_number": "call me maybe"}, "phone_number"),
    ]:
        r = await client.patch("/api/v1/users/me", json=body)
        assert r.status_code == 422, body
        assert r.json()["errors"][0]["field"] == field
    r = await client.patch("/api/v1/users/me", content=b"[1]",
                           headers={"Content-Type": "application/json"})
    assert r.status_code == 400

    r = await client.patch("/api/v1/users/me", json={"nickname": NEW_NICK, "phone_number": PHONE})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert (updated["nickname"], updated["display_name"], updated["phone_number"]) == (
        NEW_NICK, NEW_NICK, PHONE)
    assert updated["username"] == me["username"] == NICK  # the username is not editable
    assert (await client.get("/api/v1/users/me")).json() == updated
    r = await client.patch("/api/v1/users/me", json={"nickname": "x" * 120})
    assert r.json()["nickname"] == "x" * 120
    assert (await client.patch("/api/v1/users/me", json={})).json()["phone_number"] == PHONE

    events = await user_events(redis_client, settings, me["user_id"])
    assert [e.type for e in events] == ["user.registered", "user.profile_updated",
                                        "user.profile_updated"]
    assert all(e.metadata.user_id == me["user_id"] for e in events)
    text = json.dumps([e.model_dump(mode="json") for e in events], ensure_ascii=False)
    assert NICK not in text and NEW_NICK not in text and PHONE not in text


async def test_delete_erases_every_personal_field_and_revokes_the_tokens(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, settings: Settings
) -> None:
    me = await login(client)
    await client.patch("/api/v1/users/me", json={"nickname": NEW_NICK, "phone_number": PHONE})
    access = client.cookies["s_access"]
    before = "\n".join(await everything_in_redis(redis_client, settings.namespace))
    assert NEW_NICK in before  # the vault holds it until deletion (control)

    r = await client.delete("/api/v1/users/me")
    assert r.status_code == 204
    assert "s_access" not in client.cookies and "s_refresh" not in client.cookies
    r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 403  # every token issued before the deletion is revoked
    await asyncio.sleep(1.05)  # token times are whole seconds: the cut-off covers its second
    r = await client.get("/api/v1/users/me", headers=bearer(settings, me["user_id"]))
    assert r.status_code == 404  # even a token issued after the deletion finds no user

    everything = "\n".join(await everything_in_redis(redis_client, settings.namespace))
    for personal in (NICK, NEW_NICK, PHONE):
        assert personal not in everything
    events = await user_events(redis_client, settings, me["user_id"])
    assert [e.type for e in events][-1] == "user.deleted"

    # Signing in again with the same account starts a fresh one.
    again = await login(client)
    assert again["user_id"] != me["user_id"] and again["nickname"] == NICK
    r = await client.delete("/api/v1/users/me")
    assert r.status_code == 204


async def test_users_me_needs_an_existing_user(client: httpx.AsyncClient, settings: Settings
                                               ) -> None:
    headers = bearer(settings, "ghost")
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 404
    r = await client.patch("/api/v1/users/me", json={"nickname": "a"}, headers=headers)
    assert r.status_code == 404
    assert (await client.delete("/api/v1/users/me", headers=headers)).status_code == 404


# -- with Postgres read models and running projectors ------------------------------------


@pytest.fixture
async def pg_settings(settings: Settings, database_url: str) -> AsyncIterator[Settings]:
    async with migrated_pool(database_url) as pool:
        async with pool.acquire() as conn:
            schema = await conn.fetchval("SELECT current_schema()")
        yield settings.with_(database_url=database_url, db_schema=schema)


@contextlib.asynccontextmanager
async def projectors(settings: Settings) -> AsyncIterator[ReadSide]:
    assert settings.database_url is not None
    async with migrated_pool(settings.database_url, settings.db_schema) as pool:
        redis = aioredis.Redis.from_url(settings.redis_url or "", decode_responses=True)
        side = ReadSide(pool, settings.database_url, settings.db_schema, redis,
                        Layout(settings.namespace, settings.shards), schemas.registry)
        service = ProjectorService(
            side, select(), options=ProjectorOptions(batch_size=200, block_ms=100,
                                                     lease_retry_s=0.1),
            metrics=ProjectionMetrics.create(CollectorRegistry()),
        )
        try:
            async with in_background(service.run()):
                yield side
        finally:
            await redis.aclose()


async def table_texts(pool: asyncpg.Pool) -> str:
    rows = await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_type = 'BASE TABLE'"
    )
    out = []
    for row in rows:
        out += [r[0] for r in await pool.fetch(f'SELECT t::text FROM "{row[0]}" t')]
    return "\n".join(out)


@contextlib.asynccontextmanager
async def workers(settings: Settings) -> AsyncIterator[None]:
    """The scan worker and a chat worker whose answers do not quote the question."""
    async with open_resources(settings) as resources:
        graph = ScriptedChatGraph(answer_for=lambda turn: "투명 페트병은 라벨을 떼고 버려요.")
        runners = [build_runner("scan", resources), Runner(
            resources.redis, resources.layout, schemas.registry,
            chat_subscription(resources.store, graph),
            options=RunnerOptions(block_ms=100, claim_interval_s=0.1),
        )]
        tasks = [asyncio.create_task(r.run()) for r in runners]
        try:
            yield
        finally:
            for runner in runners:
                runner.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def scan_and_chat(client: httpx.AsyncClient) -> tuple[str, str]:
    """An uploaded image scanned with typed text, and a chat message; (media key, chat id)."""
    ticket = (await client.post("/api/v1/images/scan",
                                json={"filename": "a.png", "content_type": "image/png"})).json()
    r = await client.put(ticket["upload_url"], content=PNG,
                         headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/scan", json={"image_url": ticket["cdn_url"],
                                                "user_input": SCAN_TEXT})
    assert r.status_code == 202, r.text
    chat_id = (await client.post("/api/v1/chat", json={})).json()["id"]
    r = await client.post(f"/api/v1/chat/{chat_id}/messages", json={"message": CHAT_TEXT})
    assert r.status_code == 202, r.text
    return str(ticket["key"]), str(chat_id)


async def wait_for_text(side: ReadSide, *texts: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = await table_texts(side.pool)
        if all(text in found for text in texts):
            return
        assert time.monotonic() < deadline, f"{texts} never reached the read models"
        await asyncio.sleep(0.1)


@pytest.mark.postgres
async def test_profile_from_the_read_model_and_anonymised_after_delete(
    pg_settings: Settings,
) -> None:
    async with projectors(pg_settings) as side, workers(pg_settings), \
            asgi_client(create_gateway(pg_settings, live=FAST)) as client:
        me = await login(client)  # answered from the log: the model may not have it yet
        key, chat_id = await scan_and_chat(client)
        media = FileMediaStore(pg_settings.data_dir / "media")
        assert await media.exists(key)
        await wait_for_text(side, SCAN_TEXT, CHAT_TEXT, key)  # control: the check can fail
        await client.patch("/api/v1/users/me", json={"phone_number": PHONE})
        await wait_caught_up(side, names=["users"])
        row = await queries.get_user(side.pool, me["user_id"])
        assert row is not None and row.provider == "dev" and not row.deleted
        served = (await client.get("/api/v1/users/me")).json()  # now from the read model
        assert served["phone_number"] == PHONE and served["points"] == 0
        assert served["last_login_at"] == me["last_login_at"]

        assert (await client.delete("/api/v1/users/me")).status_code == 204
        await wait_caught_up(side, names=["users", "scans", "chat"])
        row = await queries.get_user(side.pool, me["user_id"])
        assert row is not None and row.deleted
        assert (row.username, row.nickname, row.phone_number) == (None, None, None)
        texts = await table_texts(side.pool)
        assert me["user_id"] in texts  # the anonymised row is there (control)
        for personal in (NICK, PHONE, SCAN_TEXT, CHAT_TEXT, key):
            assert personal not in texts
        # What is not personal stays: the scan, the chat and its two messages.
        scan = await side.pool.fetchrow("SELECT * FROM scans WHERE user_id = $1", me["user_id"])
        assert scan is not None and scan["created_at"] is not None
        chat = await side.pool.fetchrow("SELECT * FROM chat_sessions WHERE id = $1", chat_id)
        assert chat is not None and chat["message_count"] == 2
        assert not await media.exists(key)
        assert not list((pg_settings.data_dir / "media").rglob("*.png"))
        assert (await client.get(f"/media/{key}")).status_code == 404
