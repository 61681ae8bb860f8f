"""A request's access token is verified once, though the rate limiter and the route both ask."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from gateway.auth import peek_user
from gateway.auth_tokens import TokenCodec, bearer
from gateway.config import GatewayConfig

CONFIG = GatewayConfig(namespace="t", shards=1, secret_key="s" * 32)


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


def test_a_token_is_verified_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    decode = TokenCodec.decode

    def counted(self: TokenCodec, token: str, typ: str) -> object:
        calls.append(token)
        return decode(self, token, typ)  # type: ignore[arg-type]

    monkeypatch.setattr(TokenCodec, "decode", counted)
    request = _request(bearer(CONFIG, "alice"))
    assert peek_user(request, CONFIG) == "alice"
    assert peek_user(request, CONFIG) == "alice"
    assert len(calls) == 1
    other = _request(bearer(CONFIG, "bob"))  # another request: verified on its own
    assert peek_user(other, CONFIG) == "bob"
    assert len(calls) == 2


def test_a_bad_token_is_never_remembered_as_verified() -> None:
    request = _request({"Authorization": "Bearer not-a-token"})
    assert peek_user(request, CONFIG) is None
    assert peek_user(request, CONFIG) is None
    forged = bearer(GatewayConfig(namespace="t", shards=1, secret_key="x" * 32), "mallory")
    assert peek_user(_request(forged), CONFIG) is None
