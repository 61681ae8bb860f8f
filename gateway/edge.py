"""The gateway's edge, one pure ASGI middleware (streams and SSE pass through unbuffered):

- **correlation id**: ``X-Request-ID`` from the request (when well formed) or a fresh one; echoed
  on the response, on every log line of the request, and put into command metadata
  (``command_metadata``) so gateway → command → events share it;
- **CORS** with an allow-list: allowed origins are echoed with credentials; preflights are
  answered here (incl. ``X-Frontend-Origin`` and the upload ``PUT``);
- **rate limits** on command endpoints (every non-GET under ``/api/v1`` and the upload ``PUT``):
  a fixed window per user and per client IP in Redis, ``429`` with ``Retry-After``;
- **cross-site writes**: cookie-authenticated writes from an origin outside the allow-list
  are refused (``gateway.csrf``);
- **body limits**: ``413`` from ``Content-Length`` at once, or while a body streams in;
- **security headers** (a route's own, e.g. a page's CSP, wins);
- **Access log**: one line per request on ``eco2.access`` (formatted by ``infra.telemetry``).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import math
import re
import time
import uuid
from contextvars import ContextVar

from redis.asyncio import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventstore.redis_client import AsyncRedis
from eventstore.tracing import trace_context
from gateway.auth import USER_SCOPE_KEY, peek_user
from gateway.config import GatewayConfig
from gateway.csrf import cross_site_refusal
from gateway.errors import PayloadTooLarge
from gateway.params import parse_int
from gateway.state import STATE_KEY, GatewayState
from schemas.envelope import Metadata

log = logging.getLogger(__name__)
access_log = logging.getLogger("eco2.access")

REQUEST_ID: ContextVar[str | None] = ContextVar("eco2_request_id", default=None)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_HEADERS = frozenset({
    "accept", "accept-language", "content-language", "content-type", "authorization",
    "x-frontend-origin", "x-idempotency-key", "x-request-id", "last-event-id", "cache-control",
})
EXPOSED = "Retry-After, X-Request-ID"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000; includeSubDomains"

# INCR each window counter, give a new one its TTL; (count, ms left) of each, flat. A single
# Redis takes every window of a request in one call; a cluster one call per key (other slots).
_WINDOW = """
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if n == 1 or ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
return out
"""


def correlation_id() -> str | None:
    """The correlation id of the request being served (None outside a request)."""
    return REQUEST_ID.get()


def command_metadata(request: Request, user_id: str | None = None) -> Metadata:
    """Metadata for a command or event caused by ``request``: its correlation id, user and
    trace context (the request's span, when tracing is on)."""
    known = request.scope.get(USER_SCOPE_KEY)
    user = user_id or (known if isinstance(known, str) else None)
    return Metadata(correlation_id=correlation_id(), user_id=user, trace=trace_context())


def is_https(request: Request, settings: GatewayConfig) -> bool:
    if request.url.scheme == "https":
        return True
    proto = request.headers.get("x-forwarded-proto", "")
    return settings.trust_forwarded and proto.split(",")[0].strip().lower() == "https"


def client_ip(scope: Scope, settings: GatewayConfig) -> str:
    """The client's address. Behind a trusted proxy (``trust_forwarded``) it is the address
    the proxy added — the right-most ``X-Forwarded-For`` entry not in ``trusted_proxies`` —
    never the left-most one, which the client writes itself."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not settings.trust_forwarded:
        return peer
    proxies = _networks(settings.trusted_proxies)
    if proxies and not _within(peer, proxies):
        return peer  # not from our proxy: its X-Forwarded-For is the client's own words
    hops = [h.strip() for h in Headers(scope=scope).get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if proxies and _within(hop, proxies):
            continue
        return hop if _is_ip(hop) else peer
    return peer


@functools.lru_cache(maxsize=8)
def _networks(specs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(spec, strict=False) for spec in specs)


def _within(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
            ) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def add_headers(start: Message, extra: dict[str, str]) -> None:
    """Add ``extra`` to a response's start message: a header the route set itself wins, Vary
    is merged. On the raw list (MutableHeaders scanned and re-encoded it per header: ≈ 6 µs of
    the ≈ 7 every response spent here)."""
    raw: list[tuple[bytes, bytes]] = list(start.get("headers", ()))
    start["headers"] = raw
    present = {name.lower() for name, _ in raw}
    for name, value in extra.items():
        if name == "vary":
            MutableHeaders(raw=raw).add_vary_header(value)  # edits ``raw`` in place
        elif (encoded := name.lower().encode("latin-1")) not in present:
            raw.append((encoded, value.encode("latin-1")))


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


class EdgeMiddleware:
    """See the module docstring. ``settings`` are the gateway's."""

    def __init__(self, app: ASGIApp, settings: GatewayConfig) -> None:
        self.app = app
        self.settings = settings
        self.origins = frozenset(settings.cors_origins)
        self._scripts: dict[int, AsyncScript] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 0
        extra = self._response_headers(scope, headers, request_id)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                add_headers(message, extra)
            await send(message)

        try:
            early = await self._early_answer(scope, headers)
            if early is not None:
                await early(scope, receive, send_with_headers)
                return
            await self.app(scope, self._limited(scope, headers, receive), send_with_headers)
        finally:
            self._log(scope, status, started, request_id)
            REQUEST_ID.reset(token)

    # -- CORS and headers -----------------------------------------------------------------

    def origin_allowed(self, origin: str | None) -> bool:
        return origin is not None and origin in self.origins

    def _response_headers(self, scope: Scope, headers: Headers, request_id: str) -> dict[str, str]:
        extra = {**SECURITY_HEADERS, "x-request-id": request_id}
        path: str = scope["path"]
        if path.startswith("/media/"):
            extra["cross-origin-resource-policy"] = "cross-origin"  # the PWA shows our images
        forwarded = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        https = scope.get("scheme") == "https" or (
            self.settings.trust_forwarded and forwarded == "https")
        # Not for `eco2 up --tls`: a browser that trusts the local CA would then force HTTPS on
        # every http://localhost dev server for a year.
        if self.settings.production or (https and not self.settings.tls):
            extra["strict-transport-security"] = HSTS
        origin = headers.get("origin")
        if self.origin_allowed(origin):
            assert origin is not None
            extra.update({
                "access-control-allow-origin": origin,
                "access-control-allow-credentials": "true",
                "access-control-expose-headers": EXPOSED,
            })
        if origin is not None:
            extra["vary"] = "Origin"
        return extra

    def _preflight(self, headers: Headers) -> Response:
        origin = headers.get("origin")
        method = headers.get("access-control-request-method", "").upper()
        asked = [h.strip().lower() for h in headers.get("access-control-request-headers", "")
                 .split(",") if h.strip()]
        if not self.origin_allowed(origin):
            return _error(400, "cors_rejected", "origin is not allowed")
        if method not in CORS_METHODS:
            return _error(400, "cors_rejected", f"method {method or '?'} is not allowed")
        refused = [h for h in asked if h not in CORS_HEADERS]
        if refused:
            return _error(400, "cors_rejected", f"headers not allowed: {', '.join(refused)}")
        return Response(status_code=204, headers={
            "access-control-allow-methods": ", ".join(CORS_METHODS),
            "access-control-allow-headers": ", ".join(asked or sorted(CORS_HEADERS)),
            "access-control-max-age": "600",
        })

    # -- limits ---------------------------------------------------------------------------

    def body_limit(self, path: str) -> int:
        if path.startswith("/uploads/"):
            return self.settings.upload_max_bytes
        return self.settings.max_body_bytes

    async def _early_answer(self, scope: Scope, headers: Headers) -> Response | None:
        method = scope["method"]
        if method == "OPTIONS" and "origin" in headers and \
                "access-control-request-method" in headers:
            return self._preflight(headers)
        refusal = cross_site_refusal(method, scope["path"], headers, self.origins,
                                     self.settings.public_url)
        if refusal is not None:
            return _error(403, "cross_site_refused", refusal)
        limit = self.body_limit(scope["path"])
        length = parse_int(headers.get("content-length"))
        if length is not None and length > limit:
            return _error(413, "payload_too_large", f"request body exceeds {limit} bytes")
        if method in COMMAND_METHODS and _is_command_path(scope["path"]):
            retry_after = await self._rate_limited(scope)
            if retry_after is not None:
                return _error(429, "rate_limited", "too many requests; slow down",
                              {"Retry-After": str(retry_after)})
        return None

    def _limited(self, scope: Scope, headers: Headers, receive: Receive) -> Receive:
        limit = self.body_limit(scope["path"])
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body: the route's error handler answers 413
                    raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            return message

        return receive_limited

    async def _rate_limited(self, scope: Scope) -> int | None:
        """Seconds to wait when a window is full, else None. Fails open without Redis."""
        state: GatewayState | None = (scope.get("state") or {}).get(STATE_KEY)
        s = self.settings
        if state is None or (s.rate_limit_user <= 0 and s.rate_limit_ip <= 0):
            return None
        checks: list[tuple[str, int]] = []
        if s.rate_limit_ip > 0:
            checks.append((f"ip:{client_ip(scope, s)}", s.rate_limit_ip))
        user = peek_user(Request(scope), s) if s.rate_limit_user > 0 else None
        if user is not None:
            checks.append((f"user:{user}", s.rate_limit_user))
        if not checks:
            return None
        redis = state.resources.redis
        script = self._script(redis)
        prefix = f"{s.namespace}:rl"  # no hash tag: windows spread over a cluster's slots
        window_ms = s.rate_limit_window_s * 1000
        keys = [f"{prefix}:{key}" for key, _ in checks]
        try:
            if len(keys) == 1 or not isinstance(redis, RedisCluster):
                counts = [int(v) for v in await script(keys=keys, args=[window_ms])]
            else:
                # Concurrent calls, not a pipeline: each key may live on another cluster node,
                # and a script call (unlike a pipelined one) loads the script where it is missing.
                replies = await asyncio.gather(
                    *(script(keys=[key], args=[window_ms]) for key in keys))
                counts = [int(v) for reply in replies for v in reply]
        except (RedisError, OSError) as exc:
            log.warning("rate limit not checked: %s", exc)
            return None
        waits = [math.ceil(ttl / 1000) for (_, cap), n, ttl in zip(
            checks, counts[::2], counts[1::2], strict=True) if n > cap]
        return max(max(waits), 1) if waits else None

    def _script(self, redis: AsyncRedis) -> AsyncScript:
        script = self._scripts.get(id(redis))
        if script is None:
            script = self._scripts[id(redis)] = redis.register_script(_WINDOW)
        return script

    # -- logs -----------------------------------------------------------------------------

    def _log(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        user = scope.get(USER_SCOPE_KEY)
        seconds = time.perf_counter() - started
        state: GatewayState | None = (scope.get("state") or {}).get(STATE_KEY)
        if state is not None:
            state.metrics.requests.labels(scope["method"], route_of(scope), str(status)).observe(
                seconds)
        access_log.info(
            "%s %s %s", scope["method"], scope["path"], status,
            extra={
                "request_id": request_id, "method": scope["method"], "path": scope["path"],
                "status": status, "duration_ms": round(seconds * 1000, 2),
                "client": client_ip(scope, self.settings),
                **({"user_id": user} if isinstance(user, str) else {}),
            },
        )


def route_of(scope: Scope) -> str:
    """The request's route template (path parameters named, so a metric's labels stay few),
    or ``unmatched``."""
    params: dict[str, object] = scope.get("path_params") or {}
    if scope.get("endpoint") is None:
        return "unmatched"
    path: str = scope["path"]
    for name, value in params.items():
        path = path.replace(f"/{value}", "/{" + name + "}", 1)
    return path


def _is_command_path(path: str) -> bool:
    return path.startswith(("/api/v1/", "/uploads/"))
