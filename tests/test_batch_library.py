"""The batch library (src.batch) without the CLI: the local runner decodes at the explainer's
input size, and src.batch, src.reports and src.utils import nothing from the interfaces."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from src.config import PROJECT_ROOT
from tests.conftest import TINY_CLASSES

SMALL_SIDE = 32  # not the project's 64, so a hard-coded default size shows


@pytest.fixture(scope="module")
def small_model() -> Any:
    """An untrained 32x32 sketch CNN with three classes, in memory (files must be 64x64)."""
    from src.config import ModelConfig
    from src.models.cnn import build_cnn

    config = ModelConfig(
        num_classes=len(TINY_CLASSES),
        image_size=SMALL_SIDE,
        filters=(4, 8),
        dense_units=8,
        dropout=0.0,
    )
    return build_cnn(config)


def test_local_batch_decodes_at_the_explainers_input_size(small_model: Any, tmp_path: Path) -> None:
    from src.batch.inputs import discover_inputs
    from src.batch.local_runner import run_batch
    from src.batch.options import BatchOptions
    from src.data.labels import LabelMap
    from src.service.explainer import Explainer

    images = tmp_path / "images"
    (images / "circle").mkdir(parents=True)
    paper = np.full((100, 100), 255, np.uint8)
    paper[30:70, 48:52] = 0
    Image.fromarray(paper).save(images / "circle" / "a.png")
    Image.fromarray(paper.T.copy()).save(images / "line.png")
    labels = LabelMap(TINY_CLASSES)
    explainer = Explainer(small_model, labels)
    output = tmp_path / "out"

    summary = run_batch(
        explainer,
        discover_inputs(images, labels),
        images,
        output,
        BatchOptions(workers=1, progress=False),
    )

    assert (summary["succeeded"], summary["failed"]) == (2, 0)
    assert summary["model_path"] is None and summary["model_sha256"] is None
    written = json.loads((output / "batch_summary.json").read_text())
    assert [image["true_class"] for image in written["images"]] == ["circle", "line"]
    for image in written["images"]:
        with Image.open(output / image["overlay"]) as overlay:
            # overlay_scale 1: an overlay is the model input's size, 32x32.
            assert overlay.size == (SMALL_SIDE, SMALL_SIDE)


# Packages and the interface packages they must never import, not even inside a function.
FORBIDDEN = {
    "batch": ("src.cli", "src.web"),
    "reports": ("src.cli", "src.web", "src.batch"),
    "utils": ("src.cli", "src.web", "src.batch", "src.reports", "src.visualization"),
}


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports, at any depth of the file."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_packages_never_import_the_interfaces(package: str) -> None:
    upward = [
        f"{path.relative_to(PROJECT_ROOT)} imports {name}"
        for path in sorted((PROJECT_ROOT / "src" / package).rglob("*.py"))
        for name in imported_modules(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[package])
    ]
    assert upward == []


def test_the_web_launcher_and_figures_borrow_nothing_from_the_cli() -> None:
    for relative in ("src/web/__main__.py", "src/visualization/figures.py"):
        names = imported_modules(PROJECT_ROOT / relative)
        assert [name for name in names if name.startswith("src.cli")] == [], relative
