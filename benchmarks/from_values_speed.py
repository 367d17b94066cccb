"""Building a validator without training: the shipped embeddings of the built-in values.

``Validator.from_values`` (and ``catembed validate --valid``) fits its domain classifier
against the built-in vocabulary's 1,344 values. The package ships their embeddings under the
default base model (``catembed.vocabulary_embeddings``); the baseline, in the same run and
process, is the same build with the shipped file treated as absent, so every built-in value
is encoded again. Prints the median of ``--repeats`` interleaved builds for each of a few
lists of valid values, and checks that both builds judge the same probes alike.

    .venv/bin/python benchmarks/from_values_speed.py
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers: "Loading weights"
warnings.filterwarnings("ignore")

from catembed import Validator, vocabulary_embeddings  # noqa: E402
from catembed.models import DEFAULT_BASE_MODEL, load_model  # noqa: E402
from catembed.vocabulary import domain_values  # noqa: E402

LISTS = {
    "apparel (built-in, 60 values)": list(domain_values("apparel")),
    "toys (built-in, 48 values)": list(domain_values("toys")),
    "cities (7 values)": ["Boston", "Denver", "Austin", "Seattle", "Chicago", "Phoenix", "Miami"],
}
PROBES = ["Hoodies", "Toaster", "Swaeters", "<b>Kites</b>", "Dallas", "Car Battery"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transformers", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    model = load_model(DEFAULT_BASE_MODEL)
    shipped = vocabulary_embeddings.shipped
    print(f"base model: {DEFAULT_BASE_MODEL}; {len(shipped())} built-in values shipped\n")
    print(f"{'valid values':<32}  {'shipped s':>9}  {'encoded s':>9}  {'speed-up':>8}  verdicts")
    for name, values in LISTS.items():
        times: dict[str, list[float]] = {"shipped": [], "encoded": []}
        verdicts: dict[str, list[str]] = {}
        for _ in range(args.repeats):
            for how in times:
                # The baseline: the package as if it shipped no embeddings.
                vocabulary_embeddings.shipped = shipped if how == "shipped" else dict  # type: ignore[assignment]
                started = time.perf_counter()
                validator = Validator.from_values(values, model=model)
                times[how].append(time.perf_counter() - started)
                verdicts[how] = [r.verdict.value for r in validator.validate(PROBES)]
        vocabulary_embeddings.shipped = shipped  # type: ignore[assignment]
        fast, slow = (statistics.median(times[h]) for h in ("shipped", "encoded"))
        same = "same" if verdicts["shipped"] == verdicts["encoded"] else "DIFFER"
        print(f"{name:<32}  {fast:9.2f}  {slow:9.2f}  {slow / fast:7.1f}x  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
