"""Explain the zoo on the Keras backend this process runs (KERAS_BACKEND) and save the maps.

``python -m tests.backend_worker MODELS_DIR IMAGES.npz OUT.npz``: every model file in
MODELS_DIR at its layer "target" (and the shipped model at its default layer), every method,
predicted class and one fixed class.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

# Fixed class targets make the comparison independent of a near-tie in predictions.
FIXED_CLASS = 1


def explain_everything(models_dir: Path, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{model}/{method}/{target}`` -> heatmaps, plus ``{model}/probabilities``."""
    from src.service.explainer import Explainer
    from src.visualization.cam_methods import METHODS
    from src.visualization.gradcam import load_model_for_gradcam
    from tests.backend_zoo import FILES, SHIPPED_MODEL

    maps: dict[str, np.ndarray] = {}
    files = {name: models_dir / file for name, file in FILES.items()}
    files["shipped"] = SHIPPED_MODEL
    for name, path in files.items():
        # One Explainer per model: every method shares the layer's compiled engine. Zoo models
        # are explained at their layer "target" (in skip_connection, a branch bypasses it).
        layer = None if name == "shipped" else "target"
        explainer = Explainer(load_model_for_gradcam(path), default_layer=layer)
        batch = images["shipped" if name == "shipped" else "zoo"]
        for method in METHODS:
            gradcam = explainer.cam(method)
            maps[f"{name}/{method}/predicted"] = gradcam.explain(batch).heatmaps
            maps[f"{name}/{method}/class"] = gradcam.explain(batch, FIXED_CLASS).heatmaps
        maps[f"{name}/probabilities"] = explainer.probabilities(batch)
    return maps


def main(arguments: list[str]) -> int:
    """Run the zoo and save the maps."""
    models_dir, images_path, output = (Path(argument) for argument in arguments)
    images = dict(np.load(images_path))
    np.savez(output, **explain_everything(models_dir, images))
    import keras

    sys.stdout.write(f"{keras.backend.backend()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
