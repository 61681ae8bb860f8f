"""Local adapters of the LLM and vision ports: offline, deterministic, the default provider.

``LocalVision`` cannot see pixels. It classifies from, in order: the user's hint text, then the
image's filename (Korean or English keywords: "페트병.png", "pet_bottle.jpg"), using the
knowledge base; when neither names an item it answers ``미분류`` with a question for the user
and never guesses. Bytes that are not an image (no JPEG/PNG/GIF/WebP/BMP/HEIC/AVIF signature)
raise ``LLMBadOutput``, as a real provider rejects an unreadable image.

``LocalLLM`` conventions (all deterministic):

- Scan answers: the scan chain sends ``scan_context_message(classification, rule, tags, hint)``
  (a system message: ``[eco2:scan-context]`` + JSON, see ``agents.knowledge.answer``);
  ``structured(messages, ScanAnswer)`` returns ``answer_for_scan`` of that context. Without a
  context it matches the last user message against the knowledge base.
- Other schemas: the last user/tool message parsed as JSON of the schema, else the schema's
  defaults, else ``LLMBadOutput``.
- Text (``complete``/``stream``): the scan answer if a scan context is present; else the text
  of a ``[eco2:context]`` system message (retrieved passages, quoted back); else a summary of
  tool results when the last message is a tool result; else the best knowledge-base rule for
  the last user message; else a short offline notice asking for an item name.
- Tools: a call is made only when the last message is the user's and it contains one of the
  keywords given for that tool in ``tool_triggers`` (``{"weather": ["날씨"]}``); the call's
  arguments put the user's text in the tool's first string parameter. No triggers, no calls.
- Tokens (``eco2_llm_tokens_total``): estimated as characters / 4 of the messages sent and of
  the reply made (a stream: of the deltas actually sent).
- ``latency`` (``LatencyProfile``) sleeps like production: once per vision call, once per
  answer call; ``stream`` spreads the answer time over its deltas.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError

from agents.knowledge import (
    KnowledgeBase,
    answer_for_scan,
    parse_scan_context,
    scan_context_message,
)
from agents.knowledge.answer import SCAN_CONTEXT_PREFIX, UNCLASSIFIED_QUESTION
from agents.knowledge.text import compact
from agents.llm.latency import NO_LATENCY, LatencyProfile
from agents.llm.metrics import estimate_tokens, llm_metrics
from agents.llm.ports import (
    ChatMessage,
    Completion,
    ImageInput,
    LLMBadOutput,
    ToolCall,
    ToolSpec,
    VisionResult,
)
from schemas.classification import UNCLASSIFIED, Classification, ScanAnswer

T = TypeVar("T", bound=BaseModel)

__all__ = ["CONTEXT_PREFIX", "LocalLLM", "LocalVision", "answer_for_scan", "scan_context_message"]

CONTEXT_PREFIX = "[eco2:context]"
OFFLINE_REPLY = (
    "오프라인 모드에서는 분리배출 질문에만 답할 수 있어요. "
    "버리려는 물건의 이름을 알려 주시면 배출 방법을 안내해 드릴게요."
)
MIN_SEARCH_SCORE = 0.5
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def looks_like_image(data: bytes) -> bool:
    """Whether ``data`` starts like a JPEG, PNG, GIF, BMP, WebP or HEIC/AVIF file."""
    if data.startswith(_IMAGE_SIGNATURES):
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return data[4:8] == b"ftyp"


def image_name(image: ImageInput) -> str:
    """The image's filename without directory and extension ('' when unknown)."""
    raw = image.filename or (urlparse(image.url).path if image.url else "")
    return PurePosixPath(raw).stem if raw else ""


class LocalVision:
    """Vision port over the knowledge base: hint text, then filename, else ask."""

    def __init__(
        self,
        kb: KnowledgeBase | None = None,
        *,
        latency: LatencyProfile = NO_LATENCY,
        check_image_bytes: bool = True,
    ) -> None:
        self._kb = kb or KnowledgeBase.load()
        self._latency = latency
        self._check_image_bytes = check_image_bytes

    async def classify(
        self, image: ImageInput, *, hint: str | None = None, model: str | None = None
    ) -> VisionResult:
        """Classify from ``hint`` and the filename; ``미분류`` with a question when neither helps."""
        await self._latency.vision()
        if self._check_image_bytes and image.data is not None and not looks_like_image(image.data):
            raise LLMBadOutput("the image could not be read: not a JPEG/PNG/GIF/WebP/BMP/HEIC file")
        return self.classify_text(hint, image_name(image))

    def classify_text(self, hint: str | None, filename: str = "") -> VisionResult:
        """The synchronous core of ``classify`` (no latency, no image check)."""
        hint_tags = self._kb.situation_tags(hint) if hint else []
        found = self._kb.match(hint) if hint else None
        if found is None and filename:
            found = self._kb.match(filename)
        if found is None:
            return VisionResult(
                classification=Classification(
                    major_category=UNCLASSIFIED, middle_category=UNCLASSIFIED
                ),
                situation_tags=hint_tags,
                confidence=0.0,
                question=UNCLASSIFIED_QUESTION,
            )
        tags = list(dict.fromkeys([*found.default_tags, *hint_tags]))
        # the item-level resolution applies the user's conditions ("초록색", "깨진")
        resolved = self._kb.resolve(hint, found.item.name) if hint else None
        classification = (
            resolved.classification
            if resolved is not None
            else self._kb.adjust_for_tags(found.classification, tags)
        )
        # an ambiguous material ("전구", "병뚜껑") is asked back on the scan as well
        question = resolved.question if resolved is not None else None
        return VisionResult(
            classification=classification,
            situation_tags=tags,
            confidence=found.score,
            question=question,
        )


