"""LabelMap: both JSON directions, saving, and unknown classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.data.labels import LabelMap
from src.errors import LabelMappingError, UnknownClassError


def test_index_to_name_and_name_to_index_files_agree(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"0": "cat", "1": "dog", "2": "smiley face"}))
    (tmp_path / "b.json").write_text(json.dumps({"dog": 1, "smiley face": 2, "cat": 0}))
    forward, backward = LabelMap.load(tmp_path / "a.json"), LabelMap.load(tmp_path / "b.json")
    assert forward == backward == LabelMap(("cat", "dog", "smiley face"))
    assert forward.index_of("smiley face") == 2 and forward.name_of(1) == "dog"
    assert forward.index_of("DOG") == 1


def test_save_writes_index_to_name(tmp_path: Path) -> None:
    LabelMap(("cat", "dog")).save(tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"0": "cat", "1": "dog"}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m.index_of("cta"), "closest: cat"),
        (lambda m: m.name_of(2), "out of range"),
        (lambda m: m.index_of("zebra"), "unknown class 'zebra'"),
    ],
)
def test_unknown_class(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownClassError, match=match):
        call(LabelMap(("cat", "dog")))


def test_bad_mapping_indices(tmp_path: Path) -> None:
    (tmp_path / "gap.json").write_text(json.dumps({"0": "cat", "2": "dog"}))
    with pytest.raises(LabelMappingError, match="exactly 0..1"):
        LabelMap.load(tmp_path / "gap.json")
