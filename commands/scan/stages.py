"""The work of each scan stage: read the image, classify it, look up the rule, write the answer.

Each function returns the events its stage ends with (its completed event and the next stage's
``StageStarted``, or a ``ScanFailed``); ``scan_chain`` decides which stage runs and appends.
Failures a user can act on end the job with a readable Korean message rather than a retry loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from agents.knowledge import DisposalRule, KnowledgeBase, answer_for_scan, scan_context_message
from agents.llm.ports import (
    LLM,
    ChatMessage,
    ImageInput,
    LLMBadOutput,
    LLMError,
    LLMUnavailable,
    Vision,
)
from commands.scan.unclassified import readable_classification, unclassified_answer
from media.keys import SNIFF_BYTES, sniff_image_type
from media.store import MediaStore
from schemas.classification import ScanAnswer
from schemas.registry import Event
from schemas.scan import (
    PROGRESS,
    AnswerCompleted,
    RuleCompleted,
    ScanFailed,
    Stage,
    StageStarted,
    VisionCompleted,
)

log = logging.getLogger(__name__)

MediaKey = Callable[[str], str | None]  # our cdn URL → media key (None: not one of ours)

IMAGE_NOT_FOUND = "이미지를 찾을 수 없어요. 사진을 다시 올려 주세요."
IMAGE_UNREADABLE = "이미지를 읽을 수 없어요. JPEG나 PNG 같은 사진 파일로 다시 시도해 주세요."
VISION_UNAVAILABLE = "지금은 사진을 분석할 수 없어요. 잠시 후 다시 시도해 주세요."
ANSWER_UNAVAILABLE = "지금은 배출 방법 안내를 만들 수 없어요. 잠시 후 다시 시도해 주세요."
BAD_OUTPUT = "분석 결과를 이해하지 못했어요. 다시 시도해 주세요."
INTERNAL_ERROR = "분석 중 문제가 생겼어요. 잠시 후 다시 시도해 주세요."

ANSWER_INSTRUCTIONS = """\
You are Eco², a Korean recycling assistant. Write the disposal answer for one scanned item.
Use only the classification and the disposal rule in the [eco2:scan-context] message; never
invent a category or a rule. Answer in Korean with:
- disposal_steps: the rule's steps as {"<step name>": "<what to do>"} in order;
- insufficiencies: what the user must still do before disposal, from the situation tags (e.g.
  contents left, label attached, contaminated) — an empty list when nothing is missing;
- user_answer: a short, friendly answer for the user (mention that rules can differ by
  시군구 where it matters). When the rule has an item_guide, follow it: open with the user's
  item (subject) and where it goes, name the condition that decided it, put its caveats and
  question before the steps, and list its blocking caveats as insufficiencies.
