"""Find the sketches under a folder for ``batch``: image files, ``.ndjson`` drawings, ``.npy`` bitmaps.

A file that cannot be listed or parsed becomes a ``Failure`` with its reason; the batch goes on.
The true class of an input is its sub-folder's name (``apple/x.png``), else its file name
(``apple.png``, ``apple_2.png``, ``smiley_face.png``), or a drawing's ``word``, when that is a
class of the label mapping; otherwise it is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.config import IMAGE_SIZE
from src.data.labels import LabelMap
from src.data.preprocess import IMAGE_SUFFIXES
from src.errors import InvalidImageError, SketchError

DRAWING_SUFFIXES = (".ndjson",)
BITMAP_SUFFIXES = (".npy",)
# Quick, Draw! files hold 100,000+ drawings; an analysis report needs a sample, not all of them.
DEFAULT_MAX_PER_FILE = 100
# A copy number after the class in a file name: "apple_2", "apple-2", "apple 2", "apple (2)".
_COPY_SUFFIX = re.compile(r"(?:[_\- ]\d+|\s*\(\d+\))$")


@dataclass(frozen=True)
class BatchInput:
    """One sketch to explain: where it came from, its true class if known, how to decode it."""

    source: str  # path relative to the batch folder, plus "#n" for the n-th record of a file
    true_class: str | None
    # load() returns the model input (64, 64, 1); load(size=S) the same sketch at (S, S, 1), for
    # models with other input sizes (compare-models).
    load: Callable[..., np.ndarray]


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
            not explain its own overlays).

    Raises:
        InvalidImageError: if ``root`` is not a folder.
    """
    if not root.is_dir():
        raise InvalidImageError(
            f"images folder not found: {root} (pass --images_dir with a folder)"
        )
    discovery = Discovery()
    skipped = _parts_inside(root, exclude)
    for path in _walk(root):
        if skipped and path.relative_to(root).parts[: len(skipped)] == skipped:
            continue
        source = path.relative_to(root).as_posix()
        folder_class = _class_or_none(labels, path.parent.name) if path.parent != root else None
        suffix = path.suffix.lower()
        dangling = path.is_symlink() and not path.exists()
        if not path.is_file() and not dangling:
            # A FIFO named x.png would block the batch forever on open; say it was left out.
            discovery.ignored.append(source)
            continue
        try:
            if suffix in IMAGE_SUFFIXES:
                true_class = folder_class or class_from_filename(path.stem, labels)
                discovery.inputs.append(BatchInput(source, true_class, _image_loader(path)))
            elif suffix in DRAWING_SUFFIXES:
                _add_drawings(discovery, path, source, labels, max_per_file)
            elif suffix in BITMAP_SUFFIXES:
                _add_bitmaps(discovery, path, source, labels, folder_class, max_per_file)
            else:
                discovery.ignored.append(source)
        except (SketchError, OSError, UnicodeDecodeError) as error:
            discovery.failures.append(Failure(source, failure_reason(error)))
    return discovery


def _parts_inside(root: Path, folder: Path | None) -> tuple[str, ...]:
    """``folder``'s path parts relative to ``root``, or () when it is not inside ``root``."""
    if folder is None:
        return ()
    try:
        return folder.resolve().relative_to(root.resolve()).parts
    except ValueError:
        return ()


def _walk(root: Path) -> Iterator[Path]:
    """Everything but folders under ``root`` in sorted order, skipping hidden files and folders.

    FIFOs, sockets and devices are yielded too, so that ``discover`` lists them as ignored.
    """
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_dir() and not any(part.startswith(".") for part in relative.parts):
            yield path


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


def _image_loader(path: Path) -> Callable[..., np.ndarray]:
    """Decode lazily, in a worker thread, when the input's batch comes up."""
    from src.data.preprocess import image_file_to_model_input

    return lambda size=IMAGE_SIZE: image_file_to_model_input(path, size)


def _add_drawings(
    discovery: Discovery, path: Path, source: str, labels: LabelMap, limit: int
) -> None:
    """Queue the first ``limit`` drawings of an ndjson file; malformed lines become failures."""
    from src.data.preprocess import strokes_to_model_input
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
                lambda size=IMAGE_SIZE, strokes=strokes: strokes_to_model_input(strokes, size),
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
    from src.data.preprocess import to_model_input
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
                lambda size=IMAGE_SIZE, bitmap=bitmap: to_model_input(bitmap, size=size),
            )
        )


def failure_reason(error: BaseException) -> str:
    """An error as one line for the failure list."""
    return " ".join(str(error).split()) or type(error).__name__
