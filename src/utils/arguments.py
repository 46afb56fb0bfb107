"""argparse types shared by the command line and the web server's launcher."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def unit_float(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


# NumPy's seeds (and the per-level seed offsets added to them) stay within 32 bits.
MAX_SEED = 2**32 - 1


def bounded_int(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type accepting whole numbers from ``minimum`` to ``maximum`` inclusive.

    Example:
        >>> parse = bounded_int(1, 10)
        >>> parse("3")
        3
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be between {minimum} and {maximum}, got {value}"
            )
        return value

    return parse


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0 (NaN and infinity refused)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value
