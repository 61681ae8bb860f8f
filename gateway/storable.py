"""The one check every request body passes: no text the read models cannot store.

Postgres ``text`` and ``jsonb`` cannot hold U+0000, and UTF-8 cannot encode a lone surrogate
(U+D800–U+DFFF, which JSON's ``\\ud800`` escapes can produce). Accepting either would append a
command whose events no projection can ever apply, so such a body is refused at the edge
(422, naming the field) — for every body model, keys included, at any depth.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import InvalidRequest

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "must not contain NUL characters (U+0000)"
    return f"must not contain a lone surrogate (U+{ord(char):04X})"


def check_storable(data: Any, *, root: str = "body") -> None:
    """Raise ``InvalidRequest`` (422) naming the first string, key or value, that cannot be
    stored. Iterative: nesting depth is bounded elsewhere, never by this walk's stack."""
    stack: list[tuple[str, Any]] = [(root, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            reason = unstorable_reason(value)
            if reason is not None:
                raise InvalidRequest(path, reason)
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                key_reason = unstorable_reason(key)
                if key_reason is not None:
                    raise InvalidRequest(path, f"a key {key_reason}")
                stack.append((f"{path}.{key}" if path != root else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
