"""Gather concurrent requests into one engine batch: a queue, a size and time limit, one worker.

Each request thread submits one preprocessed sketch and waits on its future. A single worker
thread takes the first waiting job, drains whatever else is queued, and, when requests are
arriving concurrently, waits up to ``max_wait_s`` for the batch to fill. Jobs are grouped by
their key (for example Grad-CAM method, layer and class target) and each group is computed in
one call, so throughput grows with load while a lone client never waits for company.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# compute(key, images (N, H, W, 1), targets (one per image)) -> one result per image.
ComputeFunction = Callable[[Hashable, np.ndarray, list[Any]], Sequence[Any]]


class BatcherClosedError(RuntimeError):
    """The batcher was shut down before the job ran."""


@dataclass
class _Job:
    """One request: its group key, preprocessed image, target, and the future to fulfil."""

    key: Hashable
    image: np.ndarray
    target: Any
    future: Future[Any] = field(default_factory=Future)


class Batcher:
    """A request queue served by one worker thread that computes jobs in batches.

    Args:
        compute: called with (key, stacked images, targets) for each group of jobs.
        max_batch_size: most jobs computed in one call.
        max_wait_s: longest the worker waits for a batch to fill once requests are concurrent.

    Raises:
        ValueError: for a batch size below 1 or a negative wait.
    """

    def __init__(
        self, compute: ComputeFunction, max_batch_size: int = 16, max_wait_s: float = 0.005
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, got {max_wait_s}")
        self.compute = compute
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.batch_sizes: list[int] = []  # recent batch sizes, for tests and the benchmark
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._previous_size = 1
        self._worker = threading.Thread(target=self._run, name="sketch-batcher", daemon=True)
        self._worker.start()

    def submit(self, key: Hashable, image: np.ndarray, target: Any = None) -> Future[Any]:
        """Queue one image with what to explain for it (a ``targets`` object; None for the
        predicted class); the future resolves to its result or raises the compute error."""
        if self._closed:
            raise BatcherClosedError("the server is shutting down; retry shortly")
        job = _Job(key, image, target)
        self._queue.put(job)
        return job.future

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after the jobs already queued; later submits raise."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._worker.join(timeout_s)

    def _run(self) -> None:
        """Worker loop: collect a batch, compute each key's group, repeat until closed."""
        while True:
            first = self._queue.get()
            if first is None:
                break
            jobs, closing = self._collect(first)
            self._previous_size = len(jobs)
            self.batch_sizes = [*self.batch_sizes[-999:], len(jobs)]
            for key, group in _group_by_key(jobs).items():
                self._compute_group(key, group)
            if closing:
                break
        self._fail_remaining()

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        """The first job plus those queued now, waiting for more only under concurrent load."""
        jobs = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(jobs) < self.max_batch_size:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                # A lone client (nothing queued, last batch single) must not pay the wait.
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (len(jobs) == 1 and self._previous_size == 1):
                    break
                try:
                    job = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _compute_group(self, key: Hashable, group: list[_Job]) -> None:
        """Run one compute call for jobs sharing a key and resolve their futures."""
        # A waiting request that gave up (an ``async`` route's timeout, a client gone) cancels
        # its future; it is skipped, and the others' futures are marked running so that a
        # late cancel can no longer make ``set_result`` raise in this thread.
        group = [job for job in group if job.future.set_running_or_notify_cancel()]
        if not group:
            return
        images = np.stack([job.image for job in group])
        targets = [job.target for job in group]
        try:
            results = self.compute(key, images, targets)
        except Exception as error:
            # The worker must outlive any failure; the error goes back to each waiting request.
            logger.exception("batch of %d failed", len(group))
            for job in group:
                job.future.set_exception(error)
            return
        for job, result in zip(group, results):
            job.future.set_result(result)

    def _fail_remaining(self) -> None:
        """Fail jobs still queued at shutdown so no request waits forever."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(BatcherClosedError("the server shut down"))


def _group_by_key(jobs: list[_Job]) -> dict[Hashable, list[_Job]]:
    """Jobs grouped by key, in arrival order."""
    groups: dict[Hashable, list[_Job]] = {}
    for job in jobs:
        groups.setdefault(job.key, []).append(job)
    return groups
