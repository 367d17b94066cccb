"""Shared options and helpers of the ``catembed`` commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from catembed.errors import CatembedError, InputError

F = TypeVar("F", bound=Callable[..., Any])

TABLE_FORMATS = ("csv", "tsv", "parquet", "jsonl", "text")  # what catembed.tables reads

MODEL_ENVVAR = "CATEMBED_MODEL"


def model_option(func: F) -> F:
    return optional_model_option(f"Trained model folder (or ${MODEL_ENVVAR}).", True)(func)


def optional_model_option(help: str, required: bool = False) -> Callable[[F], F]:
    return click.option(
        "--model",
        "model_dir",
        required=required,
        envvar=MODEL_ENVVAR,
        type=click.Path(),
        callback=_model_path,
        help=help,
    )


def _model_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    # Path('') is the current folder: an empty --model (or $CATEMBED_MODEL) named it unawares.
    if value == "":
        raise click.BadParameter("must not be empty (the current folder is '.')")
    return None if value is None else Path(value)


def backend_option(func: F) -> F:
    from catembed.backends import DEFAULT_BACKEND, Backend

    return click.option(
        "--backend",
        type=click.Choice([b.value for b in Backend]),
        default=DEFAULT_BACKEND.value,
        show_default=True,
        envvar="CATEMBED_BACKEND",
        help="Inference backend (auto: onnx where onnxruntime is installed and the model has an "
        "ONNX export, which train writes; else torch).",
    )(func)


def _out_of_domain_option(help_text: str) -> Callable[[F], F]:
    return click.option("--out-of-domain", "out_of_domain_file", default=None, help=help_text)


def values_source_options(func: F) -> F:
    """--valid FILE, --column and --out-of-domain FILE, shared by `dataset build` and `train`."""
    func = _out_of_domain_option(
        "Values of other domains to use as negatives instead of the built-in domains "
        "(a text file or a one-column table; - for stdin)."
    )(func)
    func = click.option(
        "--column", default=None, help="Column of --valid holding the values (CSV, Parquet, ...)."
    )(func)
    return click.option(
        "--valid",
        "valid_file",
        default=None,
        help="Valid values: a text file (one per line) or a CSV/TSV/Parquet/JSONL file; - for stdin.",
    )(func)


def validator_source_options(func: F) -> F:
    """--model, or --valid FILE, --valid-column and --out-of-domain FILE: the validator of
    `validate` and `evaluate`, trained or built from a list."""
    func = _out_of_domain_option(
        "With --valid: values of other domains to calibrate against instead of the built-in "
        "domains (a text file or a one-column table)."
    )(func)
    func = click.option(
        "--valid-column", default=None, help="Column of --valid holding the values."
    )(func)
    func = click.option(
        "--valid",
        "valid_file",
        default=None,
        help="Instead of a trained model: valid values (text, CSV, Parquet ... file; - for "
        "stdin), judged with --model or the offline base model, no training.",
    )(func)
    return optional_model_option(
        f"Trained model folder (or ${MODEL_ENVVAR}); with --valid, the model to build from."
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
            help="Comma-separated corruption kinds (default: all but case_noise, whitespace and "
            "control_chars, which the tokenizer cannot see; see `catembed kinds`).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_domain(valid_file: str | None, domain: str | None) -> None:
    """--domain picks the values --valid would give: both at once left --domain unused."""
    if valid_file is not None and domain is not None:
        raise click.UsageError("give --valid or --domain (built-in values), not both")


def dataset_overrides(params: dict[str, Any]) -> dict[str, Any]:
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


def read_valid_values(
    valid_file: str | None,
    column: str | None,
    column_option: str = "--column",
    usual: str | None = None,
) -> list[str] | None:
    """The values of ``valid_file``'s column (``column``, else one named ``usual``)."""
    if valid_file is None:
        if column is not None:
            raise click.UsageError(f"{column_option} needs --valid")
        return None
    return _read_list(valid_file, column, column_option, usual, "valid")


def read_out_of_domain(path: str | None, *others: str | None) -> list[str] | None:
    """The values of the --out-of-domain file ``path`` (None when not given); ``others`` are
    the command's other inputs, which standard input can feed only one of."""
    if path is None:
        return None
    if path == "-" and "-" in others:
        raise click.UsageError("only one of --out-of-domain and the other inputs can be stdin")
    option = "a 'value' column (--out-of-domain reads one)"
    return _read_list(path, None, option, "value", "out-of-domain")


def _read_list(
    path: str, column: str | None, option: str, usual: str | None, kind: str
) -> list[str]:
    """The distinct values of ``path``'s column, or an error naming the ``kind`` of values."""
    from catembed.tables import read_values

    values = read_values(path, column, option, usual)
    if not values:
        raise CatembedError(f"no {kind} values found in {path}")
    return values


def check_output_folder(output: Path, overwrite: bool, inputs: dict[str, Any]) -> None:
    """Refuse an --output folder that is one of ``inputs`` (option: path; None or - for none)
    or holds one, so that no input is ever replaced: checked before the slow part."""
    from catembed.tables import STDIN, same_file

    for option, given in inputs.items():
        if given is None or str(given) == STDIN:
            continue
        if same_file(output, str(given)):
            raise InputError(f"--output {output} is the {option} file; name a new folder")
        # Its own name too, not only where it leads: a link inside the folder goes with it.
        inside = Path(given).resolve().is_relative_to(output.resolve()) or Path(
            os.path.abspath(given)
        ).is_relative_to(os.path.abspath(output))
        if inside:
            replaced = ", which --overwrite would delete; move it or" if overwrite else ";"
            raise InputError(
                f"--output {output} holds the {option} file {given}{replaced} name a new folder"
            )


def echo_table(rows: list[list[str]], header: list[str], err: bool = False) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    click.echo(line.format(*header), err=err)
    click.echo(line.format(*("-" * w for w in widths)), err=err)
    for row in rows:
        click.echo(line.format(*row), err=err)


def format_option(argument: str) -> Callable[[F], F]:
    """--format: the format of ``argument`` when its suffix does not say."""
    return click.option(
        "--format",
        "input_format",
        type=click.Choice(TABLE_FORMATS),
        default=None,
        help=f"Format of {argument} when its suffix does not say (standard input: text).",
    )
