"""compare-models on tiny models whose answers and attention are known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from src.data.preprocess import INK_THRESHOLD, to_model_input
from src.data.raster import render_strokes
from src.errors import LabelMappingError
from src.explain.compare_models import ComparedModel, compare_models
from src.explain.map_agreement import mcnemar_exact
from tests.conftest import STROKES_BY_CLASS, TINY_CLASSES, build_tiny_model

# "square" six times, then one circle and one line: the first model below always says square,
# the second always circle.
LABELS = ["square"] * 6 + ["circle", "line"]


def _dense_logits(features, weights):  # type: ignore[no-untyped-def]
    """GAP features -> a logits Dense with fixed weights (no bias) -> softmax."""
    import keras
    from keras import layers

    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    dense = layers.Dense(len(weights), name="logits", use_bias=False)
    logits = dense(pooled)
    dense.set_weights([np.array([weights], np.float32)])
    return layers.Activation("softmax", name="predictions")(logits), keras


def build_ink_model(size: int, layer_name: str):  # type: ignore[no-untyped-def]
    """Looks only at ink: its map layer is the input itself (a 1x1 conv of weight 1).

    Every class has a positive weight, so each map is the ink scaled; "square" (weight 3)
    always wins.
    """
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 1))
    conv = layers.Conv2D(1, 1, activation="relu", name=layer_name)
    ink = conv(inputs)
    conv.set_weights([np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)])
    outputs, _ = _dense_logits(ink, [1.0, 2.0, 3.0])
    return keras.Model(inputs, outputs, name=f"ink{size}")


def build_border_model(size: int = 64):  # type: ignore[no-untyped-def]
    """Looks only at the blank border: its map layer is 1 on the outermost pixel ring, else 0.

    A constant map of ones (a 1x1 conv with bias 1, weight 0) goes through a 3x3 conv of -1s with
    bias 9 and zero padding: inside, 9 - 9 = 0; on the ring the padding's zeros leave 3 or 5.
    "circle" (weight 3) always wins.
    """
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 1))
    constant = layers.Conv2D(1, 1, name="constant_one")
    ones = constant(inputs)
    constant.set_weights([np.zeros((1, 1, 1, 1), np.float32), np.ones(1, np.float32)])
    ring = layers.Conv2D(1, 3, padding="same", activation="relu", name="border_ring")
    border = ring(ones)
    ring.set_weights([-np.ones((3, 3, 1, 1), np.float32), np.full(1, 9.0, np.float32)])
    outputs, _ = _dense_logits(border, [3.0, 2.0, 1.0])
    return keras.Model(inputs, outputs, name="border")


def _sketches() -> list[np.ndarray]:
    """The LABELS drawings as 256x256 renders (white ink), each slightly shifted."""
    rng = np.random.default_rng(3)
    sketches = []
    for name in LABELS:
        shift = rng.integers(-15, 15, size=2)
        strokes = [
            [[x + int(shift[0]) for x in xs], [y + int(shift[1]) for y in ys]]
            for xs, ys in STROKES_BY_CLASS[name]()
        ]
        sketches.append(render_strokes(strokes, size=256, line_width=10))
    return sketches


@pytest.fixture(scope="module")
def ink_and_border() -> tuple:
    """The ink model at 32x32 and the border model at 64x64."""
    return build_ink_model(32, "ink_32"), build_border_model(64)


def test_model_against_itself_agrees_fully() -> None:
    model = build_tiny_model(0)
    sketches = list(np.random.default_rng(5).random((10, 8, 8)).astype(np.float32))
    summary = compare_models(
        [ComparedModel(model, TINY_CLASSES, "a"), ComparedModel(model, TINY_CLASSES, "a")],
        [lambda size, image=image: image[..., None] for image in sketches],
        [TINY_CLASSES[n % 3] for n in range(10)],
    )
    pair = summary["pairs"][0]
    assert pair["models"] == ["a", "a#2"]
    agreement = pair["agreement"]
    assert agreement["same_answer"] == 1.0
    assert agreement["first_only_right"] == agreement["second_only_right"] == 0
    assert agreement["mcnemar_p_value"] == 1.0
    assert pair["map_rank_correlation"] == {
        "mean": 1.0,
        "median": 1.0,
        "inputs": 10,
        "undefined_inputs": 0,
    }
    assert all(entry["mean_map_rank_correlation"] == 1.0 for entry in pair["per_class"])


def _hand_gradcam(model, images: np.ndarray, classes: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Grad-CAM of the tiny model written out: ReLU(sum_k mean(d logit / d A_k) * A_k)."""
    import keras
    import tensorflow as tf

    probe = keras.Model(
        model.inputs, [model.get_layer("last_conv").output, model.get_layer("logits").output]
    )
    batch = tf.constant(images[..., None])
    with tf.GradientTape() as tape:
        activations, logits = probe(batch)
        chosen = tf.gather(logits, tf.constant(classes), axis=1, batch_dims=1)
    gradients = tape.gradient(chosen, activations).numpy()
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    return np.maximum((weights * activations.numpy()).sum(axis=-1), 0.0)


