"""The chat graph: intent → (vision) → Send fan-out to subagents → aggregator → answer.

Built once per process by ``build_chat_graph(deps)`` (compiled LangGraph ``StateGraph``, no
checkpointer: every turn is a fresh, stateless run). ``ChatGraph.run(turn)`` runs the graph
(``astream(stream_mode="updates")``, which gives the terminal ``TurnResult`` or ``NeedsInput``)
and hands on what the nodes emit: ``NodeUpdate`` and ``Token`` objects, through the run's own
``put`` (``_emitter``; ``run_into`` takes it from the caller, ``run`` puts on a queue it reads)
rather than LangGraph's custom stream, whose per-item machinery (a stream chunk, a wake-up of
``astream``'s wait on every running task) cost more than the rest of a token's way to the log.
One ``put`` for every node keeps their order. Breakers live in the
``NodeGuard`` of the compiled graph, so they span turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any, Protocol, cast

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

from agents.chat.aggregate import aggregate
from agents.chat.answer import stream_answer
from agents.chat.compose import answer_messages, compose_context
from agents.chat.deps import ChatDeps
from agents.chat.errors import TurnAborted
from agents.chat.intents.model import Intent
from agents.chat.nodes import classify, read_image
from agents.chat.policies import NodeGuard
from agents.chat.stages import (
    STAGE_FOR_INTENT,
    SUBAGENT_STAGES,
    Runner,
    run_stage,
    stage_runners,
)
from agents.chat.state import ChatState, StageInput
from agents.chat.subagents.base import SubTask
from agents.chat.tracing import traced
from agents.chat.turn import ChatUpdate, NeedsInput, NodeUpdate, TurnInput, TurnResult
from agents.llm.providers import ServedModel, served_model

log = logging.getLogger(__name__)

INTERNAL = "답변을 마치지 못했어요. 잠시 후 다시 시도해 주세요."

# Where the nodes of the running turn emit (set by ``ChatGraph.run`` in the task that runs the
# graph; LangGraph's node tasks inherit it).
_EMIT: ContextVar[Callable[[ChatUpdate], None]] = ContextVar("chat_graph_emit")
_RUN_OVER = object()  # ``run``: the graph's run ended (its outcome is the task's)


def _emitter() -> Callable[[ChatUpdate], None]:
    """The running turn's emit (a node runs only inside ``ChatGraph.run``)."""
    return _EMIT.get()


def _template(state: ChatState) -> SubTask:
    turn = state["turn"]
    return SubTask(
        stage="general",
        intent="general",
        query=turn.message,
        message=turn.message,
        location=turn.location,
        history=turn.history,
        model=turn.model,
        item_hint=state.get("item_hint"),
    )


def plan_tasks(state: ChatState) -> list[SubTask]:
    """One task per sub-query, plus weather next to a waste question when the location is known."""
    decision = state["decision"]
    template = _template(state)
    tasks = [
        template.model_copy(
            update={
                "stage": STAGE_FOR_INTENT[s.intent.value],
                "intent": s.intent.value,
                "query": s.text,
            }
        )
        for s in decision.sub_queries
    ]
    if (
        Intent.WASTE in decision.intents
        and Intent.WEATHER not in decision.intents
        and template.location is not None
    ):
        tasks.append(
            template.model_copy(
                update={"stage": "weather", "intent": "weather", "enrichment": True}
            )
        )
    return tasks


class ChatGraph:
    """The compiled graph and its breakers; ``run`` is one turn."""

    def __init__(
        self,
        compiled: CompiledStateGraph[Any, Any, Any, Any],
        guard: NodeGuard,
        serving: Callable[[str | None], ServedModel] | None = None,
    ) -> None:
        self.compiled = compiled
        self.guard = guard
        self.serving = serving or (lambda model: ServedModel(model, model))

    async def run(self, turn: TurnInput) -> AsyncIterator[ChatUpdate]:
        """Stream one turn: ``NodeUpdate``/``Token`` items, then exactly one ``TurnResult`` or
        ``NeedsInput``; raises ``TurnAborted`` when a CLOSE node fails (``run_into`` as an
        iterator)."""
        emitted: asyncio.Queue[object] = asyncio.Queue()

        async def drive() -> None:
            try:
                await self.run_into(turn, emitted.put_nowait)
            finally:
                emitted.put_nowait(_RUN_OVER)

        running = asyncio.create_task(drive())
        try:
            while (item := await emitted.get()) is not _RUN_OVER:
                yield cast(ChatUpdate, item)
            await running  # the graph's own error (TurnAborted …), after what it emitted
        finally:
            if not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

    async def run_into(self, turn: TurnInput, put: Callable[[ChatUpdate], None]) -> None:
        """Run one turn, calling ``put`` with each ``NodeUpdate``/``Token`` as a node emits it
        (in the node's task: no hop through a queue), then with exactly one ``TurnResult`` or
        ``NeedsInput``; raises ``TurnAborted`` when a CLOSE node fails. A requested model this
        deployment cannot serve is replaced by the default one for the whole turn (intent,
        subagents, answer), and the result says so."""
        served = self.serving(turn.model)
        if served.fallback:
            log.warning(
                "chat turn in %s: model %r cannot be served (%s); answering with %r",
                turn.chat_id, served.requested, served.reason, served.model,
            )
            turn = turn.model_copy(update={"model": served.model})
        result: TurnResult | None = None
        needs: NeedsInput | None = None
        emitting = _EMIT.set(put)  # the node tasks LangGraph starts below inherit it
        try:
            async for part in self.compiled.astream({"turn": turn, "outcomes": []},
                                                    stream_mode="updates"):
                for update in (part or {}).values():
                    if not isinstance(update, dict):
                        continue
                    if isinstance(update.get("needs_input"), NeedsInput):
                        needs = update["needs_input"]
                    if isinstance(update.get("result"), TurnResult):
                        result = update["result"]
        finally:
            _EMIT.reset(emitting)
        if needs is not None:
            put(needs)
        elif result is not None:
            put(result.model_copy(update={"model_fallback": served.note()})
                if served.fallback else result)
        else:  # a graph that ends without either is a bug; never leave the handler waiting
            raise TurnAborted(INTERNAL)


