"""The web batcher on its own: grouping, per-row results, failures, cancellation, shutdown.

The compute function is a stand-in whose answer per image is known by hand (the sum of its
pixels plus its class index, when one is given), so every result can be checked against the job that asked for it.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

import numpy as np
import pytest

from src.web.batcher import Batcher, BatcherClosedError


class RecordingCompute:
    """compute(key, images, targets): one call recorded per group; can be held or fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[Hashable, int]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.fail_key: Hashable | None = None

    def __call__(
        self, key: Hashable, images: np.ndarray, class_indices: list[object]
    ) -> list[float]:
        self.started.set()
        self.release.wait(10)
        self.calls.append((key, len(images)))
        if key == self.fail_key:
            raise RuntimeError("model exploded")
        # The class index counts when given (the default -1 means "the predicted class").
        return [
            float(image.sum()) + (int(index) if index is not None else 0)
            for image, index in zip(images, class_indices)
        ]


def image(value: float) -> np.ndarray:
    return np.full((2, 2, 1), value, np.float32)


def hold_first_batch(compute: RecordingCompute, batcher: Batcher) -> object:
    """Submit one job and keep the worker busy computing it until ``compute.release`` is set."""
    compute.release.clear()
    first = batcher.submit("warm", image(0.0))
    assert compute.started.wait(10)
    return first


def test_queued_jobs_are_batched_by_key_with_their_own_results() -> None:
    compute = RecordingCompute()
    batcher = Batcher(compute, max_batch_size=8, max_wait_s=0.0)
    try:
        first = hold_first_batch(compute, batcher)
        futures = [batcher.submit("a", image(value), target=1) for value in (1, 2, 3)]
        futures += [batcher.submit("b", image(10.0), target=5)]
        compute.release.set()
        assert first.result(10) == 0.0  # type: ignore[attr-defined]
        # 4 pixels of value v plus the class index
        assert [future.result(10) for future in futures] == [5.0, 9.0, 13.0, 45.0]
        assert compute.calls == [("warm", 1), ("a", 3), ("b", 1)]
    finally:
        batcher.close()


def test_a_failing_group_fails_only_its_jobs_and_the_worker_lives_on() -> None:
    compute = RecordingCompute()
    compute.fail_key = "bad"
    batcher = Batcher(compute, max_batch_size=8, max_wait_s=0.0)
    try:
        hold_first_batch(compute, batcher)
        bad = [batcher.submit("bad", image(1.0)) for _ in range(2)]
        good = batcher.submit("good", image(1.0))
        compute.release.set()
        for future in bad:
            with pytest.raises(RuntimeError, match="exploded"):
                future.result(10)
        assert good.result(10) == 4.0
        assert batcher.submit("good", image(2.0)).result(10) == 8.0
    finally:
        batcher.close()


def test_a_cancelled_job_is_skipped_and_the_worker_lives_on() -> None:
    """An ``async`` route that times out (or whose client goes away) cancels its future."""
    compute = RecordingCompute()
    batcher = Batcher(compute, max_batch_size=8, max_wait_s=0.0)
    try:
        hold_first_batch(compute, batcher)
        cancelled = batcher.submit("a", image(1.0))
        kept = batcher.submit("a", image(2.0))
        assert cancelled.cancel()
        compute.release.set()
        assert kept.result(10) == 8.0
        assert cancelled.cancelled()
        # The worker survived: a later job is still answered, and the cancelled one never ran.
        assert batcher.submit("a", image(3.0)).result(10) == 12.0
        assert sum(size for key, size in compute.calls if key == "a") == 2
    finally:
        batcher.close()


def test_close_refuses_new_jobs_and_fails_nothing_silently() -> None:
    compute = RecordingCompute()
    batcher = Batcher(compute, max_batch_size=1, max_wait_s=0.0)
    first = hold_first_batch(compute, batcher)
    queued = batcher.submit("a", image(1.0))
    closer = threading.Thread(target=batcher.close)
    closer.start()
    compute.release.set()
    closer.join(10)
    assert first.result(10) == 0.0  # type: ignore[attr-defined]
    # A job queued before close is still computed: the worker drains the queue in order and
    # reaches close's stop marker only after it.
    assert queued.result(10) == 4.0
    assert not closer.is_alive()
    with pytest.raises(BatcherClosedError):
        batcher.submit("a", image(1.0))


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        Batcher(RecordingCompute(), max_batch_size=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        Batcher(RecordingCompute(), max_wait_s=-1.0)