def test_reinitialised_last_layer_decorrelates_maps() -> None:
    from src.explain.faithfulness import randomised_copy

    model = build_tiny_model(0)
    # Seed 3 re-draws the logits layer far from the trained one (seed 0 would redraw it as is).
    copy, names = randomised_copy(model, 1, seed=3)
    assert names == ["logits"]
    images = np.random.default_rng(5).random((24, 8, 8)).astype(np.float32)
    summary = compare_models(
        [ComparedModel(model, TINY_CLASSES, "trained"), ComparedModel(copy, TINY_CLASSES, "reset")],
        [lambda size, image=image: image[..., None] for image in images],
    )
    # Unlabelled inputs: both models explain the first model's answer.
    classes = np.asarray(model(images[..., None])).argmax(axis=1)
    first, second = (_hand_gradcam(m, images, classes) for m in (model, copy))
    expected = [stats.spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(first, second)]
    reported = [
        record["map_rank_correlation"]["trained vs reset"] for record in summary["per_input"]
    ]
    np.testing.assert_allclose(reported, expected, atol=1e-3)
    assert abs(summary["pairs"][0]["map_rank_correlation"]["mean"]) < 0.15
    assert abs(np.mean(expected)) < 0.15


def test_border_model_is_flagged_and_different_sizes_and_layers_compare(ink_and_border) -> None:
    ink, border = ink_and_border
    summary = compare_models(
        [ComparedModel(ink, TINY_CLASSES, "ink"), ComparedModel(border, TINY_CLASSES, "border")],
        _sketches(),
        LABELS,
    )
    first, second = summary["models"]
    assert (first["input_size"], first["layer"]) == (32, "ink_32")
    assert (second["input_size"], second["layer"]) == (64, "border_ring")
    assert summary["map_grid"] == 32
    # The ink model's map is its input, so its heat on ink is the ink above the threshold over
    # all ink (at 32 pixels "touching a stroke" adds no pixel); the border's ring is never ink.
    inputs = [to_model_input(sketch, size=32)[..., 0] for sketch in _sketches()]
    expected = np.mean([image[image > INK_THRESHOLD].sum() / image.sum() for image in inputs])
    assert first["ink"]["mean_share"] == pytest.approx(expected, abs=1e-3)
    assert expected > 0.9 and not first["ink"]["flagged"]
    assert second["ink"]["mean_share"] == 0.0 and second["ink"]["flagged"]
    assert second["ink"]["inputs_below_chance"] == len(LABELS)
    per_class = second["ink"]["per_class"]
    assert {name: entry["inputs_with_heat"] for name, entry in per_class.items()} == {
        "square": 6,
        "circle": 1,
        "line": 1,
    }
    assert all(entry["mean_share"] == 0.0 and entry["flagged"] for entry in per_class.values())
    # Always "square" against always "circle": known 2x2, and McNemar by hand:
    # 7 discordant inputs, 6 to 1: p = 2 * (C(7,0) + C(7,1)) / 2^7 = 0.125.
    assert (first["top1"], second["top1"]) == (0.75, 0.125)
    agreement = summary["pairs"][0]["agreement"]
    assert [agreement[key] for key in ("both_right", "first_only_right")] == [0, 6]
    assert [agreement[key] for key in ("second_only_right", "both_wrong")] == [1, 1]
    assert agreement["mcnemar_p_value"] == 0.125
    assert agreement["same_answer"] == 0.0


