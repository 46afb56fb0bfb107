"""LabelMap: class names in index order, loaded from and saved to JSON."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from src.data.json_input import JSONInputError, parse_json
from src.errors import LabelMappingError, UnknownClassError


@dataclass(frozen=True)
class LabelMap:
    """The model's classes in output order: ``class_names[class_idx]`` is that output's name."""

    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.class_names)) != len(self.class_names):
            raise LabelMappingError("label mapping has duplicate class names")

    def __len__(self) -> int:
        return len(self.class_names)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object] | Iterable[str]) -> LabelMap:
        """Build from ``{"0": "cat", ...}`` (index to name), ``{"cat": 0, ...}`` or a list.

        Raises:
            LabelMappingError: if the indices are not exactly 0..N-1 or names are not strings.
        """
        if isinstance(mapping, Mapping):
            pairs = _index_name_pairs(mapping)
        else:
            pairs = list(enumerate(mapping))
        indices = sorted(index for index, _ in pairs)
        if indices != list(range(len(pairs))) or not pairs:
            raise LabelMappingError(
                f"label mapping indices must be exactly 0..{len(pairs) - 1}, got {indices[:10]}"
            )
        by_index = dict(pairs)
        names = tuple(by_index[index] for index in range(len(pairs)))
        if not all(isinstance(name, str) and name for name in names):
            raise LabelMappingError("label mapping class names must be non-empty strings")
        return cls(names)

    @classmethod
    def load(cls, path: str | Path) -> LabelMap:
        """Read a JSON label mapping in either direction (index to name, or name to index).

        Raises:
            LabelMappingError: if the file is missing, not JSON, or not a valid mapping.
        """
        file = Path(path)
        if not file.is_file():
            raise LabelMappingError(
                f"label mapping not found: {file} (pass --labels data/label_mapping.json)"
            )
        try:
            data = parse_json(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, JSONInputError) as error:
            raise LabelMappingError(f"label mapping {file} is not valid JSON: {error}") from error
        if isinstance(data, Mapping) and "classes" in data and len(data) <= 2:
            data = data["classes"]
        if not isinstance(data, (Mapping, list)):
            raise LabelMappingError(f"label mapping {file} must be a JSON object or list")
        return cls.from_mapping(data)

    def save(self, path: str | Path) -> None:
        """Write the mapping as ``{"0": "name", ...}`` (index to name), UTF-8, sorted by index."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        mapping = {str(index): name for index, name in enumerate(self.class_names)}
        file.write_text(json.dumps(mapping, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def index_of(self, class_name: str) -> int:
        """Index of a class name (exact, then case-insensitive).

        Raises:
            UnknownClassError: naming the closest known classes.
        """
        if class_name in self.class_names:
            return self.class_names.index(class_name)
        lowered = [name.lower() for name in self.class_names]
        if class_name.lower() in lowered:
            return lowered.index(class_name.lower())
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


def _index_name_pairs(mapping: Mapping[str, object]) -> list[tuple[int, str]]:
    """Read either direction of a JSON mapping into (index, name) pairs."""
    keys_are_indices = all(str(key).lstrip("-").isdigit() for key in mapping)
    try:
        if keys_are_indices:
            return [(int(key), str(value)) for key, value in mapping.items()]
        return [(int(value), str(key)) for key, value in mapping.items()]  # type: ignore[call-overload]
    except (TypeError, ValueError) as error:
        raise LabelMappingError(
            "label mapping must map indices to names or names to integer indices"
        ) from error
