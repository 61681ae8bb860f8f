"""``image_generation``: an info-card image about the item asked for, stored like uploads.

Adapters of ``ImageGenerator``: ``InfoCardRenderer`` (offline: draws the card itself, see
``infocard``) and ``GeminiImageGenerator`` (a Gemini image model through ``google-genai``,
``base_url`` configurable; its own explicit timeout, no SDK retries — the node policy retries).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx2
import pydantic
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, ConfigDict, Field

from agents.chat.errors import SourceBadData, SourceUnavailable
from agents.chat.media import ChatMedia
from agents.chat.subagents.base import Finding, SubTask
from agents.chat.subagents.infocard import render_info_card
from agents.chat.subagents.waste_rag import DisposalKnowledge, relevant_hits

STAGE = "image_generation"
GENERIC_TITLE = "분리배출 4원칙"
GENERIC_STEPS = (
    "비운다: 내용물을 깨끗이 비워요",
    "헹군다: 이물질과 음식물을 헹궈요",
    "분리한다: 라벨·뚜껑 등 다른 재질을 나눠요",
    "섞지 않는다: 종류별로 따로 배출해요",
)


class InfoCard(BaseModel):
    """What the image should show."""

    model_config = ConfigDict(frozen=True)

    title: str
    steps: list[str] = Field(default_factory=list)
    category: str | None = None

    def prompt(self) -> str:
        """The instruction for an image model."""
        steps = "\n".join(f"{n}. {s}" for n, s in enumerate(self.steps, start=1))
        return (
            "Create a clean, friendly infographic card (portrait, flat design, large readable "
            f"Korean text) titled '{self.title}'. Show these steps in order with a simple icon "
            f"each:\n{steps}\nNo other text, no logos."
        )


class GeneratedImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    data: bytes
    content_type: str
    generator: str


class ImageGenerator(Protocol):
    async def generate(self, card: InfoCard) -> GeneratedImage:
        """An image of ``card``."""
        ...


class InfoCardRenderer:
    """Offline: renders the card as a PNG (deterministic, a few milliseconds)."""

    async def generate(self, card: InfoCard) -> GeneratedImage:
        data = render_info_card(card.title, card.steps, card.category)
        return GeneratedImage(data=data, content_type="image/png", generator="offline-infocard")


class GeminiImageGenerator:
    """A Gemini image model (``generateContent`` with the IMAGE modality)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        model: str = "gemini-2.5-flash-image",
        timeout_s: float = 25.0,
    ) -> None:
        self.model = model
        self._timeout_s = timeout_s
        self._client = genai.Client(
            vertexai=False,
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url or "https://generativelanguage.googleapis.com/",
                timeout=max(1, int(timeout_s * 1000)),  # milliseconds
            ),
        )

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    async def generate(self, card: InfoCard) -> GeneratedImage:
        """See ``ImageGenerator.generate``; transient failures → ``SourceUnavailable``."""
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.aio.models.generate_content(
                    model=self.model,
                    contents=card.prompt(),
                    config=types.GenerateContentConfig(response_modalities=["IMAGE"]),
                )
        except (TimeoutError, httpx2.TimeoutException) as exc:
            raise SourceUnavailable(f"gemini image: no answer within {self._timeout_s}s") from exc
        except httpx2.TransportError as exc:
            raise SourceUnavailable(f"gemini image: connection failed: {exc}") from exc
        except errors.APIError as exc:
            message = f"gemini image: HTTP {exc.code}: {exc.message or exc.status or ''}"
            if exc.code in (408, 429) or exc.code >= 500:
                raise SourceUnavailable(message) from exc
            raise SourceBadData(message) from exc
        except pydantic.ValidationError as exc:
            raise SourceBadData(f"gemini image: unreadable reply: {exc}") from exc
        for candidate in response.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                blob = part.inline_data
                if blob is not None and blob.data:
                    return GeneratedImage(
                        data=blob.data,
                        content_type=blob.mime_type or "image/png",
                        generator=self.model,
                    )
        raise SourceBadData("gemini image: the reply holds no image")


async def card_for(task: SubTask, kb: DisposalKnowledge) -> InfoCard:
    """The card for the item asked about, else the four principles of separate disposal."""
    query = f"{task.item_hint} {task.query}" if task.item_hint else task.query
    hits = await relevant_hits(kb, query) or await relevant_hits(kb, task.message)
    if not hits:
        return InfoCard(title=GENERIC_TITLE, steps=list(GENERIC_STEPS))
    rule = hits[0].rule
    return InfoCard(
        title=f"{hits[0].title} 분리배출",
        steps=[f"{name}: {text}" for name, text in rule.steps.items()],
        category=rule.middle_category,
    )


async def run(
    task: SubTask, kb: DisposalKnowledge, generator: ImageGenerator, media: ChatMedia
) -> Finding:
    """Generate the card image, store it, and point the answer at its URL."""
    card = await card_for(task, kb)
    image = await generator.generate(card)
    url = await media.save_image(image.data, image.content_type)
    return Finding(
        stage=STAGE,
        found=True,
        title=f"{card.title} 인포그래픽",
        text=f"{card.title} 인포그래픽을 만들었어요.\n![{card.title}]({url})",
        sources=[{"type": "image", "url": url, "generator": image.generator, "title": card.title}],
        detail={"url": url, "generator": image.generator, "bytes": len(image.data)},
    )
