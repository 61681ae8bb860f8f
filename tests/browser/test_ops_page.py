"""The operations page in a real Chromium: operators only, a dead letter replayed from the
table and processed by its worker, a projection rebuilt with live progress."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

import schemas
from eventstore.keys import Layout
from schemas.envelope import Metadata
from schemas.scan import SCAN_JOB, RequestScan
from tests.browser.conftest import Shot, sign_in
from tests.browser.stack import ADMIN, Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def seed_dead_letter(stack: Stack, user_id: str) -> tuple[str, str]:
    """A scan command that its worker gave up on (as the claim loop records it): (job id,
    DLQ entry id). Its image is really uploaded, so a replay can succeed."""
    auth = stack.auth(user_id)
    with httpx.Client(base_url=stack.base_url, timeout=10) as http:
        upload = http.post("/api/v1/images/scan", json={"filename": "can.png",
                                                        "content_type": "image/png"}, headers=auth)
        assert upload.status_code == 200, upload.text
        put = http.put(upload.json()["upload_url"], content=PNG,
                       headers={"Content-Type": "image/png"})
        assert put.status_code == 200, put.text
    job_id = str(uuid.uuid4())
    command = schemas.registry.envelope(
        RequestScan(job_id=job_id, user_id=user_id, image_url=upload.json()["cdn_url"],
                    user_input="음료 캔"),
        aggregate_id=job_id, aggregate_type=SCAN_JOB,
        metadata=Metadata(user_id=user_id, correlation_id=job_id),
    )
    keys = Layout(stack.namespace, stack.settings.shards).keys_for(job_id)
    fields = {
        **command.to_fields(),
        "dlq_stream": keys.commands, "dlq_entry": "1-0", "dlq_group": "scan",
        "dlq_attempts": "5", "dlq_error": "TimeoutError: the vision model did not answer",
        "dlq_consumer": "scan-1", "dlq_at": repr(time.time()),
    }
    with stack.redis() as client:
        dlq_id = client.xadd(keys.dlq, fields)
    return job_id, dlq_id


def test_ops_is_for_operators_only(page: Page, shot: Shot) -> None:
    sign_in(page, "보통 사용자")
    expect(page.locator("#ops-link")).to_be_hidden()
    reply = page.goto("/ops")
    assert reply is not None and reply.status == 403
    expect(page.get_by_test_id("ops-denied")).to_contain_text("운영자 전용")
    shot("denied")


def test_replay_a_dead_letter_and_rebuild_a_projection(
    page: Page, shot: Shot, stack: Stack
) -> None:
    job_id, dlq_id = seed_dead_letter(stack, "dlq-owner")
    sign_in(page, ADMIN)
    expect(page.locator("#ops-link")).to_be_visible()
    page.locator("#ops-link").click()
    page.wait_for_url("**/ops")

    # At a glance: every shard's head, the workers' groups, the projections.
    expect(page.locator("#shards tr")).to_have_count(stack.settings.shards)
    for group in ("scan", "reward", "chat", "snapshot"):
        expect(page.locator(f'#groups tr[data-group="{group}"]')).to_have_count(1)
    expect(page.locator('#projections tr[data-projection="scans"]')).to_be_visible()
    expect(page.get_by_test_id("tail").locator("li").first).to_be_visible()

    row = page.locator(f'#dlq tr[data-dlq="{dlq_id}"]')
    expect(row).to_contain_text("scan.requested")
    expect(row).to_contain_text("TimeoutError")
    row.get_by_role("button", name="보기").click()
    expect(page.get_by_test_id("dlq-inspect")).to_contain_text(job_id)
    shot("dead-letter", full_page=True)

    row.get_by_role("button", name="재처리").click()
    expect(page.get_by_test_id("dlq-message")).to_contain_text("1건을 재처리")
    expect(row).to_have_count(0)
    # The scan worker takes it from its retry stream: the job's events appear in the tail.
    done = page.locator(f'#tail li[data-aggregate="{job_id}"][data-type="scan.completed"]')
    expect(done).to_have_count(1, timeout=30_000)
    shot("replayed", full_page=True)
    with httpx.Client(base_url=stack.base_url, timeout=10) as http:
        result = http.get(f"/api/v1/scan/{job_id}/result", headers=stack.auth("dlq-owner"))
    assert result.status_code == 200 and result.json()["status"] == "completed", result.text

    page.locator('button[data-rebuild="scans"]').click()
    status = page.get_by_test_id("rebuild-scans")
    expect(status).to_have_attribute("data-state", "done", timeout=30_000)
    expect(status).to_contain_text("완료: v1 → v2")
    expect(page.locator('#projections tr[data-projection="scans"] td').nth(1)).to_have_text("v2")
    shot("rebuilt", full_page=True)
