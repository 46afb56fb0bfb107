"""The one top-k ranking of class probabilities, used by every interface."""

from __future__ import annotations

from typing import Any

import numpy as np


def top_classes(probabilities: Any, top_k: int) -> np.ndarray:
    """Indices of the ``top_k`` most likely classes of one probability vector, most likely
    first; ties go to the lower index. At least one, at most every class.
    """
    values = np.asarray(probabilities)
    count = max(1, min(int(top_k), len(values)))
    return np.argsort(-values, kind="stable")[:count].astype(np.int64)
