"""GPU speed: the seed recipe's training time and distinct-text encode throughput on CUDA.

Stock against catembed in the same run, on the same GPU:

- training: the full seed recipe with the stock SentenceTransformerTrainer
  (``TrainingConfig(fast=False)``), with catembed's loop (the default) and with catembed's
  loop plus ``--bf16``, same data and seed;
- encoding: 20,000 distinct category strings with ``SentenceTransformer.encode`` in fp32
  (stock) and in fp16 (``model.half()``), with the triplet accuracy of each.

Each engine trains ``--rounds`` times in turn, after a warm-up encode that pays CUDA's
start-up; the speed-ups compare each engine's best round. Prints the GPU's name with the figures. Without a CUDA GPU it says so and exits with status 2.

    .venv/bin/python benchmarks/gpu_speed.py [--texts 20000] [--rounds 1] [--base-model PATH]
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

BATCH_SIZE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument(
        "--base-model", default=None, help="folder or hub id (default: offline base)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="train every engine this many times, in turn"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="a few steps on CPU, to check the script"
    )
    args = parser.parse_args()
    device = "cpu" if args.dry_run else "cuda"
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA GPU available: nothing measured (run this on a machine with one)")
        sys.exit(2)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sys.path.insert(0, str(Path(__file__).parent))
    from encode_speed import category_strings

    from catembed import TrainingConfig, build_triplets, train
    from catembed.evaluation import accuracy_of_triplets
    from catembed.models import DEFAULT_BASE_MODEL, load_model

    name = "dry run on CPU" if args.dry_run else torch.cuda.get_device_name(0)
    print(f"GPU: {name}, torch {torch.__version__}")
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        base: dict[str, object] = {"base_model": args.base_model} if args.base_model else {}
        if args.dry_run:
            base["max_steps"] = 2
        engines = {
            "stock": TrainingConfig(fast=False, **base),
            "catembed": TrainingConfig(**base),
            "catembed+bf16": TrainingConfig(bf16=True, **base),
        }
        # CUDA start-up (context, kernels, cuBLAS handles) is paid before any timed run.
        load_model(args.base_model or DEFAULT_BASE_MODEL, device=device).encode(
            category_strings(2048), batch_size=64
        )
        for round_number in range(1, args.rounds + 1):
            for engine, config in engines.items():
                r = train(None, Path(scratch) / engine, config, show_progress=False, overwrite=True)
                best = results.get(engine)
                if best is None or r.samples_per_second > best.samples_per_second:
                    results[engine] = r
                print(
                    f"round {round_number} train {engine:13s} {r.train_seconds:6.1f} s, "
                    f"{r.samples_per_second:7.1f} samples/s, "
                    f"accuracy seen {r.accuracy['fine_tuned']['seen']:.4f} "
                    f"heldout {r.accuracy['fine_tuned']['heldout']:.4f} "
                    f"all {r.accuracy['fine_tuned']['all']:.4f}",
                    flush=True,
                )
        for engine in ("catembed", "catembed+bf16"):
            ratio = results[engine].samples_per_second / results["stock"].samples_per_second
            print(f"training speed-up {engine} / stock (best of {args.rounds}): {ratio:.2f}x")

        texts = category_strings(args.texts)
        evaluation = build_triplets().evaluation
        fp32 = load_model(str(Path(scratch) / "catembed"), device=device)
        fp16 = copy.deepcopy(fp32).half()
        speeds = {}
        for name, model in (("torch fp32", fp32), ("torch fp16", fp16)):
            model.encode(texts[:1024], batch_size=BATCH_SIZE)  # warm-up
            synchronize(device)
            started = time.perf_counter()
            model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True)
            synchronize(device)
            speeds[name] = len(texts) / (time.perf_counter() - started)
            accuracy = accuracy_of_triplets(model, evaluation)
            print(f"encode {name}: {speeds[name]:9.1f} distinct texts/s, accuracy {accuracy:.4f}")
        print(f"encode speed-up fp16/fp32 {speeds['torch fp16'] / speeds['torch fp32']:.2f}x")


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
