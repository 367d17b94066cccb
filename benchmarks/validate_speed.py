"""Validation speed: a 10,000,000-row Parquet column with 1,000 distinct values.

Times `catembed validate` end to end (a fresh process: imports, model and validator loading,
reading, judging each distinct value once, writing every row with its verdict to Parquet)
with the default backend (auto: onnx where the model has an export, as `catembed train` writes
one) and with torch, and reports each run's peak memory. The one-off ONNX export is timed
apart. The baseline, measured in the same run with the same
model, is encoding every row with stock sentence-transformers, estimated from a 20,000-row
sample. Target: under 10 s on a 2-core machine.

    .venv/bin/python benchmarks/validate_speed.py
    .venv/bin/python benchmarks/validate_speed.py --rows 1000000 --model models/catembed-apparel
    .venv/bin/python benchmarks/validate_speed.py --format csv   # a CSV file in, a CSV file out
    .venv/bin/python benchmarks/validate_speed.py --backends auto,torch,onnx-int8
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers: "Loading weights"
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from catembed import Validator  # noqa: E402
from catembed.backends import load_encoder, onnx_available, resolve_backend  # noqa: E402
from catembed.corruptions import corrupt  # noqa: E402
from catembed.models import DEFAULT_BASE_MODEL, load_model  # noqa: E402
from catembed.onnx_backend import ensure_onnx  # noqa: E402
from catembed.tables import read_table, write_table  # noqa: E402
from catembed.validation import VALIDATOR_FILE  # noqa: E402
from catembed.vocabulary import domain_values, load_vocabulary  # noqa: E402

SAMPLE_ROWS = 20_000
SEED = 42


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--distinct", type=int, default=1_000)
    parser.add_argument("--model", type=Path, default=None, help="model folder with a validator")
    parser.add_argument(
        "--backends", default="auto,torch", help="comma-separated: auto, torch, onnx, onnx-int8"
    )
    parser.add_argument(
        "--format", default="parquet", choices=("parquet", "csv"), help="of the input and output"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catembed-speed-") as scratch:
        folder = args.model or build_model(Path(scratch) / "model")
        data = Path(scratch) / f"column.{args.format}"
        started = time.perf_counter()
        values = generate(data, args.rows, args.distinct)
        print(
            f"generated {args.rows:,} rows, {len(set(values)):,} distinct values "
            f"({data.stat().st_size / 1e6:.1f} MB {args.format}) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        rows: list[tuple[str, float, float, float]] = []  # backend, seconds, CPU s, peak MB
        written = 0
        for backend in args.backends.split(","):
            if backend not in ("auto", "torch"):
                started = time.perf_counter()
                load_encoder(folder, backend)  # exports the folder once, if it has no export
                print(f"{backend}: export ready in {time.perf_counter() - started:.1f} s (once)")
            output = Path(scratch) / f"validated-{backend}.{args.format}"
            command = [
                sys.executable, "-m", "catembed.cli", "-q", "validate", "--model", str(folder),
                str(data), "--column", "category", "--output", str(output), "--backend", backend,
            ]  # fmt: skip
            done = run_measured(command)
            if done["returncode"] != 0:
                print(done["stdout"], done["stderr"], sep="\n")
                return 1
            if not rows:
                print(done["stdout"].strip())
            written = read_table(output).num_rows
            if backend == "auto":
                backend = f"auto ({resolve_backend(backend, folder).value})"
            rows.append((backend, done["seconds"], done["cpu"], done["peak_mb"]))
        baseline, baseline_cpu = stock_encoding_seconds(folder, values, args.rows)
    print()
    print(f"{'method':<66}  {'seconds':>9}  {'CPU s':>9}  {'peak MB':>9}")
    print(f"{'-' * 66}  {'-' * 9}  {'-' * 9}  {'-' * 9}")
    for backend, seconds, cpu, peak in rows:
        name = f"catembed validate, {backend} ({written:,} rows written)"
        print(f"{name:<66}  {seconds:>9.1f}  {cpu:>9.1f}  {peak:>9,.0f}")
    name = "stock sentence-transformers, every row (estimated)"
    print(f"{name:<66}  {baseline:>9.1f}  {baseline_cpu:>9.1f}")
    print(
        "\nCPU s: processor time over all threads; wall time is inflated when the machine is shared."
        "\npeak MB: max RSS of the run."
    )
    for backend, seconds, _, _ in rows:
        target = f"; target under 10 s: {'met' if seconds < 10 else 'NOT met'}"
        print(
            f"{backend}: speed-up {baseline / seconds:,.0f}x"
            f"{target if args.format == 'parquet' else ''}"
        )
    return 0


# Each run in a child of its own, so its peak memory (max RSS of children) is its own.
MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
    "seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}))
"""


def run_measured(command: list[str]) -> dict[str, Any]:
    """Run ``command``; its exit code, output, wall and CPU seconds and peak memory (MB)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def build_model(folder: Path) -> Path:
    """The base model with an apparel validator, when no trained folder is given."""
    print(f"no --model: using {DEFAULT_BASE_MODEL} with a validator built from the apparel values")
    model = load_model(DEFAULT_BASE_MODEL)
    model.save(str(folder))
    if not (folder / VALIDATOR_FILE).is_file():
        Validator.from_values(domain_values("apparel"), model=model).save(folder)
    if onnx_available():  # what `catembed train` writes, for the default backend
        started = time.perf_counter()
        ensure_onnx(folder)
        print(f"ONNX export written in {time.perf_counter() - started:.1f} s (once, as train does)")
    return folder


def generate(path: Path, rows: int, distinct: int) -> list[str]:
    """A column whose values repeat: mostly valid values, some corruptions and outsiders."""
    rng = random.Random(SEED)
    valid = list(domain_values("apparel"))
    others = [v for d, vs in load_vocabulary().items() if d != "apparel" for v in vs]
    pool: dict[str, None] = dict.fromkeys(valid)
    while len(pool) < distinct:
        if rng.random() < 0.5:
            pool.setdefault(rng.choice(others), None)
        else:
            pool.setdefault(corrupt(rng.choice(valid), rng)[1], None)
    values = list(pool)[:distinct]
    weights = np.array([50.0 if v in valid else 1.0 for v in values])
    indices = np.random.default_rng(SEED).choice(len(values), rows, p=weights / weights.sum())
    column = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(values))
    write_table(pa.table({"category": column.cast(pa.string())}), path)
    return values


def stock_encoding_seconds(folder: Path, values: list[str], rows: int) -> tuple[float, float]:
    """Wall and CPU seconds stock SentenceTransformer.encode would take for every row,
    estimated from a sample."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    rng = random.Random(SEED)
    sample = [rng.choice(values) for _ in range(SAMPLE_ROWS)]
    started, cpu = time.perf_counter(), time.process_time()
    model.encode(sample, batch_size=128, convert_to_numpy=True)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"stock encode of a {SAMPLE_ROWS:,}-row sample: {seconds:.1f} s ({cpu:.1f} CPU s)")
    scale = rows / SAMPLE_ROWS
    return seconds * scale, cpu * scale


if __name__ == "__main__":
    sys.exit(main())
