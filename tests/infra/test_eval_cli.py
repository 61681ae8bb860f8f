"""``eco2 eval scan|chat``: the labelled sets are complete and the command prints every figure."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from infra.cli_eval import eval_app
from infra.eval_sets import PARTS, load_cases, rubric


def test_sets_are_large_enough_and_split_up_front() -> None:
    scan = [c for p in PARTS for c in load_cases("scan", p)]
    chat = [c for p in PARTS for c in load_cases("chat", p)]
    assert len(scan) >= 500 and len(chat) >= 400
    assert sum(c["kind"] == "multi" for c in chat) >= 80
    assert sum(c["kind"] == "follow_up" for c in chat) >= 40
    for case in [*scan, *chat]:
        assert case["split"] in PARTS and case["id"].split("-")[1] == case["split"]
        assert case["must"] or case["must_not"] or case.get("intents") == ["general"], case["id"]
    texts = {c["text"] for c in load_cases("scan", "dev")}
    assert not texts & {c["text"] for c in load_cases("scan", "test")}  # no case in both parts


def test_rubric_checks_key_facts_and_wrong_facts() -> None:
    assert rubric("랩은 종량제봉투로 버려요", ["종량제"], ["비닐류로"]) == []
    assert rubric("랩은 비닐류로 버려요", ["종량제/일반"], ["비닐류로"]) == ["+종량제/일반", "-비닐류로"]


def test_eval_prints_every_figure_for_both_parts() -> None:
    runner = CliRunner()
    scan = runner.invoke(eval_app, ["scan"])
    assert scan.exit_code == 0, scan.output
    for text in ("scan · dev", "scan · test", "classification", "answer rubric", "per category"):
        assert text in scan.output
    chat = runner.invoke(eval_app, ["chat", "--part", "test", "--json"])
    assert chat.exit_code == 0, chat.output
    (summary,) = json.loads(chat.output)
    assert {"classification", "rubric", "multi_intent_recall", "follow_up_accuracy"} <= set(summary)
    bad = runner.invoke(eval_app, ["scan", "--part", "tset"])
    assert bad.exit_code != 0
