"""Readers for the Quick, Draw! formats, each yielding labelled drawings or images.

Formats: simplified and raw ndjson, the ``.bin`` binary format, ``numpy_bitmap`` ``.npy``
(N, 784) and a folder of images per class. A malformed record is counted in a ``ReadReport``
and logged, never silently dropped; a file that is not of the format at all raises
``DataFormatError`` naming the file and the line or byte offset.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from src.data.json_input import JSONInputError, parse_json
from src.data.preprocess import IMAGE_SUFFIXES, load_image
from src.data.raster import validate_strokes
from src.errors import DataFormatError, InvalidImageError

logger = logging.getLogger(__name__)

# The number of problems a report keeps verbatim; the rest are only counted.
MAX_KEPT_PROBLEMS = 10
BITMAP_SIDE = 28
# key_id u64, countrycode 2 bytes, recognized u8, timestamp u32, n_strokes u16 (little-endian).
_BIN_HEADER = struct.Struct("<Q2sBIH")


@dataclass(frozen=True)
class Drawing:
    """One Quick, Draw! vector drawing: strokes ``[[xs, ys(, ts)], ...]`` and its metadata."""

    word: str
    strokes: list[list[list[float]]]
    key_id: str = ""
    recognized: bool = True
    countrycode: str = ""
    timestamp: str | int | None = None


@dataclass(frozen=True)
class LabelledImage:
    """One raster sketch (uint8 2-D array, as stored) and its class name."""

    word: str
    image: np.ndarray
    source: str = ""


@dataclass
class ReadReport:
    """Counts of what a reader read and skipped, with the first few problems verbatim."""

    path: str = ""
    read: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def add_problem(self, where: str, reason: str) -> None:
        """Count one malformed record and keep its description if there is room."""
        self.skipped += 1
        message = f"{self.path}:{where}: {reason}"
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append(message)
        logger.warning("skipped malformed record %s", message)

    def summary(self) -> str:
        """One line: how many records were read and skipped."""
        return f"{self.path}: read {self.read}, skipped {self.skipped} malformed"


def _parse_ndjson_record(record: object, default_word: str) -> Drawing:
    """Validate one decoded ndjson object and build a Drawing (raises ValueError if malformed)."""
    if not isinstance(record, dict):
        raise ValueError("record is not a JSON object")
    strokes = record.get("drawing", record.get("src"))
    if strokes is None:
        raise ValueError("record has no 'drawing' field")
    try:
        validate_strokes(strokes)
    except InvalidImageError as error:
        raise ValueError(str(error)) from error
    word = record.get("word", default_word)
    if not isinstance(word, str) or not word:
        raise ValueError("record has no class name in 'word'")
    return Drawing(
        word=word,
        strokes=strokes,
        key_id=str(record.get("key_id", "")),
        recognized=bool(record.get("recognized", True)),
        countrycode=str(record.get("countrycode", record.get("countryCode", ""))),
        timestamp=record.get("timestamp"),
    )


def read_ndjson(path: str | Path, report: ReadReport | None = None) -> Iterator[Drawing]:
    """Yield the drawings of a simplified or raw (float x, y, t) Quick, Draw! ndjson file.

    Args:
        path: the ``.ndjson`` file; the class name defaults to the file's stem.
        report: filled with counts and problems (malformed records are skipped and counted).

    Yields:
        One Drawing per valid line.

    Raises:
        DataFormatError: if the file is missing, not UTF-8, or its first record is not JSON.
    """
    file = Path(path)
    report = report if report is not None else ReadReport()
    report.path = str(file)
    if not file.is_file():
        raise DataFormatError(f"ndjson file not found: {file}")
    with file.open("r", encoding="utf-8") as stream:
        line_number = 0
        try:
            for line_number, line in enumerate(stream, start=1):  # noqa: B007
                if not line.strip():
                    continue
                try:
                    record = parse_json(line)
                except JSONInputError as error:
                    if report.read == 0 and report.skipped == 0:
                        raise DataFormatError(
                            f"{file}:{line_number}: not ndjson (one JSON object per line): {error}"
                        ) from error
                    report.add_problem(f"line {line_number}", str(error))
                    continue
                try:
                    drawing = _parse_ndjson_record(record, file.stem)
                except ValueError as error:
                    report.add_problem(f"line {line_number}", str(error))
                    continue
                report.read += 1
                yield drawing
        except UnicodeDecodeError as error:
            raise DataFormatError(f"{file}:{line_number + 1}: not UTF-8 text") from error
    logger.info(report.summary())


def write_ndjson(drawings: Iterable[Drawing], path: str | Path) -> int:
    """Write drawings as Google's simplified ndjson (one JSON object per line); returns the count."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with file.open("w", encoding="utf-8") as stream:
        for drawing in drawings:
            record = {
                "word": drawing.word,
                "countrycode": drawing.countrycode,
                "timestamp": drawing.timestamp,
                "recognized": drawing.recognized,
                "key_id": drawing.key_id,
                "drawing": drawing.strokes,
            }
            stream.write(json.dumps(record, separators=(",", ":")) + "\n")
            count += 1
    return count


