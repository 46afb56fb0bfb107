"""LabelMap: class names in index order, loaded from JSON or text and saved to JSON."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from src.data.json_input import JSONInputError, parse_json
from src.errors import LabelMappingError, UnknownClassError

# Separators that spell the same class: "alarm clock", "alarm_clock" and "Alarm-Clock".
_SEPARATORS = re.compile(r"[\s_-]+")
TEXT_SUFFIXES = (".txt",)


def normalise_class_name(class_name: str) -> str:
    """The form two spellings of one class share: lower case, ``_``/``-``/spaces as one space."""
    return _SEPARATORS.sub(" ", class_name).strip().lower()


@dataclass(frozen=True)
class LabelMap:
    """The model's classes in output order: ``class_names[class_idx]`` is that output's name.

    ``source`` is the file it was read from, named in its errors (not part of equality).

    Raises:
        LabelMappingError: two names spell the same class (case, ``_``, ``-`` and spaces
            ignored), naming both entries.
    """

    class_names: tuple[str, ...]
    source: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        first_index: dict[str, int] = {}
        for index, name in enumerate(self.class_names):
            key = normalise_class_name(name) if isinstance(name, str) else name
            if key in first_index:
                earlier = first_index[key]
                raise LabelMappingError(
                    f"{self._where()}has duplicate class names: {self.class_names[earlier]!r} "
                    f"(index {earlier}) and {name!r} (index {index}) are the same class"
                )
            first_index[key] = index

    def __len__(self) -> int:
        return len(self.class_names)

    def _where(self) -> str:
        """The message prefix naming the file, when known."""
        return f"label mapping {self.source} " if self.source is not None else "label mapping "

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, object] | Iterable[str], source: Path | None = None
    ) -> LabelMap:
        """Build from ``{"0": "cat", ...}`` (index to name), ``{"cat": 0, ...}`` or a list.

        Raises:
            LabelMappingError: naming the entry: indices not exactly 0..N-1 (a gap or a
                repeat), names not non-empty strings, or duplicate names.
        """
        where = f"label mapping {source} " if source is not None else "label mapping "
        pairs = (
            _index_name_pairs(mapping, where)
            if isinstance(mapping, Mapping)
            else list(enumerate(mapping))
        )
        if not pairs:
            raise LabelMappingError(f"{where}is empty; it needs one class name per model output")
        by_index: dict[int, object] = {}
        for index, name in pairs:
            if index in by_index:
                raise LabelMappingError(
                    f"{where}gives index {index} twice ({by_index[index]!r} and {name!r})"
                )
            by_index[index] = name
        missing = sorted(set(range(len(pairs))) - set(by_index))
        if missing:
            outside = sorted(set(by_index) - set(range(len(pairs))))
            raise LabelMappingError(
                f"{where}indices must be exactly 0..{len(pairs) - 1}: index {missing[0]} is "
                f"missing (found {outside[0]} instead)"
            )
        for index in range(len(pairs)):
            name = by_index[index]
            if not (isinstance(name, str) and name.strip()):
                raise LabelMappingError(
                    f"{where}entry {index}: class names must be non-empty strings, got {name!r}"
                )
        return cls(tuple(str(by_index[index]) for index in range(len(pairs))), source)

    @classmethod
    def load(cls, path: str | Path) -> LabelMap:
        """Read a label mapping: JSON index to name, name to index, or a list; or a ``.txt``
        file with one class per line, in output order.

        Raises:
            LabelMappingError: if the file is missing, not JSON, or not a valid mapping
                (naming the file and the entry).
        """
        file = Path(path)
        if not file.is_file():
            raise LabelMappingError(
                f"label mapping not found: {file} (pass --labels data/label_mapping.json)"
            )
        if file.suffix.lower() in TEXT_SUFFIXES:
            return cls.from_mapping(_text_lines(file), file)
        try:
            data = parse_json(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, JSONInputError) as error:
            raise LabelMappingError(f"label mapping {file} is not valid JSON: {error}") from error
        if isinstance(data, Mapping) and "classes" in data and len(data) <= 2:
            data = data["classes"]
        if not isinstance(data, (Mapping, list)):
            raise LabelMappingError(f"label mapping {file} must be a JSON object or list")
        return cls.from_mapping(data, file)

    def check_outputs(self, outputs: int) -> None:
        """Check that the model has one output per class.

        Raises:
            LabelMappingError: naming the file and both counts.
        """
        if outputs != len(self.class_names):
            raise LabelMappingError(
                f"the model has {outputs} outputs but the {self._where()}has "
                f"{len(self.class_names)} classes; pass the label mapping written with this model"
            )

    def save(self, path: str | Path) -> None:
        """Write the mapping as ``{"0": "name", ...}`` (index to name), UTF-8, sorted by index."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        mapping = {str(index): name for index, name in enumerate(self.class_names)}
        file.write_text(json.dumps(mapping, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def index_of(self, class_name: str) -> int:
        """Index of a class name: exact, else ignoring case and ``_``/``-``/spaces
        (``alarm clock`` == ``alarm_clock`` == ``Alarm-Clock``).

        Raises:
            UnknownClassError: naming the closest known classes.
        """
        if class_name in self.class_names:
            return self.class_names.index(class_name)
        normalised = [normalise_class_name(name) for name in self.class_names]
        if normalise_class_name(class_name) in normalised:
            return normalised.index(normalise_class_name(class_name))
        close = difflib.get_close_matches(class_name, self.class_names, n=3, cutoff=0.5)
        hint = (
            f"closest: {', '.join(close)}" if close else f"known: {', '.join(self.class_names[:8])}"
        )
        raise UnknownClassError(
            f"unknown class {class_name!r}; {hint} (see data/label_mapping.json)"
        )

    def name_of(self, class_idx: int) -> str:
        """Name of a class index.

        Raises:
            UnknownClassError: if the index is out of range.
        """
        if not 0 <= int(class_idx) < len(self.class_names):
            raise UnknownClassError(
                f"class index {class_idx} is out of range 0..{len(self.class_names) - 1}"
            )
        return self.class_names[int(class_idx)]


def _text_lines(file: Path) -> list[str]:
    """The class names of a ``.txt`` mapping, one per line; trailing blank lines are ignored,
    a blank line between classes is refused (it would shift every index after it)."""
    try:
        lines = [line.strip() for line in file.read_text(encoding="utf-8-sig").splitlines()]
    except UnicodeDecodeError as error:
        raise LabelMappingError(f"label mapping {file} is not UTF-8 text: {error}") from error
    while lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line:
            raise LabelMappingError(
                f"label mapping {file} line {number} is empty; write one class per line, "
                "in the model's output order"
            )
    return lines


def _index_name_pairs(mapping: Mapping[str, object], where: str) -> list[tuple[int, object]]:
    """Read either direction of a JSON mapping into (index, name) pairs."""
    keys_are_indices = all(str(key).lstrip("-").isdigit() for key in mapping)
    pairs: list[tuple[int, object]] = []
    for key, value in mapping.items():
        index, name = (key, value) if keys_are_indices else (value, key)
        if isinstance(index, bool) or not isinstance(index, (int, str)):
            index = None
        try:
            pairs.append((int(index), name))  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            raise LabelMappingError(
                f"{where}entry {key!r}: {value!r} is not an integer index; map indices to names "
                "or names to integer indices"
            ) from error
    return pairs
