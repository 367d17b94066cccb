"""Validation of real spreadsheet columns: ST-bench's 600 hand-labelled columns.

ST-bench (``../shared/benchmarks/st_bench_dev.csv``) holds the distinct values of real
spreadsheet columns, 19 of them with labelled errors ('-' among numbers, 'caretet county',
'implimenter'). Its own task has no list of valid values; catembed's has one. So for each
column of at least ``MIN_VALUES`` distinct values, a validator is built with
``Validator.from_values`` (base model, no training) from half of the column's clean values, as
a user with a partial list would, and judges the rest alone (no row counts: ST-bench has
none). Debatable values are left out, as the benchmark says. Printed, pooled over columns:

* unseen clean values accepted: the share of the clean values it never listed that are
  judged valid, over every column (the issue's target for held-out valid values: >= 95%);
* labelled errors flagged, and anomaly precision and F1 at the validator's own verdicts;
* average precision (AP) and best F1 over thresholds of the score, pooling every
  (column, value) pair,

next to baselines from the same run: exact membership in the list, the best rapidfuzz ratio
to a listed value (1 - ratio), and the base model's nearest-neighbour cosine (1 - cosine).
Nothing in catembed was tuned on ST-bench. Says so and exits when the file is absent.

    .venv/bin/python benchmarks/validate_stbench.py [--columns N]
"""

from __future__ import annotations

import argparse
import ast
import csv
import logging
import os
import random
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers: "Loading weights"
warnings.filterwarnings("ignore")

from rapidfuzz import fuzz, process  # noqa: E402

from catembed import Validator  # noqa: E402
from catembed.models import DEFAULT_BASE_MODEL, load_model  # noqa: E402

ST_BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "st_bench_dev.csv"
MIN_VALUES = 6  # distinct values of a column; fewer leave too little to list
LISTED_SHARE = 0.5
SEED = 0
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


@dataclass
class Pooled:
    """(column, value) pairs of every column: labels and each method's scores and flags."""

    labels: list[bool] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)
    flags: list[bool] = field(default_factory=list)

    def add(self, method: str, scores: list[float]) -> None:
        self.scores.setdefault(method, []).extend(scores)


class CachedEncoder:
    """The base model with a memory of every text it has encoded: each column's validator
    encodes the same built-in out-of-domain pool, and the baselines the same values."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            encoded = self.model.encode(missing, batch_size=128, normalize_embeddings=True)
            self.vectors.update(zip(missing, encoded, strict=True))
        return np.stack([self.vectors[t] for t in texts])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--columns", type=int, default=0, help="first N usable columns only")
    args = parser.parse_args()
    if not ST_BENCH.is_file():
        print(f"ST-bench skipped: {ST_BENCH} is absent")
        return 0
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transformers", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    columns, skipped = read_columns(ST_BENCH)
    if args.columns:
        columns = columns[: args.columns]
    encoder = CachedEncoder(load_model(DEFAULT_BASE_MODEL))
    pooled = Pooled()
    per_column_accepted: list[float] = []
    started = time.perf_counter()
    for name, values, errors, debatable in columns:
        clean = [v for v in values if v not in errors and v not in debatable]
        rng = random.Random(f"{SEED}:{name}")
        listed = rng.sample(clean, max(2, round(len(clean) * LISTED_SHARE)))
        unseen = [v for v in values if v not in set(listed) and v not in debatable]
        if not unseen:
            continue
        validator = Validator.from_values(listed, model=encoder)
        reports = validator.validate(unseen)
        labels = [v in errors for v in unseen]
        pooled.labels += labels
        pooled.flags += [r.is_anomaly for r in reports]
        pooled.add("validator", [r.score for r in reports])
        pooled.add("exact membership", [1.0] * len(unseen))
        pooled.add(
            "rapidfuzz ratio",
            [1 - process.extractOne(v, listed, scorer=fuzz.ratio)[1] / 100 for v in unseen],
        )
        cosine = (encoder.encode(unseen) @ encoder.encode(listed).T).max(axis=1)
        pooled.add("base model cosine", list(1 - cosine))
        accepted = [not r.is_anomaly for r, bad in zip(reports, labels, strict=True) if not bad]
        if accepted:
            per_column_accepted.append(float(np.mean(accepted)))
    seconds = time.perf_counter() - started
    report(pooled, per_column_accepted, len(columns), skipped, seconds)
    return 0


def read_columns(path: Path) -> tuple[list[tuple[str, list[str], set[str], set[str]]], int]:
    """Usable columns as (name, distinct values, errors, debatable values), and how many
    columns were skipped (too few values, or no list of them)."""
    columns = []
    skipped = 0
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            values = list(dict.fromkeys(v.strip() for v in parse_list(row["dist_val"])))
            values = [v for v in values if v]
            if len(values) < MIN_VALUES:
                skipped += 1
                continue
            name = f"{row['index']}:{row['header']}"
            errors = set(parse_list(row["ground_truth"])) & set(values)
            debatable = set(parse_list(row["ground_truth_debatable"])) & set(values)
            columns.append((name, values, errors, debatable))
    return columns, skipped


def parse_list(text: str) -> list[str]:
    """A Python list literal of strings; its quoted strings when it is not quite one."""
    try:
        parsed = ast.literal_eval(text) if text.strip() else []
        return [str(v) for v in parsed]
    except (ValueError, SyntaxError):
        return [a or b for a, b in _QUOTED.findall(text)]


def report(
    pooled: Pooled, per_column: list[float], n_columns: int, skipped: int, seconds: float
) -> None:
    labels = np.array(pooled.labels)
    flags = np.array(pooled.flags)
    clean, errors = int((~labels).sum()), int(labels.sum())
    print(
        f"ST-bench: {n_columns} columns of >= {MIN_VALUES} distinct values "
        f"({skipped} smaller or empty skipped); {clean} unseen clean values and {errors} "
        f"labelled errors judged; {seconds:.0f} s"
    )
    hits = int((flags & labels).sum())
    precision = hits / max(int(flags.sum()), 1)
    recall = hits / max(errors, 1)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    print(
        f"validator verdicts: unseen clean values accepted {1 - flags[~labels].mean():.1%} "
        f"(per column: median {np.median(per_column):.1%}, "
        f"{np.mean(np.array(per_column) >= 0.95):.1%} of columns >= 95%); "
        f"errors flagged {hits}/{errors}; anomaly precision {precision:.3f}, F1 {f1:.3f}"
    )
    print(f"\n{'score':20s} {'AP':>6s} {'best F1':>8s}")
    for method, scores in pooled.scores.items():
        ap, best = ranking(labels, np.array(scores))
        print(f"{method:20s} {ap:6.3f} {best:8.3f}")
    print(
        "AP and best F1 pool every (column, value) pair; exact membership flags every unseen value."
    )


def ranking(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Average precision and the best F1 over thresholds of ``scores`` (ties kept together)."""
    order = np.argsort(-scores, kind="stable")
    ranked, sorted_scores = labels[order], scores[order]
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    hits = np.cumsum(ranked)[last_of_tie]
    flagged = np.arange(1, len(ranked) + 1)[last_of_tie]
    total = labels.sum()
    if not total:
        return 0.0, 0.0
    precision, recall = hits / flagged, hits / total
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    f1 = np.where(hits > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    return ap, float(f1.max())


if __name__ == "__main__":
    sys.exit(main())
