"""Bodies of the Gemini Developer API wire protocol (google-genai 3.x, API version v1).

``POST /v1/models/<model>:generateContent`` answers ``generate_response``;
``POST /v1/models/<model>:streamGenerateContent?alt=sse`` answers ``stream_chunks`` sent with
``Reply.sse(...)`` (no end marker: the stream just ends).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any


def generate_path(model: str) -> str:
    return f"/v1/models/{model}:generateContent"


def stream_path(model: str) -> str:
    return f"/v1/models/{model}:streamGenerateContent"


def function_call(name: str, args: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    """A ``functionCall`` part."""
    call: dict[str, Any] = {"name": name, "args": args}
    if call_id is not None:
        call["id"] = call_id
    return {"functionCall": call}


def generate_response(
    text: str | None = None,
    *,
    parts: Sequence[dict[str, Any]] = (),
    finish_reason: str | None = "STOP",
    usage: tuple[int, int] = (10, 5),
) -> dict[str, Any]:
    """A reply with one candidate: ``text`` as a text part, then any other ``parts``;
    ``usage`` is (prompt, candidates) tokens."""
    all_parts = ([{"text": text}] if text is not None else []) + list(parts)
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": all_parts}, "index": 0}
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": usage[0], "candidatesTokenCount": usage[1],
            "totalTokenCount": sum(usage),
        },
        "modelVersion": "gemini-stub",
    }


def stream_chunks(deltas: Sequence[str], usage: tuple[int, int] = (10, 5)) -> list[dict[str, Any]]:
    """One response per text delta, the last one carrying the finish reason; each carries the
    usage so far, as the API does (the prompt's tokens, the candidates' running total)."""
    last = len(deltas) - 1
    return [
        generate_response(
            d, finish_reason="STOP" if i == last else None,
            usage=(usage[0], usage[1] * (i + 1) // len(deltas)),
        )
        for i, d in enumerate(deltas)
    ]


def blocked_response(reason: str = "SAFETY") -> dict[str, Any]:
    """A prompt the API refused: no candidates, only feedback."""
    return {"promptFeedback": {"blockReason": reason}}


def error(code: int, message: str, status: str) -> dict[str, Any]:
    """A Google API error body (``status`` like ``RESOURCE_EXHAUSTED``)."""
    return {"error": {"code": code, "message": message, "status": status}}


def field(obj: dict[str, Any], camel_name: str) -> Any:
    """A field of a request body by its camelCase name; the SDK sends some in snake_case
    (``parameters_json_schema``, ``mime_type``), which the API accepts too."""
    if camel_name in obj:
        return obj[camel_name]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel_name)
    return obj[snake]


def decode_bytes(value: str) -> bytes:
    """Bytes of a request body (the SDK sends URL-safe base64)."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
