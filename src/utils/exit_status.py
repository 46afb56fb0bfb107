"""Exit codes of the command-line tools and the one error boundary that maps errors to them.

| code | name            | meaning                                                          |
|------|-----------------|------------------------------------------------------------------|
| 0    | SUCCESS         | everything worked                                                |
| 1    | ERROR           | another SketchError (message names the fix)                      |
| 2    | USAGE           | bad command-line arguments (argparse), a request the setup       |
|      |                 | cannot meet, or an output folder another run holds               |
| 3    | INVALID_IMAGE   | image missing, not an image, truncated, or no sketches found     |
| 4    | MODEL_ERROR     | model missing, not a Keras model, unsafe, or not explainable     |
| 5    | LABELS_ERROR    | label mapping missing, malformed, or not matching the model      |
| 6    | UNKNOWN_CLASS   | class name not in the label mapping (closest names are given)    |
| 7    | LAYER_NOT_FOUND | --layer not in the model (candidate layers are listed)           |
| 8    | DATA_FORMAT     | a Quick, Draw! file is malformed                                 |
| 9    | PARTIAL_FAILURE | a batch finished, but some inputs could not be read              |
| 10   | OUTPUT_ERROR    | a file could not be read or written (permissions, disk full)     |
| 130  | INTERRUPTED     | stopped with Ctrl-C                                              |
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import IntEnum

from src.errors import (
    DataFormatError,
    InvalidImageError,
    LabelMappingError,
    LayerNotFoundError,
    ModelLoadError,
    SketchError,
    UnknownClassError,
    UsageError,
)


class ExitStatus(IntEnum):
    """Process exit codes; see the module docstring for the table."""

    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    INVALID_IMAGE = 3
    MODEL_ERROR = 4
    LABELS_ERROR = 5
    UNKNOWN_CLASS = 6
    LAYER_NOT_FOUND = 7
    DATA_FORMAT = 8
    PARTIAL_FAILURE = 9
    OUTPUT_ERROR = 10
    INTERRUPTED = 130


# Most specific first: the first matching class decides the exit code.
_STATUS_BY_ERROR: tuple[tuple[type[SketchError], ExitStatus], ...] = (
    (InvalidImageError, ExitStatus.INVALID_IMAGE),
    (ModelLoadError, ExitStatus.MODEL_ERROR),
    (LabelMappingError, ExitStatus.LABELS_ERROR),
    (UnknownClassError, ExitStatus.UNKNOWN_CLASS),
    (LayerNotFoundError, ExitStatus.LAYER_NOT_FOUND),
    (DataFormatError, ExitStatus.DATA_FORMAT),
    (UsageError, ExitStatus.USAGE),
)

EXIT_CODES_HELP = "exit codes: " + ", ".join(
    f"{status.value} {status.name.lower()}" for status in ExitStatus
)


def exit_status_for(error: BaseException) -> ExitStatus:
    """The documented exit code for an error raised by a command."""
    if isinstance(error, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    if isinstance(error, OSError):
        return ExitStatus.OUTPUT_ERROR
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return ExitStatus.ERROR


def one_line(error: BaseException) -> str:
    """The error's message on one line (the messages already say how to fix the problem)."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, OSError) and not isinstance(error, SketchError):
        from src.utils.output_errors import fix_for

        where = f": {error.filename}" if error.filename else ""
        return f"file system error{where}: {error.strerror or error} ({fix_for(error)})"
    text = " ".join(str(error).split())
    return text or type(error).__name__


def run_guarded(program: str, action: Callable[[], int], show_traceback: bool) -> int:
    """Run a command; map SketchError, OSError and Ctrl-C to an exit code and one stderr line.

    Args:
        program: the name shown before the message ("gradcam_analysis: error: ...").
        action: the command, returning its own exit code.
        show_traceback: re-raise instead, so the full trace is shown (the --traceback flag).
    """
    try:
        return int(action())
    except (SketchError, OSError, KeyboardInterrupt) as error:
        if show_traceback:
            raise
        sys.stderr.write(f"{program}: error: {one_line(error)}\n")
        return int(exit_status_for(error))
