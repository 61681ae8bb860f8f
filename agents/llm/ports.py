"""Ports to language and vision models. Adapters: local (offline), openai, gemini.

Every adapter implements these Protocols; handlers and the chat graph see nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from schemas.classification import Classification

T = TypeVar("T", bound=BaseModel)


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_call_id: str | None = None  # for role "tool": which call this answers


class ToolSpec(BaseModel):
    """A function the model may call; ``parameters`` is a JSON schema object."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolCall(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Completion(BaseModel):
    """A model's reply: text, or tool calls it wants made, or both."""

    model_config = ConfigDict(frozen=True)

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ImageInput(BaseModel):
    """An image to classify: its bytes (when we hold them) and what we know about it."""

    model_config = ConfigDict(frozen=True)

    data: bytes | None = None
    content_type: str | None = None
    url: str | None = None
    filename: str | None = None


class VisionResult(BaseModel):
    """What a vision model saw. ``미분류`` with a ``question`` when it cannot tell."""

    model_config = ConfigDict(frozen=True)

    classification: Classification
    situation_tags: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    question: str | None = None  # asked back to the user when the item is unclear


class LLMError(Exception):
    """Base of LLM/vision adapter errors."""


class LLMUnavailable(LLMError):
    """The provider could not be reached or kept failing after retries (permanent for this call)."""


class LLMBadOutput(LLMError):
    """The provider answered with something that does not fit the requested structure."""


class LLM(Protocol):
    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        """One reply to ``messages``; with ``tools`` the model may ask for calls instead."""
        ...

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        """A reply validated into ``schema`` (provider-native structured output)."""
        ...

    def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        """The reply's text as it is generated, in deltas."""
        ...


class Vision(Protocol):
    async def classify(
        self, image: ImageInput, *, hint: str | None = None, model: str | None = None
    ) -> VisionResult:
        """Classify the item in ``image``; ``hint`` is what the user typed about it."""
        ...
