"""Data-parallel training over every local device with Keras 3's distribution API (JAX).

``keras.distribution.DataParallel`` replicates the model's variables on each device and shards
each global batch along its first axis, so N devices each compute the gradients of
``batch_size / N`` images and the update is the one a single device would make for the whole
batch. The learning rate therefore stays as it is for the same global batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

JAX_FIX = "run with KERAS_BACKEND=jax (pip install -e '.[jax]')"


def check_backend() -> None:
    """Refuse ``--distribute`` on a backend Keras cannot distribute here.

    Raises:
        ValueError: the Keras backend is not JAX (the message names the fix).
    """
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(f"--distribute needs the JAX backend, not {backend}: {JAX_FIX}")


def local_devices() -> list[str]:
    """Every device Keras can place a replica on (GPUs when present, else the CPU devices)."""
    import keras

    return list(keras.distribution.list_devices())


def check_batch_size(batch_size: int, device_count: int) -> None:
    """The global batch must split evenly across the devices.

    Raises:
        ValueError: it does not (the message gives the nearest sizes that do).
    """
    if batch_size % device_count:
        lower = max(device_count, batch_size - batch_size % device_count)
        raise ValueError(
            f"--batch_size {batch_size} does not split across {device_count} devices; use a "
            f"multiple of {device_count} such as {lower} or {lower + device_count}"
        )


@contextlib.contextmanager
def data_parallel(batch_size: int) -> Iterator[int]:
    """Within this block, models built and trained are replicated over all local devices.

    Yields:
        The number of devices (replicas).

    Raises:
        ValueError: not the JAX backend, or a batch size the devices cannot share.
    """
    import keras

    check_backend()
    devices = local_devices()
    check_batch_size(batch_size, len(devices))
    distribution: Any = keras.distribution.DataParallel(devices=devices)
    with distribution.scope():
        yield len(devices)
