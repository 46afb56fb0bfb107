"""Keep TensorFlow's C++ start-up notices out of the tools' output unless ``--verbose`` is given.

TensorFlow writes its start-up notices (absl's "All log messages before absl::InitializeLog()
is called..." and the oneDNN notice, once per native library) straight to file descriptor 2
while ``import tensorflow`` runs. ``TF_CPP_MIN_LOG_LEVEL`` silences most of its C++ logging,
but not these lines: absl prints them before TensorFlow reads that variable. So every entry
point calls ``configure_tensorflow_logging`` before anything imports TensorFlow; it sets the
variable and installs an import hook that runs TensorFlow's own import with descriptor 2
captured, then writes back every captured line that is not one of those INFO-level notices
(warnings and errors still reach the user). TensorFlow itself is not imported here: commands
that never need it stay fast.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

VERBOSE_FLAG = "--verbose"
# absl's notice that logging is not initialised yet, and C++ INFO lines ("I0000 00:00:...").
_START_UP_NOTICE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} [\d:.]+ +\d+ \S+:\d+\])"
)


def is_start_up_notice(line: str) -> bool:
    """True for the absl/TensorFlow INFO start-up lines that a quiet run leaves out."""
    return bool(_START_UP_NOTICE.match(line))


def wants_verbose(argv: Sequence[str] | None) -> bool:
    """Whether ``--verbose`` is on the command line (``argv`` None: ``sys.argv[1:]``).

    Read before parsing because parsing some options (``--method``) already imports TensorFlow.
    """
    return VERBOSE_FLAG in (sys.argv[1:] if argv is None else argv)


def configure_tensorflow_logging(verbose: bool = False) -> None:
    """Set TensorFlow's logging up before it is imported.

    Args:
        verbose: True leaves TensorFlow's own logging as it is (everything shows); False sets
            ``TF_CPP_MIN_LOG_LEVEL=2`` (unless the user set it) and filters the start-up
            notices out of TensorFlow's import. Without effect once TensorFlow is imported.
    """
    if verbose or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


@contextlib.contextmanager
def start_up_notices_filtered(
    is_notice: Callable[[str], bool] = is_start_up_notice,
) -> Iterator[None]:
    """Capture descriptor 2 while the body runs; then write back every line but the notices.

    Args:
        is_notice: which captured lines to leave out (default: TensorFlow's start-up notices).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not is_notice(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, but loads it inside ``start_up_notices_filtered``."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        """The ordinary spec of the top-level ``tensorflow`` package, with a quiet loader."""
        if name != "tensorflow":
            return None
        # One import only: later imports of tensorflow find it in sys.modules anyway.
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """Delegates to TensorFlow's loader; runs the package's code with the notices filtered."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> ModuleType | None:
        """The wrapped loader's module (None: the default)."""
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        """Import TensorFlow, filtering what its native libraries print while they load."""
        with start_up_notices_filtered():
            self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        # Resource readers and the like come from TensorFlow's own loader.
        return getattr(self._loader, name)
