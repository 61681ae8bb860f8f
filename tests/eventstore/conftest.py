"""Every test of the log runs twice: on a single Redis node and on a Redis Cluster."""

from __future__ import annotations

import pytest


@pytest.fixture
def redis_url(redis_targets: str) -> str:
    return redis_targets
