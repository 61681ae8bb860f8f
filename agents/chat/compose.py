"""The answer's text: composed from the aggregator's plan, then handed to the LLM.

``compose_context`` writes a complete, grounded Korean answer from the findings (sections in
asking order, fallback notes, what was left out, clarifying questions). It goes to the LLM as
the ``[eco2:context]`` system message: a remote model rewrites it into a natural reply under
``ANSWER_SYSTEM``'s rules; the local model quotes it as is — so offline answers are exactly this
text.
"""

from __future__ import annotations

from agents.chat.state import AnswerPlan, Section
from agents.chat.subagents.base import SubTask
from agents.chat.turn import TurnInput
from agents.llm.local import CONTEXT_PREFIX
from agents.llm.ports import ChatMessage

ANSWER_SYSTEM = (
    "너는 한국의 분리배출 도우미 '이코'야. 사용자의 마지막 질문에 한국어로 답해. "
    "근거는 아래 [eco2:context]에 모은 정보뿐이야: 단계, 거리, 주소, 금액, 날짜, 링크와 "
    "이미지 마크다운은 그대로 살리고, 거기 없는 사실은 만들지 마. 빠진 정보나 되묻는 질문이 "
    "있으면 그대로 전해. 친근하고 간결하게, 목록은 유지해. 사용자가 말한 물건 이름으로 "
    "시작하고, '먼저 확인해 주세요'와 되묻는 질문은 단계보다 앞에 두고, '(샘플)' 표시는 "
    "빼지 마."
)

_FALLBACK_INTRO = {
    "waste_rag": "분리배출 자료에서 찾은 관련 내용이에요.",
    "web_search": "가진 자료로는 답하기 어려워 웹에서 찾아봤어요.",
    "general": "정확한 자료를 찾지 못해 일반적인 안내로 답해요.",
}

CLARIFY = {
    "waste": "어떤 물건인지 조금 더 자세히 알려 주시겠어요? 재질이나 용도, 상태(오염, 파손 등)를 알려 주시면 정확히 안내해 드릴게요.",
    "location": "지금 위치 근처에서는 찾지 못했어요. 찾으시는 곳의 종류(재활용센터, 제로웨이스트샵 등)나 동네 이름을 알려 주시겠어요?",
    "collection_point": "지금 위치 근처에서 맞는 수거함을 찾지 못했어요. 버리려는 물건(폐건전지, 폐형광등, 헌옷, 폐의약품 등)을 알려 주시겠어요?",
    "bulk_waste": "버리려는 물건의 종류와 크기, 사는 시군구를 알려 주시면 수수료를 찾아 드릴게요.",
    "recyclable_price": "어떤 품목(폐지, 고철, 캔, 페트 등)의 시세가 궁금한지 알려 주시겠어요?",
    "character": "어떤 캐릭터나 물건이 궁금한지 알려 주시겠어요?",
    "weather": "날씨를 알려면 위치가 필요해요. 위치 공유를 허용해 주시겠어요?",
    "image_generation": "어떤 물건의 분리배출 그림이 필요한지 알려 주시겠어요?",
    "web_search": "찾으시는 소식이나 정책을 조금 더 구체적으로 알려 주시겠어요?",
    "general": "질문을 조금 더 구체적으로 알려 주시겠어요? 분리배출 방법, 근처 수거함, 대형폐기물 수수료, 재활용품 시세 같은 걸 도와드릴 수 있어요.",
}
GREETING_WORDS = ("안녕", "반가", "하이", "hello", "hi ", "헬로")
THANKS_WORDS = ("고마", "감사", "땡큐", "thank")
GREETING = (
    "안녕하세요! 분리배출 도우미 이코예요. 버리려는 물건이나 궁금한 걸 물어봐 주세요. "
    "예를 들면 '페트병 어떻게 버려?', '근처 폐건전지 수거함 알려줘', '소파 버리는 수수료 얼마야?'처럼요."
)
THANKS = "도움이 됐다니 기뻐요! 또 궁금한 게 있으면 언제든 물어봐 주세요."


def clarifying_question(task: SubTask, vision_question: str | None = None) -> str:
    """The chain's last step for one sub-query: ask rather than guess."""
    text = task.query.lower()
    if task.intent == "general":
        if any(w in text for w in THANKS_WORDS):
            return THANKS
        if any(w in f"{text} " for w in GREETING_WORDS):
            return GREETING
    if task.intent == "waste" and vision_question:
        return vision_question
    return CLARIFY.get(task.intent, CLARIFY["general"])


def _section_text(section: Section, *, headed: bool) -> str:
    finding = section.finding
    lines = []
    if headed and finding.title:
        lines.append(f"**{finding.title}**")
    if section.fallback_from:
        intro = _FALLBACK_INTRO.get(finding.stage)
        if intro:
            lines.append(intro)
    lines.append(finding.text.strip())
    return "\n".join(lines)


def compose_context(plan: AnswerPlan) -> str:
    """The whole answer as grounded Korean text (see the module docstring)."""
    asked = [s for s in plan.sections if not s.enrichment]
    extra = [s for s in plan.sections if s.enrichment]
    headed = len(asked) + len(extra) > 1
    blocks = [_section_text(s, headed=headed) for s in asked]
    blocks += [_section_text(s, headed=headed) for s in extra]
    if plan.notes:
        prefix = "참고: " if blocks else ""
        blocks.append("\n".join(f"{prefix}{note}" for note in plan.notes))
    blocks += list(dict.fromkeys(plan.questions))
    text = "\n\n".join(b for b in blocks if b.strip())
    return text or CLARIFY["general"]


def answer_messages(turn: TurnInput, context: str) -> list[ChatMessage]:
    """The answer call: rules, the gathered context, the recent history, the question."""
    messages = [
        ChatMessage(role="system", content=ANSWER_SYSTEM),
        ChatMessage(role="system", content=f"{CONTEXT_PREFIX}\n{context}"),
    ]
    messages += [ChatMessage(role=h.role, content=h.content) for h in turn.history]
    messages.append(ChatMessage(role="user", content=turn.message or "(이미지)"))
    return messages
