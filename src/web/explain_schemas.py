"""Bodies of the sketch-explanation endpoints: /explain_strokes, /timeline and /compare."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictInt, model_validator

from src.web.schemas import (
    EMPTY_DESCRIPTION,
    STROKES_DESCRIPTION,
    ClassScore,
    MethodChoice,
    SketchInput,
    Strokes,
)

# Stroke attribution renders one mask per stroke and a timeline explains one image per stroke:
# drawings with more strokes are refused (a person's sketch has a few dozen at most).
MAX_EXPLAINED_STROKES = 128
# Strict: JSON true is not class 1, nor 1.0 class 1.
ClassChoice = StrictInt | str | None
CLASS_CHOICE_DESCRIPTION = "A class by index or by name; default one of the top two."


class StrokesRequest(MethodChoice):
    """A drawing as strokes (required here: these explanations are made of strokes)."""

    strokes: Strokes = Field(
        min_length=1, max_length=MAX_EXPLAINED_STROKES, description=STROKES_DESCRIPTION
    )


class ExplainStrokesRequest(StrokesRequest):
    """``POST /explain_strokes``: explain a class (default the predicted one) stroke by stroke."""

    class_index: int | None = Field(
        default=None, ge=0, strict=True, description="Class to explain, by index."
    )
    class_name: str | None = Field(default=None, description="Class to explain, by name.")

    @model_validator(mode="after")
    def _at_most_one_class(self) -> ExplainStrokesRequest:
        if self.class_index is not None and self.class_name is not None:
            raise ValueError("send at most one of 'class_index' or 'class_name'")
        return self


class StrokeImportance(BaseModel):
    """One stroke, in drawing order."""

    stroke_index: int
    rank: int = Field(description="1 for the stroke with the most heat.")
    mass: float = Field(description="Heat summed over the stroke's ink.")
    share: float = Field(description="Its fraction of all strokes' mass (sums to 1).")
    mean_heat: float = Field(description="Heat averaged over the stroke's ink.")


class ExplainStrokesResponse(ClassScore):
    """Per-stroke importance for one class."""

    strokes: list[StrokeImportance] = Field(default_factory=list)
    stroke_image: str | None = Field(
        default=None,
        description="PNG data URL: the strokes coloured by importance (jet: red most).",
    )
    gradcam_overlay: str | None = Field(
        default=None, description="The class's map over the model input."
    )
    method: str | None = None
    layer: str | None = None


class TimelineRequest(StrokesRequest):
    """``POST /timeline``: the prediction after each stroke."""

    top_k: int = Field(
        default=3, ge=1, le=20, strict=True, description="Ranked classes kept per step."
    )


class RankedClass(BaseModel):
    """A class and its probability."""

    class_name: str
    confidence: float


class TimelineStep(BaseModel):
    """The drawing made of its first ``strokes`` strokes."""

    strokes: int
    predicted: str
    confidence: float
    final_class_confidence: float = Field(
        description="The probability, at this step, of the class the whole drawing ends up as."
    )
    top: list[RankedClass]
    gradcam_overlay: str = Field(description="The predicted class's map over this prefix.")


class TimelineResponse(BaseModel):
    """One step per stroke, in drawing order."""

    success: Literal[True] = True
    empty: bool = Field(default=False, description=EMPTY_DESCRIPTION)
    final_class: str | None = None
    settled_after_strokes: int | None = Field(
        default=None,
        description="From this many strokes on, the prediction never changes again.",
    )
    steps: list[TimelineStep] = Field(default_factory=list)
    method: str | None = None
    layer: str | None = None


class CompareRequest(SketchInput, MethodChoice):
    """``POST /compare``: why class A and not class B (default the top two)."""

    class_a: ClassChoice = Field(default=None, description=CLASS_CHOICE_DESCRIPTION)
    class_b: ClassChoice = Field(default=None, description=CLASS_CHOICE_DESCRIPTION)


class ComparedClass(BaseModel):
    """One side of the comparison."""

    class_name: str
    class_index: int
    confidence: float


class CompareResponse(BaseModel):
    """Contrastive maps: evidence for A over B, and for B over A."""

    success: Literal[True] = True
    empty: bool = Field(default=False, description=EMPTY_DESCRIPTION)
    class_a: ComparedClass | None = None
    class_b: ComparedClass | None = None
    logit_margin: float | None = Field(
        default=None, description="logit(A) - logit(B): positive when A is ahead."
    )
    contrast_heatmap: str | None = Field(
        default=None, description="Where the sketch argues for A over B (jet)."
    )
    contrast_overlay: str | None = Field(
        default=None, description="The same, over the model input."
    )
    against_heatmap: str | None = Field(
        default=None, description="Where the sketch argues for B over A."
    )
    against_overlay: str | None = Field(default=None, description="The same, over the model input.")
    input_image: str | None = None
    method: str | None = None
    layer: str | None = None
