"""Project-wide exceptions: every error a user can cause is a SketchError with a fix in its message."""

from __future__ import annotations


class SketchError(Exception):
    """Base class for errors caused by user input (files, class names, layers, images)."""


class InvalidImageError(SketchError):
    """An image or stroke drawing could not be decoded or is unusable."""


class UnknownClassError(SketchError):
    """A class name or index is not in the label mapping."""


class LayerNotFoundError(SketchError):
    """A layer name does not exist in the model, or no layer can host a class activation map."""


class ModelLoadError(SketchError):
    """A model file is missing, not a Keras model, unsafe, or has the wrong input shape."""


class UnsupportedModelError(ModelLoadError):
    """A model loads but is not an image classifier SketchCAM can explain (inputs, outputs,
    no spatial layer, or output kind unknown)."""


class DataFormatError(SketchError):
    """A Quick, Draw! data file is malformed (the message names the file and line)."""


class LabelMappingError(SketchError):
    """A label mapping file is missing or malformed."""


class UsageError(SketchError):
    """A request the command cannot serve as asked: values the setup cannot meet, an output
    folder held by another run or made with other settings (exit 2, like a bad argument)."""
