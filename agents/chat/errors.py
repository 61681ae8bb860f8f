"""Errors of the chat graph.

```
ChatError
├── TurnAborted           a CLOSE node failed: the turn ends with a readable Korean message
├── CircuitOpen           a node's breaker is open: the call was not attempted
└── SourceError           a subagent's data source failed
    ├── SourceUnavailable     transient (network, timeout, 5xx): worth a retry, counts for the breaker
    ├── SourceBadData         the source answered with something we cannot read: counts, no retry
    └── SourceNotConfigured   no key / offline adapter: permanent, neither retried nor counted
```
"""

from __future__ import annotations


class ChatError(Exception):
    """Base of chat-graph errors."""


class TurnAborted(ChatError):
    """A CLOSE node failed; ``message`` is shown to the user as is (Korean)."""

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


class CircuitOpen(ChatError):
    """The node's circuit breaker is open; ``retry_in_s`` until it lets a trial call through."""

    def __init__(self, node: str, retry_in_s: float) -> None:
        super().__init__(f"circuit of {node} is open for {retry_in_s:.0f}s more")
        self.node = node
        self.retry_in_s = retry_in_s


class SourceError(ChatError):
    """A subagent's data source failed."""


class SourceUnavailable(SourceError):
    """The source could not be reached or failed transiently (timeouts, 5xx, 429)."""


class SourceBadData(SourceError):
    """The source answered, but not in the shape we read."""


class SourceNotConfigured(SourceError):
    """The source is not available in this deployment (offline adapter, no API key)."""


class NodeFailed(ChatError):
    """A guarded node call failed for good (after its retries, or not attempted).

    ``reason``: ``timeout`` | ``error`` | ``bad_data`` | ``circuit_open`` | ``not_configured``.
    """

    def __init__(self, node: str, reason: str, detail: str, *, attempts: int) -> None:
        super().__init__(f"{node} failed ({reason}): {detail}")
        self.node = node
        self.reason = reason
        self.detail = detail
        self.attempts = attempts
