"""Authorization everywhere, proven for EVERY route of ``gateway.app.ROUTES`` (introspected, so
a route added later is covered without touching this file):

- no token → 401, a revoked token → 403, on every route that is not public;
- another user's object (a path parameter naming a job, chat, …) → 404, while its owner gets
  an answer that is not a 404 (so the 404 is about ownership, not a broken route);
- the operators' admin API (``/api/v1/admin/``) → 403 for a signed-in user who is not one.

A new path parameter naming a user's object must be added to ``owned_objects`` below; the
test fails until it is, so nothing slips through unchecked.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from eventstore.keys import Layout
from eventstore.store import EventStore
from gateway.app import ROUTES
from gateway.auth_store import AuthStore
from gateway.auth_tokens import TokenCodec, bearer
from gateway.job_reads import pending_owner_key
from infra.settings import Settings
from tests.gateway.helpers import append, full_scan

pytestmark = pytest.mark.redis

# Open by design: operations, docs, the auth flow itself, the signed upload PUT (its URL is the
# credential), the CDN URLs of stored images, and the gateway's own pages and their static
# files (pages hold no data: they call the API like any client; /ops answers 401/403 pages).
PUBLIC = {"/health", "/ready", "/metrics", "/docs", "/docs/ui", "/docs/asyncapi",
          "/docs/asyncapi.json", "/uploads/{key:path}",
          "/media/{key:path}", "/", "/ops"}
PUBLIC_PREFIXES = ("/api/v1/auth/", "/static/")
OPERATORS = "/api/v1/admin/"  # operators' resources: another user gets 403, not 404
ANY_SIGNED_IN = {"/api/v1/admin/me"}  # tells any caller whether they are an operator
# Parameters that do not name someone's object: the route is scoped by the token alone.
NOT_OWNED = {"channel", "character_name", "provider", "center_id", "key", "shard", "dlq_id",
             "name"}
# A body every command route accepts (their models ignore unknown fields), so a 404 for the
# other user is about ownership, never about validation.
BODY = {"title": "제목", "message": "안녕하세요", "type": "cancel", "data": {},
        "filename": "a.png", "content_type": "image/png", "nickname": "닉네임",
        "image_url": "http://images.example.org/a.png"}
ALICE, BOB = "alice", "bob"
_PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}")
SAMPLE = {"channel": "scan", "character_name": "페티", "provider": "kakao", "center_id": "1",
          "key": "scan/x.png", "shard": "0", "dlq_id": "1-0", "name": "scans"}


@dataclass(frozen=True)
class Case:
    path: str
    method: str

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def public(self) -> bool:
        return self.path in PUBLIC or self.path.startswith(PUBLIC_PREFIXES)

    @property
    def owned(self) -> list[str]:
        return [p for p in self.params if p not in NOT_OWNED]

    @property
    def streams(self) -> bool:
        return self.path.endswith("/events")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def cases(routes: list[BaseRoute]) -> list[Case]:
    out = []
    for route in routes:
        if isinstance(route, Route):
            out += [Case(route.path, m) for m in sorted((route.methods or {"GET"}) - {"HEAD"})]
        elif isinstance(route, Mount):
            out.append(Case(route.path + "/{key:path}", "GET"))
        else:
            raise AssertionError(f"unknown route type {route!r}: teach this test about it")
    return out


CASES = cases(ROUTES)


async def owned_objects(client: httpx.AsyncClient, store: EventStore, settings: Settings
                        ) -> dict[str, str]:
    """An object of each kind that ALICE owns, by the path parameter naming it."""
    layout = Layout(settings.namespace, settings.shards)
    scan_job = str(uuid.uuid4())
    await append(store, scan_job, ALICE, *full_scan(ALICE))
    turn = str(uuid.uuid4())  # accepted, not yet started: owned through the pending record
    await store.redis.set(pending_owner_key(layout, turn), ALICE)
    objects = {"scan:job_id": scan_job, "job_id": turn}
    if any(c.path == "/api/v1/chat" and c.method == "POST" for c in CASES):
        r = await client.post("/api/v1/chat", json={"title": "mine"}, headers=bearer(settings, ALICE))
        assert r.status_code == 201, r.text
        objects["chat_id"] = r.json()["id"]
    return objects


def fill(case: Case, objects: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in NOT_OWNED:
            return SAMPLE[name]
        scoped = f"{case.path.split('/')[3]}:{name}"  # e.g. scan:job_id
        found = objects.get(scoped) or objects.get(name)
        assert found, f"{case}: no object for {{{name}}}; add one to owned_objects"
        return found

    return _PARAM.sub(value, case.path)


async def call(client: httpx.AsyncClient, case: Case, url: str, headers: dict[str, str]
               ) -> httpx.Response:
    body = BODY if case.method in ("POST", "PUT", "PATCH") else None
    return await client.request(case.method, url, json=body, headers=headers)


def test_the_route_list_is_introspected() -> None:
    paths = {c.path for c in CASES}
    assert {"/api/v1/scan/{job_id}/result", "/api/v1/scan/{job_id}/events",
            "/api/v1/chat/{job_id}/events", "/api/v1/users/me"} <= paths
    assert len([c for c in CASES if not c.public]) >= 12


@pytest.mark.parametrize("case", [c for c in CASES if not c.public], ids=str)
async def test_every_route_is_scoped_to_the_caller(
    case: Case, client: httpx.AsyncClient, store: EventStore, settings: Settings,
) -> None:
    objects = await owned_objects(client, store, settings)
    url = fill(case, objects)

    r = await call(client, case, url, {})
    assert r.status_code == 401, f"{case} without a token: {r.status_code} {r.text[:200]}"
    assert r.json()["code"] == "unauthorized"

    revoked = TokenCodec.from_settings(settings).issue(ALICE)
    await AuthStore(store.redis, settings.namespace).revoke(revoked.access_claims)
    r = await call(client, case, url, {"Authorization": f"Bearer {revoked.access}"})
    assert r.status_code == 403, f"{case} with a revoked token: {r.status_code}"

    if case.path.startswith(OPERATORS) and case.path not in ANY_SIGNED_IN:
        r = await call(client, case, url, bearer(settings, BOB))
        assert r.status_code == 403, f"{case} as a non-operator: {r.status_code} {r.text[:200]}"
        return
    if not case.owned:
        return  # scoped by the token alone (e.g. /users/me): nothing of another user to name
    r = await call(client, case, url, bearer(settings, BOB))
    assert r.status_code == 404, f"{case} as another user: {r.status_code} {r.text[:200]}"
    if case.streams and not case.path.startswith("/api/v1/scan/"):
        return  # a pending turn's stream stays open: its owner's access is tested elsewhere
    r = await call(client, case, url, bearer(settings, ALICE))
    assert r.status_code not in (401, 403, 404), f"{case} as the owner: {r.status_code} {r.text}"
