"""Maps made at the model's size land on the user's image where the model saw each pixel."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def test_map_goes_back_where_the_forward_fit_took_each_pixel() -> None:
    """Each image pixel, sent forward by ``FitGeometry.to_model`` (the fit's own mapping), must
    find the value of the model pixel it lands in; the map is made of constant 8x8 blocks and
    only pixels well inside a block are compared, where bilinear resampling is exact."""
    from src.data.preprocess import fit_geometry
    from src.visualization.image_overlay import heatmap_on_image

    image = Image.new("L", (200, 100), 255)
    ImageDraw.Draw(image).rectangle([(120, 30), (159, 69)], outline=0, width=3)
    geometry = fit_geometry(image)
    blocks = np.arange(16, dtype=np.float32).reshape(4, 4) / 15.0
    heatmap = np.kron(blocks, np.ones((8, 8), np.float32))  # 32x32 model frame
    on_image = heatmap_on_image(heatmap, geometry, (100, 200))
    rows, cols = np.mgrid[0:100, 0:200]
    model_rows, model_cols = geometry.to_model(rows + 0.5, cols + 0.5, 32)
    inside = (model_rows >= 0) & (model_rows < 32) & (model_cols >= 0) & (model_cols < 32)
    away = inside & (np.abs(model_rows / 8 - np.round(model_rows / 8)) > 0.1)
    away &= np.abs(model_cols / 8 - np.round(model_cols / 8)) > 0.1
    expected = heatmap[model_rows[away].astype(int), model_cols[away].astype(int)]
    assert away.sum() > 1000
    np.testing.assert_allclose(on_image[away], expected, atol=1e-5)
    assert np.all(on_image[~inside] == 0.0)


def test_blank_image_gets_an_empty_map() -> None:
    from src.visualization.image_overlay import heatmap_on_image

    assert not heatmap_on_image(np.ones((28, 28), np.float32), None, (5, 7)).any()
