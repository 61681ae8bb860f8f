"""schemathesis against the running gateway: every /api/v1 operation of the served ``/docs``
document, signed in, with bounded examples (20 per operation, positive and negative data).

It must find no 5xx and no response that violates the document (status, content type, body
schema). The gateway runs under uvicorn on a loopback port with Redis and a Postgres schema
holding the shipped samples; rate limits are off so every example reaches its route.
Operations that would end the session (logout, account deletion) are left out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import ROUTES, create_app
from gateway.openapi import build_document
from infra.settings import Settings
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.gateway.conftest import FAST
from tests.gateway.helpers import ServerThread
from tests.gateway.test_contract import SERVED, dev_login
from tests.gateway.test_locations_api import auth_headers, sample_schema

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Ending the session would turn every later example into a 403.
SESSION_ENDING = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/users/me")}


class Target:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    with sample_schema() as schema:
        settings_ = Settings(
            redis_url=REDIS_URL, namespace=namespace, shards=4,
            database_url=DATABASE_URL, db_schema=schema,
            data_dir=Path(tmp_path_factory.mktemp("schemathesis")),
            secret_key="schemathesis-secret-0123456789", upload_max_bytes=4096,
            image_hosts=("images.example.org",), rate_limit_user=0, rate_limit_ip=0,
        )
        with ServerThread(create_app(settings_, live=FAST)) as server:
            yield Target(server.url, asyncio.run(_sign_in(server.url, settings_)))
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"*{namespace}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


async def _sign_in(url: str, settings_: Settings) -> dict[str, str]:
    """Bearer credentials of a freshly signed-in user (dev login), else the dev header."""
    if ("GET", "/api/v1/auth/{}") not in SERVED:
        return auth_headers(settings_, "schemathesis")
    async with httpx.AsyncClient(base_url=url, timeout=10) as browser:
        callback = await dev_login(browser, "스키마테시스")
        assert callback.status_code == 302
        return {"Authorization": f"Bearer {browser.cookies['s_access']}"}


@pytest.fixture(scope="module")
def api_schema(target: Target) -> Any:
    """The schema as the running gateway serves it at /docs."""
    document = httpx.get(f"{target.url}/docs", timeout=10).json()
    assert document == DOCUMENT  # what was collected is what is served
    return schemathesis.openapi.from_dict(document)


# Collected from the same builder /docs uses (the fixture checks they agree). schemathesis'
# own pytest plumbing (``schema.parametrize``) does not run on pytest 9, so each operation is
# one parametrized test driving its Hypothesis strategy directly.
DOCUMENT = build_document(ROUTES)
OPERATIONS = sorted(
    (method.upper(), path)
    for path, ops in DOCUMENT["paths"].items() for method in ops
    if path.startswith("/api/v1/") and (method.upper(), path) not in SESSION_ENDING
)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_5xx_and_no_schema_violation(
    method: str, path: str, target: Target, api_schema: Any
) -> None:
    operation = api_schema[path][method]
    # generated data (valid and invalid) plus the document's examples (e.g. a point in Seoul,
    # so answers hold real rows for the response schema to check)
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE),
                      *api_schema.get_strategies_from_examples(operation))

    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def example(case: Any) -> None:
        response = case.call(base_url=target.url, headers=target.headers, timeout=10)
        case.validate_response(response, checks=CHECKS, headers=target.headers)

    example()
