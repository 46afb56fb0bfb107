"""to_model_input on every kind of image: polarity, alpha, position, size, palette, 16-bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.data.preprocess import strokes_to_model_input, to_model_input


def _square_on(
    background: int, ink: int, size: int = 100, box: tuple = (30, 30, 70, 70)
) -> np.ndarray:
    """A hollow square outline of ink 4 px thick on a plain background."""
    array = np.full((size, size), background, np.uint8)
    top, left, bottom, right = box
    array[top:bottom, left:right] = ink
    array[top + 4 : bottom - 4, left + 4 : right - 4] = background
    return array


def _assert_model_input(result: np.ndarray) -> None:
    assert result.shape == (64, 64, 1) and result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 1.0


def test_both_polarities_give_the_same_input() -> None:
    white_on_black = to_model_input(_square_on(0, 255))
    black_on_white = to_model_input(_square_on(255, 0))
    _assert_model_input(white_on_black)
    np.testing.assert_allclose(white_on_black, black_on_white, atol=1e-6)
    # Ink becomes 1: the square's outline is white, its inside and the border black.
    assert white_on_black[32, 32, 0] == 0.0 and white_on_black[0, 0, 0] == 0.0
    assert white_on_black.max() == pytest.approx(1.0)


def test_ink_is_centred_wherever_it_was() -> None:
    centred = to_model_input(_square_on(255, 0, box=(30, 30, 70, 70)))
    corner = to_model_input(_square_on(255, 0, size=300, box=(0, 200, 40, 240)))
    np.testing.assert_allclose(centred, corner, atol=0.02)
    # Fitted with a 6% margin: ink starts near 64 * 0.06 = 3.84 px from the edge.
    cols = np.flatnonzero(centred[..., 0].max(axis=0) > 0.5)
    assert 2 <= cols[0] <= 5 and 58 <= cols[-1] <= 61


def test_alpha_channel_is_paper() -> None:
    rgba = np.zeros((50, 50, 4), np.uint8)  # fully transparent black = white paper
    rgba[20:30, 10:40] = (0, 0, 0, 255)  # an opaque black bar
    result = to_model_input(Image.fromarray(rgba, "RGBA"))
    _assert_model_input(result)
    assert result[32, 32, 0] == pytest.approx(1.0) and result[0, 0, 0] == 0.0


def test_palette_and_16_bit_images() -> None:
    palette = Image.fromarray(_square_on(255, 0)).convert("P")
    sixteen = Image.fromarray(_square_on(0, 255).astype(np.uint16) * 257).convert("I;16")
    expected = to_model_input(_square_on(0, 255))
    np.testing.assert_allclose(to_model_input(palette), expected, atol=1e-6)
    np.testing.assert_allclose(to_model_input(sixteen), expected, atol=1e-6)


def test_tiny_and_huge_images() -> None:
    blank = to_model_input(np.zeros((1, 1), np.uint8))
    assert blank.shape == (64, 64, 1) and blank.max() == 0.0
    huge = np.full((3000, 3000), 255, np.uint8)
    huge[1000:1100, 500:2500] = 0  # a long horizontal bar, 2000 x 100 px
    result = to_model_input(huge)
    _assert_model_input(result)
    rows = np.flatnonzero(result[..., 0].max(axis=1) > 0.3)
    # Fitted into a square of 2000 / 0.88 = 2273 px, the bar sits at rows 1086..1186, which is
    # 30.6..33.4 of 64: a thin line across the middle.
    assert rows.min() >= 29 and rows.max() <= 35
    cols = np.flatnonzero(result[..., 0].max(axis=0) > 0.3)
    assert cols[0] <= 5 and cols[-1] >= 58


def test_strokes_and_their_drawing_agree() -> None:
    """A square drawn as strokes and the same square as a PNG give nearly the same input."""
    strokes = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]
    from_strokes = strokes_to_model_input(strokes)
    _assert_model_input(from_strokes)
    outline = to_model_input(_square_on(255, 0, size=200, box=(50, 50, 150, 150)))
    for image in (from_strokes, outline):
        mask = image[..., 0] > 0.3
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        # Both fill the frame less the 6% margin (about 4 px) and are hollow inside.
        assert 2 <= rows[0] <= 5 and 58 <= rows[-1] <= 61 and 2 <= cols[0] <= 5
        assert image[20:44, 20:44].max() == 0.0


# Every mode Image.new accepts in the installed Pillow (Image.MODES lists the core ones; the
# 16-bit and premultiplied modes are extra names Pillow also creates).
_PILLOW_MODES = sorted(set(Image.MODES) | {"I;16", "I;16L", "I;16B", "I;16N", "La", "RGBa"})


def test_every_pillow_mode_gives_a_model_input() -> None:
    reference = to_model_input(_square_on(0, 255))
    for mode in _PILLOW_MODES:
        # Draw in "L" (white square on black), then split its band into the mode's bands, so every
        # mode holds the same picture in its first band (lightness / luma / value for LAB, YCbCr).
        gray = Image.fromarray(_square_on(0, 255))
        if mode in ("La", "RGBa"):
            # Premultiplied modes: Pillow makes them only from their straight-alpha twins.
            straight = Image.merge(
                mode.upper(), [gray] * (len(mode) - 1) + [Image.new("L", gray.size, 255)]
            )
            image = straight.convert(mode)
        elif mode in ("1", "L", "P", "I", "F") or mode.startswith("I;16"):
            image = gray.convert(mode)
        else:
            bands = Image.new(mode, (1, 1)).getbands()
            opaque = Image.new("L", gray.size, 255)
            neutral = Image.new("L", gray.size, 128 if mode in ("LAB", "YCbCr") else 0)
            image = Image.merge(
                mode, [gray] + [opaque if band in "AaX" else neutral for band in bands[1:]]
            )
        result = to_model_input(image)
        _assert_model_input(result)
        if mode in ("L", "LAB", "YCbCr", "LA", "1", "I", "F", "P"):
            np.testing.assert_allclose(result, reference, atol=1e-5, err_msg=mode)


def test_extreme_aspect_ratios_are_bounded() -> None:
    strip = np.zeros((1, 16_000_000), np.uint8)
    strip[0, ::3] = 255
    result = to_model_input(strip)
    _assert_model_input(result)
    # The strip is a horizontal line through the middle of the frame: after the 28x28 detail pass
    # one row of 28 is 64 / 28 = 2.3 rows of the output, so ink lies only on the centre rows.
    inked_rows = np.flatnonzero(result[:, :, 0].sum(axis=1) > 0)
    assert inked_rows.min() >= 26 and inked_rows.max() <= 37, inked_rows
    banner = np.full((650, 24_000), 255, np.uint8)
    banner[100:500, 100:23_900] = 0
    # A 400-row band of a 23,800-column box is 0.4 of a 28x28 detail row: faint ink, centre rows.
    banner_result = to_model_input(banner)
    banner_rows = np.flatnonzero(banner_result[:, :, 0].sum(axis=1) > 0)
    assert banner_result.max() > 0.1
    assert banner_rows.min() >= 26 and banner_rows.max() <= 37, banner_rows


def test_unreadable_bytes_message_names_no_python_object() -> None:
    from src.data.preprocess import load_image
    from src.errors import InvalidImageError

    with pytest.raises(InvalidImageError) as caught:
        load_image(b"certainly not an image")
    assert str(caught.value) == (
        "image data is not a readable image (cannot identify image file image data); "
        "use PNG, JPEG, BMP, GIF or WebP"
    )


@pytest.mark.parametrize("mime", ["text/html", "application/json"])
def test_data_url_of_another_type_is_refused(mime: str) -> None:
    import base64

    from src.errors import InvalidImageError
    from src.web.deps import decode_base64_image

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    assert decode_base64_image(f"data:image/png;base64,{png}") == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidImageError, match=f"data URL of type '{mime}'"):
        decode_base64_image(f"data:{mime};base64,{png}")


def test_web_decodes_on_the_event_loop_by_header_pixels_not_body_size() -> None:
    import base64
    import io

    from src.web.deps import INLINE_IMAGE_PIXELS, _declared_pixels

    def encoded(width: int, height: int) -> str:
        buffer = io.BytesIO()
        Image.new("L", (width, height), 255).save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    banner = encoded(24_000, 650)
    assert len(banner) < 100_000  # a small body...
    assert _declared_pixels(banner) == 24_000 * 650  # ...that decodes to 15.6 million pixels
    assert _declared_pixels(banner) > INLINE_IMAGE_PIXELS  # so it is decoded off the event loop
    assert _declared_pixels(encoded(256, 256)) == 256 * 256
    assert _declared_pixels("not base64 !") == 0
