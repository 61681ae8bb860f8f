"""The loopback stub server the adapter tests script (``tests.agents.wirestub``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agents.wirestub import WireStub


@pytest.fixture
def stub() -> Iterator[WireStub]:
    with WireStub() as server:
        yield server
