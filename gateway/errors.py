"""The gateway's errors and the ONE table mapping every exception to a status and a code.

    GatewayError
    ├── MalformedBody            400  the body is not the JSON object the route takes
    ├── Unauthorized             401  no or invalid credentials (the client refreshes, retries)
    ├── TokenRevoked             403  a valid but revoked token: the one 403 the client logs out on
    ├── UploadForbidden          403  only on the signed upload URL (403 elsewhere = logout)
    │   ├── UploadExpired        403
    │   ├── UploadSignatureInvalid 403
    │   └── UploadUsed           403  the URL's one upload happened, or its owner is gone
    ├── NotFound                 404  unknown, or another user's (never 403: no oracle)
    ├── Conflict                 409  the resource is not in a state the request applies to
    ├── PayloadTooLarge          413
    ├── UnsupportedMediaType     415
    ├── InvalidRequest           422  names the field(s)
    └── NotReady                 503
        └── DatabaseUnavailable  503  Postgres unreachable (read models); with Retry-After
    (asyncpg.DataError           422  a request value Postgres cannot take, e.g. an id > int64)

Driver errors that mean "Postgres/Redis is unreachable right now" (connection refused or lost,
server shutting down or starting, pool timeout) are 503 with ``Retry-After``, like every 503.
Every error response is ``{"detail": "...", "code": "..."}`` (plus ``errors`` for 422), never a
stack trace. Errors of other packages are mapped here too, so no route catches them itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from eventstore.errors import ConcurrencyConflict, EventStoreError, InvalidAppend
from media.store import MediaUnavailable

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """Base of the errors routes raise; the table below gives status and code."""

    def __init__(self, detail: str, *, errors: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None


class MalformedBody(GatewayError): ...


class Unauthorized(GatewayError): ...


class TokenRevoked(GatewayError):
    """A valid access token that was revoked (logout, reuse, deletion): 403."""


class UploadForbidden(GatewayError): ...


class UploadExpired(UploadForbidden): ...


class UploadSignatureInvalid(UploadForbidden): ...


class UploadUsed(UploadForbidden): ...


class NotFound(GatewayError): ...


class Conflict(GatewayError):
    """The request is well formed but the resource's state refuses it (e.g. input for a chat
    turn that asked nothing); ``detail`` says why."""


class PayloadTooLarge(GatewayError): ...


class UnsupportedMediaType(GatewayError): ...


class InvalidRequest(GatewayError):
    """A request that fails validation; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message}])


class NotReady(GatewayError): ...


class DatabaseUnavailable(NotReady):
    """The read models' database cannot be reached; the client retries after a moment."""


class CommandPending(NotReady):
    """A command was appended but its outcome is not recorded yet (no handler has run it in
    time); it stays in the log and runs later, and the client retries after a moment."""


RETRY_AFTER_S = 2  # what a 503 tells the client to wait


# exception class → (status, code); the nearest class in the MRO wins. status None: the
# exception carries its own (Starlette's routing errors).
ERROR_TABLE: dict[type[BaseException], tuple[int | None, str]] = {
    MalformedBody: (400, "malformed_body"),
    Unauthorized: (401, "unauthorized"),
    TokenRevoked: (403, "token_revoked"),
    UploadForbidden: (403, "upload_forbidden"),
    UploadExpired: (403, "upload_url_expired"),
    UploadSignatureInvalid: (403, "invalid_signature"),
    UploadUsed: (403, "upload_url_used"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    PayloadTooLarge: (413, "payload_too_large"),
    UnsupportedMediaType: (415, "unsupported_media_type"),
    InvalidRequest: (422, "validation_error"),
    ValidationError: (422, "validation_error"),
    NotReady: (503, "not_ready"),
    DatabaseUnavailable: (503, "database_unavailable"),
    CommandPending: (503, "command_pending"),
    # a value from the request Postgres cannot take (an id past int64, a character it cannot
    # store): the request's fault, never reached by well-formed input
    asyncpg.DataError: (422, "invalid_value"),
    asyncpg.PostgresConnectionError: (503, "database_unavailable"),
    asyncpg.CannotConnectNowError: (503, "database_unavailable"),
    asyncpg.AdminShutdownError: (503, "database_unavailable"),
    asyncpg.TooManyConnectionsError: (503, "database_unavailable"),
    asyncpg.InterfaceError: (503, "database_unavailable"),
    ConnectionError: (503, "backend_unavailable"),
    TimeoutError: (503, "backend_unavailable"),
    ConcurrencyConflict: (409, "conflict"),
    InvalidAppend: (422, "invalid_command"),
    EventStoreError: (503, "event_store_unavailable"),
    RedisError: (503, "redis_unavailable"),
    MediaUnavailable: (503, "media_unavailable"),
    HTTPException: (None, "http_error"),
    Exception: (500, "internal_error"),
}
_HTTP_CODES = {
    400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"
}


def lookup(exc: BaseException) -> tuple[int, str]:
    """The (status, code) of ``exc`` from ``ERROR_TABLE``."""
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            status, code = ERROR_TABLE[cls]
            if status is None:
                status = exc.status_code if isinstance(exc, HTTPException) else 500
                code = _HTTP_CODES.get(status, code)
            return status, code
    return 500, "internal_error"


def validation_errors(exc: ValidationError, *, prefix: str = "") -> list[dict[str, Any]]:
    """pydantic's errors as ``[{"field", "message"}]`` (dotted field paths)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append({"field": prefix + loc if loc else prefix.rstrip(".") or "body",
                    "message": err.get("msg", "invalid")})
    return out


async def error_response(request: Request, exc: Exception) -> Response:
    """The JSON error response of ``exc`` (installed for every class of the table)."""
    status, code = lookup(exc)
    body: dict[str, Any] = {"code": code}
    if isinstance(exc, GatewayError):
        body["detail"] = exc.detail
        if exc.errors:
            body["errors"] = exc.errors
    elif isinstance(exc, ValidationError):
        errors = validation_errors(exc)
        body["detail"] = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        body["errors"] = errors
    elif isinstance(exc, HTTPException):
        body["detail"] = str(exc.detail)
    elif status >= 500:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        body["detail"] = "internal error" if status == 500 else "a backing service is unavailable"
    else:
        body["detail"] = str(exc)
    headers = getattr(exc, "headers", None) if isinstance(exc, HTTPException) else None
    if status == 503:
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse({"detail": body.pop("detail"), **body}, status_code=status, headers=headers)


def exception_handlers() -> dict[Any, Any]:
    """Starlette's ``exception_handlers`` for every class of the table."""
    return {cls: error_response for cls in ERROR_TABLE}
