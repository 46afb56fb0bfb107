"""Serve the app from several processes, each with its own model, batcher and listening socket.

One process cannot keep two cores busy: decoding, preprocessing, PNG encoding and HTTP all hold
its GIL. ``uvicorn.run(..., workers=N)`` would add processes, but it hands them one shared
socket, and with keep-alive clients whichever worker wakes first accepts a whole burst of
connections (in the web benchmark all 16 went to one of two workers). Here every worker binds
its own ``SO_REUSEPORT`` socket, so the kernel spreads new connections across the workers, as
nginx and gunicorn ``--reuse-port`` do. Linux (and the BSDs) only.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from types import FrameType

logger = logging.getLogger(__name__)

APP_FACTORY = "src.web.app:create_app"  # each worker builds the app from WebSettings()
# After the grace period a worker has this long to exit before it is killed.
KILL_AFTER_GRACE_S = 5.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, ready for uvicorn to listen on.

    ``proto`` is set to IPPROTO_TCP on purpose: asyncio turns on TCP_NODELAY only for accepted
    sockets that report it, and without TCP_NODELAY each keep-alive response waits ~40 ms for
    the client's delayed ACK (the bug uvicorn's own ``bind_socket`` has, uvicorn issue #3149).

    Raises:
        OSError: the address is taken by a process without SO_REUSEPORT, or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    return listener


def serve_in_processes(
    host: str, port: int, workers: int, log_level: str, grace_s: float = 20.0
) -> int:
    """Run ``create_app()`` in ``workers`` spawned processes until a signal or a worker exits.

    Settings reach the workers through ``SKETCH_*`` environment variables. If one worker exits
    (a crash, or a model that fails to load), the others are stopped too and its exit status
    is returned, so a process manager sees the failure instead of a server at reduced strength.
    On SIGTERM or SIGINT every worker gets SIGTERM and finishes its requests in flight within
    ``grace_s``; one still running ``KILL_AFTER_GRACE_S`` later is killed, and a second signal
    kills them at once. A worker also dies with this process if it is killed (Linux).

    Returns:
        0 after a clean shutdown, otherwise the first failed worker's exit status.
    """
    try:
        reuse_port_socket(host, port).close()  # a taken port is one line here, not N tracebacks
    except OSError as error:
        logger.error("cannot listen on %s:%d: %s", host, port, error)
        return 1
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // workers)
    processes = [
        context.Process(
            target=_serve_one,
            args=(host, port, log_level, threads, grace_s, os.getpid()),
            name=f"worker-{index}",
        )
        for index in range(workers)
    ]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:  # a second signal: the operator will not wait for the grace period
            for process in processes:
                if process.pid is not None:
                    process.kill()
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    for process in processes:
        process.start()
    logger.info("serving on http://%s:%d from %d processes", host, port, workers)
    while not stopping and all(process.is_alive() for process in processes):
        time.sleep(0.2)
    # Read before stopping the rest, whose SIGTERM exit statuses would hide the real failure.
    failed = [process.exitcode for process in processes if process.exitcode not in (0, None)]
    _stop_all(processes, grace_s + KILL_AFTER_GRACE_S)
    return 0 if stopping or not failed else int(failed[0])


def _stop_all(processes: list, within_s: float) -> None:
    """SIGTERM every worker, wait up to ``within_s`` for all, then kill those still running."""
    for process in processes:
        process.terminate()  # SIGTERM: uvicorn finishes the requests in flight, then exits
    deadline = time.monotonic() + within_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            logger.warning("worker %s did not stop within %.0f s; killed", process.pid, within_s)
            process.kill()
            process.join()


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this worker when the serving process dies, however it dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        raise SystemExit(1)


def _serve_one(
    host: str, port: int, log_level: str, tensorflow_threads: int, grace_s: float, parent_pid: int
) -> None:
    """One worker: TensorFlow sized to its share of the cores, its own socket, then uvicorn."""
    _die_with_parent(parent_pid)
    from src.utils.tensorflow_logging import configure_tensorflow_logging

    # A spawned worker imports TensorFlow afresh; at debug level its start-up lines show.
    configure_tensorflow_logging(verbose=log_level == "debug")
    import keras
    import uvicorn

    # By default every worker's TensorFlow starts one compute thread per core, so N workers on
    # N cores would run N*N compute threads against each other and their request threads
    # (bench/web_load.py measures the difference).
    if keras.backend.backend() == "tensorflow":  # JAX and PyTorch size their own pools
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(tensorflow_threads)
        tf.config.threading.set_inter_op_parallelism_threads(tensorflow_threads)

    from src.web.header_timeout import protocol_with_header_timeout
    from src.web.settings import WebSettings

    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol_with_header_timeout(WebSettings().header_timeout_s),
        # Requests still running this long after SIGTERM are cancelled, so a stalled client
        # (a body that never ends) cannot hold the worker, and the server, open forever.
        timeout_graceful_shutdown=grace_s,
    )
    uvicorn.Server(config).run(sockets=[reuse_port_socket(host, port)])
