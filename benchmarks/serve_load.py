"""Load-test `catembed serve` against a naive one-request-at-a-time FastAPI endpoint.

Both servers run as subprocesses on loopback with the same model, backend (``--backend``,
default auto, as `catembed serve`) and thread count; the levels alternate between them (only one is under load at a time). A bounded async httpx load
generator sends a fixed number of POST /v1/embeddings requests (float JSON) per concurrency
level, each with 16 short category strings from the built-in vocabulary, and prints
requests/s, texts/s, p50/p99 latency, errors and the server's peak RSS (VmHWM).

Two workloads:
  repeated  texts drawn from the vocabulary (about 1,360 values), as in real category columns:
            catembed answers repeats from its cache.
  unique    every text made unique ("Sweaters #1234"): no cache hits, batching only.

Targets at concurrency 32 (repeated): zero errors, >= 3x the baseline's texts/s, lower p99.

    .venv/bin/python benchmarks/serve_load.py [--model DIR] [--requests 200] [--levels 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers: "Loading weights"

import httpx
import numpy as np

TEXTS_PER_REQUEST = 16
TARGET_RATIO = 3.0
STARTUP_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 60


def baseline_server(model_dir: str, port: int, backend: str) -> None:
    """The naive baseline: a plain FastAPI endpoint calling `model.encode`, one request at a
    time. It encodes on one dedicated thread, as catembed does, so that both see the same
    torch threading and the comparison measures batching and caching only."""
    import asyncio
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from catembed.backends import load_encoder
    from catembed.server import configure_threads

    warnings.filterwarnings("ignore")  # as the catembed CLI does
    configure_threads()
    model = load_encoder(model_dir, backend)
    # Warm up on the main thread, as catembed's create_app does: torch's first encode on the
    # main thread makes later encodes on other threads ~20x faster here (measured: ~1.3 s vs
    # ~55 ms for 16 texts); without it the baseline would be handicapped.
    model.encode(["warm up"], normalize_embeddings=True, convert_to_numpy=True)
    encoder_thread = ThreadPoolExecutor(max_workers=1)
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/embeddings")
    async def embeddings(body: dict[str, Any]) -> JSONResponse:
        def encode() -> Any:
            return model.encode(
                body["input"],
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

        vectors = await asyncio.get_running_loop().run_in_executor(encoder_thread, encode)
        data = [
            {"object": "embedding", "embedding": v.tolist(), "index": i}
            for i, v in enumerate(vectors)
        ]
        return JSONResponse({"object": "list", "data": data, "model": "baseline"})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@dataclass
class Level:
    server: str
    workload: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def texts_per_s(self) -> float:
        return (self.requests - self.errors) * TEXTS_PER_REQUEST / self.seconds

    def row(self) -> list[str]:
        p50, p99 = np.percentile(np.array(self.latencies) * 1000, [50, 99])
        return [
            self.server,
            self.workload,
            str(self.concurrency),
            str(self.requests),
            f"{self.requests / self.seconds:.1f}",
            f"{self.texts_per_s:.0f}",
            f"{p50:.1f}",
            f"{p99:.1f}",
            str(self.errors),
        ]

    @property
    def p99(self) -> float:
        return float(np.percentile(self.latencies, 99))


class ServerProcess:
    def __init__(self, command: list[str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)], stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited with {self.process.returncode}: {command}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"server did not start within {STARTUP_TIMEOUT_S} s: {command}")

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")  # pragma: no cover - not Linux

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_requests(count: int, workload: str, seed: int) -> list[list[str]]:
    from catembed.vocabulary import load_vocabulary

    values = [v for domain in load_vocabulary().values() for v in domain]
    rng = random.Random(seed)
    batches = [rng.sample(values, TEXTS_PER_REQUEST) for _ in range(count)]
    if workload == "unique":
        batches = [[f"{t} #{seed}-{i}-{j}" for j, t in enumerate(b)] for i, b in enumerate(batches)]
    return batches


async def run_level(
    url: str, batches: list[list[str]], concurrency: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue = list(reversed(batches))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as http:

        async def worker() -> None:
            nonlocal errors
            while queue:
                texts = queue.pop()
                began = time.perf_counter()
                try:
                    response = await http.post("/v1/embeddings", json={"input": texts})
                    ok = response.status_code == 200 and len(response.json()["data"]) == len(texts)
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - began)
                errors += not ok

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began, latencies, errors


def measure(
    servers: dict[str, list[str]], levels: list[int], count: int, workloads: list[str]
) -> tuple[list[Level], dict[str, float]]:
    """Run every level on every server, alternating servers level by level, so that a change
    in the machine's load during the run hits both alike; idle servers use no CPU."""
    started: dict[str, ServerProcess] = {}
    try:
        for name, command in servers.items():
            started[name] = ServerProcess(command)
            warm_up = make_requests(8, "unique", seed=999)
            asyncio.run(run_level(started[name].url, warm_up, 4))
        results = []
        for workload in workloads:
            for seed, concurrency in enumerate(levels):
                batches = make_requests(count, workload, seed)
                for name, server in started.items():
                    seconds, latencies, errors = asyncio.run(
                        run_level(server.url, batches, concurrency)
                    )
                    level = Level(name, workload, concurrency, count, seconds, latencies, errors)
                    print("  " + "  ".join(level.row()), flush=True)
                    results.append(level)
        return results, {name: server.peak_rss_mib() for name, server in started.items()}
    finally:
        for server in started.values():
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Model folder (default: the base model).")
    parser.add_argument("--requests", type=int, default=200, help="Requests per level.")
    parser.add_argument("--levels", default="1,8,32", help="Concurrency levels.")
    parser.add_argument("--workloads", default="repeated,unique")
    parser.add_argument("--backend", default="auto", help="Of both servers (auto: as serve's).")
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        from catembed.models import DEFAULT_BASE_MODEL, resolve_base_model

        args.model = resolve_base_model(DEFAULT_BASE_MODEL)
    if args.baseline_server:
        baseline_server(args.model, args.port, args.backend)
        return
    levels = [int(x) for x in args.levels.split(",")]
    workloads = args.workloads.split(",")
    from catembed.backends import resolve_backend

    print(
        f"model {args.model} ({resolve_backend(args.backend, args.model).value} backend, both "
        f"servers); {args.requests} requests per level, {TEXTS_PER_REQUEST} texts each;"
    )
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start\n")
    header = [
        "server",
        "workload",
        "conc",
        "requests",
        "req/s",
        "texts/s",
        "p50 ms",
        "p99 ms",
        "errors",
    ]
    print("  " + "  ".join(header))
    python = sys.executable
    catembed = [python, "-m", "catembed.cli", "-q", "serve", "--model", args.model]
    baseline = [python, str(Path(__file__).resolve()), "--baseline-server", "--model", args.model]
    catembed += ["--backend", args.backend]
    baseline += ["--backend", args.backend]
    servers = {"catembed": catembed, "baseline": baseline}
    results, rss = measure(servers, levels, args.requests, workloads)
    ours = [x for x in results if x.server == "catembed"]
    theirs = [x for x in results if x.server == "baseline"]
    print(f"\npeak RSS: catembed {rss['catembed']:.0f} MiB, baseline {rss['baseline']:.0f} MiB")
    top = max(levels)
    verdicts = []
    for workload in workloads:
        mine = next(x for x in ours if x.workload == workload and x.concurrency == top)
        base = next(x for x in theirs if x.workload == workload and x.concurrency == top)
        ratio = mine.texts_per_s / base.texts_per_s
        print(
            f"concurrency {top}, {workload}: texts/s {ratio:.2f}x the baseline; "
            f"p99 {mine.p99 * 1000:.1f} ms vs {base.p99 * 1000:.1f} ms"
        )
        if workload == "repeated":
            verdicts.append(ratio >= TARGET_RATIO and mine.p99 < base.p99)
    errors = sum(x.errors for x in ours)
    verdicts.append(errors == 0)
    print(f"errors: catembed {errors}, baseline {sum(x.errors for x in theirs)}")
    print(
        "targets (0 errors; repeated at top concurrency: >= 3x texts/s, lower p99): "
        + ("met" if all(verdicts) else "NOT met")
    )


if __name__ == "__main__":
    main()
