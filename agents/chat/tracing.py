"""A span per chat graph node and subagent, with the turn's model and the intent it serves.

Nodes run inside the chat handler's span (the consumer's), so a turn's trace shows intent →
subagents (in parallel) → aggregator → answer under the request that sent the message. Until
the process configures a tracer provider a node runs without a span at all: the no-op span
(a proxy tracer looked up, a span and its context attached and detached per node) was ≈ 3 % of
the chat worker's profile samples and changes nothing anyone can see.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from opentelemetry import trace

S = TypeVar("S", contravariant=True)


class GraphNode(Protocol[S]):
    async def __call__(self, state: S) -> dict[str, Any]: ...


def traced(name: str, node: GraphNode[S]) -> GraphNode[S]:
    """``node`` in a span ``chat.<name>`` whose attributes say what it worked on."""

    async def run(state: S) -> dict[str, Any]:
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            return await node(state)  # no provider (yet): a span would be a no-op
        with trace.get_tracer("eco2.chat").start_as_current_span(
            f"chat.{name}", attributes=_attributes(state)
        ) as span:
            update = await node(state)
            decision = update.get("decision") if isinstance(update, dict) else None
            if decision is not None:
                span.set_attribute("eco2.intent", str(decision.primary.value))
            return update

    return run


def _attributes(state: Any) -> dict[str, str]:
    attributes: dict[str, str] = {}
    turn = state.get("turn") if isinstance(state, dict) else None
    if turn is not None and turn.model:
        attributes["gen_ai.request.model"] = turn.model
    task = state.get("task") if isinstance(state, dict) else None
    if task is not None:
        attributes["eco2.intent"] = str(task.intent)
        attributes["eco2.subagent"] = str(task.stage)
    decision = state.get("decision") if isinstance(state, dict) else None
    if decision is not None:
        attributes.setdefault("eco2.intent", str(decision.primary.value))
    return attributes
