"""OpenAI adapter of the LLM and vision ports, on the ``openai`` SDK (``AsyncOpenAI``).

Endpoint: ``POST {base_url}/chat/completions`` for everything (plain, ``stream=True``, tools,
structured output, images as content parts). Structured output goes through
``chat.completions.parse(response_format=Model)`` (strict JSON schema, parsed by the SDK); a
schema with open-ended objects (``dict[str, str]``, which strict mode rejects) is sent as a
non-strict ``json_schema`` response format and validated here instead.

The SDK's own retries are off (``max_retries=0``): ``agents.llm.retry`` retries 429/5xx/timeouts
with bounded back-off; 400/401/… fail at once. Every attempt has an explicit timeout (the SDK's
per-operation timeout, plus a hard deadline on non-streaming calls).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import openai
import pydantic
from openai import AsyncOpenAI
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionContentPartParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)
from openai.types.completion_usage import CompletionUsage

from agents.llm.metrics import llm_metrics
from agents.llm.ports import (
    ChatMessage,
    Completion,
    ImageInput,
    LLMBadOutput,
    LLMError,
    LLMUnavailable,
    T,
    ToolCall,
    ToolSpec,
    VisionResult,
)
from agents.llm.providers import (
    VISION_INSTRUCTIONS,
    VisionReply,
    unclassified_without_image,
    vision_user_text,
)
from agents.llm.retry import (
    Retryable,
    RetryPolicy,
    call_with_retries,
    is_retryable_status,
    stream_with_retries,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"  # passed explicitly: the SDK would read env vars


class OpenAIAdapter:
    """``LLM`` and ``Vision`` backed by OpenAI chat completions. Close with ``aclose()``."""

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 2,
        *,
        default_model: str = "gpt-4o-mini",
        retry_base_delay_s: float = 0.5,
        retry_max_delay_s: float = 8.0,
    ) -> None:
        self.default_model = default_model
        self._timeout_s = timeout_s
        self._policy = RetryPolicy(retries, retry_base_delay_s, retry_max_delay_s)
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeout_s,
            max_retries=0,
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> OpenAIAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- LLM ----------------------------------------------------------------------------------
    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        """One chat completion; the model's ``tool_calls`` come back as ``ToolCall``s with
        their JSON arguments parsed."""
        chosen = model or self.default_model
        params = _messages(messages)
        tool_params = [_tool(t) for t in tools]

        async def attempt() -> Completion:
            async with self._translated(deadline=True):
                response = await self._client.chat.completions.create(
                    model=chosen,
                    messages=params,
                    tools=tool_params if tool_params else openai.omit,
                )
            _count_usage(chosen, response.usage)
            return _completion(response)

        return await call_with_retries(attempt, self._policy, what=f"openai {chosen}")

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        """A reply validated into ``schema`` (strict JSON-schema structured output)."""
        return await self._structured(model or self.default_model, _messages(messages), schema)

    def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        """Text deltas of a ``stream=True`` completion (retried only before the first delta)."""
        chosen = model or self.default_model
        params = _messages(messages)
        return stream_with_retries(
            lambda: self._stream_once(chosen, params), self._policy, what=f"openai {chosen}"
        )

    # --- Vision -------------------------------------------------------------------------------
    async def classify(
        self, image: ImageInput, *, hint: str | None = None, model: str | None = None
    ) -> VisionResult:
        """Send the image (data URL, or its URL) with the user's hint; structured reply."""
        url = _image_url(image)
        if url is None:
            return unclassified_without_image()
        content: list[ChatCompletionContentPartParam] = [
            {"type": "text", "text": vision_user_text(image, hint)},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        params: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": VISION_INSTRUCTIONS},
            {"role": "user", "content": content},
        ]
        reply = await self._structured(model or self.default_model, params, VisionReply)
        return reply.to_result()

    # --- one attempt each ---------------------------------------------------------------------
    async def _structured(
        self, model: str, params: list[ChatCompletionMessageParam], schema: type[T]
    ) -> T:
        strict = _strict_compatible(schema.model_json_schema())

        async def attempt() -> T:
            async with self._translated(deadline=True):
                if strict:
                    parsed = await self._client.chat.completions.parse(
                        model=model, messages=params, response_format=schema
                    )
                    _count_usage(model, parsed.usage)
                    return _parsed(parsed.choices, schema)
                response = await self._client.chat.completions.create(
                    model=model,
                    messages=params,
                    response_format={
                        "type": "json_schema",
                        "json_schema": {
                            "name": schema.__name__,
                            "schema": schema.model_json_schema(),
                            "strict": False,
                        },
                    },
                )
                _count_usage(model, response.usage)
                return schema.model_validate_json(_text_of(response))

        return await call_with_retries(attempt, self._policy, what=f"openai {model}")

    async def _stream_once(
        self, model: str, params: list[ChatCompletionMessageParam]
    ) -> AsyncGenerator[str, None]:
        async with self._translated(deadline=False):
            chunks = await self._client.chat.completions.create(
                model=model, messages=params, stream=True,
                stream_options={"include_usage": True},  # a last chunk with the usage
            )
            async with chunks:
                async for chunk in chunks:
                    _count_usage(model, chunk.usage)
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield choice.delta.content

    @asynccontextmanager
    async def _translated(self, *, deadline: bool) -> AsyncIterator[None]:
        """SDK errors → port errors (``Retryable`` when worth another attempt)."""
        try:
            if deadline:
                # httpx timeouts are per read; this bounds the whole call
                async with asyncio.timeout(self._timeout_s):
                    yield
            else:
                yield
        except LLMError:
            raise
        except TimeoutError as exc:
            raise Retryable(f"no answer within {self._timeout_s}s") from exc
        except Exception as exc:
            raise _translate(exc) from exc


