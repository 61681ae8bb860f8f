"""The ``model`` field of scan and chat requests, checked against the deployment's catalogue.

The catalogue maps full-match patterns of lower-cased model names to the provider serving them
(``local``, a ``gpt-*`` model, …); infra hands it to the gateway as plain data, so the gateway
knows which names are valid without knowing any provider.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from pydantic import ValidationInfo

CATALOGUE_KEY = "models"  # where request bodies find the catalogue in their validation context


@lru_cache(maxsize=8)
def _patterns(catalogue: frozenset[tuple[str, str]]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern, _ in catalogue)


def known_model(name: str, catalogue: Mapping[str, str]) -> bool:
    """Whether some provider of ``catalogue`` serves the model ``name``."""
    lowered = name.strip().lower()
    return any(p.fullmatch(lowered) for p in _patterns(frozenset(catalogue.items())))


def check_model(value: str | None, info: ValidationInfo) -> str | None:
    """A body's ``model`` validator: a name outside the catalogue is a 422 naming ``model``."""
    if not value:
        return None
    catalogue = (info.context or {}).get(CATALOGUE_KEY)
    if catalogue is None:
        raise ValueError("no model catalogue to check the model against")
    if not known_model(value, catalogue):
        raise ValueError(
            f"unknown model {value!r}: use 'local', a gpt-*/o* model (OpenAI) or a gemini-* model"
        )
    return value
