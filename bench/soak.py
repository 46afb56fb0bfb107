"""Soak test: thousands of mixed requests from concurrent clients against a real server on loopback.

Usage (from the repository root)::

    python bench/soak.py                      # 10,000 requests, 16 clients
    python bench/soak.py --requests 500       # a short run
    python bench/soak.py --no_hostile         # the good mix alone, one phase

Starts ``python -m src.web`` (shipped models/best_model.h5 and data/label_mapping.json) on a free
127.0.0.1 port, sends a fixed, shuffled mix of requests (Grad-CAM with PNG and with strokes,
analyze_class, predict, classes, health, and bad requests that must get their 4xx) twice: once
alone, then again while two more clients send hostile requests (worst-case bodies inside every
bound, bodies beyond them, JSON extremes, images in unusual modes and shapes) and slow clients
open connections that never finish their headers. It reports:

- errors: responses whose status is not the one expected for that request (target 0), hostile
  requests included;
- p50/p95/p99 latency over all requests, and per kind, for each phase; the good requests' p50 and
  p99 with the hostile mix as a ratio to the same figures without it;
- how many slow-header connections the server cut, and after how long;
- the server's resident memory (VmRSS from /proc/<pid>/status) after a warm-up and after the
  good phase (target: within 10%), and at the end.

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


def _image_base64(image: object, file_format: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=file_format)  # type: ignore[attr-defined]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def build_hostile_mix(count: int, seed: int = 0) -> list[Request]:
    """``count`` hostile requests, each with the status the README documents for it."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)

    def stroke_body(strokes: int, points: int, **extra: object) -> bytes:
        stroke = [list(range(points)), [100 + i % 9 for i in range(points)]]
        return _json({"strokes": [stroke] * strokes, **extra})

    sketch = Image.new("RGB", (200, 150), "white")
    ImageDraw.Draw(sketch).rectangle((40, 30, 160, 120), outline="black", width=5)
    long_line = Image.new("L", (4_200_000, 4), 255)  # just over the 16.7M-pixel limit
    ImageDraw.Draw(long_line).line((0, 2, 4_200_000, 2), fill=0)
    deep = b'{"strokes": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    huge = b'{"strokes": [[[10, 1' + b"0" * 400 + b"], [1, 2]]]}"
    kinds = [
        # Worst cases inside every bound: answered.
        Request("worst_predict", "POST", "/predict_with_gradcam", stroke_body(100, 500), 200),
        Request("worst_timeline", "POST", "/timeline", stroke_body(100, 20), 200),
        Request("worst_strokes", "POST", "/explain_strokes", stroke_body(100, 200), 200),
        Request("worst_compare", "POST", "/compare", stroke_body(100, 500), 200),
        # Beyond them: refused before any work.
        Request("over_timeline", "POST", "/timeline", stroke_body(128, 390), 413),
        Request("over_strokes", "POST", "/explain_strokes", stroke_body(101, 200), 413),
        Request("over_points", "POST", "/predict", stroke_body(101, 500), 413),
        Request("deep_json", "POST", "/predict", deep, 400),
        Request("huge_number", "POST", "/timeline", huge, 422),
        Request("nan", "POST", "/predict", b'{"strokes": [[[1, NaN], [1, 2]]]}', 400),
        # Unusual images: read like any other.
        Request("cmyk_tiff", "POST", "/predict",
                _json({"image": _image_base64(sketch.convert("CMYK"), "TIFF")}), 200),
        Request("lab_tiff", "POST", "/predict",
                _json({"image": _image_base64(sketch.convert("LAB"), "TIFF")}), 200),
        Request("long_png", "POST", "/predict",
                _json({"image": _image_base64(long_line, "PNG")}), 413),
    ]  # fmt: skip
    mix = [kinds[index % len(kinds)] for index in range(count)]
    rng.shuffle(mix)
    return mix


@dataclass
class SlowHeaders:
    """Connections that never finish their headers, and how long the server let each live."""

    cut_after: list[float] = field(default_factory=list)
    still_open: int = 0


def run_slow_header_clients(port: int, clients: int, stop: threading.Event) -> SlowHeaders:
    """Each client opens a connection, sends a header line every second, and times the cut."""
    result = SlowHeaders()
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            opened = time.monotonic()
            cut = False
            try:
                with socket.create_connection((HOST, port), timeout=1.0) as connection:
                    connection.sendall(b"POST /predict HTTP/1.1\r\nHost: soak\r\n")
                    while not stop.is_set():
                        try:
                            connection.recv(4096)  # the 408, or b"" when closed
                        except TimeoutError:
                            connection.sendall(b"X-Slow: 1\r\n")
                            continue
                        cut = True
                        break
            except OSError:
                cut = True  # reset while sending the next header line
            with lock:
                if cut:
                    result.cut_after.append(time.monotonic() - opened)
                else:
                    result.still_open += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(5)
    return result


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


def report(tally: Tally, sent: int, elapsed: float, good_line: bool = True) -> list[float]:
    """Print one phase's figures; returns the good requests' p50 and p99 in seconds."""
    every = [value for values in tally.latencies.values() for value in values]
    done = len(every)
    print(f"  requests: {done} of {sent} in {elapsed:.1f} s ({done / elapsed:.0f} req/s)")
    print(f"  errors (unexpected status or failure): {len(tally.errors)}")
    for problem in tally.errors[:10]:
        print(f"    {problem}")
    for kind, values in sorted(tally.latencies.items()):
        print(
            f"    {kind:16s} n={len(values):5d}  p50 {1000 * percentile(values, 0.5):6.1f}"
            f"  p95 {1000 * percentile(values, 0.95):6.1f}  p99 {1000 * percentile(values, 0.99):6.1f}"
        )
    good = [value for kind, values in tally.latencies.items() if kind != "bad" for value in values]
    figures = [percentile(good, 0.5), percentile(good, 0.99)]
    if good_line:
        print("  good requests: p50 {:.1f} ms  p99 {:.1f} ms".format(*(1000 * f for f in figures)))
    return figures


def run_phase(
    port: int, mix: list[Request], args: argparse.Namespace, hostile: list[Request] | None
) -> tuple[Tally, float, Tally | None, SlowHeaders | None]:
    """The good mix, alone or beside hostile clients and slow-header clients."""
    stop = threading.Event()
    background: list[threading.Thread] = []
    hostile_tally: Tally | None = None
    slow: list[SlowHeaders] = []
    if hostile is not None:

        def send_hostile() -> None:
            nonlocal hostile_tally
            hostile_tally = run_clients(port, hostile, 2, time.monotonic() + args.max_seconds)

        background.append(threading.Thread(target=send_hostile))
        background.append(
            threading.Thread(
                target=lambda: slow.append(run_slow_header_clients(port, args.slow_clients, stop))
            )
        )
    for thread in background:
        thread.start()
    started = time.monotonic()
    tally = run_clients(port, mix, args.clients, started + args.max_seconds)
    elapsed = time.monotonic() - started
    stop.set()
    for thread in background:
        thread.join()
    return tally, elapsed, hostile_tally, (slow[0] if slow else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=10_000, help="good requests per phase (default 10000)"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--max_seconds", "--max-seconds", dest="max_seconds", type=float, default=900.0,
                        help="stop sending after this long, per phase (default 900)")  # fmt: skip
    parser.add_argument("--no_hostile", "--no-hostile", dest="hostile", action="store_false",
                        help="only the good mix (one phase)")  # fmt: skip
    parser.add_argument("--slow_clients", "--slow-clients", dest="slow_clients", type=int,
                        default=8, help="slow-header connections held open at once (default 8)")  # fmt: skip
    parser.add_argument("--header_timeout", "--header-timeout", dest="header_timeout", type=float,
                        default=2.0, help="the server's SKETCH_HEADER_TIMEOUT_S here (default 2)")  # fmt: skip
    parser.add_argument("--model_path", type=Path, default=REPO_ROOT / "models" / "best_model.h5")
    parser.add_argument(
        "--label_mapping", type=Path, default=REPO_ROOT / "data" / "label_mapping.json"
    )
    args = parser.parse_args(argv)
    class_names = list(json.loads(args.label_mapping.read_text()).values())
    mix = build_mix(args.requests, class_names)
    warm_up = build_mix(WARM_UP_REQUESTS, class_names, seed=1)
    port = free_port()
    os.environ["SKETCH_HEADER_TIMEOUT_S"] = str(args.header_timeout)
    server = start_server(args.model_path, args.label_mapping, port)
    phases = []
    try:
        run_clients(port, warm_up, args.clients, time.monotonic() + 120)
        rss_start = rss_kib(server.pid)
        phases.append(("good mix alone", *run_phase(port, mix, args, None)))
        rss_good = rss_kib(server.pid)
        if args.hostile:
            hostile = build_hostile_mix(max(len(mix) // 10, 26))
            phases.append(("good mix beside the hostile mix", *run_phase(port, mix, args, hostile)))
        rss_end = rss_kib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"server: python -m src.web on {HOST}:{port}, {args.clients} clients")
    ok = True
    figures = []
    for name, tally, elapsed, hostile_tally, slow in phases:
        print(f"{name}:")
        figures.append(report(tally, len(mix), elapsed))
        done = sum(len(values) for values in tally.latencies.values())
        ok = ok and not tally.errors and done == len(mix)
        if hostile_tally is not None:
            print("  hostile clients:")
            sent = sum(map(len, hostile_tally.latencies.values()))
            report(hostile_tally, sent, elapsed, good_line=False)
            ok = ok and not hostile_tally.errors
        if slow is not None:
            cut = sorted(slow.cut_after)
            median = f"{cut[len(cut) // 2]:.1f} s" if cut else "-"
            print(f"  slow-header connections: {len(cut)} cut (median after {median}), "
                  f"{slow.still_open} still open at the end of the phase")  # fmt: skip
            ok = ok and bool(cut) and cut[len(cut) // 2] < 3 * args.header_timeout
    if len(figures) == 2:
        (p50, p99), (hostile_p50, hostile_p99) = figures
        print(f"good requests beside the hostile mix / alone: p50 x{hostile_p50 / p50:.2f}, "
              f"p99 x{hostile_p99 / p99:.2f}")  # fmt: skip
    # The leak check is the good phase: the hostile one decodes images of up to the pixel limit,
    # which legitimately grows the allocator's pools.
    growth = (rss_good - rss_start) / rss_start
    print(f"server RSS: {rss_start / 1024:.0f} MiB after warm-up, {rss_good / 1024:.0f} MiB after "
          f"the good phase ({growth:+.1%}), {rss_end / 1024:.0f} MiB at the end")  # fmt: skip
    return 0 if ok and abs(growth) <= 0.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
