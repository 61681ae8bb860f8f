"""The user page in a real Chromium against the real processes: scan, chat, a dropped stream.

The stack runs the production latency profile, so a scan's vision stage takes ~5 s and a chat
answer streams over ~4 s: the tests watch stages and tokens arrive as a person would.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from agents.knowledge import KnowledgeBase, answer_for_scan
from agents.llm.local import LocalVision
from gateway.web_routes import STATIC
from schemas.classification import ScanAnswer
from tests.browser.conftest import Shot, sign_in
from tests.browser.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]


def test_scan_a_sample_shows_live_stages_result_and_reward(
    page: Page, shot: Shot, tmp_path: Path
) -> None:
    sign_in(page, "스캔하는 사람")
    shot("signed-in")

    page.locator('[data-sample="can"]').click()
    stages = page.locator("#stages li")
    # Live: the vision stage is seen running (production latency: ~5 s), then done.
    expect(page.locator('#stages li[data-stage="vision"]')).to_have_attribute("data-status", "started")
    expect(page.locator('#stages li[data-stage="queued"]')).to_have_attribute("data-status", "completed")
    shot("vision-running")
    expect(page.locator('#stages li[data-stage="done"]')).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    assert stages.count() == 6
    for stage in ("queued", "vision", "rule", "answer", "reward", "done"):
        expect(page.locator(f'#stages li[data-stage="{stage}"]')).to_have_attribute(
            "data-status", "completed"
        )

    result = page.get_by_test_id("scan-result")
    expect(result).to_be_visible()
    expect(page.get_by_test_id("category")).to_contain_text("재활용폐기물 › 금속류")
    # The steps keep the rule's order (a JSONB read model would sort them by key length).
    steps = page.get_by_test_id("steps").locator("li b").all_inner_texts()
    assert steps == list(expected_answer("음료 캔").disposal_steps), steps
    assert page.get_by_test_id("not-accepted").locator("li").count() >= 1
    expect(page.get_by_test_id("reward")).to_contain_text("메탈리")
    expect(page.get_by_test_id("reward")).to_contain_text("새 친구를 얻었어요")
    shot("result-and-reward", full_page=True)

    # The reward is in the collection (the read model caught up), and nearby points list.
    page.get_by_role("link", name="내 컬렉션").click()
    expect(page.locator('.character[data-name="메탈리"]')).to_have_attribute("data-owned", "true")
    shot("collection")
    page.get_by_role("link", name="주변 수거함").click()
    page.get_by_test_id("district").select_option(label="종로구")
    # The list of the chosen district is shown (not merely its name while an older answer for
    # the default place or a late geolocation may still land): the page marks what it shows.
    expect(page.get_by_test_id("places")).to_have_attribute("data-place", "종로구")
    expect(page.locator("#nearby-where")).to_contain_text("종로구")
    first = page.get_by_test_id("places").locator("li.place").first
    expect(first.locator(".distance")).to_have_text(re.compile(r"^\d+(\.\d+)?(m|km)$"))
    shot("nearby")

    # A photo of one's own: uploaded through the signed URL; its name is the only hint.
    photo = tmp_path / "battery.png"
    photo.write_bytes((STATIC / "samples" / "battery.png").read_bytes())
    page.get_by_role("link", name="스캔").click()
    page.locator("#upload-file").set_input_files(str(photo))
    page.locator("#upload-button").click()
    expect(page.locator("#scan-item")).to_have_text("battery")
    expect(page.get_by_test_id("reward")).to_contain_text("배리", timeout=30_000)
    expect(page.get_by_test_id("category")).to_contain_text("전지")
    shot("uploaded-photo", full_page=True)


def test_chat_streams_the_answer_and_lists_the_subagents(page: Page, shot: Shot) -> None:
    sign_in(page, "질문하는 사람")
    page.get_by_role("link", name="채팅").click()
    page.get_by_test_id("chat-input").fill("페트병은 어떻게 버려?")
    page.get_by_test_id("chat-send").click()

    bubble = page.get_by_test_id("assistant").last
    # Streaming: text is visible before the turn is done.
    expect(bubble.get_by_test_id("answer")).not_to_be_empty()
    assert bubble.get_attribute("data-final") is None
    shot("streaming")
    expect(bubble).to_have_attribute("data-final", "1", timeout=30_000)
    expect(bubble).to_have_attribute("data-stream-matches", "true")
    expect(bubble.get_by_test_id("answer")).to_contain_text("페트병")
    expect(bubble.get_by_test_id("subagents").locator('[data-agent="waste_rag"]')).to_be_visible()
    tokens = [e for e in _events(page) if e["type"] == "token"]
    assert len(tokens) > 3, "the answer should arrive in several token events"
    shot("answered")


def test_a_dropped_chat_stream_resumes_without_duplicate_text(
    page: Page, shot: Shot, stack: Stack
) -> None:
    """The gateway is SIGKILLed mid-answer; the chat worker goes on. The browser's own
    EventSource reconnects (to the restarted gateway) with Last-Event-ID and the text ends
    equal to done.result.answer: nothing repeated, nothing lost."""
    sign_in(page, "끊겨도 괜찮아")
    page.get_by_role("link", name="채팅").click()
    stream_requests: list[Request] = []
    page.on("request", lambda r: stream_requests.append(r) if r.url.endswith("/events") else None)
    page.get_by_test_id("chat-input").fill("투명 페트병 라벨은 어떻게 해?")
    page.get_by_test_id("chat-send").click()

    bubble = page.get_by_test_id("assistant").last
    answer = bubble.get_by_test_id("answer")
    expect(answer).to_have_text(re.compile(r".{10,}", re.S))
    assert bubble.get_attribute("data-final") is None, "the answer finished before the cut"
    before = answer.inner_text()
    stack.kill("gateway")
    shot("gateway-killed")

    expect(bubble).to_have_attribute("data-final", "1", timeout=45_000)
    shot("resumed")
    final = answer.inner_text()
    assert bubble.get_attribute("data-stream-matches") == "true", "streamed text != done.result.answer"
    done = next(e for e in _events(page) if e["type"] == "done")
    committed = done["data"]["result"]["answer"]
    assert final == committed
    assert final.startswith(before)
    # Nothing was delivered twice: every event version once, in order.
    ids = [int(e["id"]) for e in _events(page) if e["id"]]
    assert ids == sorted(set(ids)), ids
    # It really was the browser's reconnect, carrying the last version it had.
    resumed = [r for r in stream_requests[1:] if r.all_headers().get("last-event-id")]
    assert resumed, [r.all_headers() for r in stream_requests]
    assert int(resumed[0].all_headers()["last-event-id"]) < int(done["id"])
    _wait_healthy(stack)


def expected_answer(hint: str) -> ScanAnswer:
    """The local models' answer for ``hint``, from the knowledge base alone."""
    kb = KnowledgeBase.load()
    seen = LocalVision(kb).classify_text(hint)
    rule = kb.rule_for(seen.classification, hint)  # as the rule stage: with the user's text
    return answer_for_scan(seen.classification, rule, seen.situation_tags, hint)


