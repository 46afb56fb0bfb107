"""Put a trained model, its label mapping and its card in place together, or not at all.

Each file is first written in full as a hidden temporary beside its destination (so a full
disk, a read-only folder or an unwritable labels path fails before anything is replaced),
then all of them are renamed into place with Ctrl-C held back, so a folder never pairs a new
model with old labels or an old card.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from src.utils.output_errors import naming_target

logger = logging.getLogger(__name__)

# Destination -> a function that writes the file's content to the path it is given.
Writers = dict[Path, Callable[[Path], None]]


def copy_from(source: Path) -> Callable[[Path], None]:
    """A writer that copies ``source`` (e.g. the best checkpoint) byte for byte."""
    return lambda temporary: shutil.copyfile(source, temporary)


def _temporary_for(target: Path) -> Path:
    """A hidden name beside ``target`` that keeps its suffix (Keras checks ``.h5``)."""
    return target.with_name(f".{target.stem}.{os.getpid()}.partial{target.suffix}")


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold SIGINT back in this block (main thread only); it arrives right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def publish_together(writers: Writers) -> None:
    """Write every file to a temporary beside its destination, then rename all into place.

    Args:
        writers: destination path -> writer of its content.

    Raises:
        OSError: if a destination folder cannot be created or written (names the destination);
            then no destination has changed and no temporary is left behind.
    """
    staged: dict[Path, Path] = {}
    try:
        for target, write in writers.items():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                staged[target] = _temporary_for(target)
                write(staged[target])
            except OSError as error:
                raise naming_target(error, target) from error
        with _ctrl_c_held():
            for target, temporary in staged.items():
                os.replace(temporary, target)
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
    logger.debug("wrote %s", ", ".join(str(target) for target in writers))


def json_writer(data: object) -> Callable[[Path], None]:
    """A writer of ``data`` as indented UTF-8 JSON."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return lambda path: path.write_text(text, encoding="utf-8")
