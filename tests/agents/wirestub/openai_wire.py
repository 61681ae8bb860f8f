"""Bodies of the OpenAI chat-completions wire protocol (``POST /v1/chat/completions``).

``chat_completion`` is a non-streaming reply; ``chat_chunks`` the ``chat.completion.chunk``
events of a ``stream=True`` reply (send with ``Reply.sse(..., done_marker="[DONE]")``), tool-call
arguments split across chunks the way the API streams them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

PATH = "/v1/chat/completions"


def tool_call(
    name: str, arguments: dict[str, Any] | str, call_id: str = "call_1"
) -> dict[str, Any]:
    """One ``tool_calls`` entry; ``arguments`` as a dict (serialised) or raw text (to send junk)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def chat_completion(
    content: str | None = None,
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    refusal: str | None = None,
    model: str = "gpt-4o-mini",
    finish_reason: str | None = None,
    usage: tuple[int, int] = (10, 5),
) -> dict[str, Any]:
    """A reply; ``usage`` is (prompt, completion) tokens."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": _usage(*usage),
    }


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chunk(delta: dict[str, Any], finish_reason: str | None, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def chat_chunks(
    deltas: Sequence[str],
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    model: str = "gpt-4o-mini",
    usage: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """The stream's chunks: role, one chunk per text delta, tool calls (id and name first,
    then the arguments in two halves), then the finish reason; with ``usage`` (prompt,
    completion) a last chunk without choices carries it (``stream_options.include_usage``)."""
    chunks = [_chunk({"role": "assistant", "content": ""}, None, model)]
    chunks += [_chunk({"content": d}, None, model) for d in deltas]
    for index, call in enumerate(tool_calls):
        args = call["function"]["arguments"]
        half = len(args) // 2
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": args[:half]},
        }
        tail = {"index": index, "function": {"arguments": args[half:]}}
        chunks += [
            _chunk({"tool_calls": [head]}, None, model),
            _chunk({"tool_calls": [tail]}, None, model),
        ]
    chunks.append(_chunk({}, "tool_calls" if tool_calls else "stop", model))
    if usage is not None:
        chunks.append({**_chunk({}, None, model), "choices": [], "usage": _usage(*usage)})
    return chunks


def error(message: str, *, type_: str = "server_error", code: str | None = None) -> dict[str, Any]:
    """An API error body (the status code goes on the ``Reply``)."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
