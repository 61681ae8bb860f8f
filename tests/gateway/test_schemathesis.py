"""schemathesis against the running gateway: every /api/v1 operation of the served ``/docs``
document, signed in, with bounded examples (20 per operation, positive and negative data).

It must find no 5xx and no response that violates the document (status, content type, body
schema). The gateway runs under uvicorn on a loopback port with Redis and a Postgres schema
holding the shipped samples; rate limits are off so every example reaches its route.
Operations that would end the session (logout, account deletion) are left out.

Two more passes look only for responses >= 500: schemathesis' stateful mode (it links the
operations through the ids their answers hold: a created chat is read, renamed, deleted), and
a hand-made list of hostile values (Unicode digits, NUL, lone surrogates, deep nesting, huge
numbers, 1 MB strings, bad cookies, bad Last-Event-IDs) sent to every route of the app.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import ROUTES
from gateway.openapi import build_document
from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.conftest import DATABASE_URL, REDIS_URL, delete_keys
from tests.gateway.conftest import FAST
from tests.gateway.contract.endpoints import SERVED, dev_login
from tests.gateway.helpers import ServerThread
from tests.gateway.test_locations_api import auth_headers, sample_schema

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema  # noqa: E402

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

MAX_EXAMPLES = 20
OPERATOR = "스키마테시스"
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
            admins=(OPERATOR,),  # the dev sign-in's nickname: the admin routes are fuzzed too
        )
        with ServerThread(create_gateway(settings_, live=FAST)) as server:
            yield Target(server.url, asyncio.run(_sign_in(server.url, settings_)))
    delete_keys(f"*{namespace}*")


async def _sign_in(url: str, settings_: Settings) -> dict[str, str]:
    """Bearer credentials of a freshly signed-in user (dev login), else the dev header."""
    if ("GET", "/api/v1/auth/{}") not in SERVED:
        return auth_headers(settings_, "schemathesis")
    async with httpx.AsyncClient(base_url=url, timeout=10) as browser:
        callback = await dev_login(browser, OPERATOR)
        assert callback.status_code == 302
        return {"Authorization": f"Bearer {browser.cookies['s_access']}"}


@pytest.fixture(scope="module")
def api_schema(target: Target) -> OpenApiSchema:
    """The schema as the running gateway serves it at /docs."""
    document = httpx.get(f"{target.url}/docs", timeout=10).json()
    assert document == DOCUMENT  # what was collected is what is served
    schema: OpenApiSchema = schemathesis.openapi.from_dict(document)
    return schema


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


# -- stateful: operations linked by the ids their answers hold -------------------------------


def test_stateful_no_5xx(target: Target, api_schema: Any) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    # Streams of real jobs would stay open (no worker runs here); ending the session would
    # turn every later step into a 403.
    linked = api_schema.exclude(path_regex=r"/events$")
    for method, path in SESSION_ENDING:
        linked = linked.exclude(method=method, path=path)
    machine = linked.as_state_machine()

    class Stateful(machine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": target.url, "headers": target.headers, "timeout": 10}

        def validate_response(self, response: Any, case: Any,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=[not_a_server_error],
                                   headers=target.headers)

    run_state_machine_as_test(Stateful, settings=settings(
        max_examples=15, stateful_step_count=8, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck)))


# -- hostile values over every route ---------------------------------------------------------

DEEP = "[" * 30_000 + "]" * 30_000
MEGA = "가" * (1024 * 1024 // 3)  # ~1 MB of UTF-8
HOSTILE_SCALARS = ["²", "٣", "１２", "9" * 5000, "-1", "1e309", "NaN", "\x00", "a\x00b",
                   "\ud800", "%00", "../../etc/passwd", ""]
HOSTILE_JSON_BODIES = [
    DEEP, '{"a":' * 5000 + "1" + "}" * 5000, '{"title": "\\u0000"}', '{"title": "\\ud800"}',
    '{"message": "\\udfff", "title": "\\ud83d"}', '{"limit": ' + "9" * 5000 + "}",
    '{"title": 1e999}', '{"title": "' + "x" * 60_000 + '"}', "[]", "null", "\x00", "\xff\xfe",
    '{"type": "location", "data": ' + "[" * 5000 + "]" * 5000 + "}",
]
HOSTILE_HEADERS: list[dict[str, bytes]] = [
    {"Last-Event-ID": b"\xb2"}, {"Last-Event-ID": b"9" * 5000}, {"Last-Event-ID": b"-1"},
    {"Last-Event-ID": b"\xd9\xa3"}, {"Cookie": b"s_access=\xff\xfe; s_refresh=%00"},
    {"Cookie": b"s_access=" + b"a" * 8000}, {"Cookie": b"s_refresh=e30.e30.e30"},
    {"Authorization": b"Bearer \xb2"}, {"Authorization": b"Bearer " + b"x." * 3000},
    {"X-Request-ID": b"\xff" * 200}, {"Origin": b"null"}, {"Sec-Fetch-Site": b"cross-site"},
]
QUERY_NAMES = ("limit", "cursor", "shard", "backlog", "expires", "ct", "sig", "lat", "lon",
               "radius", "q", "page", "size", "category", "state", "code", "redirect_uri",
               "lastEventId", "group", "type")


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every route of the app, mounts left out."""
    out = []
    for route in ROUTES:
        methods = getattr(route, "methods", None)
        path = getattr(route, "path", None)
        if not methods or not path:
            continue
        out += [(m, path) for m in sorted(methods) if m != "HEAD"]
    return out


def _quoted(value: str) -> str:
    from urllib.parse import quote

    return quote(value.encode("utf-8", "surrogatepass"), safe="")  # lone surrogates too


def _fill(template: str, value: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", lambda _: _quoted(value) or "x", template)


async def _send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> int:
    """The status of one request; the body of a stream is not waited for."""
    async with client.stream(method, url, **kwargs) as response:
        return response.status_code


@pytest.mark.parametrize(("method", "template"), _routes(), ids=[f"{m} {p}" for m, p in _routes()])
async def test_hostile_values_never_5xx(method: str, template: str, target: Target) -> None:
    failures: list[str] = []
    auth = {k: v.encode() for k, v in target.headers.items()}
    path = _fill(template, "x")
    async with httpx.AsyncClient(base_url=target.url, timeout=15) as client:
        async def check(what: str, url: str, **kwargs: Any) -> None:
            status = await _send(client, method, url, **kwargs)
            if status >= 500:
                failures.append(f"{status} for {what}")

        for value in [*HOSTILE_SCALARS, MEGA[:1500]]:
            # a hostile path segment, and a hostile value in every query parameter we read
            await check(f"path {value[:20]!r}", _fill(template, value), headers=auth)
            names = QUERY_NAMES if len(value) < 100 else QUERY_NAMES[:3]  # URLs stay < 64 kB
            query = "&".join(f"{name}={_quoted(value)}" for name in names)
            await check(f"query {value[:20]!r}", f"{path}?{query}", headers=auth)
        for extra in HOSTILE_HEADERS:
            await check(f"headers {sorted(extra)}", path, headers={**auth, **extra})
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            json_type = {**auth, "Content-Type": b"application/json"}
            for body in [*HOSTILE_JSON_BODIES, '{"title": "' + MEGA + '"}']:
                await check(f"body {body[:30]!r}", path, headers=json_type,
                            content=body.encode("utf-8", "surrogatepass"))
            await check("text/plain body", path, content=b"title=x",
                        headers={**auth, "Content-Type": b"text/plain"})
    assert not failures, failures
