"""Timelines: one batched call over every prefix, and when the prediction settled."""

from __future__ import annotations

import numpy as np


def test_timeline_explains_every_prefix_in_one_call(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from src.explain.timeline import build_timeline, timeline_to_dict
    from src.visualization.gradcam import GradCAM
    from tests.conftest import light_ink
    from tests.test_explain_strokes import BOTTOM_STROKE, TOP_STROKE, build_top_half_model

    model = build_top_half_model()
    gradcam = GradCAM(model, input_spec=light_ink(model))
    calls = []
    original = gradcam.explain
    monkeypatch.setattr(gradcam, "explain", lambda *a, **k: calls.append(1) or original(*a, **k))
    strokes = [BOTTOM_STROKE, TOP_STROKE, [[0, 50], [50, 60]]]
    timeline = build_timeline(strokes, gradcam)
    assert len(calls) == 1
    assert timeline.images.shape == (3, 64, 64, 1) and timeline.heatmaps.shape == (3, 64, 64)
    summary = timeline_to_dict(timeline, ["top", "other"], top_k=2)
    assert [step["strokes"] for step in summary["steps"]] == [1, 2, 3]
    assert summary["final_class"] == "top"
    assert len(summary["steps"][0]["top"]) == 2


def test_settled_at_is_the_last_change() -> None:
    from src.explain.timeline import Timeline

    def timeline(predicted: list[int]) -> Timeline:
        count = len(predicted)
        return Timeline(
            np.zeros((count, 4, 4, 1)),
            np.zeros((count, 4, 4)),
            np.array(predicted),
            np.zeros((count, 3)),
        )

    assert timeline([2, 1, 1]).settled_at == 1
    assert timeline([1, 0, 1, 1]).settled_at == 2
    assert timeline([0, 0]).settled_at == 0
