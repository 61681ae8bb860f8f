"""Who is calling: the user id every route and stream acts for.

A request carries an access token as the ``s_access`` cookie (browsers) or as
``Authorization: Bearer <token>`` (scripts). ``current_user`` is the one check every route
calls: missing, malformed, badly signed or expired → 401 (the client refreshes and retries);
a valid token that was revoked (logout, refresh-token reuse, account deletion) → 403 (the
client logs out). Tests mint tokens with ``gateway.auth_tokens.mint_access_token``.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from gateway.auth_store import AuthStore
from gateway.auth_tokens import TokenClaims, TokenCodec, TokenError
from gateway.config import GatewayConfig
from gateway.errors import TokenRevoked, Unauthorized
from gateway.state import gateway_state

ACCESS_COOKIE = "s_access"
REFRESH_COOKIE = "s_refresh"
USER_SCOPE_KEY = "eco2.user_id"  # the authenticated user, for logs and repeated calls
# (token, its verified claims): a request's token is verified once, though both the rate
# limiter (``peek_user``) and the route (``access_claims``) need it. Verifying an HS256 JWT
# was a fifth of the gateway's CPU per scan submission, half of it spent verifying it twice.
CLAIMS_SCOPE_KEY = "eco2.access_claims"


def presented_token(request: Request) -> str | None:
    """The access token of the request: the Bearer header first, else the cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(ACCESS_COOKIE) or None


def auth_store(request: Request) -> AuthStore:
    res = gateway_state(request).resources
    return AuthStore(res.redis, res.settings.namespace)


def token_codec(settings: GatewayConfig) -> TokenCodec:
    return TokenCodec.from_settings(settings)


def verified_claims(request: Request) -> TokenClaims:
    """The verified claims of the request's access token, not yet checked against the
    revocation list (no Redis round trip); raises ``Unauthorized`` (401)."""
    token = presented_token(request)
    if token is None:
        raise Unauthorized("authentication required")
    try:
        return _verified(request, token, gateway_state(request).resources.settings)
    except TokenError as exc:
        raise Unauthorized("invalid or expired access token") from exc


async def access_claims(request: Request) -> TokenClaims:
    """The verified, unrevoked claims of the request's access token (401 / 403 otherwise)."""
    claims = verified_claims(request)
    if await auth_store(request).is_revoked(claims):
        raise TokenRevoked("token revoked")
    return claims


async def current_user(request: Request) -> str:
    """The authenticated user's id; raises ``Unauthorized`` (401) without valid credentials
    and ``TokenRevoked`` (403) for a revoked token."""
    known = request.scope.get(USER_SCOPE_KEY)
    if isinstance(known, str):
        return known
    claims = await access_claims(request)
    request.scope[USER_SCOPE_KEY] = claims.sub
    return claims.sub


async def current_user_reading(request: Request, keys: Sequence[str]
                               ) -> tuple[str, list[str | None]]:
    """``current_user``, and the values of the string ``keys`` read in the round trip of its
    revocation check (a route's own check, one Redis command fewer)."""
    claims = verified_claims(request)
    revoked, values = await auth_store(request).is_revoked_reading(claims, keys)
    if revoked:
        raise TokenRevoked("token revoked")
    request.scope[USER_SCOPE_KEY] = claims.sub
    return claims.sub, values


def peek_user(request: Request, settings: GatewayConfig) -> str | None:
    """The user a request claims to be (signature and expiry checked, no Redis round trip):
    enough to key a rate limit, never to authorise anything."""
    token = presented_token(request)
    if token is None:
        return None
    try:
        return _verified(request, token, settings).sub
    except TokenError:
        return None


def _verified(request: Request, token: str, settings: GatewayConfig) -> TokenClaims:
    """The verified access claims of ``token``, decoded once per request; raises
    ``TokenError``."""
    known = request.scope.get(CLAIMS_SCOPE_KEY)
    if isinstance(known, tuple) and known[0] == token:
        claims: TokenClaims = known[1]
        return claims
    claims = token_codec(settings).decode(token, "access")
    request.scope[CLAIMS_SCOPE_KEY] = (token, claims)
    return claims
