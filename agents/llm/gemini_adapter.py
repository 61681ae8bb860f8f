"""Gemini adapter of the LLM and vision ports, on the ``google-genai`` SDK (Developer API).

Endpoints (API version v1, the SDK's default): ``POST {base_url}/v1/models/<m>:generateContent``
and ``POST {base_url}/v1/models/<m>:streamGenerateContent?alt=sse``. Structured output sets
``response_mime_type="application/json"`` with ``response_json_schema`` (the pydantic JSON
schema as is: the SDK's ``response_schema`` conversion rejects open dicts such as
``ScanAnswer.disposal_steps``) and is validated here. Tools are function declarations; images
are inline bytes (or a file URI when we only have a URL).

Tool-call ids: Gemini may omit a call's id, and its function responses must carry the function
name, so ``ToolCall.id`` is ``"<name>/<gemini id>"`` (or ``"<name>#<n>"`` without an id); a
``tool`` message's ``tool_call_id`` in that form is turned back into name and id. Function names
cannot contain ``/`` or ``#``.

The SDK does not retry unless told to; ``agents.llm.retry`` does (429/5xx/timeouts). Every
attempt has an explicit timeout (``HttpOptions.timeout`` in ms, plus a hard deadline on
non-streaming calls).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx2
import pydantic
from google import genai
from google.genai import errors, types

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

# passed explicitly: without it the SDK reads GOOGLE_GEMINI_BASE_URL itself
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"


class GeminiAdapter:
    """``LLM`` and ``Vision`` backed by Gemini ``generateContent``. Close with ``aclose()``."""

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 2,
        *,
        default_model: str = "gemini-2.5-flash",
        retry_base_delay_s: float = 0.5,
        retry_max_delay_s: float = 8.0,
    ) -> None:
        self.default_model = default_model
        self._timeout_s = timeout_s
        self._policy = RetryPolicy(retries, retry_base_delay_s, retry_max_delay_s)
        self._client = genai.Client(
            vertexai=False,
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url or DEFAULT_BASE_URL, timeout=max(1, int(timeout_s * 1000))
            ),
        )

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    async def __aenter__(self) -> GeminiAdapter:
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
        """One reply; ``functionCall`` parts come back as ``ToolCall``s."""
        system, contents = _contents(messages)
        config = types.GenerateContentConfig(
            system_instruction=system,
            tools=[types.Tool(function_declarations=[_declaration(t) for t in tools])]
            if tools
            else None,
        )
        response = await self._generate(model or self.default_model, contents, config)
        return _completion(response)

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        """A reply validated into ``schema`` (JSON mode with the schema attached)."""
        system, contents = _contents(messages)
        return await self._structured(model or self.default_model, system, contents, schema)

    def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        """Text deltas of ``streamGenerateContent`` (retried only before the first delta)."""
        chosen = model or self.default_model
        system, contents = _contents(messages)
        config = types.GenerateContentConfig(system_instruction=system)
        return stream_with_retries(
            lambda: self._stream_once(chosen, contents, config),
            self._policy,
            what=f"gemini {chosen}",
        )

    # --- Vision -------------------------------------------------------------------------------
    async def classify(
        self, image: ImageInput, *, hint: str | None = None, model: str | None = None
    ) -> VisionResult:
        """Send the image bytes inline (or its URL as a file URI) with the user's hint."""
        mime = image.content_type or "image/jpeg"
        if image.data is not None:
            picture = types.Part.from_bytes(data=image.data, mime_type=mime)
        elif image.url is not None:
            picture = types.Part.from_uri(file_uri=image.url, mime_type=mime)
        else:
            return unclassified_without_image()
        contents = [
            types.Content(
                role="user", parts=[types.Part(text=vision_user_text(image, hint)), picture]
            )
        ]
        chosen = model or self.default_model
        reply = await self._structured(chosen, VISION_INSTRUCTIONS, contents, VisionReply)
        return reply.to_result()

    # --- one attempt each ---------------------------------------------------------------------
    async def _structured(
        self, model: str, system: str | None, contents: list[types.Content], schema: type[T]
    ) -> T:
        config = types.GenerateContentConfig(
            system_instruction=system,
            response_mime_type="application/json",
            response_json_schema=schema.model_json_schema(),
        )
        response = await self._generate(model, contents, config)
        text = _text(response)
        try:
            return schema.model_validate_json(text)
        except pydantic.ValidationError as exc:
            raise LLMBadOutput(f"reply does not fit {schema.__name__}: {exc}") from exc

    async def _generate(
        self, model: str, contents: list[types.Content], config: types.GenerateContentConfig
    ) -> types.GenerateContentResponse:
        async def attempt() -> types.GenerateContentResponse:
            async with self._translated(deadline=True):
                response = await self._client.aio.models.generate_content(
                    model=model, contents=contents, config=config
                )
            _count_usage(model, response.usage_metadata)
            return response

        return await call_with_retries(attempt, self._policy, what=f"gemini {model}")

    async def _stream_once(
        self, model: str, contents: list[types.Content], config: types.GenerateContentConfig
    ) -> AsyncGenerator[str, None]:
        async with self._translated(deadline=False):
            chunks = await self._client.aio.models.generate_content_stream(
                model=model, contents=contents, config=config
            )
            usage: types.GenerateContentResponseUsageMetadata | None = None
            try:
                async for chunk in chunks:
                    usage = chunk.usage_metadata or usage  # running totals: the last one counts
                    text = _text(chunk, required=False)
                    if text:
                        yield text
            finally:
                _count_usage(model, usage)
                close = getattr(chunks, "aclose", None)
                if close is not None:  # an early exit must release the HTTP stream
                    await close()

    @asynccontextmanager
    async def _translated(self, *, deadline: bool) -> AsyncIterator[None]:
        """SDK/transport errors → port errors (``Retryable`` when worth another attempt)."""
        try:
            if deadline:
                async with asyncio.timeout(self._timeout_s):
                    yield
            else:
                yield
        except LLMError:
            raise
        except (TimeoutError, httpx2.TimeoutException) as exc:
            raise Retryable(f"no answer within {self._timeout_s}s") from exc
        except httpx2.TransportError as exc:
            raise Retryable(f"connection failed: {exc}") from exc
        except errors.APIError as exc:
            message = f"HTTP {exc.code}: {exc.message or exc.status or ''}"
            if is_retryable_status(exc.code):
                raise Retryable(message, retry_after_s=_retry_after(exc)) from exc
            raise LLMUnavailable(message) from exc
        except pydantic.ValidationError as exc:  # a response the SDK cannot read
            raise LLMBadOutput(f"unreadable reply: {exc}") from exc


