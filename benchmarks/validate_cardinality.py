"""Validation at high cardinality: columns of 1,000 to 100,000 distinct values.

Real columns (city names, product titles, person names) hold far more distinct values than
category columns do. Times `catembed validate` end to end (a fresh process: imports, model
and validator loading, reading, judging each distinct value once, writing every row with its
verdict) on a Parquet column of ``--rows`` rows whose distinct values mix reference values,
typos and other corruptions of them, markup-wrapped values, words of other domains and random
strings, against

- a trained model's validator (``--model``; without one, the base model with a validator
  built from the built-in apparel values, as validate_speed.py does), and
- validators built on the spot from ``--valid`` lists of 10,000 and 50,000 reference values
  (title-cased combinations of common English words).

Each run reports its wall and CPU seconds, its peak memory and its cost per distinct value;
the trained-model run is repeated at 1,000, 10,000 and 100,000 distinct values, and the cost
per value added between two sizes (start-up cancelled) stays flat where the cost is linear.
The baseline, measured in the same run with the same model, is encoding every distinct value
with stock sentence-transformers (estimated from a 5,000-value sample): what judging each
distinct value once cannot go below on the model side. ``--profile`` runs each under cProfile
and prints the seconds of each phase (encoding, nearest reference values, string rules,
repairs, column evidence, writing); ``--keep DIR`` keeps the columns and outputs, and
``--compare DIR`` says whether each output is the same as that earlier run's (the same code
before a change, say: the columns are generated alike every time).

    .venv/bin/python benchmarks/validate_cardinality.py
    .venv/bin/python benchmarks/validate_cardinality.py --model models/catembed-toys
    .venv/bin/python benchmarks/validate_cardinality.py --valid-sizes 10000 --scaling 1000 --profile
    PYTHONPATH=old/src .venv/bin/python benchmarks/validate_cardinality.py --keep /tmp/before
    .venv/bin/python benchmarks/validate_cardinality.py --compare /tmp/before
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import string
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
from validate_speed import build_model, run_measured  # noqa: E402  (this folder)

from catembed.corruptions import corrupt  # noqa: E402
from catembed.repair import english_counts  # noqa: E402
from catembed.tables import read_table, write_table  # noqa: E402
from catembed.validation import VALIDATOR_FILE  # noqa: E402
from catembed.vocabulary import load_vocabulary  # noqa: E402

SEED = 42
SAMPLE_VALUES = 5_000
COMMON_WORDS = 6_000  # the commonest English words the generated values are made of
# Shares of a column's distinct values, by kind; reference values fill the rest.
MIX = {"corrupted": 0.3, "markup": 0.1, "other": 0.3, "random": 0.1}
REFERENCE_WEIGHT = 20.0  # rows of a reference value per row of any other value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=100_000)
    parser.add_argument("--model", type=Path, default=None, help="model folder with a validator")
    parser.add_argument(
        "--valid-sizes", default="10000,50000", help="sizes of --valid lists ('' for none)"
    )
    parser.add_argument(
        "--scaling", default="1000,10000", help="more distinct counts for the model ('' for none)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep inputs and outputs here")
    parser.add_argument(
        "--compare", type=Path, default=None, help="a --keep folder of an earlier run: same output?"
    )
    parser.add_argument(
        "--profile", action="store_true", help="run each under cProfile and show where time goes"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catembed-cardinality-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        folder = args.model or build_model(work / "model")
        reference = json.loads((folder / VALIDATOR_FILE).read_text("utf-8"))["reference"]
        runs: list[dict[str, Any]] = []
        sizes = sorted({args.distinct, *(int(n) for n in args.scaling.split(",") if n)})
        largest: list[str] = []
        for distinct in sizes:
            data = work / f"model-{distinct}.parquet"
            largest = generate(data, reference, args.rows, distinct, random.Random(SEED))
            name = f"--model, {distinct:,} distinct"
            runs.append(measure(name, ["--model", str(folder)], data, args, len(largest)))
        for size in (int(n) for n in args.valid_sizes.split(",") if n):
            valid = work / f"valid-{size}.txt"
            listed = reference_values(size, random.Random(SEED + size))
            valid.write_text("\n".join(listed) + "\n", encoding="utf-8")
            data = work / f"valid-{size}.parquet"
            values = generate(data, listed, args.rows, args.distinct, random.Random(SEED))
            name = f"--valid {size:,} values, {args.distinct:,} distinct"
            runs.append(measure(name, ["--valid", str(valid)], data, args, len(values)))
        stock = stock_seconds(folder, largest)
    report(runs, stock, len(largest), args.rows, args.profile)
    return 0


def report(
    runs: list[dict[str, Any]], stock: float, values: int, rows: int, profiled: bool
) -> None:
    """Print the table of runs, the cost per value added, and the stock baseline."""
    print(f"\n{rows:,} rows each{'; under cProfile, which slows Python code' if profiled else ''}")
    print(f"{'run':<44}  {'seconds':>8}  {'CPU s':>8}  {'peak MB':>8}  {'ms/value':>8}  output")
    print(f"{'-' * 44}  {'-' * 8}  {'-' * 8}  {'-' * 8}  {'-' * 8}  {'-' * 9}")
    for run in runs:
        per_value = 1000 * run["seconds"] / run["distinct"]
        print(
            f"{run['name']:<44}  {run['seconds']:>8.1f}  {run['cpu']:>8.1f}  "
            f"{run['peak_mb']:>8,.0f}  {per_value:>8.3f}  {run['same']}"
        )
    name = f"stock encode, {values:,} distinct (estimated)"
    print(f"{name:<44}  {stock:>8.1f}  {'':>8}  {'':>8}  {1000 * stock / values:>8.3f}")
    model = [run for run in runs if run["name"].startswith("--model")]
    for smaller, larger in itertools.pairwise(model):
        added = larger["distinct"] - smaller["distinct"]
        cost = 1000 * (larger["seconds"] - smaller["seconds"]) / added
        print(
            f"--model, {smaller['distinct']:,} -> {larger['distinct']:,} distinct: "
            f"{cost:.3f} ms per value added"
        )
    print(
        "\nms/value: wall milliseconds per distinct value, start-up (imports, model loading) "
        "included; per value added: the difference of two runs, start-up cancelled, flat when "
        "the cost is linear. The stock baseline encodes each distinct value once with "
        f"sentence-transformers (from a {SAMPLE_VALUES:,}-value sample) and judges nothing. "
        "CPU s: processor time over all threads. peak MB: max RSS."
    )


def measure(
    name: str, source: list[str], data: Path, args: argparse.Namespace, distinct: int
) -> dict[str, Any]:
    """Run `catembed validate` on ``data`` with ``source`` (--model or --valid) in a child
    process; its figures, and whether its output is ``args.compare``'s."""
    output = data.with_name(f"{data.stem}-validated.parquet")
    command = [sys.executable]
    if args.profile:
        command += ["-m", "cProfile", "-o", str(output.with_suffix(".prof"))]
    command += ["-m", "catembed.cli", "-q", "validate", str(data), "--column", "value"]
    command += ["--output", str(output), "--reasons", *source]
    result = run_measured(command)
    if result["returncode"] != 0:
        raise SystemExit(f"{name} failed:\n{result['stdout']}\n{result['stderr']}")
    same = "-"
    if args.compare is not None:
        earlier = args.compare / output.name
        same = "identical" if read_table(output).equals(read_table(earlier)) else "DIFFERENT"
    print(f"{name}: {result['seconds']:.1f} s, {result['peak_mb']:,.0f} MB peak; output {same}")
    if args.profile:
        phases(output.with_suffix(".prof"))
    return {**result, "name": name, "distinct": distinct, "same": same}


