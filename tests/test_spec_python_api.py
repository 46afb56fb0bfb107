"""The Python snippets of docs/usage_guide.md, run exactly as written, and memory over saves.

The three snippets ("Python API Usage", "Programmatic Batch Processing", "Top-K Analysis") are
copied verbatim from the guide. As a reader would, they run one after another in one namespace
(the batch snippet uses ``load_model_for_gradcam``, ``Image`` and ``np`` from the first one, and
the Top-K snippet uses ``image_tensor`` and the reader's own ``class_names``), from a working
directory holding ``models/best_model.h5``, ``sketch.png`` and ``sketches/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

CLASS_NAMES = ["cat", "dog", "bird"]  # the guide's example names; the fixture model has 3 classes

PYTHON_API_SNIPPET = """
from src.visualization.gradcam import GradCAM, load_model_for_gradcam
from PIL import Image
import numpy as np

# Load model
model = load_model_for_gradcam('models/best_model.h5')

# Load and preprocess image
image = Image.open('sketch.png').convert('L').resize((64, 64))
image_array = np.array(image) / 255.0
image_tensor = image_array.reshape(1, 64, 64, 1)

# Create Grad-CAM instance
gradcam = GradCAM(model)

# Generate visualization
result = gradcam.visualize_prediction(
    image_tensor,
    class_names=['cat', 'dog', 'bird'],  # Your class names
    save_path='gradcam_output.png'
)

print(f"Predicted: {result['predicted_class']}")
print(f"Confidence: {result['confidence']:.3f}")
"""

BATCH_SNIPPET = """
from src.visualization.gradcam import GradCAM
import os
import glob

# Load model
model = load_model_for_gradcam('models/best_model.h5')
gradcam = GradCAM(model)

# Process all images in a directory
image_files = glob.glob('sketches/*.png')
results = []

for img_path in image_files:
    # Load and preprocess
    image = Image.open(img_path).convert('L').resize((64, 64))
    image_array = np.array(image) / 255.0
    image_tensor = image_array.reshape(1, 64, 64, 1)

    # Analyze
    result = gradcam.visualize_prediction(
        image_tensor,
        save_path=f'output/{os.path.basename(img_path)}_gradcam.png',
        show_plot=False
    )

    results.append({
        'file': img_path,
        'prediction': result['predicted_class'],
        'confidence': result['confidence']
    })
"""

TOP_K_SNIPPET = """
# Analyze top 3 predictions for an image
top_results = gradcam.analyze_top_predictions(
    image_tensor,
    class_names=class_names,
    top_k=3,
    save_dir='top_predictions_output'
)

for result in top_results:
    print(f"Rank {result['rank']}: {result['class_name']} ({result['confidence']:.3f})")
