"""A model's input convention, one object: size, channels, ink polarity and value range.

Sketch models in the wild disagree on everything but the drawing: Google's numpy_bitmap models
take light ink on a dark background at 28x28 scaled to 0..1, a guide-style model dark ink on
white at 64x64, an ImageNet-style one three channels in -1..1. Preprocessing works in one
internal look (ink intensity, 1 = ink, 0 = paper) and ``InputSpec.encode`` turns that into the
values one particular model was trained on, so every interface feeds each model its own
convention through the same code.

Ink and value range come, in order, from the command-line options, the ``"input"`` block of
the ``model_card.json`` beside the model, else the defaults (dark ink, 0-1). Size and channels
always come from the model itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.data.json_input import JSONInputError, read_json_file
from src.errors import ModelLoadError

INK_CHOICES = ("dark", "light")
VALUE_RANGE_CHOICES = ("0-1", "0-255", "-1-1")
DEFAULT_INK = "dark"
DEFAULT_VALUE_RANGE = "0-1"
# The sizes a sketch can meaningfully be drawn at: below 16 pixels strokes merge, above 512 the
# per-image cost grows with no detail a hand-drawn sketch can carry.
MIN_SIDE = 16
MAX_SIDE = 512
CARD_NAME = "model_card.json"
# A card is a small JSON file; anything larger is not one.
MAX_CARD_BYTES = 16 * 1024 * 1024
_VALUE_RANGES = {"0-1": (0.0, 1.0), "0-255": (0.0, 255.0), "-1-1": (-1.0, 1.0)}


@dataclass(frozen=True)
class InputSpec:
    """What one model expects: ``(height, width, channels)`` values of one ink and range.

    Attributes:
        height: input rows, from the model.
        width: input columns, from the model.
        channels: 1, or 3 (the grey sketch repeated).
        ink: ``"dark"`` (dark ink on light paper) or ``"light"`` (light ink on dark).
        value_range: ``"0-1"``, ``"0-255"`` or ``"-1-1"``.
        ink_source: where ``ink`` came from: ``"option"``, ``"card"`` or ``"default"``.
        value_range_source: where ``value_range`` came from, likewise.
    """

    height: int
    width: int
    channels: int = 1
    ink: str = DEFAULT_INK
    value_range: str = DEFAULT_VALUE_RANGE
    ink_source: str = "default"
    value_range_source: str = "default"

    def __post_init__(self) -> None:
        for name, side in (("height", self.height), ("width", self.width)):
            if not MIN_SIDE <= side <= MAX_SIDE:
                raise ModelLoadError(
                    f"model input {name} is {side}; SketchCAM explains sketch models whose "
                    f"input is {MIN_SIDE} to {MAX_SIDE} pixels on each side"
                )
        if self.channels not in (1, 3):
            raise ModelLoadError(
                f"model input has {self.channels} channels; SketchCAM feeds 1 (grey) or 3 "
                "(the grey sketch repeated)"
            )
        if self.ink not in INK_CHOICES:
            raise ModelLoadError(
                f"unknown ink {self.ink!r}; choose one of {', '.join(INK_CHOICES)}"
            )
        if self.value_range not in VALUE_RANGE_CHOICES:
            raise ModelLoadError(
                f"unknown value range {self.value_range!r}; choose one of "
                f"{', '.join(VALUE_RANGE_CHOICES)}"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """The model's input shape without the batch axis."""
        return (self.height, self.width, self.channels)

    @property
    def is_default(self) -> bool:
        """True when neither an option nor a card chose the ink or the value range."""
        return self.ink_source == "default" or self.value_range_source == "default"

    def options(self) -> str:
        """The command-line options that select this convention, e.g. ``--ink light ...``."""
        return f"--ink {self.ink} --value_range {self.value_range}"

    def describe(self) -> str:
        """One line for people: the size and the convention, and where it came from."""
        paper = "light ink on dark" if self.ink == "light" else "dark ink on light paper"
        sources = {self.ink_source, self.value_range_source}
        origin = " and ".join(sorted(sources))
        return (
            f"input {self.height}x{self.width}x{self.channels}, {paper}, values "
            f"{self.value_range} ({origin})"
        )

    def default_notice(self) -> str | None:
        """One line telling the user that a default convention is in use and how to change it;
        None when an option or the card chose both ink and value range."""
        if not self.is_default:
            return None
        paper = "light ink on dark paper" if self.ink == "light" else "dark ink on light paper"
        return (
            f"input convention: {paper}, values {self.value_range} (default; pass --ink/"
            "--value_range or run probe-input)"
        )

    def encode(self, ink: np.ndarray) -> np.ndarray:
        """Ink intensities to this model's input values.

        Args:
            ink: float array ``(..., height, width)`` or ``(..., height, width, 1)`` in [0, 1],
                1 where there is ink.

        Returns:
            float32 array ``(..., height, width, channels)`` in this model's convention.
        """
        array = np.asarray(ink, dtype=np.float32)
        if array.shape[-1:] == (1,) and array.ndim >= 3:
            array = array[..., 0]
        grey = array if self.ink == "light" else 1.0 - array
        low, high = _VALUE_RANGES[self.value_range]
        values = (low + (high - low) * grey).astype(np.float32)
        return np.repeat(values[..., np.newaxis], self.channels, axis=-1)

    def decode(self, values: np.ndarray) -> np.ndarray:
        """This model's input values back to ink intensities ``(..., height, width)`` in [0, 1].

        The inverse of ``encode`` (channels are averaged): what the model sees, for thumbnails
        and for telling an empty input from a drawing in any convention.
        """
        array = np.asarray(values, dtype=np.float32).mean(axis=-1)
        low, high = _VALUE_RANGES[self.value_range]
        grey = np.clip((array - low) / (high - low), 0.0, 1.0)
        return grey if self.ink == "light" else 1.0 - grey


