"""The batch's inputs: image files, ``.ndjson`` drawings and ``.npy`` bitmaps under a folder,
named in a list file or matched by a glob, and how each is decoded into a model input.

A file that cannot be listed or parsed becomes a ``Failure`` with its reason; the batch goes on.
The true class of an input is its sub-folder's name (``apple/x.png``), else its file name
(``apple.png``, ``apple_2.png``, ``smiley_face.png``), or a drawing's ``word``, when that is a
class of the label mapping; otherwise it is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from src.batch.file_walk import glob_files, walk_files
from src.data.input_spec import InputSpec
from src.data.labels import LabelMap
from src.data.preprocess import IMAGE_SUFFIXES
from src.errors import InvalidImageError, SketchError

DRAWING_SUFFIXES = (".ndjson",)
BITMAP_SUFFIXES = (".npy",)
# Quick, Draw! files hold 100,000+ drawings; an analysis report needs a sample, not all of them.
DEFAULT_MAX_PER_FILE = 100
# A list file: one input path per line (relative to the list's folder), "#" starts a comment.
LIST_SUFFIXES = (".txt", ".list", ".lst")
_GLOB_CHARACTERS = frozenset("*?[")
# A copy number after the class in a file name: "apple_2", "apple-2", "apple 2", "apple (2)".
_COPY_SUFFIX = re.compile(r"(?:[_\- ]\d+|\s*\(\d+\))$")


@dataclass(frozen=True)
class InputOrigin:
    """What an input is made of, in a form another process can decode (Ray workers).

    ``kind`` is "image" (``record`` None: the file at ``path``), "drawing" (``record`` the
    strokes) or "bitmap" (``record`` the 28x28 uint8 array).
    """

    kind: str
    path: Path
    record: Any = None

    def decode(self, spec: InputSpec) -> np.ndarray:
        """The model input (H, W, C) of this sketch in the model's convention: the one decoding
        step of every runner.

        With ``spec``, the input in that model's size, channels, ink and value range instead.

        Raises:
            SketchError, OSError, ValueError: an unreadable input (listed as a failure).
        """
        from src.data.preprocess import (
            image_file_to_model_input,
            strokes_to_model_input,
            to_model_input,
        )

        if self.kind == "image":
            return image_file_to_model_input(self.path, spec=spec)
        if self.kind == "drawing":
            return strokes_to_model_input(self.record, spec=spec)
        return to_model_input(self.record, spec=spec)


@dataclass(frozen=True)
class BatchInput:
    """One sketch to explain: where it came from, its true class if known, what it is made of."""

    source: str  # path relative to the batch folder, plus "#n" for the n-th record of a file
    true_class: str | None
    origin: InputOrigin

    def load(self, spec: InputSpec) -> np.ndarray:
        """The model input in the convention ``spec`` (the explainer's ``input_spec``), so the
        local and the Ray runner decode alike (and compare-models in each model's own)."""
        return self.origin.decode(spec)


@dataclass(frozen=True)
class Failure:
    """An input that could not be read, and why."""

    source: str
    reason: str


@dataclass
class Discovery:
    """What a folder holds: inputs to explain, files that failed, files of other types."""

    inputs: list[BatchInput] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    # Symlinked folders not followed: loops, or a second way into a folder already walked.
    skipped_links: list[str] = field(default_factory=list)


def discover_inputs(
    root: Path,
    labels: LabelMap,
    max_per_file: int = DEFAULT_MAX_PER_FILE,
    exclude: Path | None = None,
) -> Discovery:
    """List every supported input under ``root`` (recursively, hidden files skipped, sorted).

    Args:
        root: the folder given to ``batch --images_dir``.
        labels: the label mapping, to recognise class-named sub-folders.
        max_per_file: drawings taken from each ``.ndjson``/``.npy`` file (0 = all).
        exclude: a folder to skip, the output folder when it lies inside ``root`` (a rerun must
            not explain its own overlays). Symlinked folders are followed only out of ``root``
            (``src.batch.file_walk``); the others are listed in ``skipped_links``.

    Raises:
        InvalidImageError: if ``root`` is not a folder.
    """
    if not root.is_dir():
        raise InvalidImageError(
            f"images folder not found: {root} (pass --images_dir with a folder)"
        )
    discovery = Discovery()
    walk = walk_files(root, exclude)
    discovery.skipped_links.extend(walk.skipped_links)
    for path in walk.files:
        folder_class = _class_or_none(labels, path.parent.name) if path.parent != root else None
        _add_path(
            discovery, path, path.relative_to(root).as_posix(), folder_class, labels, max_per_file
        )
    return discovery


def discover_sources(
    spec: Path,
    labels: LabelMap,
    max_per_file: int = DEFAULT_MAX_PER_FILE,
    exclude: Path | None = None,
) -> Discovery:
    """``discover_inputs`` for a folder, and also a list file or a glob pattern of many files.

    Args:
        spec: a folder; a ``.txt``/``.list``/``.lst`` file naming one input per line (relative
            paths are taken from the list's folder); or a pattern such as ``shards/*.ndjson``
            (``**`` descends into folders).
        labels, max_per_file, exclude: as in ``discover_inputs``.

    Raises:
        InvalidImageError: the folder or list file does not exist, or the pattern matches nothing.
    """
    if spec.is_dir():
        return discover_inputs(spec, labels, max_per_file, exclude)
    if spec.is_file() and spec.suffix.lower() in LIST_SUFFIXES:
        return discover_files(_listed_paths(spec), labels, max_per_file)
    if _GLOB_CHARACTERS & set(str(spec)):
        walk = glob_files(str(spec), exclude)
        if not walk.files:
            raise InvalidImageError(f"no files match {spec} (check the pattern and quote it)")
        discovery = discover_files(walk.files, labels, max_per_file)
        discovery.skipped_links.extend(walk.skipped_links)
        return discovery
    return discover_inputs(spec, labels, max_per_file, exclude)


def require_inputs(discovery: Discovery, spec: Path) -> Discovery:
    """``discovery`` itself, checked to hold something to report on.

    Raises:
        InvalidImageError: ``spec`` held no supported input and no unreadable one.
    """
    if not discovery.inputs and not discovery.failures:
        raise InvalidImageError(
            f"no sketches found under {spec}; supported: images (.png, .jpg, .bmp, "
            ".gif, .webp), .ndjson drawings and .npy bitmaps"
        )
    return discovery


def discover_files(
    paths: Iterable[Path], labels: LabelMap, max_per_file: int = DEFAULT_MAX_PER_FILE
) -> Discovery:
    """Inputs from named files, in the given order (sources are the paths as given).

    The true class comes from the parent folder's name, the file name or the drawing's word.
    A missing file is listed as a failure.
    """
    discovery = Discovery()
    for path in paths:
        folder_class = _class_or_none(labels, path.parent.name)
        _add_path(discovery, path, path.as_posix(), folder_class, labels, max_per_file)
    return discovery


def _listed_paths(list_file: Path) -> list[Path]:
    """The paths named in a list file, relative ones resolved against the list's folder."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidImageError(f"cannot read the input list {list_file}: {error}") from error
    names = [line.strip() for line in lines]
    return [list_file.parent / name for name in names if name and not name.startswith("#")]


def _add_path(
    discovery: Discovery,
    path: Path,
    source: str,
    folder_class: str | None,
    labels: LabelMap,
    max_per_file: int,
) -> None:
    """Queue the inputs of one file, or list it as ignored or failed."""
    suffix = path.suffix.lower()
    dangling = path.is_symlink() and not path.exists()
    if not path.exists() and not dangling:
        discovery.failures.append(Failure(source, f"file not found: {path}"))
        return
    if not path.is_file() and not dangling:
        # A FIFO named x.png would block the batch forever on open; say it was left out.
        discovery.ignored.append(source)
        return
    try:
        if suffix in IMAGE_SUFFIXES:
            true_class = folder_class or class_from_filename(path.stem, labels)
            discovery.inputs.append(BatchInput(source, true_class, InputOrigin("image", path)))
        elif suffix in DRAWING_SUFFIXES:
            _add_drawings(discovery, path, source, labels, max_per_file)
        elif suffix in BITMAP_SUFFIXES:
            _add_bitmaps(discovery, path, source, labels, folder_class, max_per_file)
        else:
            discovery.ignored.append(source)
    except (SketchError, OSError, UnicodeDecodeError) as error:
        discovery.failures.append(Failure(source, failure_reason(error)))


def _class_or_none(labels: LabelMap, name: str) -> str | None:
    """The label map's spelling of ``name`` if it is a class, else None."""
    try:
        return labels.name_of(labels.index_of(name))
    except SketchError:
        return None


def class_from_filename(stem: str, labels: LabelMap) -> str | None:
    """The class a file is named after, or None.

    ``apple`` and ``apple_2`` name "apple"; ``smiley_face`` and ``Smiley-Face (3)`` name
    "smiley face" (underscores and hyphens stand for spaces, case is ignored).
    """
    for candidate in (stem, _COPY_SUFFIX.sub("", stem)):
        name = re.sub(r"[_\-]+", " ", candidate).strip()
        if name and (known := _class_or_none(labels, name)) is not None:
            return known
    return None


def _add_drawings(
    discovery: Discovery, path: Path, source: str, labels: LabelMap, limit: int
) -> None:
    """Queue the first ``limit`` drawings of an ndjson file; malformed lines become failures."""
    from src.data.quickdraw import ReadReport, read_ndjson

    report = ReadReport()
    for number, drawing in enumerate(read_ndjson(path, report), start=1):
        if limit and number > limit:
            discovery.truncated.append(source)
            break
        strokes = drawing.strokes
        discovery.inputs.append(
            BatchInput(
                f"{source}#{number}",
                _class_or_none(labels, drawing.word),
                InputOrigin("drawing", path, strokes),
            )
        )
    discovery.failures.extend(Failure(source, problem) for problem in report.problems)


def _add_bitmaps(
    discovery: Discovery,
    path: Path,
    source: str,
    labels: LabelMap,
    folder_class: str | None,
    limit: int,
) -> None:
    """Queue the first ``limit`` 28x28 bitmaps of a numpy_bitmap ``.npy`` file."""
    from src.data.quickdraw import load_bitmaps

    bitmaps = load_bitmaps(path)
    if limit and len(bitmaps) > limit:
        discovery.truncated.append(source)
        bitmaps = bitmaps[:limit]
    true_class = _class_or_none(labels, path.stem) or folder_class
    for number, bitmap in enumerate(bitmaps, start=1):
        discovery.inputs.append(
            BatchInput(
                f"{source}#{number}",
                true_class,
                InputOrigin("bitmap", path, bitmap),
            )
        )


def failure_reason(error: BaseException) -> str:
    """An error as one line for the failure list."""
    return " ".join(str(error).split()) or type(error).__name__
