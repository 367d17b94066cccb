"""`catembed dataset build`, `catembed kinds` and `catembed train`."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from catembed._cli_options import (
    check_domain,
    check_output_folder,
    dataset_options,
    dataset_overrides,
    echo_table,
    read_out_of_domain,
    read_valid_values,
    values_source_options,
)

DATASET_FORMATS = ("csv", "jsonl", "parquet")


@click.group()
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
    type=click.Choice(DATASET_FORMATS),
    default="csv",
    show_default=True,
)
@click.option(
    "--base-model", default=None, help="Model whose tokenizer counts tokens for the statistics."
)
@click.option("--overwrite", is_flag=True, help="Replace train and eval files already there.")
def dataset_build(
    valid_file: str | None,
    column: str | None,
    out_of_domain_file: str | None,
    output_dir: Path,
    fmt: str,
    base_model: str | None,
    overwrite: bool,
    seed: int | None,
    domain: str | None,
    **params: Any,
) -> None:
    """Build train and eval triplet files and print their statistics."""
    from catembed.config import load_configs
    from catembed.dataset import build_triplets, token_statistics
    from catembed.models import load_tokenizer
    from catembed.tables import atomic_file, new_folder, same_file, write_table
    from catembed.vocabulary import DEFAULT_DOMAIN, domain_values

    check_domain(valid_file, domain)
    training, data = load_configs(
        None, {"seed": seed, "base_model": base_model}, dataset_overrides(params)
    )
    if output_dir.exists() and not output_dir.is_dir():
        raise click.ClickException(f"{output_dir} is a file, not a folder")
    paths = {split: output_dir / f"{split}.{fmt}" for split in ("train", "eval")}
    taken = [  # in any format: a folder of one dataset, not csv files of one, jsonl of another
        output_dir / f"{split}.{suffix}"
        for split in paths
        for suffix in DATASET_FORMATS
        if (output_dir / f"{split}.{suffix}").exists()
    ]
    if taken and not overwrite:
        raise click.ClickException(f"{taken[0]} already exists; pass --overwrite to replace it")
    for given in (valid_file, out_of_domain_file):
        if given is not None and any(same_file(path, given) for path in taken):
            raise click.ClickException(
                f"{given} is one of the files --overwrite replaces in {output_dir}; "
                "move it or choose another --output"
            )
    values = read_valid_values(valid_file, column)
    out_of_domain = read_out_of_domain(out_of_domain_file, valid_file)
    tokenizer = load_tokenizer(training.base_model)  # a bad --base-model fails before any write
    triplets = build_triplets(
        values if values is not None else domain_values(domain or DEFAULT_DOMAIN),
        data,
        out_of_domain,
    )
    tables = {split: triplets.table(split) for split in paths}
    with ExitStack() as stack:
        try:  # stopped or failed, no empty folders it made are left behind
            stack.enter_context(new_folder(output_dir))
        except OSError as error:
            raise click.ClickException(
                f"cannot create {output_dir}: {error.strerror or error}"
            ) from None
        # Both files are renamed into place only once both are written: stopped between them,
        # a new train file beside the old eval file would evaluate on values it trained on.
        for split, path in paths.items():
            write_table(tables[split], stack.enter_context(atomic_file(path)), fmt)
    for split, path in paths.items():
        click.echo(f"{path}: {tables[split].num_rows} triplets")
        stats = token_statistics(tables[split], tokenizer)
        echo_table(
            [
                [col, f"{s['min']:.0f}", f"{s['mean']:.2f}", f"{s['max']:.0f}"]
                for col, s in stats.items()
            ],
            ["column", "min tokens", "mean tokens", "max tokens"],
        )
    for other in taken:
        if other not in paths.values():
            other.unlink()  # the replaced dataset's file in another format
    click.echo(
        f"valid values: {len(triplets.train_values)} for training, {len(triplets.heldout_values)} held out; "
        f"evaluation: {len(triplets.eval_seen)} seen + {len(triplets.eval_heldout)} held-out triplets"
    )


@click.command()
def kinds() -> None:
    """List the corruption kinds and the built-in domains."""
    from catembed.dataset import DEFAULT_CORRUPTION_KINDS, HIDDEN_FROM_TOKENIZER
    from catembed.vocabulary import load_vocabulary

    click.echo("corruption kinds trained on by default: " + ", ".join(DEFAULT_CORRUPTION_KINDS))
    click.echo(
        "caught by string rules only (the tokenizer cannot see them): "
        + ", ".join(HIDDEN_FROM_TOKENIZER)
    )
    for name, values in load_vocabulary().items():
        click.echo(f"domain {name}: {len(values)} values, e.g. {', '.join(values[:4])}")


@click.command("train")
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
@click.option(
    "--bf16",
    is_flag=True,
    help="Opt-in bfloat16 autocast (faster on CPUs with bf16 support; the seed recipe is float32).",
)
def train_command(
    valid_file: str | None,
    column: str | None,
    out_of_domain_file: str | None,
    output_dir: Path | None,
    config_file: Path | None,
    overwrite: bool,
    no_progress: bool,
    stock: bool,
    bf16: bool,
    domain: str | None,
    **params: Any,
) -> None:
    """Fine-tune with the seed recipe, evaluate, and write the model and its card.

    With no arguments it trains on the built-in apparel domain.
    """
    from catembed.config import load_configs
    from catembed.training import train
    from catembed.vocabulary import DEFAULT_DOMAIN, domain_values

    check_domain(valid_file, domain)
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
    overrides["bf16"] = True if bf16 else None
    training, data = load_configs(config_file, overrides, dataset_overrides(params))
    values = read_valid_values(valid_file, column)
    out_of_domain = read_out_of_domain(out_of_domain_file, valid_file)
    if values is None:
        domain_values(domain or DEFAULT_DOMAIN)  # fail fast on an unknown domain
    name = "custom" if values is not None else (domain or DEFAULT_DOMAIN)
    output = output_dir or Path("models") / f"catembed-{name}"
    inputs = {"--valid": valid_file, "--out-of-domain": out_of_domain_file, "--config": config_file}
    check_output_folder(output, overwrite, inputs)
    result = train(
        values,
        output,
        training,
        data,
        domain=domain,
        overwrite=overwrite,
        show_progress=not no_progress,
        out_of_domain=out_of_domain,
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
    if rows:
        echo_table(rows, ["evaluation", "base model", "fine-tuned"])
    else:
        click.echo("no evaluation: the dataset has no evaluation triplets (--eval-size 0)")
    click.echo(
        f"\ntrained in {result.train_seconds:.1f} s ({result.samples_per_second:.1f} samples/s)"
    )
    click.echo(f"model and card written to {output}")