def _retry_after(exc: errors.APIError) -> float | None:
    headers = getattr(exc.response, "headers", None)
    try:
        return float(headers.get("retry-after")) if headers is not None else None
    except (TypeError, ValueError):
        return None


def _contents(messages: Sequence[ChatMessage]) -> tuple[str | None, list[types.Content]]:
    """System messages → one system instruction; the rest → contents, consecutive parts of the
    same role merged (Gemini expects user/model turns to alternate)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    turns: list[tuple[str, list[types.Part]]] = []
    for m in messages:
        if m.role == "system":
            continue
        role = "model" if m.role == "assistant" else "user"
        part = _function_response(m) if m.role == "tool" else types.Part(text=m.content)
        if turns and turns[-1][0] == role:
            turns[-1][1].append(part)
        else:
            turns.append((role, [part]))
    return system, [types.Content(role=role, parts=parts) for role, parts in turns]


def _function_response(message: ChatMessage) -> types.Part:
    name, call_id = _split_call_ref(message.tool_call_id or "")
    try:
        value = json.loads(message.content)
    except json.JSONDecodeError:
        value = message.content
    response = value if isinstance(value, dict) else {"result": value}
    return types.Part(
        function_response=types.FunctionResponse(id=call_id, name=name, response=response)
    )


def _split_call_ref(ref: str) -> tuple[str, str | None]:
    """``"name/id"`` → (name, id); ``"name#n"`` → (name, None); see the module docstring."""
    if "/" in ref:
        name, _, call_id = ref.partition("/")
        return name, call_id
    return ref.partition("#")[0], None


def _declaration(spec: ToolSpec) -> types.FunctionDeclaration:
    return types.FunctionDeclaration(
        name=spec.name, description=spec.description, parameters_json_schema=spec.parameters
    )


def _count_usage(model: str, usage: types.GenerateContentResponseUsageMetadata | None) -> None:
    """Prompt and completion tokens (thinking tokens are billed as output: counted there)."""
    if usage is not None:
        completion = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
        llm_metrics().count_tokens("gemini", model, usage.prompt_token_count or 0, completion)


def _parts(response: types.GenerateContentResponse) -> list[types.Part]:
    if not response.candidates:
        feedback = response.prompt_feedback
        reason = feedback.block_reason if feedback is not None else None
        raise LLMBadOutput(f"no candidates in the reply (block reason: {reason})")
    content = response.candidates[0].content
    return list(content.parts or ()) if content is not None else []


def _text(response: types.GenerateContentResponse, *, required: bool = True) -> str:
    if not response.candidates and not required:
        return ""  # stream chunks may carry only usage metadata
    text = "".join(p.text for p in _parts(response) if p.text and not p.thought)
    if required and not text:
        raise LLMBadOutput("reply has no text")
    return text


def _completion(response: types.GenerateContentResponse) -> Completion:
    parts = _parts(response)
    calls: list[ToolCall] = []
    for n, part in enumerate(p for p in parts if p.function_call is not None):
        call = part.function_call
        assert call is not None  # filtered above; for the type checker
        if not call.name:
            raise LLMBadOutput("function call without a name")
        ref = f"{call.name}/{call.id}" if call.id else f"{call.name}#{n}"
        calls.append(ToolCall(id=ref, name=call.name, arguments=dict(call.args or {})))
    text = "".join(p.text for p in parts if p.text and not p.thought)
    return Completion(text=text, tool_calls=calls)