class StageNode(Protocol):
    async def __call__(self, state: StageInput) -> dict[str, Any]: ...


def _stage_node(runner: Runner, guard: NodeGuard) -> StageNode:
    """A subagent node: its input is the ``Send`` payload, its output one outcome."""

    async def node(state: StageInput) -> dict[str, Any]:
        outcome = await run_stage(
            state["task"], runner=runner, guard=guard, emit=_emitter()
        )
        return {"outcomes": [outcome]}

    return node


def build_chat_graph(deps: ChatDeps) -> ChatGraph:
    """Compile the graph over ``deps`` (once per process; turns share only the breakers)."""
    guard = NodeGuard(deps.policies, clock=deps.clock)
    runners = stage_runners(deps)

    async def intent_node(state: ChatState) -> dict[str, Any]:
        return await classify(state["turn"], deps, guard, _emitter())

    async def vision_node(state: ChatState) -> dict[str, Any]:
        return await read_image(state["turn"], deps, guard, _emitter())

    # The routing functions are coroutines although they do not wait: LangGraph runs a plain
    # function in the loop's thread pool (a thread hop and a context copy every turn).
    async def after_intent(state: ChatState) -> str | list[Send]:
        if state.get("needs_input") is not None:
            return END
        if state["turn"].image_url and deps.vision is not None:
            return "vision"
        return await fan_out(state)

    async def fan_out(state: ChatState) -> list[Send]:
        return [Send(task.stage, {"task": task}) for task in plan_tasks(state)]

    async def aggregator_node(state: ChatState) -> dict[str, Any]:
        emit = _emitter()
        emit(NodeUpdate(node="aggregator", status="started"))
        plan = await aggregate(
            state["decision"].sub_queries,
            state.get("outcomes", []),
            template=_template(state),
            runners=runners,
            guard=guard,
            emit=emit,
            vision_question=state.get("vision_question"),
        )
        emit(
            NodeUpdate(
                node="aggregator",
                status="completed",
                detail={
                    "subagents": plan.subagents,
                    "skipped": [s["node"] for s in plan.skipped],
                    "questions": len(plan.questions),
                },
            )
        )
        return {"plan": plan}

    async def answer_node(state: ChatState) -> dict[str, Any]:
        turn, plan, decision = state["turn"], state["plan"], state["decision"]
        context = compose_context(plan)
        text = await stream_answer(
            deps.llm,
            answer_messages(turn, context),
            model=turn.model,
            fallback_text=context,
            guard=guard,
            emit=_emitter(),
        )
        result = TurnResult(
            intent=decision.primary.value,
            intents=[i.value for i in decision.ordered_intents],
            answer=text,
            subagents=plan.subagents,
            skipped=plan.skipped,
            sources=plan.sources,
        )
        return {"result": result}

    graph: StateGraph[ChatState, Any, Any, Any] = StateGraph(ChatState)
    graph.add_node("intent", traced("intent", intent_node))
    graph.add_node("vision", traced("vision", vision_node))
    for stage in SUBAGENT_STAGES:
        graph.add_node(
            stage, traced(stage, _stage_node(runners[stage], guard)), input_schema=StageInput
        )
    graph.add_node("aggregator", traced("aggregator", aggregator_node), defer=True)
    graph.add_node("answer", traced("answer", answer_node))
    graph.add_edge(START, "intent")
    graph.add_conditional_edges("intent", after_intent, ["vision", *SUBAGENT_STAGES, END])
    graph.add_conditional_edges("vision", fan_out, list(SUBAGENT_STAGES))
    for stage in SUBAGENT_STAGES:
        graph.add_edge(stage, "aggregator")
    graph.add_edge("aggregator", "answer")
    graph.add_edge("answer", END)
    return ChatGraph(graph.compile(), guard, lambda model: served_model(deps.llm, model))
