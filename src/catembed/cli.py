"""The ``catembed`` command line: thin commands over the library."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from catembed.errors import CatembedError

F = TypeVar("F", bound=Callable[..., Any])

MODEL_ENVVAR = "CATEMBED_MODEL"


class _Group(click.Group):
    """Turns every CatembedError into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CatembedError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted") from None


@click.group(cls=_Group)
@click.version_option(package_name="catembed")
@click.option("-q", "--quiet", is_flag=True, help="Only print results and errors.")
def main(quiet: bool) -> None:
    """Train small embedding models that know what belongs in a categorical column,
    and use them to catch the values that don't."""
    _setup_logging(quiet)


def _setup_logging(quiet: bool) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("catembed")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    for noisy in ("transformers", "sentence_transformers", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover - transformers is a core dependency
        pass


def model_option(func: F) -> F:
    return click.option(
        "--model",
        "model_dir",
        required=True,
        envvar=MODEL_ENVVAR,
        type=click.Path(path_type=Path),
        help=f"Trained model folder (or ${MODEL_ENVVAR}).",
    )(func)


def backend_option(func: F) -> F:
    from catembed.backends import DEFAULT_BACKEND, Backend

    return click.option(
        "--backend",
        type=click.Choice([b.value for b in Backend]),
        default=DEFAULT_BACKEND.value,
        show_default=True,
        envvar="CATEMBED_BACKEND",
        help="Inference backend.",
    )(func)


def values_source_options(func: F) -> F:
    """--valid FILE and --column, shared by `dataset build` and `train`."""
    func = click.option(
        "--column", default=None, help="Column of --valid holding the values (CSV, Parquet, ...)."
    )(func)
    return click.option(
        "--valid",
        "valid_file",
        default=None,
        help="Valid values: a text file (one per line) or a CSV/TSV/Parquet/JSONL file; - for stdin.",
    )(func)


def dataset_options(func: F) -> F:
    """The triplet dataset's knobs; unset options fall back to the config file, then defaults."""
    options = [
        click.option(
            "--domain",
            default=None,
            help="Built-in domain to use when --valid is not given (default: apparel).",
        ),
        click.option(
            "--train-size", type=int, default=None, help="Training triplets (default 2120)."
        ),
        click.option(
            "--eval-size", type=int, default=None, help="Evaluation triplets (default 177)."
        ),
        click.option(
            "--heldout-fraction",
            type=float,
            default=None,
            help="Share of valid values held out of training (default 0.2).",
        ),
        click.option(
            "--corruption-rate",
            type=float,
            default=None,
            help="Share of negatives that are malformed variants (default 0.5).",
        ),
        click.option(
            "--corruption-kinds",
            default=None,
            help="Comma-separated corruption kinds (default: all; see `catembed kinds`).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _dataset_overrides(params: dict[str, Any]) -> dict[str, Any]:
    kinds = params.get("corruption_kinds")
    return {
        "train_size": params.get("train_size"),
        "eval_size": params.get("eval_size"),
        "heldout_fraction": params.get("heldout_fraction"),
        "corruption_rate": params.get("corruption_rate"),
        "corruption_kinds": tuple(k.strip() for k in kinds.split(",") if k.strip())
        if kinds
        else None,
    }


def _valid_values(valid_file: str | None, column: str | None) -> list[str] | None:
    if valid_file is None:
        if column is not None:
            raise click.UsageError("--column needs --valid")
        return None
    from catembed.tables import read_values

    values = read_values(valid_file, column)
    if not values:
        raise CatembedError(f"no valid values found in {valid_file}")
    return values


def _echo_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    click.echo(line.format(*header))
    click.echo(line.format(*("-" * w for w in widths)))
    for row in rows:
        click.echo(line.format(*row))


@main.group()
def dataset() -> None:
    """Build triplet datasets from a list of valid values."""


@dataset.command("build")
@values_source_options
@dataset_options
@click.option("--seed", type=int, default=None, help="Random seed (default 42).")
@click.option(
    "--output",
    "output_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write train and eval files into.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--base-model", default=None, help="Model whose tokenizer counts tokens for the statistics."
)
def dataset_build(
    valid_file: str | None,
    column: str | None,
    output_dir: Path,
    fmt: str,
    base_model: str | None,
    seed: int | None,
    domain: str | None,
    **params: Any,
) -> None:
    """Build train and eval triplet files and print their statistics."""
    from catembed.config import load_configs
    from catembed.dataset import build_triplets, token_statistics
    from catembed.models import resolve_base_model
    from catembed.tables import write_table
    from catembed.vocabulary import DEFAULT_DOMAIN, domain_values

    training, data = load_configs(
        None, {"seed": seed, "base_model": base_model}, _dataset_overrides(params)
    )
    values = _valid_values(valid_file, column)
    triplets = build_triplets(
        values if values is not None else domain_values(domain or DEFAULT_DOMAIN), data
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(training.base_model))
    for split in ("train", "eval"):
        table = triplets.table(split)
        path = output_dir / f"{split}.{fmt}"
        write_table(table, path)
        click.echo(f"{path}: {table.num_rows} triplets")
        stats = token_statistics(table, tokenizer)
        _echo_table(
            [
                [col, f"{s['min']:.0f}", f"{s['mean']:.2f}", f"{s['max']:.0f}"]
                for col, s in stats.items()
            ],
            ["column", "min tokens", "mean tokens", "max tokens"],
        )
    click.echo(
        f"valid values: {len(triplets.train_values)} for training, {len(triplets.heldout_values)} held out; "
        f"evaluation: {len(triplets.eval_seen)} seen + {len(triplets.eval_heldout)} held-out triplets"
    )


@main.command()
def kinds() -> None:
    """List the corruption kinds and the built-in domains."""
    from catembed.corruptions import CORRUPTION_KINDS
    from catembed.vocabulary import load_vocabulary

    click.echo("corruption kinds: " + ", ".join(CORRUPTION_KINDS))
    for name, values in load_vocabulary().items():
        click.echo(f"domain {name}: {len(values)} values, e.g. {', '.join(values[:4])}")


@main.command("train")
@values_source_options
@dataset_options
@click.option(
    "--output",
    "output_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Model folder to write (default: models/catembed-<domain>).",
)
@click.option(
    "--base-model",
    default=None,
    help="Local folder or hub id (default: the offline all-MiniLM-L6-v2).",
)
@click.option("--epochs", type=float, default=None, help="Training epochs (default 4).")
@click.option("--batch-size", type=int, default=None, help="Triplets per batch (default 64).")
@click.option(
    "--learning-rate", type=float, default=None, help="Peak learning rate (default 5e-5)."
)
@click.option(
    "--margin", type=float, default=None, help="TripletLoss margin, cosine distance (default 0.3)."
)
@click.option(
    "--seed", type=int, default=None, help="Random seed for data and training (default 42)."
)
@click.option(
    "--warmup-ratio",
    type=float,
    default=None,
    help="Share of steps for linear warm-up (default 0).",
)
@click.option(
    "--max-steps", type=int, default=None, help="Stop after this many steps (default: all epochs)."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON or TOML file with training and dataset sections.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing model folder.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option(
    "--stock",
    is_flag=True,
    help="Train with the stock sentence-transformers trainer instead of catembed's faster loop.",
)
def train_command(
    valid_file: str | None,
    column: str | None,
    output_dir: Path | None,
    config_file: Path | None,
    overwrite: bool,
    no_progress: bool,
    stock: bool,
    domain: str | None,
    **params: Any,
) -> None:
    """Fine-tune with the seed recipe, evaluate, and write the model and its card.

    With no arguments it trains on the built-in apparel domain.
    """
    from catembed.config import load_configs
    from catembed.training import train
    from catembed.vocabulary import DEFAULT_DOMAIN, domain_values

    training_keys = (
        "base_model",
        "epochs",
        "batch_size",
        "learning_rate",
        "margin",
        "seed",
        "warmup_ratio",
        "max_steps",
    )
    overrides = {k: params.get(k) for k in training_keys}
    overrides["fast"] = False if stock else None
    training, data = load_configs(config_file, overrides, _dataset_overrides(params))
    values = _valid_values(valid_file, column)
    if values is None:
        domain_values(domain or DEFAULT_DOMAIN)  # fail fast on an unknown domain
    name = "custom" if values is not None else (domain or DEFAULT_DOMAIN)
    output = output_dir or Path("models") / f"catembed-{name}"
    result = train(
        values,
        output,
        training,
        data,
        domain=domain,
        overwrite=overwrite,
        show_progress=not no_progress,
    )
    rows = []
    for part in ("seen", "heldout", "all"):
        if part in result.accuracy["fine_tuned"]:
            rows.append(
                [
                    part,
                    f"{result.accuracy['base'][part]:.4f}",
                    f"{result.accuracy['fine_tuned'][part]:.4f}",
                ]
            )
    click.echo("")
    _echo_table(rows, ["evaluation", "base model", "fine-tuned"])
    click.echo(
        f"\ntrained in {result.train_seconds:.1f} s ({result.samples_per_second:.1f} samples/s)"
    )
    click.echo(f"model and card written to {output}")


@main.command()
@model_option
@backend_option
@click.option(
    "--data",
    "data_file",
    required=True,
    help="Triplet file (anchor, positive, negative) or labelled values (value, label).",
)
def evaluate(model_dir: Path, backend: str, data_file: str) -> None:
    """Print the triplet accuracy of a model on a data file, or, for labelled values
    (labels valid, out_of_domain, malformed), the validator's precision, recall, F1,
    AUROC and confusion matrix."""
    from catembed.evaluation import triplet_table_accuracy
    from catembed.models import check_model_folder, load_model
    from catembed.tables import read_table

    table = read_table(data_file)
    if "label" in table.column_names:
        from catembed.metrics import evaluate_table, evaluation_tables
        from catembed.validation import Validator

        evaluation = evaluate_table(Validator.load(model_dir, backend), table, data_file)
        for header, rows in evaluation_tables(evaluation):
            _echo_table(rows, header)
            click.echo("")
        click.echo(f"AUROC of the score (anomaly vs valid): {evaluation.auroc:.4f}")
        return
    model = load_model(str(check_model_folder(model_dir)))
    results = triplet_table_accuracy(model, table)
    _echo_table(
        [[part, str(n), f"{acc:.4f}"] for part, (n, acc) in results.items()],
        ["part", "triplets", "cosine accuracy"],
    )


GATE_EXIT_CODE = 3


@main.command()
@model_option
@backend_option
@click.argument("input_file", metavar="INPUT")
@click.option("--column", default=None, help="Column holding the values (CSV, Parquet, ...).")
@click.option(
    "--output",
    "output_file",
    default=None,
    type=click.Path(path_type=Path),
    help="Write every row with verdict, score, nearest, suggestion (.csv/.tsv/.parquet/.jsonl).",
)
@click.option(
    "--max-anomaly-rate",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help=f"Exit with code {GATE_EXIT_CODE} when the share of anomalous rows exceeds this.",
)
@click.option("--count-missing", is_flag=True, help="Count missing cells as anomalies.")
@click.option("--top", type=int, default=15, show_default=True, help="Worst values to show.")
def validate(
    model_dir: Path,
    backend: str,
    input_file: str,
    column: str | None,
    output_file: Path | None,
    max_anomaly_rate: float | None,
    count_missing: bool,
    top: int,
) -> None:
    """Give every value of a column a verdict: valid, out_of_domain, malformed or missing.

    INPUT is a CSV, TSV, Parquet or JSONL file, a text file with one value per line, or -
    for standard input. Prints counts per verdict and the anomaly rate (out_of_domain and
    malformed rows); without --output also the worst values.
    """
    from catembed.columns import read_input, shown, summary_lines, validate_table, write_output
    from catembed.validation import Validator

    table, name = read_input(input_file, column)
    report = validate_table(Validator.load(model_dir, backend), table, name)
    if output_file is not None:
        write_output(report, output_file, input_file)
        click.echo(f"{report.rows:,} rows with verdicts written to {output_file}", err=True)
    distinct = sum(1 for n in report.rows_per_report if n)
    click.echo(f"column {name!r}: {report.rows:,} rows, {distinct:,} distinct values")
    _echo_table(summary_lines(report), ["verdict", "rows", "share", "distinct"])
    rate = report.anomaly_rate(count_missing)
    counted = "out_of_domain + malformed" + (" + missing" if count_missing else "")
    click.echo(f"anomaly rate: {rate:.2%} ({counted})")
    worst = report.worst(top)
    if output_file is None and worst:
        click.echo("")
        _echo_table(
            [
                [
                    shown(r.value),
                    f"{n:,}",
                    r.verdict.value,
                    f"{r.score:.3f}",
                    shown(r.suggestion or r.nearest, 32),
                ]
                for r, n in worst
            ],
            ["value", "rows", "verdict", "score", "suggestion / nearest"],
        )
    if max_anomaly_rate is not None and rate > max_anomaly_rate:
        click.echo(
            f"anomaly rate {rate:.2%} exceeds --max-anomaly-rate {max_anomaly_rate:.2%}", err=True
        )
        sys.exit(GATE_EXIT_CODE)


@main.command()
@model_option
@backend_option
@click.argument("values", nargs=-1)
@click.option("--input", "input_file", default=None, help="Read values from a file (- for stdin).")
@click.option("--column", default=None, help="Column of --input holding the values.")
@click.option(
    "--output",
    "output_file",
    default=None,
    type=click.Path(path_type=Path),
    help="Write .jsonl, .npy or .parquet (default: JSONL to stdout).",
)
def encode(
    model_dir: Path,
    backend: str,
    values: tuple[str, ...],
    input_file: str | None,
    column: str | None,
    output_file: Path | None,
) -> None:
    """Embed values given as arguments, in a file, or on stdin."""
    import numpy as np
    import pyarrow as pa

    from catembed.backends import load_encoder
    from catembed.tables import atomic_file, read_column, table_format, write_table

    if values and input_file:
        raise click.UsageError("give values as arguments or with --input, not both")
    texts = (
        list(values)
        if values
        else [
            ("" if v is None else str(v))
            for v in read_column(input_file or "-", column).to_pylist()
        ]
    )
    if not texts:
        raise CatembedError("no values to encode")
    model = load_encoder(model_dir, backend)
    vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=128)
    fmt = table_format(output_file) if output_file else "jsonl"
    if output_file is None:
        for text, vector in zip(texts, vectors, strict=True):
            click.echo(
                json.dumps(
                    {"value": text, "embedding": [round(float(x), 6) for x in vector]},
                    ensure_ascii=False,
                )
            )
    elif fmt == "npy":
        with atomic_file(output_file) as tmp, tmp.open("wb") as handle:
            np.save(handle, vectors.astype(np.float32))
    elif fmt in ("jsonl", "parquet"):
        write_table(
            pa.table(
                {"value": texts, "embedding": [v.tolist() for v in vectors.astype(np.float32)]}
            ),
            output_file,
        )
    else:
        raise click.UsageError("--output must end in .jsonl, .npy or .parquet")
    if output_file is not None:
        click.echo(
            f"{len(texts)} embeddings of dimension {vectors.shape[1]} written to {output_file}",
            err=True,
        )


@main.command()
@model_option
@backend_option
@click.argument("values", nargs=-1, required=True)
def similarity(model_dir: Path, backend: str, values: tuple[str, ...]) -> None:
    """Print the cosine similarity matrix of the given values."""
    from catembed.backends import load_encoder

    if len(values) < 2:
        raise click.UsageError("give at least two values")
    model = load_encoder(model_dir, backend)
    vectors = model.encode(list(values), normalize_embeddings=True, convert_to_numpy=True)
    matrix = vectors @ vectors.T
    labels = [v if len(v) <= 24 else v[:23] + "…" for v in values]
    _echo_table(
        [[labels[i], *(f"{x:.4f}" for x in row)] for i, row in enumerate(matrix)], ["", *labels]
    )


def serve_options(func: F) -> F:
    """Address, limits and batching knobs of `serve`; defaults from catembed.schemas/batching."""
    from catembed import batching as b
    from catembed import schemas as s

    options: list[tuple[str, type, Any, str]] = [
        ("--host", str, s.DEFAULT_HOST, "Address to listen on."),
        ("--port", int, s.DEFAULT_PORT, "Port to listen on."),
        ("--max-inputs", int, s.DEFAULT_MAX_INPUTS, "Texts per request."),
        ("--max-input-chars", int, s.DEFAULT_MAX_INPUT_CHARS, "Characters per text."),
        ("--max-body-bytes", int, s.DEFAULT_MAX_BODY_BYTES, "Request body size (else 413)."),
        ("--max-similarity-cells", int, s.DEFAULT_MAX_SIMILARITY_CELLS, "Cells of a matrix."),
        ("--max-batch-size", int, b.DEFAULT_MAX_BATCH_SIZE, "Texts per encode call."),
        ("--max-wait-ms", float, b.DEFAULT_MAX_WAIT_MS, "How long a batch waits for more."),
        ("--cache-size", int, b.DEFAULT_CACHE_SIZE, "Cached embeddings (0: no cache)."),
        ("--max-pending-texts", int, b.DEFAULT_MAX_PENDING_TEXTS, "Queued texts (else 503)."),
        ("--graceful-timeout", float, s.DEFAULT_GRACEFUL_SHUTDOWN_S, "Seconds to finish requests."),
    ]
    for name, kind, default, text in reversed(options):
        func = click.option(name, type=kind, default=default, show_default=True, help=text)(func)
    return func


@main.command()
@model_option
@backend_option
@click.option("--model-name", default=None, help="Model id clients send (default: folder name).")
@serve_options
def serve(
    model_dir: Path,
    backend: str,
    host: str,
    port: int,
    model_name: str | None,
    graceful_timeout: float,
    **params: Any,
) -> None:
    """Serve a model over HTTP: OpenAI-compatible /v1/embeddings, /v1/validate,
    /v1/similarity, /v1/models, /health, and API docs at /docs. Stops cleanly on SIGTERM."""
    try:
        from catembed.server import serve as run_server
    except ImportError as error:
        raise click.ClickException(str(error)) from None
    from catembed.batching import BatchingConfig
    from catembed.schemas import ServerLimits

    limits = ServerLimits(**{k: params[k] for k in ServerLimits.__dataclass_fields__})
    batching = BatchingConfig(**{k: params[k] for k in BatchingConfig.__dataclass_fields__})
    run_server(
        model_dir,
        host=host,
        port=port,
        backend=backend,
        limits=limits,
        batching=batching,
        model_name=model_name,
        graceful_shutdown_s=graceful_timeout,
        log_level="warning" if logging.getLogger("catembed").level >= logging.WARNING else "info",
    )


if __name__ == "__main__":  # pragma: no cover
    main()