def test_same_construction_at_two_sizes_lines_up_on_the_grid() -> None:
    small, large = build_ink_model(32, "ink_32"), build_ink_model(64, "ink_at_64")
    sketches = _sketches()
    summary = compare_models(
        [ComparedModel(small, TINY_CLASSES, "32"), ComparedModel(large, TINY_CLASSES, "64")],
        sketches,
        LABELS,
    )
    # Each map is its model's input, scaled; the 64 map is compared after a bilinear resize to 32.
    expected = []
    for sketch in sketches:
        large_map = Image.fromarray(to_model_input(sketch, size=64)[..., 0], mode="F")
        resized = np.asarray(large_map.resize((32, 32), Image.Resampling.BILINEAR))
        expected.append(stats.spearmanr(to_model_input(sketch, size=32).ravel(), resized.ravel()))
    reported = [record["map_rank_correlation"]["32 vs 64"] for record in summary["per_input"]]
    np.testing.assert_allclose(reported, [value.statistic for value in expected], atol=1e-3)
    assert min(reported) > 0.8


def test_disjoint_label_sets_name_both_models() -> None:
    model = build_tiny_model(0)
    with pytest.raises(LabelMappingError, match=r"first \(circle.*\) and second \(x, y, z\)"):
        compare_models(
            [
                ComparedModel(model, TINY_CLASSES, "first"),
                ComparedModel(model, ("x", "y", "z"), "second"),
            ],
            [np.zeros((8, 8), np.float32)],
        )


@pytest.mark.parametrize(
    ("first_only", "second_only", "expected"),
    [(0, 0, 1.0), (6, 1, 0.125), (1, 6, 0.125), (10, 0, 2 / 1024), (3, 3, 1.0)],
)
def test_mcnemar_exact_matches_hand_values_and_scipy(
    first_only: int, second_only: int, expected: float
) -> None:
    assert mcnemar_exact(first_only, second_only) == pytest.approx(expected)
    if first_only + second_only:
        binomial = stats.binomtest(first_only, first_only + second_only, 0.5).pvalue
        assert mcnemar_exact(first_only, second_only) == pytest.approx(binomial)


def _save_model(model, directory: Path, name: str, classes: tuple[str, ...]) -> Path:  # type: ignore[no-untyped-def]
    """model.h5 and label_mapping.json in their own folder."""
    from src.data.labels import LabelMap

    directory.mkdir(parents=True)
    model.save(directory / f"{name}.h5")
    LabelMap(classes).save(directory / "labels.json")
    return directory / f"{name}.h5"


def write_labelled_drawings(data: Path) -> Path:
    """``data/<class>.ndjson`` holding the LABELS drawings of each class; returns ``data``."""
    from src.data.quickdraw import Drawing, write_ndjson

    for class_name in TINY_CLASSES:
        drawings = [
            Drawing(class_name, STROKES_BY_CLASS[class_name](), str(n))
            for n, label in enumerate(LABELS)
            if label == class_name
        ]
        write_ndjson(drawings, data / f"{class_name}.ndjson")
    return data


def _audit(spread: float, worst: float) -> dict:
    """A minimal audit.json: one factor, one path, two levels."""
    levels = [
        {"level": "a", "paths": {"to_model_input": {"top1": 0.9, "map_rank_correlation": 1.0}}},
        {"level": "b", "paths": {"to_model_input": {"top1": worst, "map_rank_correlation": 0.5}}},
    ]
    return {
        "factors": {
            "pen_width": {
                "levels": levels,
                "top1_spread_points": {"to_model_input": spread},
                "flagged": spread > 5,
            }
        }
    }


