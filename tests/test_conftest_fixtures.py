"""The shared fixtures themselves: the small sketch model learned its three shapes."""

from __future__ import annotations

import numpy as np

from src.data.preprocess import strokes_to_model_input
from tests.conftest import STROKES_BY_CLASS, TINY_CLASSES


def test_sketch_model_recognises_its_training_shapes(sketch_model_path) -> None:  # type: ignore[no-untyped-def]
    from src.models.io import load_model

    model = load_model(sketch_model_path)
    images = np.stack([strokes_to_model_input(STROKES_BY_CLASS[name]()) for name in TINY_CLASSES])
    predicted = np.argmax(model.predict(images, verbose=0), axis=1)
    assert predicted.tolist() == [0, 1, 2]
