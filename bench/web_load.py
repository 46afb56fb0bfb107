"""Load test of the web app on loopback: latency with one client, throughput with 16.

Usage (from the repository root): ``python -m bench.web_load [--model_path models/best_model.h5]``.
Starts ``python -m src.web --workers 2`` itself on a free 127.0.0.1 port (the shipped model if
present, else a freshly built ``build_cnn``), sends docs/usage_guide.md's ``{"image": <base64 PNG>}`` to
``/predict_with_gradcam`` and prints:

- p50/p95 latency with one client (target p50 <= 15 ms on a 2-core machine);
- requests/s with 16 concurrent clients, as a ratio to the engine's batch throughput measured in
  this run (target >= 0.7). The engine figure is ``GradCAM.explain`` on batches of the server's
  batch size; a second ratio is against the whole in-process pipeline per request (decode,
  preprocess, batched explain, three PNGs, in one thread and without HTTP), which is what one
  server process can at best approach.

The single client is one ``http.client`` connection. The 16 concurrent clients are keep-alive
connections on one asyncio loop (``bench.async_client``), which costs the server's cores about a
tenth of a millisecond per request; ``--client threads`` brings back one http.client thread per
client. Each of ``--rounds`` rounds opens fresh connections and the median is reported, because
the kernel spreads connections over the server's processes at random. Clients still share the
machine's cores with the server, so the figures are conservative.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.async_client import requests_per_second
from bench.server_process import start_server


def sketch_png_base64() -> str:
    """A 256x256 black-on-white house sketch as base64 PNG, like a canvas upload."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (256, 256), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 110, 196, 220), outline=0, width=6)
    draw.line((50, 115, 128, 40, 206, 115), fill=0, width=6)
    draw.rectangle((110, 160, 146, 220), outline=0, width=5)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def model_files(model_path: str | None, work_dir: Path) -> tuple[Path, Path]:
    """The model and label mapping to serve: given, shipped, or a fresh untrained build_cnn."""
    from src.config import DEFAULT_LABELS_PATH, DEFAULT_MODEL_PATH, ModelConfig

    if model_path:
        return Path(model_path), DEFAULT_LABELS_PATH
    if DEFAULT_MODEL_PATH.is_file() and DEFAULT_LABELS_PATH.is_file():
        return DEFAULT_MODEL_PATH, DEFAULT_LABELS_PATH
    from src.data.labels import LabelMap
    from src.models.cnn import build_cnn

    config = ModelConfig()
    model = build_cnn(config)
    model.save(work_dir / "model.h5")
    LabelMap(tuple(f"class_{index}" for index in range(config.num_classes))).save(
        work_dir / "label_mapping.json"
    )
    return work_dir / "model.h5", work_dir / "label_mapping.json"


