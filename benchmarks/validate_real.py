"""Validation on real dirty tables: categorical columns of the Raha ``hospital`` and ``beers``
datasets.

For each column, a validator is built with ``Validator.from_values`` (base model, no training)
from half of the column's clean distinct values, as a user with a partial list of valid values
would; the other half are valid values it never saw. The dirty column (1,000 rows, typos such
as 'birminghxm' and 'hearx axxack' in hospital; a state appended, 'Canton MA', in beers' city;
none in beers' style) is validated, and each cell whose dirty value differs from the clean one
counts as an error. Prints, pooled over the columns, cell-level precision, recall
and F1 of the anomaly verdicts and the share of detected errors whose suggestion is the clean
value, next to baselines from the same run:

* exact membership in the partial list (flag every other value),
* a value filling at most 2 rows of its column (the trivial detector the data's README warns of),
* the validator judging each distinct value alone (no row counts, so no column evidence).

The column-evidence constants (``catembed.column_evidence``) were set looking at hospital; the
typo-as-common-as-its-reference rule, the appended-code repair and the reference-words rule
came from reading beers' errors and false alarms. Needs ``../shared/benchmarks/raha``; says so
when it is absent.

    .venv/bin/python benchmarks/validate_real.py
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import random
import sys
import warnings
from collections import Counter
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers: "Loading weights"
warnings.filterwarnings("ignore")

from catembed import Validator  # noqa: E402
from catembed.models import DEFAULT_BASE_MODEL, load_model  # noqa: E402

RAHA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "raha"
DATASETS = {
    "hospital": (
        "Condition",
        "HospitalOwner",
        "MeasureName",
        "City",
        "CountyName",
        "State",
        "EmergencyService",
    ),
    "beers": ("city", "style"),
}
LISTED_SHARE = 0.5
SEED = 0


def main() -> int:
    # No options, but --help must print this rather than start the run.
    argparse.ArgumentParser(description=" ".join(__doc__.split("\n")[:2])).parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transformers", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    base = load_model(DEFAULT_BASE_MODEL)
    for name, columns in DATASETS.items():
        folder = RAHA / name
        if not (folder / "clean.csv").is_file():
            print(f"{name} skipped: {folder} is absent")
            continue
        measure(
            name, read(folder / "clean.csv", columns), read(folder / "dirty.csv", columns), base
        )
    return 0


def measure(
    name: str, clean: dict[str, list[str]], dirty: dict[str, list[str]], base: object
) -> None:
    methods = ("validator", "validator, no row counts", "exact membership", "at most 2 rows")
    totals = {m: Counter[str]() for m in methods}
    print(f"\n{name}\n{'column':17s} {'rows':>5s} {'errors':>6s} {'listed':>6s}  F1 per method")
    for column in clean:
        truth, values = clean[column], dirty[column]
        distinct = sorted(set(truth))
        rng = random.Random(SEED)
        listed = rng.sample(distinct, max(2, round(len(distinct) * LISTED_SHARE)))
        validator = Validator.from_values(listed, model=base)  # type: ignore[arg-type]
        errors = [t != v for t, v in zip(truth, values, strict=True)]
        rows = Counter(values)
        with_counts = validator.validate(values)
        alone = {r.value: r for r in validator.validate(sorted(rows))}
        flags = {
            "validator": [r.is_anomaly for r in with_counts],
            "validator, no row counts": [alone[v].is_anomaly for v in values],
            "exact membership": [v not in set(listed) for v in values],
            "at most 2 rows": [rows[v] <= 2 for v in values],
        }
        repaired = {
            "validator": [r.suggestion for r in with_counts],
            "validator, no row counts": [alone[v].suggestion for v in values],
        }
        scores = []
        for method in methods:
            count(totals[method], errors, flags[method], truth, repaired.get(method))
            scores.append(f1(count(Counter(), errors, flags[method], truth, None)))
        print(
            f"{column:17s} {len(values):5d} {sum(errors):6d} {len(listed):6d}  "
            + "  ".join(f"{m} {s:.3f}" for m, s in zip(methods, scores, strict=True)),
            flush=True,
        )
    print(f"\n{name}, pooled over its columns:")
    print(
        f"{'method':26s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'repaired':>9s} {'wrong':>6s}"
    )
    for method in methods:
        t = totals[method]
        precision = t["hit"] / max(t["flagged"], 1)
        recall = t["hit"] / max(t["errors"], 1)
        repairs = f"{t['repaired'] / max(t['hit'], 1):.1%}" if method in repaired else ""
        wrong = f"{t['misrepaired'] / max(t['hit'], 1):.1%}" if method in repaired else ""
        print(f"{method:26s} {precision:9.3f} {recall:7.3f} {f1(t):6.3f} {repairs:>9s} {wrong:>6s}")
    print(
        "repaired: share of detected errors whose suggestion is the clean value; "
        "wrong: whose suggestion is another value"
    )


def read(path: Path, columns: tuple[str, ...]) -> dict[str, list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {column: [row[column] for row in rows] for column in columns}


def count(
    total: Counter[str],
    errors: list[bool],
    flags: list[bool],
    truth: list[str],
    suggestions: list[str] | None,
) -> Counter[str]:
    for i, (error, flag) in enumerate(zip(errors, flags, strict=True)):
        total["errors"] += error
        total["flagged"] += flag
        total["hit"] += error and flag
        if suggestions is not None and error and flag:
            total["repaired"] += suggestions[i] == truth[i]
            total["misrepaired"] += suggestions[i] not in ("", truth[i])
    return total


def f1(total: Counter[str]) -> float:
    hits = total["hit"]
    if not hits:
        return 0.0
    precision, recall = hits / total["flagged"], hits / total["errors"]
    return 2 * precision * recall / (precision + recall)


if __name__ == "__main__":
    sys.exit(main())
