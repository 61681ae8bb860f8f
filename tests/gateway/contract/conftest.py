"""One gateway for the whole package, and a browser signed in afresh for each test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio as aioredis

import schemas
import tests.conftest as suite
from eventstore.keys import Layout
from eventstore.store import EventStore
from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.contract.endpoints import SERVED, Gateway, dev_login
from tests.gateway.helpers import ServerThread

# The servers' URLs are read when a fixture runs, and modules that read them on import are
# imported there: this conftest is imported before the suite's configuration settles them when
# the package is named on the command line.


@pytest.fixture(scope="package")
def contract_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    from tests.gateway.test_locations_api import sample_schema

    namespace = f"t{uuid.uuid4().hex[:12]}"
    with sample_schema() as schema:
        yield Settings(
            redis_url=suite.REDIS_URL, namespace=namespace, shards=4,
            database_url=suite.DATABASE_URL, db_schema=schema,
            data_dir=tmp_path_factory.mktemp("contract"),
            secret_key="contract-secret-0123456789", upload_max_bytes=4096,
            image_hosts=("images.example.org",),
        )
    suite.delete_keys(f"*{namespace}*")


@pytest.fixture(scope="package")
def server(contract_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_gateway(contract_settings, live=FAST)) as running:
        yield running


@pytest.fixture
async def gw(server: ServerThread, contract_settings: Settings) -> AsyncIterator[Gateway]:
    client = aioredis.Redis.from_url(suite.REDIS_URL, decode_responses=True)
    layout = Layout(contract_settings.namespace, contract_settings.shards)
    try:
        yield Gateway(server.url, contract_settings, EventStore(client, layout, schemas.registry),
                      client)
    finally:
        await client.aclose()


@pytest.fixture
async def browser(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials (cookies are kept, like a browser)."""
    async with httpx.AsyncClient(base_url=gw.url, timeout=15) as client:
        yield client


@pytest.fixture
async def user(browser: httpx.AsyncClient, gw: Gateway) -> httpx.AsyncClient:
    """A signed-in browser (a fresh user per test)."""
    from tests.gateway.test_locations_api import auth_headers

    if ("GET", "/api/v1/auth/{}") not in SERVED:  # before the auth routes land
        browser.headers.update(auth_headers(gw.settings, f"u{uuid.uuid4().hex[:8]}"))
        return browser
    callback = await dev_login(browser, f"u{uuid.uuid4().hex[:8]}")
    assert callback.status_code == 302 and "s_access" in browser.cookies, callback.headers
    return browser
