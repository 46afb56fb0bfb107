"""argparse types for counts and seeds with both bounds, so a huge or negative value is a usage
error (exit 2, one line naming the bound) rather than an allocation or a NumPy traceback."""

from __future__ import annotations

import argparse
from collections.abc import Callable

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
