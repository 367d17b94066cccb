"""Training on a large list of valid values: where the time goes outside the training steps.

``catembed train --valid`` on a list of thousands of values spends little in the training
steps themselves (``--max-steps`` bounds them) and most of its time encoding the value list:
with the fine-tuned model to calibrate the similarity threshold, with the base model for the
domain classifier, and for the calibration report's probe (which judges the held-out values
and their corruptions). Runs ``train`` on ``--values``
distinct title-cased combinations of common English words ('Copper Harbor Lantern', as product
titles or place names are made; the same list every run) for ``--max-steps`` steps, and prints
the seconds of each phase (building the dataset, loading models, evaluating, training,
calibrating and its parts, ONNX export, model card), with the texts each model encoded: a text
encoded twice by the same model is time spent twice. A change that removes waste shows as
fewer texts encoded and fewer seconds in the same phases, for the same thresholds, accuracy
and calibration report (also printed, to compare with a run of the code before the change).

On 2 shared CPU cores, 12,000 values: 53.4 s before the probe reused the valid values'
embeddings and judged without suggesting repairs, 39.6 s after (the base model encoding 12,654
texts instead of 27,318); what is left is mostly encoding each value once with each model.

    .venv/bin/python benchmarks/train_large_list.py                  # 5,000 values, 1 step
    .venv/bin/python benchmarks/train_large_list.py --values 12000 --profile 25
    PYTHONPATH=old/src .venv/bin/python benchmarks/train_large_list.py   # the code before
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import random
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
warnings.filterwarnings("ignore")

import catembed.calibration as calibration  # noqa: E402
import catembed.training as training  # noqa: E402
from catembed import TrainingConfig, train  # noqa: E402
from catembed.repair import english_counts  # noqa: E402

SEED = 42
COMMON_WORDS = 3_000  # the commonest English words the values are made of

# (module, function name, phase shown): each is timed where it is called from.
PHASES = (
    (training, "build_triplets", "dataset"),
    (training, "load_model", "load models"),
    (training, "_evaluate_parts", "evaluate (base, fine-tuned)"),
    (training, "_fit_fast", "train steps"),
    (training, "_fit", "train steps"),
    (training, "calibrate_for_training", "calibrate"),
    (calibration, "encode_normalized", "  encode (fine-tuned and base)"),
    (calibration, "encode_values", "  encode out-of-domain pool"),
    (calibration, "leave_one_out", "  leave-one-out similarities"),
    (calibration, "_corruptions", "  corrupt held-out values"),
    (calibration, "fit_domain_vectors", "  domain classifier (folds, fit)"),
    (calibration, "_report", "  calibration report (probe)"),
    (training, "_export_onnx", "ONNX export"),
    (training, "write_model_card", "model card"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=5_000, help="distinct valid values")
    parser.add_argument("--max-steps", type=int, default=1)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also print cProfile's top N"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    values = value_list(args.values)
    seconds: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    encoded: Counter[str] = Counter()
    for module, name, shown in PHASES:
        _time(module, name, shown, seconds, cpu)
    _count_encoding(encoded)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        config = TrainingConfig(max_steps=args.max_steps)
        started, used = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        result = train(values, folder, config, show_progress=False)
        if profiler:
            profiler.disable()
        total, used = time.perf_counter() - started, time.process_time() - used
        validator = json.loads((folder / "validator.json").read_text(encoding="utf-8"))

    print(f"{len(values):,} values, {args.max_steps} training step(s)")
    print(f"  {'phase':36s} {'wall s':>8s} {'CPU s':>8s}")
    for shown in dict.fromkeys(shown for _, _, shown in PHASES):
        if shown in seconds:
            print(f"  {shown:36s} {seconds[shown]:8.1f} {cpu[shown]:8.1f}")
    rest = total - sum(s for k, s in seconds.items() if not k.startswith(" "))
    rest_cpu = used - sum(s for k, s in cpu.items() if not k.startswith(" "))
    print(f"  {'other (saving, metadata)':36s} {rest:8.1f} {rest_cpu:8.1f}")
    print(f"  {'in all':36s} {total:8.1f} {used:8.1f}")
    print("texts encoded: " + ", ".join(f"{n:,} by the {m}" for m, n in sorted(encoded.items())))
    tuned = result.accuracy["fine_tuned"]
    print("fine-tuned accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in tuned.items()))
    print(f"thresholds {validator['thresholds']}, domain {validator['domain']['thresholds']}")
    report = validator["calibration"]
    print("calibration: " + ", ".join(f"{k} {v}" for k, v in report.items() if _figure(v)))
    if profiler:
        import pstats

        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)


def _figure(value: Any) -> bool:
    return isinstance(value, int | float)


def value_list(count: int) -> list[str]:
    """``count`` distinct title-cased values of 2 or 3 common English words."""
    counts = english_counts()
    words = [w for w in counts if w.isalpha() and w.isascii() and 3 <= len(w) <= 10]
    words = sorted(words, key=lambda w: (-counts[w], w))[:COMMON_WORDS]
    rng = random.Random(SEED)
    found: dict[str, None] = {}
    while len(found) < count:
        picked = rng.sample(words, rng.choice((2, 2, 3)))
        found.setdefault(" ".join(w.title() for w in picked), None)
    return list(found)


def _time(module: Any, name: str, shown: str, seconds: Counter[str], cpu: Counter[str]) -> None:
    """Replace ``module.name`` by a wrapper adding its wall seconds to ``seconds[shown]`` and
    its CPU seconds (all threads) to ``cpu[shown]``: on a shared machine the CPU seconds
    vary less."""
    original = getattr(module, name, None)
    if original is None:
        return

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started, used = time.perf_counter(), time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[shown] += time.perf_counter() - started
            cpu[shown] += time.process_time() - used

    setattr(module, name, timed)


def _count_encoding(encoded: Counter[str]) -> None:
    """Count the texts each loaded model encodes: the first loaded is the one fine-tuned,
    the second the domain classifier's base model."""
    load = training.load_model
    roles = iter(["trained model", "base model"])

    def counted(*args: Any, **kwargs: Any) -> Any:
        model = load(*args, **kwargs)
        role = next(roles, "other model")
        encode: Callable[..., Any] = model.encode

        def encode_counted(texts: Any, *a: Any, **kw: Any) -> Any:
            encoded[role] += 1 if isinstance(texts, str) else len(texts)
            return encode(texts, *a, **kw)

        model.encode = encode_counted
        return model

    training.load_model = counted


if __name__ == "__main__":
    main()
