"""Training speed: the stock sentence-transformers trainer against catembed's loop.

Runs the full seed recipe (default apparel dataset, seed 42, 4 epochs, batch 64) twice in one
process, same data and seed: once with ``TrainingConfig(fast=False)`` (SentenceTransformerTrainer)
and once with the default fast loop. Prints training samples/s of each (fit time, per-epoch
evaluation included), their ratio, and final cosine accuracy on the seen / held-out / all
evaluation parts. Targets: >= 3x samples/s, accuracy within 0.5 points.

    .venv/bin/python benchmarks/train_speed.py [--epochs 4] [--order stock-first|fast-first]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from catembed import TrainingConfig, TrainingResult, train

TARGET_RATIO = 3.0
TARGET_POINTS = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=TrainingConfig().epochs)
    parser.add_argument("--order", choices=["stock-first", "fast-first"], default="stock-first")
    parser.add_argument("--bf16", action="store_true", help="Also time catembed with --bf16.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    import torch

    from catembed.backends import physical_cores

    torch.set_num_threads(physical_cores())
    engines = ["stock", "catembed"] if args.order == "stock-first" else ["catembed", "stock"]
    if args.bf16:
        engines.append("catembed-bf16")
    results: dict[str, TrainingResult] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for engine in engines:
            config = TrainingConfig(
                epochs=args.epochs, fast=engine != "stock", bf16=engine == "catembed-bf16"
            )
            results[engine] = train(None, Path(scratch) / engine, config, show_progress=False)
            print(
                f"{engine:13s} trained in {results[engine].train_seconds:7.1f} s: "
                f"{results[engine].samples_per_second:6.1f} samples/s",
                flush=True,
            )

    stock, fast = results["stock"], results["catembed"]
    ratio = fast.samples_per_second / stock.samples_per_second
    print(f"\ntorch threads {torch.get_num_threads()}, recipe {TrainingConfig(epochs=args.epochs)}")
    print(f"\n{'':10s} {'samples/s':>10s} {'seen':>7s} {'heldout':>8s} {'all':>7s}")
    for name, result in (("base", stock), ("stock", stock), ("catembed", fast)):
        acc = result.accuracy["base" if name == "base" else "fine_tuned"]
        speed = "" if name == "base" else f"{result.samples_per_second:.1f}"
        print(f"{name:10s} {speed:>10s} {acc['seen']:7.4f} {acc['heldout']:8.4f} {acc['all']:7.4f}")
    gap = max(
        abs(fast.accuracy["fine_tuned"][p] - stock.accuracy["fine_tuned"][p]) * 100
        for p in ("seen", "heldout", "all")
    )
    print(f"\nspeed-up {ratio:.2f}x (target >= {TARGET_RATIO}x): {_verdict(ratio >= TARGET_RATIO)}")
    print(
        f"largest accuracy gap {gap:.2f} points (target <= {TARGET_POINTS}): "
        f"{_verdict(gap <= TARGET_POINTS)}"
    )
    stock_tokens, fast_tokens = encoder_tokens(TrainingConfig(epochs=args.epochs))
    print(
        f"tokens through the encoder: stock {stock_tokens:,}, catembed {fast_tokens:,} "
        f"({stock_tokens / fast_tokens:.2f}x fewer)"
    )
    if "catembed-bf16" in results:
        bf16 = results["catembed-bf16"]
        acc = bf16.accuracy["fine_tuned"]
        bf16_gap = max(
            abs(acc[p] - stock.accuracy["fine_tuned"][p]) * 100 for p in ("seen", "heldout", "all")
        )
        bf16_ratio = bf16.samples_per_second / stock.samples_per_second
        print(
            f"\nopt-in --bf16: {bf16.samples_per_second:.1f} samples/s, {bf16_ratio:.2f}x stock; "
            f"seen {acc['seen']:.4f}, heldout {acc['heldout']:.4f}, all {acc['all']:.4f}; "
            f"gap {bf16_gap:.2f} points"
        )


def encoder_tokens(config: TrainingConfig) -> tuple[int, int]:
    """Padded tokens each loop runs through the encoder over the whole recipe: the stock
    collator pads each column of a batch to its longest text; catembed encodes each distinct
    text once, packed into rows of ``PACKED_ROW_TOKENS`` (the same batches, same order)."""
    import math

    import torch

    from catembed import build_triplets
    from catembed.models import load_model
    from catembed.packing import (
        PACKED_ROW_TOKENS,
        distinct_positions,
        pack_rows,
        token_ids,
    )

    train = build_triplets().train
    model = load_model(config.base_model)
    tokens = token_ids(model, [x for t in train for x in (t.anchor, t.positive, t.negative)])
    counts = {text: len(ids) for text, ids in tokens.items()}
    generator = torch.Generator()
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(range(len(train)), generator=generator),
        batch_size=config.batch_size,
        drop_last=False,
    )
    stock = fast = 0
    for epoch in range(math.ceil(config.epochs)):
        generator.manual_seed(config.seed + epoch)
        for indices in sampler:
            batch = [train[i] for i in indices]
            for column in ("anchor", "positive", "negative"):
                stock += len(batch) * max(counts[getattr(t, column)] for t in batch)
            texts = [x for t in batch for x in (t.anchor, t.positive, t.negative)]
            lengths = [counts[x] for x in distinct_positions(texts)[0]]
            rows = pack_rows(lengths, max(PACKED_ROW_TOKENS, *lengths))
            fast += len(rows) * max(sum(lengths[i] for i in row) for row in rows)
    return stock, fast


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