def _count_usage(model: str, usage: CompletionUsage | None) -> None:
    if usage is not None:
        llm_metrics().count_tokens(
            "openai", model, usage.prompt_tokens, usage.completion_tokens
        )


def _translate(exc: Exception) -> LLMError:
    if isinstance(exc, openai.APITimeoutError):
        return Retryable("request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Retryable(f"connection failed: {exc}")
    if isinstance(exc, openai.APIStatusError):
        message = f"HTTP {exc.status_code}: {exc.message}"
        if is_retryable_status(exc.status_code):
            return Retryable(message, retry_after_s=_retry_after(exc.response.headers))
        return LLMUnavailable(message)
    if isinstance(exc, openai.LengthFinishReasonError | openai.ContentFilterFinishReasonError):
        return LLMBadOutput(f"reply cut short: {exc}")
    if isinstance(exc, pydantic.ValidationError | json.JSONDecodeError):
        return LLMBadOutput(f"reply does not fit the requested structure: {exc}")
    if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
        return Retryable(f"provider error: {exc}")
    return LLMUnavailable(f"unexpected {type(exc).__name__}: {exc}")


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None  # absent, or an HTTP date: fall back to our back-off


def _messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    out: list[ChatCompletionMessageParam] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
        elif m.role == "system":
            out.append({"role": "system", "content": m.content})
        elif m.role == "assistant":
            out.append({"role": "assistant", "content": m.content})
        else:
            out.append({"role": "user", "content": m.content})
    return out


def _tool(spec: ToolSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


def _completion(response: ChatCompletion) -> Completion:
    if not response.choices:
        raise LLMBadOutput("reply has no choices")
    message = response.choices[0].message
    calls = [
        ToolCall(id=c.id, name=c.function.name, arguments=_arguments(c.function.arguments))
        for c in message.tool_calls or ()
        if c.type == "function"
    ]
    return Completion(text=message.content or "", tool_calls=calls)


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise LLMBadOutput(f"tool call arguments are not JSON: {raw[:200]!r}") from exc
    if not isinstance(value, dict):
        raise LLMBadOutput(f"tool call arguments are not a JSON object: {raw[:200]!r}")
    return value


def _parsed(choices: Sequence[Any], schema: type[T]) -> T:
    if not choices:
        raise LLMBadOutput("reply has no choices")
    message = choices[0].message
    if message.refusal:
        raise LLMBadOutput(f"model refused: {message.refusal}")
    if not isinstance(message.parsed, schema):
        raise LLMBadOutput("reply has no structured content")
    return message.parsed


def _text_of(response: ChatCompletion) -> str:
    if not response.choices or not response.choices[0].message.content:
        raise LLMBadOutput("reply has no content")
    return response.choices[0].message.content


def _strict_compatible(schema: Any) -> bool:
    """Whether every object in a JSON schema can be closed (strict mode forbids open dicts)."""
    if isinstance(schema, dict):
        extra = schema.get("additionalProperties")
        if extra not in (None, False):
            return False
        return all(_strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(_strict_compatible(v) for v in schema)
    return True


def _image_url(image: ImageInput) -> str | None:
    if image.data is not None:
        encoded = base64.b64encode(image.data).decode("ascii")
        return f"data:{image.content_type or 'image/jpeg'};base64,{encoded}"
    return image.url
