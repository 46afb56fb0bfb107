"""The command-line tools print only their own output: no TensorFlow start-up or retracing lines.

That ``single`` and ``predict.py`` write nothing to stderr is checked on the usage guide's own
runs of them, in tests/test_cli.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from src.config import PROJECT_ROOT
from tests.conftest import STROKES_BY_CLASS, TINY_CLASSES, run_as_user

# Subprocesses, training or long fuzzing: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

SCRIPT = PROJECT_ROOT / "scripts" / "gradcam_analysis.py"
# What TensorFlow's C++ start-up and tf.function's retracing detector write to stderr.
TENSORFLOW_LINES = ("WARNING: All log messages before absl", "I0000 ", "WARNING:tensorflow")


@pytest.fixture(scope="module")
def drawings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<class>.ndjson files of two-stroke drawings for the small sketch model's classes."""
    folder = tmp_path_factory.mktemp("drawings")
    for name in TINY_CLASSES:
        records = []
        for shift in range(2):
            extra = [[10 * shift, 60], [250, 250 - 5 * shift]]
            drawing = [*STROKES_BY_CLASS[name](), extra]
            records.append(json.dumps({"word": name, "drawing": drawing}))
        (folder / f"{name}.ndjson").write_text("\n".join(records) + "\n")
    return folder


def test_verbose_shows_tensorflow_start_up_lines(
    sketch_model_path: Path, sketch_labels_path: Path, sketch_model_dir: Path, tmp_path: Path
) -> None:
    image = sketch_model_dir / "sketches" / "circle" / "0.png"
    common = ("--model", sketch_model_path, "--labels", sketch_labels_path, "--verbose")
    done = run_as_user(SCRIPT, *common, "--output", tmp_path, "single", "--image", image)
    assert done.returncode == 0, done.stderr
    # The project's own INFO logging shows (the layer it chose), and TensorFlow is not filtered:
    # absl's notice comes first at every import, whatever the CPU (oneDNN's only on some).
    assert "src.visualization" in done.stderr
    assert "absl::InitializeLog" in done.stderr


def test_evaluate_explanations_does_not_retrace(
    sketch_model_path: Path, sketch_labels_path: Path, drawings_dir: Path, tmp_path: Path
) -> None:
    done = run_as_user(
        SCRIPT,
        "--model",
        sketch_model_path,
        "--labels",
        sketch_labels_path,
        "--output",
        tmp_path,
        "evaluate-explanations",
        "--data",
        drawings_dir,
        "--per-class",
        "1",
        "--steps",
        "2",
        "--randomise",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if line.startswith(TENSORFLOW_LINES)]
    assert "retracing" not in done.stderr


def test_start_up_notice_filter_keeps_other_lines() -> None:
    from src.utils.tensorflow_logging import is_start_up_notice

    notice = "I0000 00:00:1795895105.904232    6373 port.cc:153] oneDNN custom operations are on."
    assert is_start_up_notice(notice)
    assert is_start_up_notice(
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    )
    assert not is_start_up_notice("E0000 00:00:1795895105.904232  6373 cuda_dnn.cc:8579] failed")
    assert not is_start_up_notice("error: image samples/x.png not found")


def test_ray_init_output_keeps_every_line_but_the_log_level_notice(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """What ``ray.init`` writes to descriptor 2 (as Ray's C++ core does) passes through, all
    but the announcement of RAY_BACKEND_LOG_LEVEL."""

    from src.batch.ray_cluster import _init

    class FakeRay:
        @staticmethod
        def init(**options: object) -> None:
            os.write(
                2,
                b"[2026-12-02 09:36:58,040 I 24554 24554] logging.cc:302: Set ray log "
                b"level from environment variable RAY_BACKEND_LOG_LEVEL to 3\n",
            )
            os.write(2, b"[2026-12-02 09:36:58,041 E 24554 24554] gcs_client.cc:9: lost\n")

    capfd.readouterr()
    _init(FakeRay, verbose=False, num_cpus=1)
    assert capfd.readouterr().err.splitlines() == [
        "[2026-12-02 09:36:58,041 E 24554 24554] gcs_client.cc:9: lost"
    ]
    _init(FakeRay, verbose=True, num_cpus=1)
    assert len(capfd.readouterr().err.splitlines()) == 2