class LocalLLM:
    """LLM port answering from the knowledge base and the context in the messages."""

    def __init__(
        self,
        kb: KnowledgeBase | None = None,
        *,
        latency: LatencyProfile = NO_LATENCY,
        tool_triggers: Mapping[str, Sequence[str]] | None = None,
        chunk_chars: int = 8,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be >= 1")
        self._kb = kb or KnowledgeBase.load()
        self._latency = latency
        self._triggers = {
            name: [compact(k) for k in kws] for name, kws in (tool_triggers or {}).items()
        }
        self._chunk_chars = chunk_chars

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        """A tool call when a trigger keyword asks for one, else the text reply."""
        await self._latency.answer()
        call = self._tool_call(messages, tools)
        if call is not None:
            _count(model, messages, json.dumps(call.arguments, ensure_ascii=False))
            return Completion(tool_calls=[call])
        text = self._reply(messages)
        _count(model, messages, text)
        return Completion(text=text)

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        """``ScanAnswer`` from the scan context; other schemas from JSON in the last message."""
        await self._latency.answer()
        reply = self._structured(messages, schema)
        _count(model, messages, reply.model_dump_json())
        return reply

    def _structured(self, messages: Sequence[ChatMessage], schema: type[T]) -> T:
        if issubclass(schema, ScanAnswer):
            return schema.model_validate(self._scan_answer(messages).model_dump())
        for message in reversed(messages):
            if message.role in ("user", "tool"):
                try:
                    return schema.model_validate_json(message.content)
                except ValidationError:
                    break
        try:
            return schema.model_validate({})
        except ValidationError as exc:
            raise LLMBadOutput(f"the local model cannot produce {schema.__name__} offline") from exc

    async def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        """The text reply in deltas of ``chunk_chars`` characters."""
        text = self._reply(messages)
        chunks = [text[i : i + self._chunk_chars] for i in range(0, len(text), self._chunk_chars)]
        sent = ""
        try:
            for chunk in chunks:
                await self._latency.answer(1 / len(chunks))
                yield chunk
                sent += chunk
        finally:
            _count(model, messages, sent)

    def _scan_answer(self, messages: Sequence[ChatMessage]) -> ScanAnswer:
        try:
            context = parse_scan_context(messages)
        except ValueError as exc:
            raise LLMBadOutput(f"malformed scan context: {exc}") from exc
        if context is not None:
            return answer_for_scan(
                context.classification, context.disposal_rule, context.situation_tags, context.hint
            )
        text = _last(messages, "user")
        found = self._kb.match(text) if text else None
        if found is None:
            unknown = Classification(major_category=UNCLASSIFIED, middle_category=UNCLASSIFIED)
            return answer_for_scan(unknown, None, [], text)
        tags = [*found.default_tags, *self._kb.situation_tags(text)]
        classification = self._kb.adjust_for_tags(found.classification, tags)
        return answer_for_scan(classification, self._kb.rule_for(classification, text), tags, text)

    def _reply(self, messages: Sequence[ChatMessage]) -> str:
        if any(m.content.startswith(SCAN_CONTEXT_PREFIX) for m in messages):
            return self._scan_answer(messages).user_answer
        for message in reversed(messages):
            if message.role == "system" and message.content.startswith(CONTEXT_PREFIX):
                return message.content[len(CONTEXT_PREFIX) :].strip() or OFFLINE_REPLY
        if messages and messages[-1].role == "tool":
            results = [m.content for m in messages if m.role == "tool"]
            return "확인한 정보예요: " + " / ".join(results)
        text = _last(messages, "user")
        hits = self._kb.search(text, k=1) if text else []
        if hits and hits[0].score >= MIN_SEARCH_SCORE:
            return hits[0].text
        return OFFLINE_REPLY

    def _tool_call(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> ToolCall | None:
        if not tools or not messages or messages[-1].role != "user":
            return None
        text = messages[-1].content
        key = compact(text)
        for tool in tools:
            if any(trigger and trigger in key for trigger in self._triggers.get(tool.name, ())):
                digest = hashlib.sha1(f"{tool.name}\n{text}".encode()).hexdigest()[:12]
                return ToolCall(
                    id=f"call_{digest}", name=tool.name, arguments=_arguments(tool, text)
                )
        return None


def _count(model: str | None, messages: Sequence[ChatMessage], reply: str) -> None:
    """Estimated tokens (characters / 4) of the conversation sent and the reply made."""
    prompt = sum(estimate_tokens(m.content) for m in messages)
    llm_metrics().count_tokens("local", model or "local", prompt, estimate_tokens(reply))


def _last(messages: Sequence[ChatMessage], role: str) -> str:
    return next((m.content for m in reversed(messages) if m.role == role), "")


def _arguments(tool: ToolSpec, text: str) -> dict[str, Any]:
    properties: dict[str, Any] = tool.parameters.get("properties", {})
    for name, spec in properties.items():
        if isinstance(spec, Mapping) and spec.get("type") == "string":
            return {name: text}
    return {}
