"""The scan worker's local outputs for a text, as one JSON-able value (see
``test_scan_outputs_unchanged``): what the vision stage sees, the rule stage records and the
local answer model writes, through the same calls the scan chain makes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from agents.knowledge import KnowledgeBase, answer_for_scan, scan_context_message
from agents.llm.local import LocalVision
from agents.llm.ports import ChatMessage, ImageInput

EVALS = Path(__file__).parents[2] / "evals" / "data"
GOLDEN = Path(__file__).parent / "data" / "scan_outputs.json"
# The bench's hints (infra/bench/scan.py HINTS) and a few filename-only and typo cases.
EXTRA = (
    "생수병", "페트병", "택배박스", "신문지", "우유팩", "음료 캔", "참치캔", "소주병",
    "플라스틱 용기", "과자 봉지", "스티로폼", "건전지", "형광등", "헌 옷", "고장난 선풍기",
    "치킨뼈", "영수증", "깨진 유리", "마포구 가구 버리는 법", "택베박스", "초록색 소주병 깨진 거",
)


def cases() -> list[tuple[str, str, str]]:
    """``(id, hint, filename)`` of every scan eval text, the extras, and filename-only cases."""
    rows = [
        json.loads(line)
        for name in ("scan_dev.jsonl", "scan_test.jsonl")
        for line in (EVALS / name).read_text(encoding="utf-8").splitlines()
        if line
    ]
    found = [(row["id"], row["text"], "photo") for row in rows]
    found += [(f"extra-{i}", text, "photo") for i, text in enumerate(EXTRA)]
    found += [(f"file-{name}", "", name) for name in ("pet_bottle", "페트병_1", "can", "IMG_0001")]
    return found


def scan_outputs(kb: KnowledgeBase, vision: LocalVision, hint: str, filename: str) -> Any:
    """Vision result, rule and answer (model dumps) of one scan, as the chain computes them."""
    seen = vision.classify_text(hint or None, filename)
    rule = None if seen.classification.is_unclassified else kb.rule_for(seen.classification, hint or None)
    answer = answer_for_scan(seen.classification, rule, seen.situation_tags, hint or None)
    context = scan_context_message(seen.classification, rule, seen.situation_tags, hint or None)
    return {
        "vision": seen.model_dump(mode="json"),
        "rule": rule.model_dump(mode="json") if rule else None,
        "answer": answer.model_dump(mode="json"),
        "context": context.model_dump(mode="json") if isinstance(context, ChatMessage) else None,
        "image": ImageInput(filename=filename).filename,
    }


def digest(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def write_golden() -> None:
    """Record the digests (``python -m tests.agents.scan_outputs``, on the code whose outputs
    are the reference: main before the caches of resolutions and situation tags)."""
    kb = KnowledgeBase.load()
    vision = LocalVision(kb)
    golden = {cid: digest(scan_outputs(kb, vision, hint, name)) for cid, hint, name in cases()}
    GOLDEN.write_text(json.dumps(golden, indent=0, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_golden()