def read_binary(
    path: str | Path, word: str | None = None, report: ReadReport | None = None
) -> Iterator[Drawing]:
    """Yield the drawings of a Quick, Draw! ``.bin`` file (Google's packed binary format).

    Args:
        path: the ``.bin`` file; the class name defaults to the file's stem.
        word: the class name, when the stem is not it.
        report: filled with the number of drawings read.

    Raises:
        DataFormatError: if the file is missing or truncated (names the byte offset).
    """
    file = Path(path)
    report = report if report is not None else ReadReport()
    report.path = str(file)
    if not file.is_file():
        raise DataFormatError(f"binary file not found: {file}")
    data = file.read_bytes()
    offset = 0
    while offset < len(data):
        start = offset
        try:
            key_id, country, recognized, timestamp, n_strokes = _BIN_HEADER.unpack_from(
                data, offset
            )
            offset += _BIN_HEADER.size
            strokes = []
            for _ in range(n_strokes):
                (n_points,) = struct.unpack_from("<H", data, offset)
                offset += 2
                if offset + 2 * n_points > len(data):
                    raise struct.error("stroke runs past the end of the file")
                xs = list(data[offset : offset + n_points])
                ys = list(data[offset + n_points : offset + 2 * n_points])
                offset += 2 * n_points
                strokes.append([xs, ys])
        except struct.error as error:
            raise DataFormatError(
                f"{file}: truncated or not a Quick, Draw! .bin file: drawing {report.read + 1} "
                f"at byte offset {start} ({error})"
            ) from error
        if not strokes or any(len(stroke[0]) == 0 for stroke in strokes):
            report.add_problem(f"byte {start}", "drawing has no strokes or an empty stroke")
            continue
        report.read += 1
        yield Drawing(
            word=word or file.stem,
            strokes=strokes,
            key_id=str(key_id),
            recognized=bool(recognized),
            countrycode=country.decode("ascii", errors="replace").rstrip("\x00"),
            timestamp=int(timestamp),
        )
    logger.info(report.summary())


def load_bitmaps(path: str | Path) -> np.ndarray:
    """Load a ``numpy_bitmap`` file as uint8 (N, 28, 28), ink 255 on 0.

    Raises:
        DataFormatError: if the file is missing, not a .npy array, or not (N, 784).
    """
    file = Path(path)
    if not file.is_file():
        raise DataFormatError(f"bitmap file not found: {file}")
    try:
        array = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataFormatError(f"{file}: not a readable .npy array ({error})") from error
    pixels = BITMAP_SIDE * BITMAP_SIDE
    if array.ndim != 2 or array.shape[1] != pixels:
        raise DataFormatError(
            f"{file}: numpy_bitmap arrays must have shape (N, {pixels}), got {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise DataFormatError(f"{file}: numpy_bitmap dtype must be numeric, got {array.dtype}")
    return np.clip(array, 0, 255).astype(np.uint8).reshape(-1, BITMAP_SIDE, BITMAP_SIDE)


def read_bitmaps(path: str | Path, word: str | None = None) -> Iterator[LabelledImage]:
    """Yield the 28x28 images of a ``numpy_bitmap`` ``.npy`` file with their class name."""
    file = Path(path)
    for image in load_bitmaps(file):
        yield LabelledImage(word=word or file.stem, image=image, source=str(file))


def read_image_folder(
    root: str | Path, report: ReadReport | None = None, only_class: str | None = None
) -> Iterator[LabelledImage]:
    """Yield the images of ``<root>/<class>/*.png|jpg|...``, as uint8 grayscale, with the class.

    Unreadable images are counted in ``report`` and logged. ``only_class`` reads one sub-folder.

    Raises:
        DataFormatError: if ``root`` is not a folder or has no class sub-folders.
    """
    folder = Path(root)
    report = report if report is not None else ReadReport()
    report.path = str(folder)
    if not folder.is_dir():
        raise DataFormatError(f"image folder not found: {folder}")
    class_dirs = sorted(
        path
        for path in folder.iterdir()
        if path.is_dir() and (only_class is None or path.name == only_class)
    )
    if not class_dirs:
        raise DataFormatError(f"{folder}: expected one sub-folder of images per class")
    for class_dir in class_dirs:
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                image = load_image(file)
            except InvalidImageError as error:
                report.add_problem(file.name, str(error))
                continue
            report.read += 1
            yield LabelledImage(word=class_dir.name, image=_to_uint8(image), source=str(file))
    logger.info(report.summary())


def _to_uint8(image: Image.Image) -> np.ndarray:
    """A PIL image as uint8 grayscale, with alpha composited onto white paper."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.size else 0.0
        return (array / top * 255).astype(np.uint8) if top > 0 else array.astype(np.uint8)
    return np.asarray(image.convert("L"), dtype=np.uint8)
