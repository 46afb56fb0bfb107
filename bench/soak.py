"""Soak test: thousands of mixed requests from concurrent clients against a real server on loopback.

Usage (from the repository root)::

    python bench/soak.py                      # 10,000 requests, 16 clients
    python bench/soak.py --requests 500       # a short run

Starts ``python -m src.web`` (shipped models/best_model.h5 and data/label_mapping.json) on a free
127.0.0.1 port, sends a fixed, shuffled mix of requests (Grad-CAM with PNG and with strokes,
analyze_class, predict, classes, health, and bad requests that must get their 4xx), and reports:

- errors: responses whose status is not the one expected for that request (target 0);
- p50/p95/p99 latency over all requests, and per kind;
- the server's resident memory (VmRSS from /proc/<pid>/status) after a warm-up and at the end
  (target: within 10%).

Exit code 0 when both targets are met, 1 otherwise. Only loopback traffic.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WARM_UP_REQUESTS = 200  # RSS "start" is read after these, once caches and pools exist


@dataclass(frozen=True)
class Request:
    """One request of the mix and the status it must get."""

    kind: str
    method: str
    path: str
    body: bytes | None
    expected: int
    content_type: str = "application/json"


@dataclass
class Tally:
    """Latencies per kind and the unexpected answers, shared by the client threads."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, problem: str | None) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)
            if problem:
                self.errors.append(problem)


