"""The aggregator: checks each asked intent's required context and runs the fallback chain.

Per sub-query (asking order): a stage that found what its intent needs becomes a section. An
OPEN stage that failed is left out with a note. A FALLBACK stage that failed or found nothing —
and ``general`` when it found nothing — goes down the chain rag → web_search → general (steps
already tried are skipped), each step under its own policy and with its own progress updates;
when no step finds anything the answer asks a clarifying question instead of guessing.
Enrichment (weather next to waste) is added when it worked and silently dropped otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from agents.chat.compose import clarifying_question
from agents.chat.intents.model import SubQuery
from agents.chat.policies import FailMode, NodeGuard
from agents.chat.stages import STAGE_FOR_INTENT, Emit, Runner, left_out_note, run_stage
from agents.chat.state import AnswerPlan, Outcome, Section
from agents.chat.subagents.base import SubTask

FALLBACK_CHAIN = ("waste_rag", "web_search", "general")


def task_for(stage: str, sub: SubQuery, template: SubTask) -> SubTask:
    """A task for ``stage`` on ``sub`` with the turn's context from ``template``."""
    return template.model_copy(
        update={"stage": stage, "intent": sub.intent.value, "query": sub.text, "enrichment": False}
    )


def _skip(outcome: Outcome, **extra: Any) -> dict[str, Any]:
    reason = outcome.failure or "not_found"
    return {"node": outcome.stage, "reason": reason, "message": outcome.message, **extra}


async def _chain(
    sub: SubQuery,
    failed: Outcome,
    *,
    template: SubTask,
    runners: Mapping[str, Runner],
    guard: NodeGuard,
    emit: Emit,
) -> tuple[Section | None, list[dict[str, Any]]]:
    skipped: list[dict[str, Any]] = []
    for step in FALLBACK_CHAIN:
        if step == failed.stage:
            continue
        outcome = await run_stage(
            task_for(step, sub, template),
            runner=runners[step],
            guard=guard,
            emit=emit,
            fallback_for=failed.stage,
            close_fails_turn=False,  # the chain ends in a question, not a failed turn
        )
        if outcome.found:
            assert outcome.finding is not None
            return Section(
                intent=sub.intent.value, finding=outcome.finding, fallback_from=failed.stage
            ), skipped
        skipped.append(_skip(outcome, fallback_for=failed.stage))
    return None, skipped


async def aggregate(
    sub_queries: Sequence[SubQuery],
    outcomes: Sequence[Outcome],
    *,
    template: SubTask,
    runners: Mapping[str, Runner],
    guard: NodeGuard,
    emit: Emit,
    vision_question: str | None = None,
) -> AnswerPlan:
    """The answer plan for the turn (see the module docstring)."""
    slots: list[Section | str | None] = []  # a section, a question, or nothing, per sub-query
    notes: list[str] = []
    skipped: list[dict[str, Any]] = []
    chains: dict[int, asyncio.Task[tuple[Section | None, list[dict[str, Any]]]]] = {}
    for n, sub in enumerate(sub_queries):
        stage = STAGE_FOR_INTENT[sub.intent.value]
        outcome = next(
            (
                o
                for o in outcomes
                if o.stage == stage and o.intent == sub.intent.value and not o.enrichment
            ),
            Outcome(stage=stage, intent=sub.intent.value, query=sub.text, failure="missing"),
        )
        if outcome.found:
            assert outcome.finding is not None
            slots.append(Section(intent=sub.intent.value, finding=outcome.finding))
            continue
        skipped.append(_skip(outcome))
        if guard.policy(stage).fail_mode is FailMode.OPEN:
            if outcome.failure:
                notes.append(left_out_note(stage, outcome.failure))
                slots.append(None)
            else:
                slots.append(clarifying_question(task_for(stage, sub, template), vision_question))
            continue
        slots.append(None)
        chains[n] = asyncio.create_task(
            _chain(sub, outcome, template=template, runners=runners, guard=guard, emit=emit)
        )
    if chains:
        await asyncio.gather(*chains.values())
    for n, task in chains.items():
        section, chain_skips = task.result()
        skipped.extend(chain_skips)
        sub = sub_queries[n]
        stage = STAGE_FOR_INTENT[sub.intent.value]
        slots[n] = section or clarifying_question(task_for(stage, sub, template), vision_question)

    sections = [s for s in slots if isinstance(s, Section)]
    questions = [s for s in slots if isinstance(s, str)]
    for outcome in outcomes:
        if not outcome.enrichment:
            continue
        if outcome.found:
            assert outcome.finding is not None
            sections.append(
                Section(intent=outcome.intent, finding=outcome.finding, enrichment=True)
            )
        else:
            skipped.append(_skip(outcome, enrichment=True))
    sources = [src for s in sections for src in s.finding.sources]
    return AnswerPlan(
        sections=sections,
        notes=notes,
        questions=questions,
        subagents=list(dict.fromkeys(s.finding.stage for s in sections)),
        skipped=skipped,
        sources=sources,
    )
