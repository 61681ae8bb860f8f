from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.readmodels.pg import migrated_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as pool:
        yield pool