def card_path_for(model_path: str | Path) -> Path:
    """The ``model_card.json`` that sits beside a model file."""
    return Path(model_path).with_name(CARD_NAME)


def read_card(card_path: str | Path) -> dict[str, Any]:
    """A model card's JSON object; ``{}`` when there is no card (or it is not an object).

    Raises:
        ModelLoadError: the card is too large or unreadable (the message names the file).
    """
    path = Path(card_path)
    if not path.exists():
        return {}
    try:
        card = read_json_file(path, MAX_CARD_BYTES)
    except (OSError, JSONInputError) as error:
        raise ModelLoadError(
            f"{path}: cannot read the model card ({error}); fix or remove it"
        ) from error
    return card if isinstance(card, dict) else {}


def read_card_convention(card_path: str | Path) -> dict[str, str]:
    """The ``"input"`` block of a model card: ``{"ink": ..., "value_range": ...}``, either optional.

    A missing card, or a card without the block, gives ``{}``.

    Raises:
        ModelLoadError: the card is unreadable, not a JSON object, or its block names an
            unknown ink or value range (the message names the file and the field).
    """
    path = Path(card_path)
    block = read_card(path).get("input")
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise ModelLoadError(
            f'{path}: "input" must be an object like {{"ink": "light", "value_range": "0-1"}}'
        )
    convention: dict[str, str] = {}
    for field, choices in (("ink", INK_CHOICES), ("value_range", VALUE_RANGE_CHOICES)):
        if field not in block:
            continue
        if block[field] not in choices:
            raise ModelLoadError(
                f'{path}: "input.{field}" is {block[field]!r}; choose one of {", ".join(choices)}'
            )
        convention[field] = block[field]
    return convention


def write_card_convention(model_path: str | Path, ink: str, value_range: str) -> Path:
    """Set the ``"input"`` block of the ``model_card.json`` beside a model, keeping its other fields.

    The card is created when missing and written atomically, so a reader never sees half of it.

    Returns:
        The card's path.

    Raises:
        ModelLoadError: an unknown ink or value range, or an existing card that cannot be read.
        OSError: the card cannot be written.
    """
    from src.utils.atomic_write import write_json_atomic

    for name, value, choices in (
        ("ink", ink, INK_CHOICES),
        ("value range", value_range, VALUE_RANGE_CHOICES),
    ):
        if value not in choices:
            raise ModelLoadError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    path = card_path_for(model_path)
    card = read_card(path)
    card["input"] = {"ink": ink, "value_range": value_range}
    return write_json_atomic(path, card)


def model_input_shape(model: Any) -> tuple[int, int, int]:
    """``(height, width, channels)`` of a Keras model's single image input.

    Raises:
        ModelLoadError: the model has several inputs, or its input is not ``(batch, H, W, C)``.
    """
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ModelLoadError(
            f"model has {len(inputs)} inputs; SketchCAM explains models with one image input"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or any(side is None for side in shape[1:]):
        raise ModelLoadError(
            f"model input is shaped {shape}; SketchCAM needs a fixed image input "
            "(batch, height, width, channels)"
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def resolve_input_spec(
    model: Any,
    ink: str | None = None,
    value_range: str | None = None,
    model_path: str | Path | None = None,
) -> InputSpec:
    """The input convention for ``model``: options first, then its card, then the defaults.

    Args:
        model: the Keras model (its input gives height, width and channels).
        ink: ``--ink``, or None to look further.
        value_range: ``--value_range``, or None to look further.
        model_path: the model file; its sibling ``model_card.json`` may hold an ``"input"`` block.

    Raises:
        ModelLoadError: an unusable input shape, or a card block naming unknown values.
    """
    height, width, channels = model_input_shape(model)
    card = read_card_convention(card_path_for(model_path)) if model_path is not None else {}
    chosen_ink, ink_source = _pick(ink, card.get("ink"), DEFAULT_INK)
    chosen_range, range_source = _pick(value_range, card.get("value_range"), DEFAULT_VALUE_RANGE)
    return InputSpec(height, width, channels, chosen_ink, chosen_range, ink_source, range_source)


def _pick(option: str | None, card: str | None, default: str) -> tuple[str, str]:
    """The first of option, card and default that is set, with where it came from."""
    if option is not None:
        return option, "option"
    if card is not None:
        return card, "card"
    return default, "default"


def add_convention_options(parser: argparse.ArgumentParser) -> None:
    """``--ink`` and ``--value_range``: the model's input convention (default: its card's)."""
    parser.add_argument(
        "--ink",
        choices=INK_CHOICES,
        default=None,
        help="the model's ink: dark (on light paper) or light (on dark); default: the "
        'model card\'s "input" block, else dark',
    )
    parser.add_argument(
        "--value_range",
        "--value-range",
        dest="value_range",
        choices=VALUE_RANGE_CHOICES,
        default=None,
        help="the model's input values: 0-1, 0-255 or -1-1; default: the model card's, else 0-1",
    )


_VALUE_RANGE_FLAGS = ("--value_range", "--value-range")


def join_value_range(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--value_range -1-1`` joined into ``--value_range=-1-1``.

    argparse takes a value starting with ``-`` (other than a plain negative number) for an
    option, so the issue's own spelling would fail with "expected one argument".
    """
    joined: list[str] = []
    for argument in argv:
        if argument == "-1-1" and joined and joined[-1] in _VALUE_RANGE_FLAGS:
            joined[-1] = f"{joined[-1]}={argument}"
        else:
            joined.append(argument)
    return joined