def _events(page: Page) -> list[dict]:
    return page.evaluate("() => window.eco2Debug.events.filter((e) => e.stream === 'chat')")


def _wait_healthy(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.base_url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the gateway did not come back")


# A geolocation that answers only when the test says so (a slow GPS fix on a loaded phone).
LATE_GEOLOCATION = """
window.__geo = [];
navigator.geolocation.getCurrentPosition = (ok) => { window.__geo.push(ok); };
window.__answerGeo = () => {
  for (const ok of window.__geo.splice(0)) {
    ok({ coords: { latitude: 37.5, longitude: 127.0, accuracy: 5 }, timestamp: Date.now() });
  }
};
"""


def test_a_late_geolocation_never_overrides_the_chosen_district(page: Page) -> None:
    page.add_init_script(LATE_GEOLOCATION)
    sign_in(page, "동네 고르는 사람")
    page.get_by_role("link", name="주변 수거함").click()
    page.locator("#locate").click()  # asks for the position: the answer is held back
    page.wait_for_function("window.__geo.length === 1")
    page.get_by_test_id("district").select_option(label="종로구")
    expect(page.get_by_test_id("places")).to_have_attribute("data-place", "종로구")
    page.evaluate("window.__answerGeo()")  # the position arrives after the explicit choice
    # Had it been taken, the page would now ask for "내 위치"'s list: no request leaves.
    with pytest.raises(Exception):  # noqa: B017 (playwright's TimeoutError)
        page.wait_for_request(re.compile(r"/api/v1/locations/centers\?lat=37\.5&"), timeout=1500)
    expect(page.get_by_test_id("places")).to_have_attribute("data-place", "종로구")
    expect(page.locator("#nearby-where")).to_contain_text("종로구")
