"""The CAM methods registry is the one list: the README, the CLI help and the web schema agree.

The README's "Methods: ..." sentence is the independent expectation (the promise users read).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from src.visualization.cam_methods import (
    METHODS,
    REGISTRY,
    CamInputs,
    CamMethod,
    method_named,
    register,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_methods() -> tuple[str, ...]:
    """The methods in the README's "Methods: ..." sentence, in its order."""
    sentence = re.search(r"Methods: (.*?)\.\n", README.read_text(encoding="utf-8"), re.DOTALL)
    assert sentence, "README has no 'Methods: ...' sentence"
    return tuple(re.findall(r"`([^`]+)`", sentence.group(1)))


def test_registry_matches_the_readme() -> None:
    assert tuple(REGISTRY) == METHODS == readme_methods()


def test_cli_method_help_lists_the_readme_methods() -> None:
    from src.cli.gradcam_analysis import build_parser

    help_text = " ".join(build_parser().format_help().split())
    listed = re.search(r"--method METHOD (.*?) --", help_text)
    assert listed, help_text
    names = tuple(re.findall(r"[a-z+]+(?= \(default\)|,| or|$)", listed.group(1)))
    assert names == readme_methods()


def test_web_schema_enum_lists_the_readme_methods() -> None:
    from src.web.schemas import MethodChoice

    field = MethodChoice.model_json_schema()["properties"]["method"]
    assert field["enum"] == [*readme_methods(), None]


def test_a_registered_subclass_is_usable_by_name() -> None:
    """One subclass with one weights function is a whole new method."""

    class UniformCam(CamMethod):
        name = "uniform-test"
        summary = "every channel weighs one"

        def weights(self, inputs: CamInputs) -> np.ndarray:
            count, _, _, channels = inputs.activations.shape
            return np.ones((count, channels), np.float32)

    register(UniformCam)
    try:
        activations = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
        inputs = CamInputs(activations, activations, None, np.zeros((2, 3)), lambda x: x)
        maps = method_named("uniform-test").raw_maps(inputs)
    finally:
        del REGISTRY["uniform-test"]
    # Hand computation: the sum over the three channels at each position.
    np.testing.assert_allclose(maps, activations.sum(axis=-1))


def test_a_name_registers_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(REGISTRY["gradcam"])