"""


@pytest.fixture
def guide_workspace(
    tmp_path: Path, sketch_model_dir: Path, sketch_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A working directory laid out as the guide assumes, made the current directory."""
    (tmp_path / "models").mkdir()
    shutil.copy(sketch_model_path, tmp_path / "models" / "best_model.h5")
    (tmp_path / "sketches").mkdir()
    (tmp_path / "output").mkdir()
    pngs = sorted((sketch_model_dir / "sketches").glob("*/*.png"))
    for png in pngs:
        shutil.copy(png, tmp_path / "sketches" / f"{png.parent.name}_{png.name}")
    shutil.copy(pngs[0], tmp_path / "sketch.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def expected_probabilities(model: Any, image_path: Path) -> np.ndarray:
    """The model's own softmax output for one guide-preprocessed image (independent of GradCAM)."""
    image = Image.open(image_path).convert("L").resize((64, 64))
    batch = (np.array(image) / 255.0).reshape(1, 64, 64, 1).astype(np.float32)
    return model.predict_on_batch(batch)[0]


def assert_png_figure(path: Path) -> None:
    """A readable PNG laid out as three side-by-side panels."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 2 * image.height


def test_guide_snippets_run_as_written(
    guide_workspace: Path, sketch_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python API, batch and Top-K snippets: returned fields and written files."""
    import keras

    reference_model = keras.models.load_model(sketch_model_path, compile=False)
    namespace: dict[str, Any] = {}
    exec(compile(PYTHON_API_SNIPPET, "python_api_snippet", "exec"), namespace)
    result = namespace["result"]
    probabilities = expected_probabilities(reference_model, guide_workspace / "sketch.png")
    predicted = int(np.argmax(probabilities))
    assert result["predicted_class"] == CLASS_NAMES[predicted]
    assert result["predicted_class_index"] == predicted
    assert result["confidence"] == pytest.approx(float(probabilities[predicted]), abs=1e-5)
    np.testing.assert_allclose(result["predictions"], probabilities, atol=1e-5)
    assert result["heatmap"].shape == (64, 64) and result["heatmap"].dtype == np.float32
    assert 0.0 <= result["heatmap"].min() and result["heatmap"].max() <= 1.0
    assert result["overlay"].shape == (64, 64, 3) and result["overlay"].dtype == np.uint8
    assert_png_figure(guide_workspace / "gradcam_output.png")
    printed = capsys.readouterr().out
    assert f"Predicted: {CLASS_NAMES[predicted]}" in printed
    assert f"Confidence: {probabilities[predicted]:.3f}" in printed

    exec(compile(BATCH_SNIPPET, "batch_snippet", "exec"), namespace)
    sketches = sorted(path.name for path in (guide_workspace / "sketches").glob("*.png"))
    batch_results = namespace["results"]
    assert sorted(Path(entry["file"]).name for entry in batch_results) == sketches
    for entry in batch_results:
        expected = expected_probabilities(reference_model, guide_workspace / entry["file"])
        assert entry["prediction"] == int(np.argmax(expected))  # no class names: the index
        assert entry["confidence"] == pytest.approx(float(expected.max()), abs=1e-5)
        assert_png_figure(guide_workspace / "output" / f"{Path(entry['file']).name}_gradcam.png")

    namespace["class_names"] = CLASS_NAMES  # the reader's own variable in the Top-K snippet
    exec(compile(TOP_K_SNIPPET, "top_k_snippet", "exec"), namespace)
    last_image = guide_workspace / batch_results[-1]["file"]
    expected = expected_probabilities(reference_model, last_image)
    order = np.argsort(-expected)
    top_results = namespace["top_results"]
    assert [entry["rank"] for entry in top_results] == [1, 2, 3]
    assert [entry["class_index"] for entry in top_results] == order.tolist()
    for entry in top_results:
        assert entry["class_name"] == CLASS_NAMES[entry["class_index"]]
        assert entry["confidence"] == pytest.approx(float(expected[entry["class_index"]]), abs=1e-5)
        assert entry["heatmap"].shape == (64, 64)
        saved = f"gradcam_top{entry['rank']}_{entry['class_name']}.png"
        assert_png_figure(guide_workspace / "top_predictions_output" / saved)
    printed = capsys.readouterr().out
    assert f"Rank 1: {CLASS_NAMES[order[0]]} ({expected[order[0]]:.3f})" in printed


def resident_megabytes() -> float:
    """This process's resident set size (Linux /proc)."""
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_memory_stays_flat_over_repeated_saves(sketch_model_path: Path, tmp_path: Path) -> None:
    """Figures are closed after saving: no open figures, and RSS barely grows over many calls."""
    import gc

    import matplotlib.pyplot as plt

    from src.visualization.gradcam import GradCAM, load_model_for_gradcam

    gradcam = GradCAM(load_model_for_gradcam(sketch_model_path))
    image = np.random.default_rng(0).random((1, 64, 64, 1))
    for _ in range(15):  # warm-up: compilation, font cache, allocator pools settle
        gradcam.visualize_prediction(image, CLASS_NAMES, save_path=tmp_path / "warm.png")
    gc.collect()
    before = resident_megabytes()
    figures_before = live_figures()
    for index in range(40):
        gradcam.visualize_prediction(image, CLASS_NAMES, save_path=tmp_path / f"{index % 3}.png")
    gc.collect()
    growth = resident_megabytes() - before
    assert plt.get_fignums() == []
    assert live_figures() == figures_before  # no figure object outlives its save
    # One leaked 1100x390 figure holds more than 2 MB, so 40 leaks would pass 80 MB; the bound
    # leaves room for the allocator noise of a process that has run other tests before.
    assert growth < 60.0, f"RSS grew {growth:.1f} MB over 40 saved figures"


def live_figures() -> int:
    """Matplotlib Figure objects still reachable in this process."""
    import gc

    from matplotlib.figure import Figure

    return sum(isinstance(thing, Figure) for thing in gc.get_objects())
