"""Property-based fuzzing of the image and stroke decoders: valid output or InvalidImageError."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from src.data.preprocess import load_image, strokes_to_model_input, to_model_input
from src.errors import InvalidImageError

# Subprocesses, training or long fuzzing: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

# `make fuzz` raises this; CI runs a size that fits its time budget.
EXAMPLES = int(os.environ.get("SKETCH_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_model_input(array: np.ndarray) -> None:
    """The contract of to_model_input: float32 (64, 64, 1), finite, within [0, 1]."""
    assert array.shape == (64, 64, 1)
    assert array.dtype == np.float32
    assert np.all(np.isfinite(array))
    assert array.min() >= 0.0 and array.max() <= 1.0


def decode(data: bytes) -> None:
    """Decode bytes the way every entry point does; only InvalidImageError may escape."""
    try:
        assert_model_input(to_model_input(load_image(data)))
    except InvalidImageError as error:
        assert str(error)  # every rejection carries a message


def png_bytes(image: Image.Image, **save_options: object) -> bytes:
    """Encode a PIL image as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but whose pixel data is a few bytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 8))
        + chunk(b"IEND", b"")
    )


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data: bytes) -> None:
    decode(data)


@FUZZ
@given(st.integers(min_value=1, max_value=4000), st.data())
def test_truncated_pngs_are_rejected_or_decoded(cut: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    image = Image.fromarray((rng.random((48, 40)) * 255).astype(np.uint8))
    encoded = png_bytes(image)
    decode(encoded[: min(cut, len(encoded) - 1)])


@pytest.mark.parametrize(
    ("width", "height"),
    [(1, 1), (20000, 20000), (100000, 1), (1, 100000)],
)
def test_extreme_headers(width: int, height: int) -> None:
    data = png_header_only(width, height)
    if width * height > 40_000_000:
        with pytest.raises(InvalidImageError, match="pixels"):
            load_image(data)
    else:
        decode(data)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # 8000x8000 of zeros compresses to a few tens of KB but would decode to 64 MB.
    image = Image.new("L", (8000, 8000), 0)
    with pytest.raises(InvalidImageError, match="pixels"):
        load_image(png_bytes(image, optimize=True))


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]
)
def test_every_pil_mode_gives_a_valid_input(mode: str) -> None:
    base = Image.new("L", (50, 30), 255)
    base.paste(0, (10, 10, 40, 14))  # a dark bar on white paper
    image = (
        base.convert(mode)
        if mode not in ("I;16",)
        else Image.fromarray(np.asarray(base).astype(np.uint16) * 257)
    )
    result = to_model_input(image)
    assert_model_input(result)
    assert result.max() > 0.5, f"the bar vanished in mode {mode}"


def test_animated_gif_uses_the_first_frame() -> None:
    first = Image.new("L", (32, 32), 255)
    first.paste(0, (4, 4, 28, 8))  # horizontal bar
    second = Image.new("L", (32, 32), 255)
    second.paste(0, (4, 4, 8, 28))  # vertical bar
    buffer = io.BytesIO()
    first.save(buffer, format="GIF", save_all=True, append_images=[second], duration=100)
    result = to_model_input(load_image(buffer.getvalue()))[..., 0]
    # A horizontal bar fitted to the frame is wider than tall.
    rows = np.flatnonzero(result.max(axis=1) > 0.5)
    cols = np.flatnonzero(result.max(axis=0) > 0.5)
    assert cols.size > 3 * rows.size


def test_exif_rotation_is_applied() -> None:
    image = Image.new("L", (40, 20), 255)
    image.paste(0, (2, 8, 38, 12))  # horizontal bar, stored sideways with orientation 6 (90 CW)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    loaded = load_image(buffer.getvalue())
    assert loaded.size == (20, 40)


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(10**9), max_value=10**9),
)


@FUZZ
@given(st.lists(st.lists(st.lists(finite_or_not, max_size=12), max_size=3), max_size=6))
def test_arbitrary_strokes_never_crash(strokes: list) -> None:
    try:
        assert_model_input(strokes_to_model_input(strokes))
    except InvalidImageError as error:
        assert str(error)


@pytest.mark.parametrize(
    ("strokes", "message"),
    [
        ([], "no strokes"),
        ([[[1, 2], [float("nan"), 3]]], "NaN"),
        ([[[1, 2], [3]]], "equally long"),
        ([[[1, 2]]], "x row and a y row"),
        ([[[1e12, 2], [3, 4]]], "beyond"),
        ([[["a", "b"], [1, 2]]], "non-numeric"),
        ("not a list", "no strokes"),
    ],
)
def test_bad_strokes_are_named(strokes: object, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        strokes_to_model_input(strokes)
