"""Which provider serves a model name, a router that picks the adapter per call, and the vision
request every remote provider is given.

``provider_for("gpt-4o-mini") == "openai"``; ``ModelRouter`` implements ``LLM`` and ``Vision``
and forwards each call to the adapter of the provider its ``model`` argument names (the
constructor's default model when the call gives none), so a per-request ``model`` field selects
the provider.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agents.llm.metrics import llm_metrics
from agents.llm.observe import ModelCall
from agents.llm.ports import (
    LLM,
    ChatMessage,
    Completion,
    ImageInput,
    LLMUnavailable,
    T,
    ToolSpec,
    Vision,
    VisionResult,
)
from schemas.classification import UNCLASSIFIED, Classification

Provider = Literal["local", "openai", "gemini"]

# The model names each provider serves, as full-match patterns of the lower-cased name (OpenAI's
# reasoning models are named o1, o3-mini, o4-mini, …). The gateway validates ``model`` fields
# against this catalogue, handed to it by infra as plain data.
MODEL_CATALOGUE: Mapping[str, Provider] = {
    r"|local": "local",
    r"(gpt|chatgpt)-.*": "openai",
    r"o\d+(-.*)?": "openai",
    r"gemini-.*": "gemini",
}
_CATALOGUE = [(re.compile(pattern), provider) for pattern, provider in MODEL_CATALOGUE.items()]


class UnknownModelError(ValueError):
    """A model name no provider serves (a client error: the gateway answers 422)."""


def provider_for(model: str | None) -> Provider:
    """The provider serving ``model``: ``gpt-*``/``o<N>*`` → openai, ``gemini-*`` → gemini,
    ``local`` or empty → local; anything else raises ``UnknownModelError``."""
    name = (model or "").strip().lower()
    for pattern, provider in _CATALOGUE:
        if pattern.fullmatch(name):
            return provider
    raise UnknownModelError(
        f"unknown model {model!r}: use 'local', a gpt-*/o* model (OpenAI) or a gemini-* model"
    )


@dataclass(frozen=True)
class ServedModel:
    """The model that serves a request and, when it is not the one asked for, why.

    A client's ``model`` is a preference (the PWA always sends its picker's choice): when its
    provider is not configured here, the deployment's default model answers instead."""

    requested: str | None
    model: str | None  # what the calls use (None: the port's own default)
    reason: str | None = None  # set when ``model`` replaced ``requested``

    @property
    def fallback(self) -> bool:
        return self.reason is not None

    def note(self) -> dict[str, str | None]:
        """What a turn's metadata says about a fallback."""
        return {"requested": self.requested, "used": self.model, "reason": self.reason}


def served_model(port: object, requested: str | None) -> ServedModel:
    """The model serving ``requested`` on ``port``: a ``ModelRouter`` falls back to its default
    model for a provider it lacks; any other port serves whatever it is asked."""
    if isinstance(port, ModelRouter):
        return port.serving(requested)
    return ServedModel(requested, requested)


