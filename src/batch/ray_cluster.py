"""Reaching Ray for ``batch --ray``: the address, a bounded connect or a local start that ends
with the driver, quiet logging, and a check that the actor pool fits the cluster.

Nothing here imports ray at module level: the CLI checks an address while parsing.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from src.config import PROJECT_ROOT
from src.errors import SketchError, UsageError
from src.utils.tensorflow_logging import start_up_notices_filtered

# How long a join waits for a Ray head to answer, and the default wait for the pool's resources.
CONNECT_TIMEOUT_S = 10.0
DEFAULT_PLACEMENT_WAIT_S = 60.0
_HOST_PORT = re.compile(
    r"^(?:ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?):(\d{1,5})$"
)
# Ray's own loggers: their WARNING lines (authentication, progress bars, resource manager)
# are shown only with --verbose.
_RAY_LOGGERS = ("ray", "ray.data", "ray._private", "ray.util")


def parse_ray_address(text: str) -> str | None:
    """A ``--ray`` address: "" for a local Ray (None), "auto", or host:port (ray:// allowed).

    Raises:
        ValueError: anything else (argparse turns it into exit 2).
    """
    address = text.strip()
    if not address:
        return None
    if address == "auto":
        return address
    match = _HOST_PORT.match(address)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError(f"not a Ray address: {text!r} (use host:port, ray://host:port or auto)")
    return address


def check_resources(cpus_per_actor: int, gpus_per_actor: float, actors: int | None) -> None:
    """Refuse actor sizes no cluster can meet: CPUs and actors >= 1, GPUs finite and >= 0.

    Raises:
        UsageError: naming the value and the fix.
    """
    if cpus_per_actor < 1:
        raise UsageError(f"--ray_cpus_per_actor must be at least 1, got {cpus_per_actor}")
    if not math.isfinite(gpus_per_actor) or gpus_per_actor < 0:
        raise UsageError(f"--ray_gpus_per_actor must be a number >= 0, got {gpus_per_actor}")
    if actors is not None and actors < 1:
        raise UsageError(f"--ray_actors must be at least 1, got {actors}")


@contextmanager
def ray_session(ray: Any, address: str | None, verbose: bool) -> Iterator[None]:
    """Join the cluster at ``address`` or start a local Ray for the block; a Ray already
    initialised in this process is used as it is. A local Ray ends with the block, and with
    the driver if it is killed (``src.batch.ray_watchdog``).

    Raises:
        SketchError: the address does not answer within ``CONNECT_TIMEOUT_S``.
    """
    if ray.is_initialized():
        yield
        return
    level = logging.INFO if verbose else logging.ERROR
    for name in _RAY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if not verbose:
        # The driver's C++ core worker logs to stderr too: an ERROR-level note that Ray Data's
        # actors have constructor arguments in the object store, on every run. Ray reads this
        # level when ray.init starts the core worker, and announces it there in one INFO line,
        # which ``_init`` leaves out.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if address:
        _check_reachable(address)
        # Every node imports the installed project (pip install -e '.[ray]' on each machine).
        _init(ray, verbose, address=address, logging_level=level, log_to_driver=verbose)
        try:
            yield
        finally:
            ray.shutdown()
        return
    from src.batch.ray_watchdog import start_watchdog, stop_watchdog

    _init(
        ray,
        verbose,
        num_cpus=os.cpu_count() or 1,
        include_dashboard=False,
        logging_level=level,
        # The actors' own output (TensorFlow's start-up lines) stays in Ray's log files.
        log_to_driver=verbose,
        # Local workers import this checkout's code, whatever else is installed.
        runtime_env={"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}},
    )
    watchdog = start_watchdog()
    try:
        yield
    finally:
        ray.shutdown()
        stop_watchdog(watchdog)


def is_log_level_notice(line: str) -> bool:
    """Ray's announcement that it read ``RAY_BACKEND_LOG_LEVEL`` (printed by ``ray.init``)."""
    return "Set ray log level from environment variable RAY_BACKEND_LOG_LEVEL" in line


def _init(ray: Any, verbose: bool, **options: Any) -> None:
    """``ray.init(**options)``; unless ``verbose``, without Ray's log-level announcement (every
    other line it prints still reaches stderr)."""
    if verbose:
        ray.init(**options)
        return
    with start_up_notices_filtered(is_log_level_notice):
        ray.init(**options)


def check_pool_fits(
    ray: Any, actors: int, cpus_per_actor: int, gpus_per_actor: float, wait_s: float
) -> None:
    """Wait up to ``wait_s`` for the cluster to hold ``actors`` actors of the given size.

    Raises:
        UsageError: not placed in time; says what the cluster has.
    """
    from ray.util.placement_group import placement_group, remove_placement_group

    bundle: dict[str, float] = {"CPU": float(cpus_per_actor)}
    if gpus_per_actor > 0:
        bundle["GPU"] = gpus_per_actor
    group = placement_group([bundle] * actors, strategy="PACK")
    try:
        placed = group.wait(timeout_seconds=wait_s)
    finally:
        remove_placement_group(group)
    if not placed:
        has = ray.cluster_resources()
        raise UsageError(
            f"the Ray cluster cannot place {actors} actor(s) of {cpus_per_actor} CPU(s) and "
            f"{gpus_per_actor:g} GPU(s) within {wait_s:g} s: it has {has.get('CPU', 0):g} CPUs "
            f"and {has.get('GPU', 0):g} GPUs; lower --ray_actors, --ray_cpus_per_actor or "
            "--ray_gpus_per_actor, or add nodes"
        )


def _check_reachable(address: str) -> None:
    """A TCP connect to host:port within ``CONNECT_TIMEOUT_S`` ("auto" is left to Ray)."""
    match = _HOST_PORT.match(address)
    if match is None:
        return
    host, port = match.group(1).strip("[]"), int(match.group(2))
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SketchError(
            f"no Ray cluster answers at {address} ({reason}); start one with `ray start "
            "--head` or check the address"
        ) from None
