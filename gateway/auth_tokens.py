"""JWTs of the gateway: an access token (``s_access``, ~3 h) and a refresh token (``s_refresh``,
~30 days) per sign-in, HS256-signed with a key derived from ``ECO2_SECRET_KEY``.

Claims: ``sub`` (user id), ``typ`` (access | refresh), ``jti`` (this token), ``fam`` (the sign-in
session: every token rotated from one login shares it, so logout or a detected refresh-token
reuse revokes the whole session), ``iat``/``exp``, ``iss``.

Tests may mint tokens directly with ``mint_access_token``.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import jwt

TokenType = Literal["access", "refresh"]
ISSUER = "eco2"
ALGORITHM = "HS256"
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
# Access tokens already verified by this process, per signing key: a chat turn presents the
# same token twice (the message, then its stream) and a user many times in the token's life;
# parsing and verifying it again (≈ 60–90 µs) was ≈ 6 % of the gateway's profile samples.
# Bounded (oldest out first); an entry is used only while the token is unexpired, exactly as
# ``jwt.decode`` would judge it. Revocation is not cached: ``access_claims`` asks Redis every
# time.
VERIFIED_CACHE_SIZE = 65_536
_verified: dict[tuple[bytes, str], TokenClaims] = {}


class TokenSettings(Protocol):
    """What signs tokens: the gateway's config, or the settings it is made from (tests,
    benchmarks and scripts mint tokens with those)."""

    @property
    def secret_key(self) -> str: ...

    @property
    def access_token_ttl_s(self) -> int: ...

    @property
    def refresh_token_ttl_s(self) -> int: ...


class TokenError(ValueError):
    """A token that is malformed, badly signed, expired or of the wrong type."""


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    typ: TokenType
    jti: str
    fam: str
    iat: int
    exp: int

    def remaining_s(self, now: float | None = None) -> int:
        """Seconds until expiry (at least 1: a revocation must outlive the token)."""
        return max(int(self.exp - (time.time() if now is None else now)) + 1, 1)


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    access_claims: TokenClaims
    refresh_claims: TokenClaims


class TokenCodec:
    """Issues and verifies the gateway's tokens."""

    def __init__(self, secret: str, *, access_ttl_s: int, refresh_ttl_s: int) -> None:
        # A key of its own: the upload signatures use the same secret for another purpose.
        self._key = hashlib.sha256(b"eco2-jwt\x00" + secret.encode()).digest()
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s

    @classmethod
    def from_settings(cls, settings: TokenSettings) -> TokenCodec:
        return cls(
            settings.secret_key,
            access_ttl_s=settings.access_token_ttl_s,
            refresh_ttl_s=settings.refresh_token_ttl_s,
        )

    def issue(self, user_id: str, *, family: str | None = None, now: float | None = None
              ) -> TokenPair:
        """A fresh access + refresh pair for ``user_id`` (a new session unless ``family``)."""
        if not _USER_ID.fullmatch(user_id):
            raise ValueError(f"not a user id: {user_id!r}")
        issued = int(time.time() if now is None else now)
        fam = family or uuid.uuid4().hex
        access = self._claims(user_id, "access", fam, issued, self.access_ttl_s)
        refresh = self._claims(user_id, "refresh", fam, issued, self.refresh_ttl_s)
        return TokenPair(self._encode(access), self._encode(refresh), access, refresh)

    def decode(self, token: str, typ: TokenType) -> TokenClaims:
        """The verified claims of ``token``; raises ``TokenError``. An access token verified
        before by this process is not parsed again while it is unexpired."""
        if typ != "access":
            return self._decode(token, typ)
        key = (self._key, token)
        known = _verified.get(key)
        if known is not None:
            now = time.time()
            if known.iat <= now < known.exp:  # jwt.decode's iat and exp checks (leeway 0)
                return known
            _verified.pop(key, None)
        claims = self._decode(token, typ)
        if len(_verified) >= VERIFIED_CACHE_SIZE:
            del _verified[next(iter(_verified))]
        _verified[key] = claims
        return claims

    def _decode(self, token: str, typ: TokenType) -> TokenClaims:
        try:
            data: dict[str, Any] = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"require": ["sub", "exp", "iat", "jti", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        if data.get("typ") != typ:
            raise TokenError(f"not an {typ} token")
        sub = data.get("sub")
        if not isinstance(sub, str) or not _USER_ID.fullmatch(sub):
            raise TokenError("token subject is not a user id")
        return TokenClaims(
            sub=sub, typ=typ, jti=str(data["jti"]), fam=str(data.get("fam") or data["jti"]),
            iat=int(data["iat"]), exp=int(data["exp"]),
        )

    def _claims(self, sub: str, typ: TokenType, fam: str, iat: int, ttl: int) -> TokenClaims:
        return TokenClaims(sub=sub, typ=typ, jti=uuid.uuid4().hex, fam=fam, iat=iat, exp=iat + ttl)

    def _encode(self, c: TokenClaims) -> str:
        payload = {"sub": c.sub, "typ": c.typ, "jti": c.jti, "fam": c.fam, "iat": c.iat,
                   "exp": c.exp, "iss": ISSUER}
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)


def mint_access_token(settings: TokenSettings, user_id: str) -> str:
    """An access token for ``user_id`` signed for ``settings`` (tests, scripts, benchmarks)."""
    return TokenCodec.from_settings(settings).issue(user_id).access


def bearer(settings: TokenSettings, user_id: str) -> dict[str, str]:
    """``Authorization`` headers acting as ``user_id`` (tests, scripts, benchmarks)."""
    return {"Authorization": f"Bearer {mint_access_token(settings, user_id)}"}