def _png_base64(seed: int) -> str:
    """A 256x256 black-on-white sketch with a seed-dependent shape, as base64 PNG."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("L", (256, 256), 255)
    draw = ImageDraw.Draw(image)
    points = [(rng.randint(20, 236), rng.randint(20, 236)) for _ in range(rng.randint(3, 7))]
    draw.line(points, fill=0, width=6)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _strokes(seed: int) -> list[list[list[int]]]:
    rng = random.Random(seed)
    return [
        [[rng.randint(0, 255) for _ in range(6)], [rng.randint(0, 255) for _ in range(6)]]
        for _ in range(rng.randint(1, 4))
    ]


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


def build_mix(count: int, class_names: list[str], seed: int = 0) -> list[Request]:
    """``count`` requests in a fixed proportion, shuffled reproducibly."""
    rng = random.Random(seed)
    pngs = [_png_base64(index) for index in range(8)]
    truncated = base64.b64encode(base64.b64decode(pngs[0])[:100]).decode()

    def make(index: int) -> Request:
        roll = index % 20
        png, strokes = pngs[index % len(pngs)], _strokes(index)
        if roll < 5:
            return Request(
                "gradcam_png", "POST", "/predict_with_gradcam", _json({"image": png}), 200
            )
        if roll < 8:
            body = _json({"strokes": strokes})
            return Request("gradcam_strokes", "POST", "/predict_with_gradcam", body, 200)
        if roll < 11:
            body = _json({"image": png, "class_name": class_names[index % len(class_names)]})
            return Request("analyze_class", "POST", "/analyze_class", body, 200)
        if roll < 14:
            return Request("predict", "POST", "/predict", _json({"strokes": strokes}), 200)
        if roll < 16:
            return Request("classes", "GET", "/classes", None, 200)
        if roll < 18:
            return Request("health", "GET", "/health", None, 200)
        bad = [
            Request("bad", "POST", "/predict", b"{not json", 422),
            Request("bad", "POST", "/predict", _json({"image": "@@@"}), 400),
            Request("bad", "POST", "/predict_with_gradcam", _json({"image": truncated}), 400),
            Request(
                "bad",
                "POST",
                "/analyze_class",
                _json({"strokes": strokes, "class_name": "no_such_class"}),
                404,
            ),
            Request("bad", "POST", "/predict", _json({"strokes": []}), 400),
            Request("bad", "GET", "/no_such_page", None, 404),
        ]
        return bad[index % len(bad)]

    mix = [make(index) for index in range(count)]
    rng.shuffle(mix)
    return mix


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_server(model: Path, labels: Path, port: int) -> subprocess.Popen[bytes]:
    """``python -m src.web`` on loopback; returns once /health answers."""
    command = [
        sys.executable, "-m", "src.web", "--model_path", str(model), "--label_mapping", str(labels),
        "--host", HOST, "--port", str(port), "--log_level", "warning",
    ]  # fmt: skip
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=environment)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode} before answering")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("server did not answer /health within 120 s")


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run_clients(port: int, mix: list[Request], clients: int, deadline: float) -> Tally:
    """Each client thread keeps one connection and takes the next request until none are left."""
    tally = Tally()
    position = iter(range(len(mix)))
    take = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.monotonic() < deadline:
            with take:
                index = next(position, None)
            if index is None:
                break
            request = mix[index]
            headers = {"Content-Type": request.content_type} if request.body is not None else {}
            started = time.perf_counter()
            problem = None
            try:
                connection.request(request.method, request.path, request.body, headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != request.expected:
                    problem = f"{request.kind} {request.path}: {response.status} {payload[:120]!r}"
            except (OSError, http.client.HTTPException) as error:
                problem = f"{request.kind} {request.path}: {type(error).__name__}: {error}"
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=60)
            tally.record(request.kind, time.perf_counter() - started, problem)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def report(tally: Tally, sent: int, elapsed: float, rss_start: int, rss_end: int) -> bool:
    """Print the figures; True when both targets are met."""
    every = [value for values in tally.latencies.values() for value in values]
    done = len(every)
    print(f"requests: {done} of {sent} in {elapsed:.1f} s ({done / elapsed:.0f} req/s)")
    print(f"errors (unexpected status or failure): {len(tally.errors)}")
    for problem in tally.errors[:10]:
        print(f"  {problem}")
    print(
        "latency ms  all: p50 {:.1f}  p95 {:.1f}  p99 {:.1f}".format(
            *(1000 * percentile(every, q) for q in (0.5, 0.95, 0.99))
        )
    )
    for kind, values in sorted(tally.latencies.items()):
        print(
            f"  {kind:16s} n={len(values):5d}  p50 {1000 * percentile(values, 0.5):6.1f}"
            f"  p95 {1000 * percentile(values, 0.95):6.1f}  p99 {1000 * percentile(values, 0.99):6.1f}"
        )
    growth = (rss_end - rss_start) / rss_start
    print(
        f"server RSS: {rss_start / 1024:.0f} MiB after warm-up, {rss_end / 1024:.0f} MiB at end ({growth:+.1%})"
    )
    return not tally.errors and done == sent and abs(growth) <= 0.10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=10_000, help="requests to send (default 10000)"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--max_seconds", "--max-seconds", dest="max_seconds", type=float, default=900.0,
                        help="stop sending after this long (default 900)")  # fmt: skip
    parser.add_argument("--model_path", type=Path, default=REPO_ROOT / "models" / "best_model.h5")
    parser.add_argument(
        "--label_mapping", type=Path, default=REPO_ROOT / "data" / "label_mapping.json"
    )
    args = parser.parse_args(argv)
    class_names = list(json.loads(args.label_mapping.read_text()).values())
    mix = build_mix(args.requests, class_names)
    warm_up = build_mix(WARM_UP_REQUESTS, class_names, seed=1)
    port = free_port()
    server = start_server(args.model_path, args.label_mapping, port)
    try:
        run_clients(port, warm_up, args.clients, time.monotonic() + 120)
        rss_start = rss_kib(server.pid)
        started = time.monotonic()
        tally = run_clients(port, mix, args.clients, started + args.max_seconds)
        elapsed = time.monotonic() - started
        rss_end = rss_kib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"server: python -m src.web on {HOST}:{port}, {args.clients} clients")
    return 0 if report(tally, len(mix), elapsed, rss_start, rss_end) else 1


if __name__ == "__main__":
    raise SystemExit(main())
