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


# --- every format, class-name spellings, and errors that name the file and the entry -----------


@pytest.mark.parametrize(
    ("file_name", "content"),
    [
        ("index_to_name.json", json.dumps({"2": "smiley face", "0": "alarm_clock", "1": "cat"})),
        ("name_to_index.json", json.dumps({"cat": 1, "alarm_clock": 0, "smiley face": 2})),
        ("list.json", json.dumps(["alarm_clock", "cat", "smiley face"])),
        ("classes.txt", "alarm_clock\ncat\nsmiley face\n\n"),
        ("windows.txt", "\ufeffalarm_clock\r\ncat\r\nsmiley face"),
    ],
)
def test_every_format_reads_the_same_classes(tmp_path: Path, file_name: str, content: str) -> None:
    (tmp_path / file_name).write_text(content, encoding="utf-8")
    labels = LabelMap.load(tmp_path / file_name)
    assert labels.class_names == ("alarm_clock", "cat", "smiley face")
    assert labels.source == tmp_path / file_name


@pytest.mark.parametrize(
    "spelling", ["alarm_clock", "alarm clock", "Alarm-Clock", "ALARM  CLOCK", " alarm-clock "]
)
def test_class_names_match_ignoring_case_and_separators(spelling: str) -> None:
    labels = LabelMap(("cat", "alarm_clock", "smiley face"))
    assert labels.index_of(spelling) == 1
    assert labels.index_of("Smiley_Face") == 2


def test_a_similar_but_different_name_is_still_unknown() -> None:
    with pytest.raises(UnknownClassError, match="closest: alarm_clock"):
        LabelMap(("cat", "alarm_clock")).index_of("alarm clocks")


# (file, content, the error naming the entry)
BAD_LABEL_FILES = [
    ("dup.json", json.dumps(["cat", "alarm clock", "Alarm_Clock"]),
     r"'alarm clock' \(index 1\) and 'Alarm_Clock' \(index 2\) are the same class"),
    ("dup.txt", "cat\ndog\nCAT\n", r"'cat' \(index 0\) and 'CAT' \(index 2\) are the same class"),
    ("gap.json", json.dumps({"0": "cat", "1": "dog", "3": "fish"}),
     r"exactly 0..2: index 2 is missing \(found 3 instead\)"),
    ("repeat.json", json.dumps({"cat": 0, "dog": 0, "fish": 1}),
     r"gives index 0 twice \('cat' and 'dog'\)"),
    ("blank_line.txt", "cat\n\ndog\n", "line 2 is empty"),
    ("not_an_index.json", json.dumps({"cat": 0, "dog": "one"}),
     r"entry 'dog': 'one' is not an integer index"),
    ("empty_name.json", json.dumps(["cat", ""]), r"entry 1: class names must be non-empty"),
    ("empty.txt", "\n\n", "is empty; it needs one class name per model output"),
    ("number.json", "7", "must be a JSON object or list"),
    ("broken.json", '{"0": "cat",', "is not valid JSON"),
]  # fmt: skip


@pytest.mark.parametrize(("file_name", "content", "match"), BAD_LABEL_FILES)
def test_bad_label_files_name_the_file_and_entry(
    tmp_path: Path, file_name: str, content: str, match: str
) -> None:
    (tmp_path / file_name).write_text(content, encoding="utf-8")
    with pytest.raises(LabelMappingError, match=match) as caught:
        LabelMap.load(tmp_path / file_name)
    assert str(tmp_path / file_name) in str(caught.value)


def test_count_that_differs_from_the_model_names_the_file(tmp_path: Path, tiny_model) -> None:  # type: ignore[no-untyped-def]
    from src.inference.predictor import Predictor

    (tmp_path / "four.txt").write_text("circle\nline\nsquare\nstar\n")
    labels = LabelMap.load(tmp_path / "four.txt")
    with pytest.raises(
        LabelMappingError, match=r"3 outputs but the label mapping .*four.txt has 4"
    ):
        Predictor(tiny_model, labels)
    Predictor(tiny_model, LabelMap(("circle", "line", "square")))  # a matching count is accepted
