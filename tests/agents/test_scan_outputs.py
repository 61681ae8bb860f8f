"""The caches of the knowledge base change no output of the scan worker's local stages.

``data/scan_outputs.json`` holds, per scan eval text (evals/data/scan_*.jsonl), bench hint and
filename-only case, the digest of what the vision, rule and answer stages produced on main
before resolutions and situation tags were cached (``tests.agents.scan_outputs``). Every case
is computed twice here: once cold, once from the caches.
"""

from __future__ import annotations

import json

from agents.knowledge import KnowledgeBase
from agents.llm.local import LocalVision
from tests.agents.scan_outputs import GOLDEN, cases, digest, scan_outputs


def test_scan_outputs_match_the_recorded_ones_cold_and_cached() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    kb = KnowledgeBase.load()
    vision = LocalVision(kb)
    all_cases = cases()
    assert len(all_cases) == len(golden) >= 500
    for attempt in ("cold", "cached"):
        changed = [
            cid for cid, hint, name in all_cases
            if digest(scan_outputs(kb, vision, hint, name)) != golden[cid]
        ]
        assert changed == [], f"{attempt}: outputs differ for {changed[:10]}"


def test_a_resolution_handed_out_is_the_callers_own() -> None:
    kb = KnowledgeBase.load()
    first = kb.resolve("초록색 소주병 깨진 거")
    assert first is not None and first.steps
    before = first.to_guide()
    first.steps.append("changed")
    first.caveats.clear()
    first.blocking.append("changed")
    again = kb.resolve("초록색 소주병 깨진 거")
    assert again is not None and again is not first
    assert again.to_guide() == before


def test_situation_tags_handed_out_are_the_callers_own() -> None:
    kb = KnowledgeBase.load()
    tags = kb.situation_tags("라벨 안 뗀 음식물 묻은 페트병")
    assert tags
    expected = list(tags)
    tags.append("changed")
    assert kb.situation_tags("라벨 안 뗀 음식물 묻은 페트병") == expected
