"""Query endpoints from read models: the scan result (202 while running, 200 the moment ``done``
exists even if the projection lags, 404 for others), characters (default 이코), ownership, and
the catalog."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

import schemas
from eventstore.keys import Layout
from eventstore.store import ANY, EventStore
from gateway.auth_tokens import bearer
from gateway.job_reads import pending_owner_key
from gateway.query_api import result_from_row
from infra.gateway_app import create_gateway
from infra.settings import Settings
from readmodels import queries
from readmodels.catalog import FALLBACK_CHARACTERS, seed_catalog
from schemas.envelope import Metadata
from schemas.users import USER, CharacterGranted
from tests.gateway.conftest import FAST
from tests.gateway.helpers import append, asgi_client, failed_scan, full_scan
from tests.gateway.test_users_api import pg_settings, projectors  # noqa: F401
from tests.projections.helpers import wait_caught_up

pytestmark = pytest.mark.redis

RESULT_KEYS = {"task_id", "status", "message", "pipeline_result", "reward", "error"}


def new_job() -> str:
    return str(uuid.uuid4())


async def grant(store: EventStore, user_id: str, code: str, name: str) -> None:
    event = schemas.registry.envelope(
        CharacterGranted(character_code=code, character_name=name),
        aggregate_id=user_id, aggregate_type=USER, metadata=Metadata(user_id=user_id),
    )
    await store.append([event], expected_version=ANY)


async def test_result_is_202_while_running_then_200_at_done_without_a_read_model(
    client: httpx.AsyncClient, store: EventStore, settings: Settings
) -> None:
    alice = bearer(settings, "alice")
    job = new_job()
    events = full_scan("alice")
    await append(store, job, "alice", *events[:4])
    r = await client.get(f"/api/v1/scan/{job}/result", headers=alice)
    assert r.status_code == 202
    assert r.headers["retry-after"] == "1"
    assert r.json() == {"status": "processing", "current_stage": "rule", "progress": 45}

    await append(store, job, "alice", *events[4:])
    r = await client.get(f"/api/v1/scan/{job}/result", headers=alice)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= RESULT_KEYS
    assert (body["task_id"], body["status"], body["error"]) == (job, "completed", None)
    pipeline = body["pipeline_result"]
    assert pipeline["classification_result"]["classification"] == {
        "major_category": "재활용폐기물", "middle_category": "무색페트병",
        "minor_category": "음료PET병"}
    assert pipeline["classification_result"]["situation_tags"] == ["label_attached"]
    assert pipeline["disposal_rules"] == {"steps": ["라벨 제거"]}
    assert pipeline["final_answer"]["disposal_steps"] == {"1": "라벨을 떼세요"}
    assert pipeline["final_answer"]["user_answer"] == "페트병이에요"
    assert {"name", "dialog", "match_reason", "type"} <= set(body["reward"])
    assert body["reward"]["name"] == "페티"


async def test_a_failed_scan_has_a_result_too(
    client: httpx.AsyncClient, store: EventStore, settings: Settings
) -> None:
    job = new_job()
    await append(store, job, "alice", *failed_scan("alice"))
    r = await client.get(f"/api/v1/scan/{job}/result", headers=bearer(settings, "alice"))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "failed"
    assert body["error"]["message"] == body["message"] == "이미지를 읽을 수 없어요"


async def test_unknown_other_users_and_pending_jobs(
    client: httpx.AsyncClient, store: EventStore, settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    alice, bob = bearer(settings, "alice"), bearer(settings, "bob")
    job = new_job()
    await append(store, job, "alice", *full_scan("alice"))
    assert (await client.get(f"/api/v1/scan/{job}/result", headers=bob)).status_code == 404
    assert (await client.get(f"/api/v1/scan/{new_job()}/result", headers=alice)).status_code == 404
    assert (await client.get("/api/v1/scan/not..valid/result", headers=alice)).status_code == 404
    assert (await client.get(f"/api/v1/scan/{job}/result")).status_code == 401
    # accepted by POST /scan, no event yet: running, at the queue
    pending = new_job()
    await redis_client.set(
        pending_owner_key(Layout(settings.namespace, settings.shards), pending), "alice"
    )
    r = await client.get(f"/api/v1/scan/{pending}/result", headers=alice)
    assert (r.status_code, r.json()["current_stage"]) == (202, "queued")
    assert (await client.get(f"/api/v1/scan/{pending}/result", headers=bob)).status_code == 404


async def test_characters_default_grants_and_ownership_from_the_log(
    client: httpx.AsyncClient, store: EventStore, settings: Settings
) -> None:
    alice = bearer(settings, "alice")
    r = await client.get("/api/v1/users/me/characters", headers=alice)
    assert r.status_code == 200
    [default] = r.json()
    assert set(default) >= {"id", "code", "name", "type", "dialog", "acquired_at"}
    assert default["name"] == "이코"
    await grant(store, "alice", "char-petty", "페티")
    await grant(store, "alice", "char-petty", "페티")  # a duplicate grant counts once
    names = [c["name"] for c in (await client.get("/api/v1/users/me/characters",
                                                  headers=alice)).json()]
    assert names == ["이코", "페티"]
    for name, owned in (("페티", True), ("이코", True), ("메탈리", False), ("없는캐릭터", False)):
        r = await client.get(f"/api/v1/users/me/characters/{name}/ownership", headers=alice)
        assert r.json() == {"character_name": name, "owned": owned}
    bob = await client.get("/api/v1/users/me/characters/페티/ownership",
                           headers=bearer(settings, "bob"))
    assert bob.json()["owned"] is False


async def test_catalog_lists_the_13_characters(client: httpx.AsyncClient, settings: Settings
                                               ) -> None:
    r = await client.get("/api/v1/character/catalog", headers=bearer(settings, "alice"))
    assert r.status_code == 200
    catalog = r.json()
    assert len(catalog) == 13
    assert all(set(c) >= {"name", "type", "dialog", "match"} for c in catalog)
    by_name = {c["name"]: c for c in catalog}
    assert by_name["페티"]["match"] == "무색페트병" and "이코" in by_name
    assert (await client.get("/api/v1/character/catalog")).status_code == 401


# -- with Postgres read models -----------------------------------------------------------


@contextlib.asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_gateway(settings, live=FAST)) as client:
        yield client


@pytest.mark.postgres
async def test_read_your_writes_when_the_projection_lags_then_from_the_read_model(
    pg_settings: Settings, store: EventStore,  # noqa: F811
) -> None:
    alice = bearer(pg_settings, "alice")
    job = new_job()
    await append(store, job, "alice", *full_scan("alice"))
    await grant(store, "alice", "char-petty", "페티")
    async with gateway(pg_settings) as client:
        # No projector has run: the models are empty, the log answers.
        folded = await client.get(f"/api/v1/scan/{job}/result", headers=alice)
        assert folded.status_code == 200
        chars = (await client.get("/api/v1/users/me/characters", headers=alice)).json()
        assert [c["name"] for c in chars] == ["이코", "페티"]

        async with projectors(pg_settings) as side:
            await seed_catalog(side.pool, FALLBACK_CHARACTERS)
            await wait_caught_up(side)
            row = await queries.get_scan(side.pool, job, "alice")
            assert row is not None and row.finished
            served = await client.get(f"/api/v1/scan/{job}/result", headers=alice)
            assert served.json() == result_from_row(row)
            # The two paths give the client the same result.
            assert served.json() == folded.json() | {"reward": served.json()["reward"]}
            assert {k: v for k, v in folded.json()["reward"].items()
                    if k != "newly_acquired"} == served.json()["reward"]
            model = (await client.get("/api/v1/users/me/characters", headers=alice)).json()
            assert [(c["name"], c["type"]) for c in model] == [(c["name"], c["type"])
                                                                 for c in chars]
            catalog = (await client.get("/api/v1/character/catalog", headers=alice)).json()
            assert len(catalog) == 13
