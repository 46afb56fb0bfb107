"""Request and response bodies: the JSON field names of docs/usage_guide.md, validated first."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from src.data.input_spec import InputSpec
from src.visualization.cam_methods import DEFAULT_METHOD, METHODS

# Quick, Draw! strokes: [[xs, ys], ...] or [[xs, ys, ts], ...].
Strokes = list[list[list[float]]]

EMPTY_DESCRIPTION = (
    "True when the sketch holds no ink after preprocessing (a blank canvas, an all-white "
    "image): nothing drawn, so no class, no score and no map; `recognised` is then false."
)
IMAGE_DESCRIPTION = (
    "Base64 PNG/JPEG (any image Pillow reads), with or without a `data:image/png;base64,` prefix."
)
STROKES_DESCRIPTION = (
    "Quick, Draw! strokes `[[[x...], [y...]], ...]` in any coordinate range, rendered by the "
    "project's rasteriser. Takes precedence over `image` when both are sent."
)


class SketchInput(BaseModel):
    """A sketch as an encoded image or as strokes (at least one)."""

    image: str | None = Field(default=None, description=IMAGE_DESCRIPTION)
    strokes: Strokes | None = Field(default=None, description=STROKES_DESCRIPTION)

    @model_validator(mode="after")
    def _needs_a_sketch(self) -> SketchInput:
        if self.image is None and self.strokes is None:
            raise ValueError("send the sketch as 'image' (base64 PNG/JPEG) or 'strokes'")
        return self


class MethodChoice(BaseModel):
    """The Grad-CAM variant and target layer (defaults: the server's)."""

    method: str | None = Field(
        default=None,
        description=f"One of {', '.join(METHODS)}; default {DEFAULT_METHOD}.",
        # The registry's names as the schema's enum (matched case-insensitively below).
        json_schema_extra={"enum": [*METHODS, None]},
    )
    layer: str | None = Field(
        default=None, description="Target layer name; default the model's last spatial layer."
    )

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str | None) -> str | None:
        if method is not None and method.lower() not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        return None if method is None else method.lower()


class CamOptions(SketchInput, MethodChoice):
    """A sketch plus the Grad-CAM variant and target layer to use."""


class PredictRequest(SketchInput):
    """``POST /predict``."""

    top_k: int = Field(
        default=5, ge=1, le=1000, strict=True, description="How many ranked classes to return."
    )


class GradcamRequest(CamOptions):
    """``POST /predict_with_gradcam``: explain the predicted class."""

    top_k: int = Field(
        default=5, ge=1, le=1000, strict=True, description="How many ranked classes to return."
    )


class AnalyzeRequest(CamOptions):
    """``POST /analyze_class``: explain one named or numbered class."""

    class_index: int | None = Field(
        default=None, ge=0, strict=True, description="Class to explain, by index."
    )
    class_name: str | None = Field(default=None, description="Class to explain, by name.")

    @model_validator(mode="after")
    def _needs_one_class(self) -> AnalyzeRequest:
        if (self.class_index is None) == (self.class_name is None):
            raise ValueError("send exactly one of 'class_index' or 'class_name'")
        return self


class TopPrediction(BaseModel):
    """One ranked class; serialised with the key ``class`` that docs/usage_guide.md reads."""

    model_config = ConfigDict(populate_by_name=True)

    class_name: str = Field(alias="class")
    probability: float
    class_index: int


class PredictResponse(BaseModel):
    """The top class and the ranking (None and [] when nothing is drawn)."""

    success: Literal[True] = True
    empty: bool = Field(default=False, description=EMPTY_DESCRIPTION)
    prediction: str | None = None
    class_index: int | None = None
    confidence: float | None = None
    top_predictions: list[TopPrediction] = Field(default_factory=list)
    recognised: bool = Field(
        description="False means not sure: the drawing may be none of the known classes."
    )
    open_set_score: float | None = Field(
        default=None, description="The open-set score; recognised when >= threshold."
    )


class CamImages(BaseModel):
    """Grad-CAM images as ``data:image/png;base64,`` URLs (None when nothing is drawn)."""

    gradcam_heatmap: str | None = Field(default=None, description="The heatmap alone (jet).")
    gradcam_overlay: str | None = Field(
        default=None, description="The heatmap blended over the preprocessed sketch."
    )
    input_image: str | None = Field(
        default=None, description="What the model saw: the preprocessed 64x64 sketch."
    )
    method: str | None = None
    layer: str | None = None


class GradcamResponse(PredictResponse, CamImages):
    """``POST /predict_with_gradcam``: what docs/usage_guide.md's fetch example reads, and more."""


class ClassScore(BaseModel):
    """The class a map explains, its probability, and the model's own top class."""

    success: Literal[True] = True
    empty: bool = Field(default=False, description=EMPTY_DESCRIPTION)
    class_name: str | None = None
    class_index: int | None = None
    confidence: float | None = Field(
        default=None, description="The model's probability for this class."
    )
    predicted_class: str | None = None
    predicted_confidence: float | None = None


class AnalyzeResponse(CamImages, ClassScore):
    """``POST /analyze_class``."""

    recognised: bool = Field(description="Whether the predicted class is trusted (open set).")
    open_set_score: float | None = None


class ClassesResponse(BaseModel):
    """``GET /classes``: names in output order (``classes[class_index]``)."""

    success: Literal[True] = True
    classes: list[str]
    num_classes: int


class InputConvention(BaseModel):
    """The model's input: its size and the ink and value range it is fed."""

    height: int
    width: int
    channels: int
    ink: Literal["dark", "light"]
    value_range: Literal["0-1", "0-255", "-1-1"]
    source: str = Field(
        description='Where ink and value range came from: "option", "card" or "default" '
        '(two joined by " and " when they differ).'
    )


def input_convention(spec: InputSpec) -> InputConvention:
    """``/health``'s ``input`` block for the service's ``InputSpec``."""
    return InputConvention(
        height=spec.height,
        width=spec.width,
        channels=spec.channels,
        ink=spec.ink,  # type: ignore[arg-type]
        value_range=spec.value_range,  # type: ignore[arg-type]
        source=" and ".join(sorted({spec.ink_source, spec.value_range_source})),
    )


class HealthResponse(BaseModel):
    """``GET /health``: the loaded model and what the page can ask for."""

    success: Literal[True] = True
    status: Literal["ok"] = "ok"
    model: str
    num_classes: int
    methods: list[str]
    default_method: str
    layers: list[str]
    default_layer: str
    batch_max_size: int
    open_set: dict[str, object] = Field(
        description="The not-sure rule: score, temperature, threshold, from_card."
    )
    input: InputConvention


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body."""

    success: Literal[False] = False
    error: str