def test_cli_writes_json_figure_and_page(
    ink_and_border, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from src.cli.gradcam_analysis import main

    ink, border = ink_and_border
    first = _save_model(ink, tmp_path / "ink", "a", TINY_CLASSES)
    second = _save_model(border, tmp_path / "border", "b", TINY_CLASSES)
    open_set = {"score": "energy", "temperature": 1.5, "threshold": -2.0, "test": {"auroc": 0.9}}
    (first.parent / "model_card.json").write_text(json.dumps({"open_set": open_set}))
    for name, (spread, worst) in {"audit_a": (20.0, 0.7), "audit_b": (4.0, 0.86)}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "audit.json").write_text(json.dumps(_audit(spread, worst)))
    data = write_labelled_drawings(tmp_path / "data")
    output = tmp_path / "out"
    # Global options: first model, its labels and layer; then the subcommand's.
    common = ["--model", str(first), "--labels", str(first.parent / "labels.json")]
    code = main(
        [
            *common,
            "--output",
            str(output),
            "compare-models",
            "--other_model",
            str(second),
            "--other_labels",
            str(second.parent / "labels.json"),
            "--data",
            str(data),
            "--per_class",
            "6",
            "--audit",
            str(tmp_path / "audit_a"),
            "--other_audit",
            str(tmp_path / "audit_b"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((output / "model_comparison.json").read_text())
    assert [model["top1"] for model in summary["models"]] == [0.75, 0.125]
    assert summary["models"][0]["open_set"] == open_set
    assert summary["models"][1]["open_set"] is None
    pair = summary["pairs"][0]
    assert pair["agreement"]["mcnemar_p_value"] == 0.125
    deltas = pair["audit_deltas"]["pen_width"]
    assert deltas["flagged"] == [True, False]
    assert deltas["to_model_input"]["delta"] == {
        "spread_points": -16.0,
        "worst_top1": 0.16,
        "mean_map_rank_correlation": 0.0,
    }
    assert Image.open(output / "model_comparison.png").size[0] > 100
    page = (output / "model_comparison.html").read_text()
    assert "mostly off the drawing" in page and page.count("data:image/png;base64,") == 2 * 8
    assert "a.h5 vs b.h5: same answer 0.0, McNemar p 0.125" in capsys.readouterr().out


def test_cli_disjoint_labels_exit_code_names_both(
    ink_and_border, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from src.cli.gradcam_analysis import main
    from src.data.labels import LabelMap
    from src.utils.exit_status import ExitStatus

    (tmp_path / "data").mkdir()
    LabelMap(TINY_CLASSES).save(tmp_path / "first.json")
    LabelMap(("cat", "dog", "fish")).save(tmp_path / "second.json")
    code = main(
        [
            "--model",
            str(tmp_path / "a.h5"),
            "--labels",
            str(tmp_path / "first.json"),
            "compare-models",
            "--other_model",
            str(tmp_path / "b.h5"),
            "--other_labels",
            str(tmp_path / "second.json"),
            "--data",
            str(tmp_path / "data"),
        ]
    )
    assert code == ExitStatus.LABELS_ERROR
    error = capsys.readouterr().err
    assert "a.h5 (circle, line, square) and b.h5 (cat, dog, fish) share no class name" in error


def test_three_models_give_every_pair() -> None:
    first, other = build_tiny_model(0), build_tiny_model(1)
    images = np.random.default_rng(6).random((6, 8, 8)).astype(np.float32)
    summary = compare_models(
        [
            ComparedModel(first, TINY_CLASSES, "a"),
            ComparedModel(first, TINY_CLASSES, "copy"),
            ComparedModel(other, TINY_CLASSES, "b"),
        ],
        [lambda size, image=image: image[..., None] for image in images],
    )
    pairs = {pair["name"]: pair["map_rank_correlation"]["mean"] for pair in summary["pairs"]}
    assert list(pairs) == ["a vs copy", "a vs b", "copy vs b"]
    # "copy" is the same model as "a": it agrees with "a" fully and with "b" exactly as "a" does.
    assert pairs["a vs copy"] == 1.0
    assert pairs["a vs b"] == pairs["copy vs b"] != 1.0
