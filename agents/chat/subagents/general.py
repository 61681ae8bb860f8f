"""``general``: small talk and anything the other subagents do not cover, from the LLM.

Also the fallback chain's third step. The local LLM answers only disposal questions offline;
its fixed "offline" reply counts as no answer, so the chain ends in a clarifying question
instead of quoting it.
"""

from __future__ import annotations

from agents.chat.subagents.base import Finding, SubTask, not_found
from agents.llm.local import OFFLINE_REPLY
from agents.llm.ports import LLM, ChatMessage

STAGE = "general"
SYSTEM = (
    "너는 한국의 분리배출·재활용 도우미 '이코'야. 한국어로 짧고 정확하게 답해. "
    "분리배출·재활용·환경 이야기가 아니면 간단히 답하고 분리배출 질문으로 안내해. "
    "모르는 사실(최신 정책, 날짜, 숫자)은 지어내지 말고 모른다고 말해."
)


def conversation(task: SubTask, system: str = SYSTEM) -> list[ChatMessage]:
    """System prompt, the recent history, then the sub-query."""
    messages = [ChatMessage(role="system", content=system)]
    messages += [ChatMessage(role=h.role, content=h.content) for h in task.history]
    messages.append(ChatMessage(role="user", content=task.query))
    return messages


async def run(task: SubTask, llm: LLM) -> Finding:
    """The LLM's reply to the sub-query, in the context of the recent conversation."""
    completion = await llm.complete(conversation(task), model=task.model)
    text = completion.text.strip()
    if not text or text == OFFLINE_REPLY:
        return not_found(STAGE, reason="no_answer")
    return Finding(
        stage=STAGE,
        found=True,
        text=text,
        sources=[{"type": "llm", "model": task.model or "default"}],
    )
