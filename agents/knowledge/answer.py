"""The scan answer written from a disposal rule, and the message convention that carries it.

Convention: the scan chain passes what it knows to the answer model as one system message whose
content is ``SCAN_CONTEXT_PREFIX`` + newline + the JSON of ``ScanContext`` (classification,
``disposal_rule`` as ``DisposalRule.model_dump()``, situation tags, the user's hint). Real models
read it as context; ``LocalLLM`` parses it and calls ``answer_for_scan``, which the handler may
also call directly.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from agents.knowledge.models import DisposalRule
from agents.knowledge.wording import answer_text, distinct, final_consonant, topic
from agents.llm.ports import ChatMessage
from schemas.classification import RECYCLABLE, Classification, ScanAnswer

SCAN_CONTEXT_PREFIX = "[eco2:scan-context]"
UNCLASSIFIED_QUESTION = (
    "사진과 설명만으로는 어떤 물건인지 알 수 없어요. 무엇을 버리려는지 알려 주시겠어요? "
    "(예: 페트병, 종이 상자, 건전지)"
)
UNCLASSIFIED_ISSUE = "어떤 물건인지 알 수 없어요: 품목 이름이나 재질을 알려 주세요."
NO_RULE_ISSUE = "이 품목의 배출 규칙을 찾지 못했어요: 사는 곳 시군구의 배출 안내를 확인해 주세요."


class ScanContext(BaseModel):
    """What the answer stage knows about one scan."""

    model_config = ConfigDict(frozen=True)

    classification: Classification
    disposal_rule: DisposalRule | None = None
    situation_tags: list[str] = Field(default_factory=list)
    hint: str | None = None


def scan_context_message(
    classification: Classification,
    rule: DisposalRule | None,
    tags: Sequence[str],
    hint: str | None = None,
) -> ChatMessage:
    """The system message carrying a scan's context to the answer model."""
    context = ScanContext(
        classification=classification, disposal_rule=rule, situation_tags=list(tags), hint=hint
    )
    return ChatMessage(role="system", content=f"{SCAN_CONTEXT_PREFIX}\n{context.model_dump_json()}")


def parse_scan_context(messages: Sequence[ChatMessage]) -> ScanContext | None:
    """The latest scan context in ``messages``; ``None`` if there is none.

    Raises ``pydantic.ValidationError`` (a ``ValueError``) when the context is malformed.
    """
    for message in reversed(messages):
        if message.content.startswith(SCAN_CONTEXT_PREFIX):
            payload = message.content[len(SCAN_CONTEXT_PREFIX) :].strip()
            return ScanContext.model_validate_json(payload)
    return None


def answer_for_scan(
    classification: Classification,
    rule: DisposalRule | None,
    tags: Sequence[str],
    hint: str | None = None,
) -> ScanAnswer:
    """A Korean answer built only from the rule; never invents a category.

    Insufficiencies list what the user must still do or what is unclear. They come only from
    real problems (unclassified item, no rule, a situation tag that is an issue for this
    category), so a clean ordinary recyclable gets none and can earn its character.
    """
    if classification.is_unclassified:
        steps = dict(rule.steps) if rule else {}
        return ScanAnswer(
            disposal_steps=steps,
            insufficiencies=[UNCLASSIFIED_ISSUE],
            user_answer=UNCLASSIFIED_QUESTION,
        )
    subject = classification.minor_category or classification.middle_category
    if rule is None:
        return ScanAnswer(
            insufficiencies=[NO_RULE_ISSUE],
            user_answer=f"{topic(subject)} 배출 규칙을 찾지 못했어요. "
            "사는 곳 시군구의 배출 안내를 확인해 주세요.",
        )
    issues = list(
        dict.fromkeys(rule.situation_issues[tag] for tag in tags if tag in rule.situation_issues)
    )
    if rule.item_guide is not None:
        guide = rule.item_guide
        return ScanAnswer(
            disposal_steps=dict(rule.steps),
            insufficiencies=distinct([*guide.blocking, *issues]),
            user_answer=answer_text(guide, extra_issues=issues),
        )
    lines = [_headline(subject, rule)]
    lines += [f"{i}. {name}: {text}" for i, (name, text) in enumerate(rule.steps.items(), 1)]
    if issues:
        lines.append("먼저 확인해 주세요:")
        lines += [f"- {issue}" for issue in issues]
    if rule.notes:
        lines.append(f"참고: {rule.notes[0]}")
    return ScanAnswer(
        disposal_steps=dict(rule.steps), insufficiencies=issues, user_answer="\n".join(lines)
    )


def _headline(subject: str, rule: DisposalRule) -> str:
    middle, major = rule.middle_category, rule.major_category
    if major == RECYCLABLE:
        return f"{topic(subject)} {major} 중 '{middle}'{_direction(middle)} 분리배출해요."
    return f"{topic(subject)} '{major}'{_copula(major)} ({middle})."


def _direction(word: str) -> str:
    tail = final_consonant(word)
    return "으로" if tail > 0 and tail != 8 else "로"


def _copula(word: str) -> str:
    return "이에요" if final_consonant(word) > 0 else "예요"
