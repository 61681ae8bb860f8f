"""A broken data file fails loudly at load, naming the file and the entry."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.knowledge import KnowledgeBase, KnowledgeDataError
from agents.knowledge.files import DEFAULT_DATA_DIR


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, target)
    return target


def _edit(directory: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / name
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_a_copy_of_the_shipped_data_loads(data_dir: Path) -> None:
    assert KnowledgeBase.load(data_dir).match("페트병") is not None


def test_missing_file(data_dir: Path) -> None:
    (data_dir / "tags.json").unlink()
    with pytest.raises(KnowledgeDataError, match=r"tags\.json: file not found"):
        KnowledgeBase.load(data_dir)


def test_invalid_json(data_dir: Path) -> None:
    (data_dir / "items.json").write_text('{"items": {', encoding="utf-8")
    with pytest.raises(KnowledgeDataError, match=r"items\.json: not valid UTF-8 JSON"):
        KnowledgeBase.load(data_dir)


def test_item_with_a_wrong_field_is_named(data_dir: Path) -> None:
    def break_item(data: dict[str, Any]) -> None:
        data["items"]["무색페트병"][0]["aliases"] = "생수"  # a string, not a list

    _edit(data_dir, "items.json", break_item)
    with pytest.raises(
        KnowledgeDataError, match=r"items\.json: 무색페트병 › item #0 '생수병': aliases"
    ):
        KnowledgeBase.load(data_dir)


def test_item_in_unknown_middle_category(data_dir: Path) -> None:
    _edit(data_dir, "items.json", lambda d: d["items"].update({"우주쓰레기": []}))
    with pytest.raises(KnowledgeDataError, match="unknown middle category '우주쓰레기'"):
        KnowledgeBase.load(data_dir)


def test_alias_claimed_by_two_items(data_dir: Path) -> None:
    _edit(data_dir, "items.json", lambda d: d["items"]["종이"][0]["aliases"].append("페트 병"))
    with pytest.raises(
        KnowledgeDataError, match="alias '페트 병' is already used by '투명 페트병'"
    ):
        KnowledgeBase.load(data_dir)


def test_default_tag_that_would_block_the_reward(data_dir: Path) -> None:
    _edit(
        data_dir,
        "items.json",
        lambda d: d["items"]["무색페트병"][0].update(tags=["label_attached"]),
    )
    with pytest.raises(
        KnowledgeDataError, match="'생수병': default tag 'label_attached' is an issue"
    ):
        KnowledgeBase.load(data_dir)


def test_middle_category_without_steps(data_dir: Path) -> None:
    _edit(data_dir, "categories.json", lambda d: d["majors"][0]["middles"][1].update(steps={}))
    with pytest.raises(
        KnowledgeDataError, match=r"categories\.json: 재활용폐기물 › middle #1 '종이팩': steps"
    ):
        KnowledgeBase.load(data_dir)


def test_unknown_situation_tag_in_category(data_dir: Path) -> None:
    _edit(
        data_dir,
        "categories.json",
        lambda d: d["majors"][0]["middles"][0]["tag_issues"].update(sticky="x"),
    )
    with pytest.raises(KnowledgeDataError, match="'종이' refers to unknown situation tag 'sticky'"):
        KnowledgeBase.load(data_dir)


def test_tag_with_bad_code(data_dir: Path) -> None:
    _edit(data_dir, "tags.json", lambda d: d["tags"][0].update(code="Contents Left"))
    with pytest.raises(KnowledgeDataError, match=r"tags\.json: tag #0 'Contents Left': code"):
        KnowledgeBase.load(data_dir)


def test_recyclable_middle_without_character(data_dir: Path) -> None:
    _edit(data_dir, "characters.json", lambda d: d["characters"].pop())  # drops 일렉
    with pytest.raises(KnowledgeDataError, match="'전기전자제품' needs exactly one character"):
        KnowledgeBase.load(data_dir)


def test_two_default_characters(data_dir: Path) -> None:
    _edit(
        data_dir,
        "characters.json",
        lambda d: d["characters"][1].update(default=True, match_label=None),
    )
    with pytest.raises(KnowledgeDataError, match="exactly one default character"):
        KnowledgeBase.load(data_dir)
