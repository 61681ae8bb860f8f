"""Request bodies: JSON objects validated by pydantic models, errors naming the field."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from gateway.errors import MalformedBody, PayloadTooLarge
from gateway.storable import check_storable

T = TypeVar("T", bound=BaseModel)
MAX_JSON_BYTES = 64 * 1024  # API bodies are small; uploads do not come through here


async def parse_body(request: Request, model: type[T]) -> T:
    """The request's JSON body as ``model``.

    An empty body counts as ``{}`` so that missing fields are reported by name (422);
    invalid JSON or a non-object is a 400; a ``ValidationError`` becomes a 422 listing fields.
    """
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"request body exceeds {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise MalformedBody("request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise MalformedBody("request body must be a JSON object")
    check_storable(data)  # NUL / lone surrogates: 422 here, never a projection that fails
    # A ValidationError propagates: gateway.errors maps it to 422 naming each field.
    return model.model_validate(data)
