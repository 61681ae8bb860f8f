"""Postgres unreachable: reads that the log can answer still answer (a chat's history is folded
from its events, as scans and characters are); the others are 503 with ``Retry-After`` and the
error envelope — never a 500."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import asgi_client
from tests.projections.proxy import TcpProxy
from tests.projections.test_recovery import through
from tests.readmodels.pg import migrated_pool, new_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


async def test_chat_reads_during_a_postgres_outage(
    settings: Settings, database_url: str, alice: dict[str, str]
) -> None:
    schema = new_schema()
    pg = urlsplit(database_url)
    proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432)
    proxied = settings.with_(database_url=through(database_url, await proxy.start()),
                             db_schema=schema)
    try:
        async with migrated_pool(database_url, schema), \
                asgi_client(create_gateway(proxied, live=FAST)) as api:
            r = await api.post("/api/v1/chat", json={"title": "정전"}, headers=alice)
            assert r.status_code == 201
            chat = r.json()["id"]
            assert (await api.get("/api/v1/chat", headers=alice)).status_code == 200

            await proxy.stop()  # Postgres goes away
            for _ in range(2):  # pooled connections cut, then new ones refused
                r = await api.get("/api/v1/chat", headers=alice)
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"].isdigit()
                assert r.json()["code"] == "database_unavailable"
                r = await api.get(f"/api/v1/chat/{chat}", headers=alice)
                assert r.status_code == 200, r.text  # folded from the chat's own events
                assert (r.json()["id"], r.json()["title"]) == (chat, "정전")

            await proxy.start()  # back: the list answers again
            assert (await api.get("/api/v1/chat", headers=alice)).status_code == 200
    finally:
        await proxy.stop()
