"""The auth routes of API.md: start a login, the provider's callback, refresh, logout.

``GET /auth/{provider}`` stores a random ``state`` (with the frontend origin and the callback
URL) in Redis for a few minutes, binds it to the browser that asked with a short-lived HttpOnly
cookie, and returns the provider's authorization URL; the callback accepts the state only from
that browser (no login CSRF: a link carrying someone else's code and state signs nobody in),
takes it back exactly once, exchanges the code, signs the user in (registering them on the
first login: ``gateway.sign_in`` appends the command and waits for its event) and sets both cookies before redirecting to ``<origin>/#/home``. Any failure
redirects to ``<origin>/#/login``, never to a URL the request chose: origins come from the
allow-list only.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from gateway.auth import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    auth_store,
    presented_token,
    token_codec,
)
from gateway.auth_store import LoginState
from gateway.auth_tokens import TokenClaims, TokenCodec, TokenError, TokenPair
from gateway.config import GatewayConfig
from gateway.edge import command_metadata, is_https
from gateway.errors import InvalidRequest, NotFound, TokenRevoked, Unauthorized
from gateway.images import public_base
from gateway.oauth.providers import DEV, OAuthError, OAuthProvider, ProviderIdentity, resolve
from gateway.sign_in import sign_in
from gateway.state import gateway_state

log = logging.getLogger(__name__)

FRONTEND_ORIGIN_HEADER = "x-frontend-origin"
LOGIN_COOKIE = "s_login"  # the state of the login this browser started
LOGIN_COOKIE_PATH = "/api/v1/auth"
DEV_CODE_TTL_S = 120
NO_STORE = {"Cache-Control": "no-store"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def allowed_origins(request: Request, settings: GatewayConfig) -> set[str]:
    """Frontends we send browsers back to: the CORS allow-list and our own origin."""
    own = origin_of(public_base(request, settings))
    return {*settings.cors_origins, *([own] if own else [])}


def frontend_origin(request: Request, settings: GatewayConfig) -> str:
    raw = request.headers.get(FRONTEND_ORIGIN_HEADER) or request.headers.get("origin")
    allowed = allowed_origins(request, settings)
    if raw:
        origin = origin_of(raw.strip())
        if origin is None or origin not in allowed:
            raise InvalidRequest("X-Frontend-Origin", "is not an allowed frontend origin")
        return origin
    return frontend_default(request, settings)


def callback_uri(request: Request, settings: GatewayConfig, provider: str, given: str | None) -> str:
    """The callback URL the provider redirects to: ours, or ``given`` when it is our callback
    path on an allowed origin (a frontend proxying ``/api``); anything else is ignored."""
    path = f"/api/v1/auth/{provider}/callback"
    if given:
        parts = urlsplit(given)
        if parts.path == path and origin_of(given) in allowed_origins(request, settings):
            return f"{origin_of(given)}{path}"
    return public_base(request, settings) + path


async def start_login(request: Request) -> JSONResponse:
    """``GET /auth/{provider}?redirect_uri=...`` → the authorization URL and its state."""
    gw = gateway_state(request)
    settings = gw.resources.settings
    provider = request.path_params["provider"]
    backend = resolve(settings, provider)
    if backend is None:
        raise NotFound(f"sign-in with {provider!r} is not available")
    origin = frontend_origin(request, settings)
    redirect_uri = callback_uri(request, settings, provider, request.query_params.get("redirect_uri"))
    state = secrets.token_urlsafe(32)
    expires = time.time() + settings.oauth_state_ttl_s
    if isinstance(backend, OAuthProvider):
        name, url = backend.name, backend.authorization_url(state, redirect_uri)
    else:
        name, url = DEV, f"{public_base(request, settings)}/api/v1/auth/dev/authorize?state={state}"
    login = LoginState(provider, name, origin, redirect_uri, expires)
    await auth_store(request).put_state(state, login, settings.oauth_state_ttl_s)
    data = {"provider": provider, "state": state, "authorization_url": url, "expires_at": iso(expires)}
    response = JSONResponse({"success": True, "data": data}, headers=NO_STORE)
    response.set_cookie(
        LOGIN_COOKIE, state, max_age=settings.oauth_state_ttl_s, path=LOGIN_COOKIE_PATH,
        httponly=True, samesite="lax", secure=_secure(request),
    )
    return response


def started_here(request: Request, state: str) -> bool:
    """Whether this browser started the login ``state`` names (its login cookie holds it)."""
    bound = request.cookies.get(LOGIN_COOKIE, "")
    return bool(state) and secrets.compare_digest(bound.encode(), state.encode())


async def callback(request: Request) -> Response:
    """``GET /auth/{provider}/callback?code&state`` → cookies and 302 to the frontend."""
    gw = gateway_state(request)
    settings = gw.resources.settings
    provider = request.path_params["provider"]
    store = auth_store(request)
    state = request.query_params.get("state", "")
    if not started_here(request, state):
        log.warning("auth callback: state for %s not started by this browser", provider)
        return _to_frontend(request, frontend_default(request, settings), "login")
    login = await store.take_state(state)
    if login is None or login.provider != provider:
        log.info("auth callback: unknown or used state for %s", provider)
        return _to_frontend(request, frontend_default(request, settings), "login")
    code = request.query_params.get("code", "")
    if request.query_params.get("error") or not code:
        return _to_frontend(request, login.origin, "login")
    try:
        identity = await _identity(request, login, code, state)
    except OAuthError as exc:
        log.warning("auth callback: %s sign-in failed: %s", provider, exc)
        return _to_frontend(request, login.origin, "login")
    signed = await sign_in(gw, identity, command_metadata(request))
    log.info("auth: user %s signed in with %s (new: %s)", signed.user_id, identity.provider,
             signed.registered)
    response = _to_frontend(request, login.origin, "home")
    set_auth_cookies(response, token_codec(settings).issue(signed.user_id), secure=_secure(request))
    return response


async def _identity(request: Request, login: LoginState, code: str, state: str) -> ProviderIdentity:
    settings = gateway_state(request).resources.settings
    backend = resolve(settings, login.provider)
    if backend is None:
        raise OAuthError(f"{login.provider} is no longer available")
    if isinstance(backend, OAuthProvider):
        return await backend.identity(code, login.redirect_uri, state)
    nickname = await auth_store(request).take_code(code)
    if nickname is None:
        raise OAuthError("unknown or used dev sign-in code")
    return ProviderIdentity(DEV, nickname, nickname, nickname)


async def refresh(request: Request) -> JSONResponse:
    """``POST /auth/refresh`` → 201 with rotated cookies. The old refresh token is spent: using
    it again revokes its whole session (it may have been stolen) — except within
    ``refresh_grace_s`` of its rotation, when the same rotated pair is returned again (two tabs
    or a retried request refreshing at once must not log the user out)."""
    settings = gateway_state(request).resources.settings
    raw = request.cookies.get(REFRESH_COOKIE)
    if not raw:
        raise Unauthorized("refresh token missing")
    codec = token_codec(settings)
    try:
        claims = codec.decode(raw, "refresh")
    except TokenError as exc:
        raise Unauthorized("invalid or expired refresh token") from exc
    store = auth_store(request)
    if await store.is_revoked(claims, token=False):
        raise TokenRevoked("session revoked")
    fresh = codec.issue(claims.sub, family=claims.fam)
    first, rotated = await store.rotate_refresh(
        claims, json.dumps([fresh.access, fresh.refresh]), settings.refresh_grace_s)
    pair = fresh if first else _same_rotation(codec, rotated)
    if pair is None:
        await store.revoke_session(claims.fam, settings.refresh_token_ttl_s)
        log.warning("auth: refresh token reuse for user %s; session revoked", claims.sub)
        raise TokenRevoked("refresh token already used")
    body = {"success": True, "data": {"message": "tokens refreshed",
                                      "expires_at": iso(pair.access_claims.exp)}}
    response = JSONResponse(body, status_code=201, headers=NO_STORE)
    set_auth_cookies(response, pair, secure=_secure(request))
    return response


def _same_rotation(codec: TokenCodec, rotated: str | None) -> TokenPair | None:
    """The pair a refresh token was first rotated into (within the grace window), or None."""
    if rotated is None:
        return None
    try:
        access, refresh_token = json.loads(rotated)
        return TokenPair(access, refresh_token, codec.decode(access, "access"),
                         codec.decode(refresh_token, "refresh"))
    except (ValueError, TypeError, TokenError):
        return None


async def logout(request: Request) -> JSONResponse:
    """``POST /auth/logout`` → both tokens (and their session) revoked, cookies cleared."""
    await revoke_presented(request)
    response = JSONResponse(
        {"success": True, "data": {"message": "로그아웃되었습니다."}}, headers=NO_STORE
    )
    clear_auth_cookies(response, secure=_secure(request))
    return response


async def revoke_presented(request: Request) -> None:
    """Revoke the request's access and refresh tokens and their sessions (invalid ones are
    ignored: there is nothing to revoke)."""
    codec = token_codec(gateway_state(request).resources.settings)
    store = auth_store(request)
    found: list[TokenClaims] = []
    for raw, typ in ((presented_token(request), "access"),
                     (request.cookies.get(REFRESH_COOKIE), "refresh")):
        if raw:
            try:
                found.append(codec.decode(raw, typ))  # type: ignore[arg-type]
            except TokenError:
                continue
    for claims in found:
        await store.revoke(claims, session=True)


def set_auth_cookies(response: Response, pair: TokenPair, *, secure: bool) -> None:
    for name, token, claims in ((ACCESS_COOKIE, pair.access, pair.access_claims),
                                (REFRESH_COOKIE, pair.refresh, pair.refresh_claims)):
        response.set_cookie(
            name, token, max_age=claims.exp - claims.iat, path="/", httponly=True,
            samesite="lax", secure=secure,
        )


def clear_auth_cookies(response: Response, *, secure: bool) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure)


def frontend_default(request: Request, settings: GatewayConfig) -> str:
    return settings.cors_origins[0] if settings.cors_origins else public_base(request, settings)


def _to_frontend(request: Request, origin: str, page: str) -> RedirectResponse:
    """The callback's answer: back to the frontend, with the spent login cookie removed."""
    response = RedirectResponse(f"{origin}/#/{page}", status_code=302, headers=NO_STORE)
    response.delete_cookie(
        LOGIN_COOKIE, path=LOGIN_COOKIE_PATH, httponly=True, samesite="lax",
        secure=_secure(request),
    )
    return response


def _secure(request: Request) -> bool:
    settings = gateway_state(request).resources.settings
    return settings.production or is_https(request, settings)
