"""Every request body refuses text Postgres cannot store (NUL, lone surrogates): 422 at the
edge, naming the field — before, a NUL chat title was accepted and its projection failed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.storable import unstorable_reason
from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import as_user, asgi_client

pytestmark = [pytest.mark.redis]

CHAT = str(uuid.uuid4())
# (method, path, JSON body template with {bad} where the unstorable text goes, field named)
BODIES = [
    ("POST", "/api/v1/chat", '{"title": "a{bad}b"}', "title"),
    ("PATCH", f"/api/v1/chat/{CHAT}", '{"title": "a{bad}b"}', "title"),
    ("POST", f"/api/v1/chat/{CHAT}/messages", '{"message": "hi{bad}"}', "message"),
    ("POST", f"/api/v1/chat/{CHAT}/input",
     '{"type": "location", "data": {"la{bad}bel": 1}}', "data"),
    ("POST", f"/api/v1/chat/{CHAT}/input",
     '{"type": "confirmation", "data": ["ok", "x{bad}"]}', "data[1]"),
    ("POST", "/api/v1/scan",
     '{"image_url": "https://images.example.org/a.png", "user_input": "{bad}"}', "user_input"),
    ("PATCH", "/api/v1/users/me", '{"nickname": "kim{bad}"}', "nickname"),
    ("POST", "/api/v1/images/scan", '{"filename": "a{bad}.png", "content_type": "image/png"}',
     "filename"),
    ("POST", "/api/v1/admin/dlq/replay", '{"group": "g{bad}"}', "group"),
]
BAD = {"nul": "\\u0000", "surrogate": "\\ud83d", "low surrogate": "\\udc00"}


@pytest.fixture
async def admin_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_gateway(settings.with_(admins=("alice",)), live=FAST)) as c:
        yield c


@pytest.mark.parametrize("bad", list(BAD.values()), ids=list(BAD))
@pytest.mark.parametrize(("method", "path", "template", "field"), BODIES,
                         ids=[f"{m} {p.split('/', 3)[-1]} {f}" for m, p, _, f in BODIES])
async def test_every_body_refuses_unstorable_text(
    admin_client: httpx.AsyncClient, settings: Settings,
    method: str, path: str, template: str, field: str, bad: str,
) -> None:
    headers = {**as_user(settings, "alice"), "content-type": "application/json"}
    content = template.replace("{bad}", bad).encode()
    response = await admin_client.request(method, path, content=content, headers=headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == field
    assert "NUL" in body["detail"] or "surrogate" in body["detail"]


async def test_dev_login_form_refuses_a_nul_nickname(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/dev/authorize", data={"state": "s", "nickname": "kim\x00"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "nickname"


def test_storable_text_passes_and_reasons_name_the_character() -> None:
    assert unstorable_reason("분리배출 ♻️ 😀 \u00e9\t\n") is None
    assert unstorable_reason("a\x00") == "must not contain NUL characters (U+0000)"
    assert unstorable_reason("\ud800") == "must not contain a lone surrogate (U+D800)"