# Where the time goes, by the functions that begin each phase (cumulative: phases nest).
PHASES = {
    "building the --valid validator": ("validation.py", "from_values"),
    "  reference similarities (leave_one_out)": ("calibration.py", "leave_one_out"),
    "  domain classifier fits": ("calibration.py", "fit_domain_vectors"),
    "judging the distinct values": ("validation.py", "validate"),
    "  string rules": ("validation.py", "_string_rules"),
    "    format and spell checks": ("repair.py", "issues"),
    "    typos (one edit from a reference value)": ("spelling.py", "within_one_edit"),
    "  nearest reference value in spelling": ("spelling.py", "nearest"),
    "  encoding (sentence embeddings)": ("backends.py", "encode_normalized"),
    "  nearest reference value by embedding": ("validation.py", "similarities"),
    "  repairs of unseen values (rewrites, respellings)": ("validation.py", "_first_valid"),
    "  column evidence": ("column_evidence.py", "revised_by_column"),
    "writing the output": ("columns.py", "write_output"),
}


def phases(path: Path) -> None:
    """Print the cumulative seconds of each of ``PHASES`` in the profile at ``path``."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    for phase, (file, function) in PHASES.items():
        rows = [
            row
            for (name, _, func), row in stats.items()
            if func == function and name.endswith(f"catembed/{file}")
        ]
        print(f"    {phase:<52} {sum(row[3] for row in rows):>8.1f} s")  # cumulative seconds


def _words() -> list[str]:
    """The commonest English words of 3 to 10 letters, commonest first."""
    counts = english_counts()
    words = [w for w in counts if w.isalpha() and w.isascii() and 3 <= len(w) <= 10]
    return sorted(words, key=lambda w: (-counts[w], w))[:COMMON_WORDS]


def reference_values(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct title-cased values of 2 or 3 common English words ('Copper Harbor
    Lantern'), as product titles or place names are made."""
    words = _words()[: COMMON_WORDS // 2]  # other values take the rest
    found: dict[str, None] = {}
    while len(found) < count:
        picked = rng.sample(words, rng.choice((2, 2, 3)))
        found.setdefault(" ".join(w.title() for w in picked), None)
    return list(found)


def distinct_values(reference: list[str], count: int, rng: random.Random) -> list[str]:
    """``count`` distinct values: reference values, their corruptions (typos, case, cuts,
    suffixes, ...), markup-wrapped values, values of other domains (built-in vocabulary,
    other English words) and random strings, in the shares of ``MIX``."""
    listed = set(reference)
    others = [v for vs in load_vocabulary().values() for v in vs if v not in listed]
    words = _words()[COMMON_WORDS // 2 :]
    found: dict[str, None] = {}
    targets = {kind: int(share * count) for kind, share in MIX.items()}
    kept = min(len(reference), count - sum(targets.values()))
    found.update(dict.fromkeys(rng.sample(reference, kept)))
    for kind, target in targets.items():
        goal, tries = len(found) + target, 0
        while len(found) < goal and tries < 50 * target:
            tries += 1
            value = _value(kind, reference, others, words, found, rng)
            if value.strip():
                found.setdefault(value, None)
    while len(found) < count:  # corruptions ran dry (few reference values): other words
        found.setdefault(_value("other", reference, others, words, found, rng), None)
    return list(found)


def _value(
    kind: str,
    reference: list[str],
    others: list[str],
    words: list[str],
    found: dict[str, None],
    rng: random.Random,
) -> str:
    """A value of ``kind`` (see ``MIX``); it may be one of ``found`` already."""
    if kind == "corrupted":
        value = corrupt(rng.choice(reference), rng)[1]
        return corrupt(value, rng)[1] if value in found else value  # a corruption's too
    if kind == "markup":
        tag = rng.choice(("b", "td", "span", "p", "i"))
        inner = rng.choice(reference)
        if f"<{tag}>{inner}</{tag}>" in found:  # few reference values: with another word
            inner = f"{rng.choice(others)} {inner}"
        return f"<{tag}>{inner}</{tag}>"
    if kind == "other":
        if rng.random() < 0.02:
            return rng.choice(others)
        return " ".join(w.title() for w in rng.sample(words, rng.choice((1, 2, 2, 3))))
    letters = string.ascii_letters + " "
    return "".join(rng.choice(letters) for _ in range(rng.randint(4, 20))).strip()


def generate(
    path: Path, reference: list[str], rows: int, distinct: int, rng: random.Random
) -> list[str]:
    """Write a Parquet column ``value`` of ``rows`` rows over ``distinct`` distinct values,
    every one of them used, reference values ``REFERENCE_WEIGHT`` times as often."""
    values = distinct_values(reference, distinct, rng)
    listed = set(reference)
    weights = np.array([REFERENCE_WEIGHT if v in listed else 1.0 for v in values])
    numbers = np.random.default_rng(SEED)
    chosen = numbers.choice(len(values), max(0, rows - len(values)), p=weights / weights.sum())
    indices = numbers.permutation(np.r_[np.arange(len(values)), chosen])
    column = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(values))
    write_table(pa.table({"value": column.cast(pa.string())}), path)
    return values


def stock_seconds(folder: Path, values: list[str]) -> float:
    """Wall seconds stock SentenceTransformer.encode would take for ``values``, estimated
    from a sample."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    sample = random.Random(SEED).sample(values, min(SAMPLE_VALUES, len(values)))
    started = time.perf_counter()
    model.encode(sample, batch_size=128, convert_to_numpy=True)
    return (time.perf_counter() - started) * len(values) / len(sample)


if __name__ == "__main__":
    sys.exit(main())