"""


def failed(user_id: str, stage: Stage, error: str, code: str) -> list[Event]:
    """The failed ``done`` of a job: the client is told why and stops waiting."""
    return [ScanFailed(user_id=user_id, stage=stage, error=error, code=code)]


def _model_failure(user_id: str, stage: Stage, exc: Exception, unavailable: str) -> list[Event]:
    if isinstance(exc, LLMUnavailable):
        return failed(user_id, stage, unavailable, "llm_unavailable")
    if isinstance(exc, LLMBadOutput):
        return failed(user_id, stage, BAD_OUTPUT, "llm_bad_output")
    return failed(user_id, stage, INTERNAL_ERROR, "internal_error")


async def load_image(
    image_url: str, *, media: MediaStore, media_key: MediaKey
) -> ImageInput | tuple[str, str]:
    """The image to classify, or ``(error, code)`` when it is missing or not an image.

    Our own images are read from the media store (never fetched over the network); an image on
    an allow-listed host is passed on by URL for the provider to fetch.
    """
    filename = PurePosixPath(urlsplit(image_url).path).name or None
    key = media_key(image_url)
    if key is None:
        return ImageInput(url=image_url, filename=filename)
    stored = await media.get(key)
    if stored is None:
        return IMAGE_NOT_FOUND, "image_not_found"
    content_type = sniff_image_type(stored.data[:SNIFF_BYTES])
    if content_type is None:
        return IMAGE_UNREADABLE, "image_unreadable"
    return ImageInput(data=stored.data, content_type=content_type, url=image_url, filename=filename)


async def run_vision(
    *,
    user_id: str,
    image_url: str,
    hint: str | None,
    model: str | None,
    vision: Vision,
    media: MediaStore,
    media_key: MediaKey,
) -> list[Event]:
    """Vision stage: ``VisionCompleted`` + rule started, or a failed ``done``."""
    image = await load_image(image_url, media=media, media_key=media_key)
    if isinstance(image, tuple):
        error, code = image
        return failed(user_id, Stage.VISION, error, code)
    try:
        seen = await vision.classify(image, hint=hint, model=model)
    except LLMBadOutput as exc:
        if image.data is not None:  # the provider could not read our stored bytes
            log.info("vision rejected the image %s: %s", image_url, exc)
            return failed(user_id, Stage.VISION, IMAGE_UNREADABLE, "image_unreadable")
        return _model_failure(user_id, Stage.VISION, exc, VISION_UNAVAILABLE)
    except LLMError as exc:
        log.warning("vision failed for %s: %s", image_url, exc)
        return _model_failure(user_id, Stage.VISION, exc, VISION_UNAVAILABLE)
    except Exception as exc:  # an adapter bug must still end the job, not strand it
        log.exception("vision crashed for %s", image_url)
        return _model_failure(user_id, Stage.VISION, exc, VISION_UNAVAILABLE)
    return [
        VisionCompleted(
            classification=readable_classification(seen.classification),
            situation_tags=list(seen.situation_tags),
            confidence=seen.confidence,
            question=seen.question,
        ),
        StageStarted(stage=Stage.RULE, progress=PROGRESS[Stage.VISION]),
    ]


def run_rule(seen: VisionCompleted, *, kb: KnowledgeBase, hint: str | None = None) -> list[Event]:
    """Rule stage: the knowledge base's rule for the classification (None when it has none),
    item-level when the user's ``hint`` names the item and its conditions."""
    rule = None if seen.classification.is_unclassified else kb.rule_for(seen.classification, hint)
    return [
        RuleCompleted(disposal_rules=rule.model_dump(mode="json") if rule else None),
        StageStarted(stage=Stage.ANSWER, progress=PROGRESS[Stage.RULE]),
    ]


async def run_answer(
    *,
    user_id: str,
    hint: str | None,
    model: str | None,
    seen: VisionCompleted,
    ruled: RuleCompleted,
    llm: LLM,
) -> list[Event]:
    """Answer stage: the structured answer (``AnswerCompleted``), or a failed ``done``.

    An unclassified item is not sent to the model: the answer asks the user what it is.
    """
    classification = seen.classification
    rule = DisposalRule.model_validate(ruled.disposal_rules) if ruled.disposal_rules else None
    if classification.is_unclassified:
        given = answer_for_scan(classification, None, seen.situation_tags, hint)
        answer = unclassified_answer(given, seen.question)
    else:
        messages = [
            ChatMessage(role="system", content=ANSWER_INSTRUCTIONS),
            scan_context_message(classification, rule, seen.situation_tags, hint),
            ChatMessage(role="user", content=hint or "이 물건은 어떻게 버려야 하나요?"),
        ]
        try:
            answer = await llm.structured(messages, ScanAnswer, model=model)
        except Exception as exc:  # LLMError, or an adapter bug: end the job either way
            log.warning("answer failed: %s: %s", type(exc).__name__, exc)
            return _model_failure(user_id, Stage.ANSWER, exc, ANSWER_UNAVAILABLE)
    return [
        AnswerCompleted(
            user_id=user_id,
            classification=classification,
            rule_found=rule is not None,
            answer=answer,
        )
    ]
