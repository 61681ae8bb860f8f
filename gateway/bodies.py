"""Request bodies: JSON objects validated by pydantic models, errors naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from gateway.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType
from gateway.params import load_json
from gateway.storable import check_storable

T = TypeVar("T", bound=BaseModel)
MAX_JSON_BYTES = 64 * 1024  # API bodies are small; uploads do not come through here


async def parse_body(
    request: Request, model: type[T], *, context: Mapping[str, Any] | None = None
) -> T:
    """The request's JSON body as ``model``.

    An empty body counts as ``{}`` so that missing fields are reported by name (422); a body
    not declared as JSON is a 415 (a cross-site form can send ``text/plain`` without a
    preflight); invalid JSON, JSON nested deeper than any body needs, or a non-object is a
    400; a ``ValidationError`` becomes a 422 listing fields. ``context`` reaches the model's
    validators (e.g. the model catalogue).
    """
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"request body exceeds {MAX_JSON_BYTES} bytes")
    if raw.strip() and not is_json_type(request.headers.get("content-type")):
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    try:
        data = load_json(raw) if raw.strip() else {}
    except ValueError as exc:
        raise MalformedBody("request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise MalformedBody("request body must be a JSON object")
    check_storable(data)  # NUL / lone surrogates: 422 here, never a projection that fails
    # A ValidationError propagates: gateway.errors maps it to 422 naming each field.
    return model.model_validate(data, context=context)


def is_json_type(header: str | None) -> bool:
    """Whether a ``Content-Type`` header declares JSON (``application/json`` or ``+json``)."""
    media = (header or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))
