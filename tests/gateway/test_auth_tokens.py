"""The access-token codec: a token verified before is not parsed again, yet judged the same."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway import auth_tokens
from gateway.auth_tokens import TokenCodec, TokenError

SECRET = "test-secret-0123456789abcdef"


def codec(secret: str = SECRET, ttl: int = 60) -> TokenCodec:
    return TokenCodec(secret, access_ttl_s=ttl, refresh_ttl_s=600)


def test_a_verified_token_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    token = codec().issue("u1").access
    first = codec().decode(token, "access")  # a fresh codec per request, as the gateway has
    calls = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert codec().decode(token, "access") == first
    assert calls == []


def test_a_remembered_token_is_verified_again_once_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = int(time.time())
    token = codec(ttl=5).issue("u1", now=issued).access
    codec().decode(token, "access")
    calls = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or {})
    monkeypatch.setattr(time, "time", lambda: issued + 4.9)
    codec().decode(token, "access")
    assert calls == []
    monkeypatch.setattr(time, "time", lambda: issued + 5.0)  # exp <= now: jwt says expired
    with pytest.raises(TokenError):  # it is handed to jwt.decode again (stubbed: no claims)
        codec().decode(token, "access")
    assert calls == [1]


def test_another_key_or_type_is_verified_anew() -> None:
    pair = codec().issue("u1")
    codec().decode(pair.access, "access")
    with pytest.raises(TokenError):
        codec("another-secret-0123456789").decode(pair.access, "access")
    with pytest.raises(TokenError):
        codec().decode(pair.access, "refresh")
    with pytest.raises(TokenError):
        codec().decode(pair.refresh, "access")


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_tokens, "VERIFIED_CACHE_SIZE", 3)
    monkeypatch.setattr(auth_tokens, "_verified", {})
    tokens = [codec().issue(f"u{i}").access for i in range(5)]
    for token in tokens:
        codec().decode(token, "access")
    assert len(auth_tokens._verified) == 3
    assert [t for _, t in auth_tokens._verified] == tokens[2:]