class ModelRouter:
    """``LLM`` and ``Vision`` dispatching each call to the adapter of its model's provider."""

    def __init__(
        self,
        *,
        default_model: str,
        llms: Mapping[Provider, LLM],
        visions: Mapping[Provider, Vision],
    ) -> None:
        self.default_model = default_model
        llm_metrics()  # registered at start: a scrape shows the families before any call
        self._llms = dict(llms)
        self._visions = dict(visions)
        # fail at start-up on a misspelt or unconfigured default, not on every call
        provider = provider_for(default_model)
        if provider not in self._llms or provider not in self._visions:
            raise ValueError(
                f"default model {default_model!r} needs the {provider} provider, "
                "which is not configured (is its API key set?)"
            )

    def supports(self, model: str | None) -> bool:
        """Whether a call with ``model`` can be served (known name, provider configured);
        the gateway checks this to reject a request up front."""
        try:
            provider = provider_for(model or self.default_model)
        except UnknownModelError:
            return False
        return provider in self._llms and provider in self._visions

    def serving(self, requested: str | None) -> ServedModel:
        """``requested`` when it can be served, else the default model with the reason."""
        if not requested or self.supports(requested):
            return ServedModel(requested, requested or self.default_model)
        try:
            reason = f"the {provider_for(requested)} provider is not configured"
        except UnknownModelError:
            reason = "no provider serves this model"
        return ServedModel(requested, self.default_model, reason)

    def _resolve(self, model: str | None, adapters: Mapping[Provider, object]) -> str:
        chosen = model or self.default_model
        provider = provider_for(chosen)
        if provider not in adapters:
            raise LLMUnavailable(
                f"model {chosen!r} needs the {provider} provider, which is not configured"
            )
        return chosen

    def _llm(self, model: str | None) -> tuple[LLM, str]:
        chosen = self._resolve(model, self._llms)
        return self._llms[provider_for(chosen)], chosen

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        """One reply from the provider of ``model`` (see ``LLM.complete``)."""
        llm, chosen = self._llm(model)
        with ModelCall("chat", chosen, provider_for(chosen)):
            return await llm.complete(messages, model=chosen, tools=tools)

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        """A reply validated into ``schema`` from the provider of ``model``."""
        llm, chosen = self._llm(model)
        with ModelCall("structured", chosen, provider_for(chosen)):
            return await llm.structured(messages, schema, model=chosen)

    async def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        """Text deltas from the provider of ``model``; routing errors surface on iteration."""
        llm, chosen = self._llm(model)
        deltas = llm.stream(messages, model=chosen)
        try:
            with ModelCall("stream", chosen, provider_for(chosen), current=False):
                async for delta in deltas:
                    yield delta
        finally:
            close = getattr(deltas, "aclose", None)
            if close is not None:  # a consumer leaving early must release the HTTP stream now
                await close()

    async def classify(
        self, image: ImageInput, *, hint: str | None = None, model: str | None = None
    ) -> VisionResult:
        """Classify ``image`` with the vision adapter of ``model``'s provider."""
        chosen = self._resolve(model, self._visions)
        vision = self._visions[provider_for(chosen)]
        with ModelCall("vision", chosen, provider_for(chosen)):
            return await vision.classify(image, hint=hint, model=chosen)


# --- The vision request of the remote providers ------------------------------------------------

VISION_INSTRUCTIONS = """\
You classify the single item in a photo for Korean separate waste disposal (분리배출).
Answer with:
- major_category: one of 재활용폐기물, 일반종량제폐기물, 불연성종량제폐기물, 음식물류폐기물,
  공사장생활폐기물, 대형폐기물, 생활계유해폐기물, 미분류.
- middle_category: for 재활용폐기물 one of 종이, 종이팩, 무색페트병, 플라스틱류, 비닐류, 발포합성수지,
  유리병, 금속류, 의류및원단, 전지, 조명제품, 전기전자제품; otherwise a short Korean label or "".
  Gold or silver jewellery and tableware (금반지, 은수저) are sold at a 금은방, not recycled:
  일반종량제폐기물, 생활잡화, minor 귀금속.
- minor_category: the specific item in Korean (e.g. 먹는샘물PET병, 택배상자, 음료캔) or "".
- situation_tags: what matters for disposal, e.g. 내용물있음, 라벨부착, 뚜껑있음, 오염됨, 파손됨,
  복합재질.
- confidence between 0 and 1.
- question: "" when you are sure. When you cannot tell what the item is, never guess: set
  major_category to 미분류 and ask the user, in Korean, what the item is.
"""

_DEFAULT_QUESTION = "사진만으로는 어떤 물건인지 알 수 없어요. 무엇인지 알려 주시겠어요?"


class VisionReply(BaseModel):
    """The structured output remote vision models are asked for (flat, strict-schema friendly)."""

    model_config = ConfigDict(frozen=True)

    major_category: str
    middle_category: str
    minor_category: str
    situation_tags: list[str]
    confidence: float  # clamped to [0, 1] below rather than failing the whole reply
    question: str

    def to_result(self) -> VisionResult:
        """The port's ``VisionResult``; an unclassified reply always carries a question."""
        question = self.question.strip() or None
        if self.major_category == UNCLASSIFIED and question is None:
            question = _DEFAULT_QUESTION
        return VisionResult(
            classification=Classification(
                major_category=self.major_category,
                middle_category=self.middle_category,
                minor_category=self.minor_category,
            ),
            situation_tags=list(self.situation_tags),
            confidence=min(1.0, max(0.0, self.confidence)),
            question=question,
        )


def vision_user_text(image: ImageInput, hint: str | None) -> str:
    """The text sent next to the image: what the user said about it and its file name."""
    lines = ["Classify the item in this photo."]
    if hint:
        lines.append(f"The user says: {hint}")
    if image.filename:
        lines.append(f"File name: {image.filename}")
    return "\n".join(lines)


def unclassified_without_image() -> VisionResult:
    """The answer when there is no image to send: ask the user rather than guess."""
    return VisionResult(
        classification=Classification(major_category=UNCLASSIFIED),
        question=_DEFAULT_QUESTION,
    )