def post_forever(port: int, body: bytes) -> Callable[[], float]:
    """A function that POSTs ``body`` on one keep-alive connection and returns its seconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}

    def post() -> float:
        start = time.perf_counter()
        connection.request("POST", "/predict_with_gradcam", body, headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"request failed with {response.status}: {payload[:200]!r}")
        return time.perf_counter() - start

    return post


def single_client(port: int, body: bytes, requests: int) -> list[float]:
    """Latencies of ``requests`` sequential requests after a warm-up."""
    post = post_forever(port, body)
    for _ in range(10):
        post()
    return [post() for _ in range(requests)]


def concurrent_clients(port: int, body: bytes, clients: int, requests: int) -> float:
    """Requests per second with ``clients`` http.client threads sharing ``requests`` requests.

    Kept for comparison (``--client threads``): the threads cost the server much of its CPU.
    """
    posts = [post_forever(port, body) for _ in range(clients)]
    for post in posts:
        post()
    per_client = max(1, requests // clients)
    barrier = threading.Barrier(clients + 1)

    def run(post: Callable[[], float]) -> None:
        barrier.wait()
        for _ in range(per_client):
            post()

    threads = [threading.Thread(target=run, args=(post,)) for post in posts]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return per_client * clients / (time.perf_counter() - start)


def engine_throughput(
    model: Path, labels: Path, image_base64: str, batch_size: int
) -> tuple[float, float]:
    """(explain-only, whole-pipeline) images per second in-process, best of several runs."""
    from src.web.deps import Engine
    from src.web.settings import WebSettings

    engine = Engine.load(
        WebSettings(model_path=model, label_mapping=labels, batch_max_size=batch_size)
    )
    cam = engine.cam(None, None)
    sketch = engine.model_input(image_base64, None)
    batch = np.repeat(sketch[np.newaxis], batch_size, axis=0)

    def explain_only() -> None:
        cam.explain(batch)

    def pipeline() -> None:
        sketches = np.stack([engine.model_input(image_base64, None) for _ in range(batch_size)])
        result = cam.explain(sketches)
        for row in range(batch_size):
            engine.render(sketches[row], result.heatmaps[row])
            json.dumps({"probabilities": result.probabilities[row].tolist()})

    rates = []
    for work in (explain_only, pipeline):
        work()
        best = min(_timed(work) for _ in range(15))
        rates.append(batch_size / best)
    engine.close()
    return rates[0], rates[1]


def _timed(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def concurrent_rate(args: argparse.Namespace, port: int, body: bytes) -> float:
    """One round of the concurrent phase with the chosen load generator, in requests/s."""
    if args.client == "threads":
        return concurrent_clients(port, body, args.clients, args.concurrent_requests)
    rate, _ = requests_per_second(
        port, "/predict_with_gradcam", body, args.clients, args.concurrent_requests
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    """Measure and print latency, throughput and the ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_path", "--model-path", dest="model_path")
    parser.add_argument("--requests", type=int, default=200, help="single-client requests")
    parser.add_argument(
        "--concurrent_requests",
        "--concurrent-requests",
        dest="concurrent_requests",
        type=int,
        default=960,
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--client",
        choices=["asyncio", "threads"],
        default="asyncio",
        help="concurrent load generator: one asyncio loop (light, like wrk) or one "
        "http.client thread per client (the original, GIL-bound)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="server processes (python -m src.web --workers; default: 2, or 1 on one core)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="concurrent rounds, each on fresh connections; the median is reported (the "
        "kernel spreads connections over the workers at random, so one round is noisy)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    image = sketch_png_base64()
    body = json.dumps({"image": image}).encode()
    load_before = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory() as work_dir:
        model, labels = model_files(args.model_path, Path(work_dir))
        server, port, batch_size = start_server(model, labels, args.workers)
        try:
            latencies = single_client(port, body, args.requests)
            rates = [concurrent_rate(args, port, body) for _ in range(args.rounds)]
        finally:
            server.terminate()
            server.wait(30)
        # The baseline runs at the server's own batch limit: that is the most it can gather.
        explain_rate, pipeline_rate = engine_throughput(model, labels, image, batch_size)
    throughput = statistics.median(rates)
    p50, p95 = (1000 * value for value in statistics.quantiles(latencies, n=100)[49:95:45])
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"model: {model}  cores: {os.cpu_count()}  load average before: {load_before}  after: {load}"
    )
    print(
        f"one client:  p50 {p50:.1f} ms  p95 {p95:.1f} ms  over {len(latencies)} requests  (target p50 <= 15 ms)"
    )
    print(
        f"{args.clients} clients ({args.client}, server workers {args.workers}): "
        f"{throughput:.0f} requests/s, median of rounds "
        f"{', '.join(f'{rate:.0f}' for rate in rates)} over {args.concurrent_requests} requests each"
    )
    print(
        f"engine, batch {batch_size}: explain {explain_rate:.0f} images/s, whole pipeline {pipeline_rate:.0f} images/s"
    )
    print(f"ratio to engine explain:  {throughput / explain_rate:.2f}  (target >= 0.7)")
    print(f"ratio to whole pipeline: {throughput / pipeline_rate:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
