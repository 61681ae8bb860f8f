"""The short chaos run: every fault of the schedule hits a real ``eco2 up`` (its own embedded
Redis and Postgres) while users scan and chat; afterwards nothing is lost or duplicated, every
read model equals a rebuild, every SSE transcript is exact and no client saw a 5xx other than
a 503 during an outage."""

from __future__ import annotations

import pytest

from infra.chaos_faults import SHORT, Kind
from infra.cli_chaos import run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.asyncio]


@pytest.mark.timeout(420)
async def test_short_chaos_run_loses_and_duplicates_nothing() -> None:
    outcome = await run_chaos(SHORT, scans=40, chat_turns=12, users=10, claim_idle_ms=5_000,
                              drain_s=90.0)
    report = "\n".join([outcome.text, "--- eco2 up ---", outcome.log_tail, "--- errors ---",
                        *outcome.errors])

    # Every kind of fault was really injected.
    assert all(i.ok for i in outcome.injected), report
    kinds = {i.fault.kind for i in outcome.injected}
    assert kinds == set(Kind), report
    killed = {i.fault.target for i in outcome.injected if i.fault.kind is Kind.KILL}
    assert killed == {"scan-0", "reward", "chat", "snapshot", "projectors", "gateway"}, report

    figures = outcome.findings.figures
    assert figures["accepted"] == 52, report
    assert figures["transcripts"] == 52, report
    failed = [c.name for c in outcome.findings.checks if not c.ok]
    assert failed == [], report
