"""`catembed evaluate`, `validate`, `encode` and `similarity`: commands over a trained model."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import cast

import click

from catembed._cli_options import (
    backend_option,
    echo_table,
    format_option,
    model_option,
    read_out_of_domain,
    read_valid_values,
    validator_source_options,
)
from catembed.errors import CatembedError


def _a_number(_ctx: click.Context, _param: click.Parameter, rate: float | None) -> float | None:
    if rate is not None and math.isnan(rate):
        raise click.BadParameter("must be a number in [0, 1], not nan")
    return None if rate is None else rate + 0.0  # -0 as 0: 'exceeds -0.00%' read as a typo


def _out_of_domain_for(
    valid_file: str | None, out_of_domain_file: str | None, other_input: str
) -> list[str] | None:
    """The --out-of-domain values, which only a validator built from --valid uses."""
    if out_of_domain_file is not None and valid_file is None:
        raise click.UsageError(
            "--out-of-domain needs --valid: a trained model was calibrated when it was trained"
        )
    return read_out_of_domain(out_of_domain_file, valid_file, other_input)


@click.command()
@validator_source_options
@backend_option
@format_option("--data")
@click.option(
    "--data",
    "data_file",
    required=True,
    help="Triplet file (anchor, positive, negative) or labelled values (value, label).",
)
@click.option(
    "--column",
    default=None,
    help="Column of --data holding the labelled values (default: value, or the only other).",
)
def evaluate(
    model_dir: Path | None,
    backend: str,
    data_file: str,
    valid_file: str | None,
    valid_column: str | None,
    out_of_domain_file: str | None,
    input_format: str | None,
    column: str | None,
) -> None:
    """Print the triplet accuracy of a model on a data file, or, for labelled values
    (labels valid, out_of_domain, malformed, missing), the validator's precision, recall, F1,
    AUROC and confusion matrix."""
    from catembed.backends import load_encoder
    from catembed.evaluation import triplet_table_accuracy
    from catembed.tables import misread_header, read_format, read_table, readable

    if valid_file == data_file == "-":
        raise click.UsageError("--valid and --data cannot both be standard input")
    if valid_file is None and model_dir is None:
        raise click.UsageError("give --model (a trained model folder) or --valid")
    if valid_file is None and valid_column is not None:
        raise click.UsageError("--valid-column needs --valid")
    out_of_domain = _out_of_domain_for(valid_file, out_of_domain_file, data_file)
    with readable(data_file, input_format) as source:
        table = read_table(source, fmt=input_format)
    shown = "standard input" if data_file == "-" else data_file
    read_as = read_format(data_file, input_format)
    misread = misread_header(table, read_as)  # 'value,label' read as TSV: not 'no label column'
    if misread:
        raise CatembedError(f"{shown} holds neither labelled values nor triplets: {misread}")
    names = table.column_names
    alike = [n for n in names if n.strip().casefold() == "label"]
    if "label" not in names and alike and not {"anchor", "positive", "negative"} <= set(names):
        raise CatembedError(  # else read as triplets: 'needs columns anchor, positive, ...'
            f"{shown} has no column 'label' "
            f"(did you mean {alike[0]!r}?): labelled values need a column named label"
        )
    if "label" in names:
        from catembed.metrics import evaluate_table, evaluation_tables, read_labels, values_column
        from catembed.validation import Validator

        column = values_column(table, shown, column, read_as)
        labels = read_labels(table, shown, column)  # a bad label fails before the model loads
        # --valid's column, unless named: the one named like the values', else value.
        valid = read_valid_values(valid_file, valid_column, "--valid-column", usual=column)
        if valid is not None:
            validator = Validator.from_values(
                valid, model=model_dir, out_of_domain=out_of_domain, backend=backend
            )
        else:
            validator = Validator.load(cast(Path, model_dir), backend)
        evaluation = evaluate_table(validator, table, shown, column, labels)
        for header, rows in evaluation_tables(evaluation):
            echo_table(rows, header)
            click.echo("")
        area = evaluation.auroc
        shown_area = "n/a (needs valid and anomalous values)" if area != area else f"{area:.4f}"
        click.echo(f"AUROC of the score (anomaly vs valid): {shown_area}")
        return
    # Standard input, or a pipe ('<(zcat labelled.csv.gz)') or file whose suffix says nothing,
    # read as text, as validate's INPUT is: its one column, value, holds neither.
    text = read_as == "text" and input_format in (None, "text")
    found = f"{shown} (read as text: name its format with --format)" if text else data_file
    if column is not None:  # else ignored: triplets are read from columns of their own
        raise click.UsageError(
            f"--column names the column of labelled values, and {found} has no label column"
        )
    if text:  # one column, value: 'triplet data needs columns anchor, ...' hid the cause
        raise click.UsageError(f"{found} holds neither a label column nor triplets")
    if not {"anchor", "positive", "negative"} & set(names):
        from catembed.tables import listed_columns

        # 'value,lab' was told 'triplet data needs columns anchor, ...', of labelled values
        raise CatembedError(
            f"{shown} holds neither labelled values (a label column) nor triplets (columns "
            f"anchor, positive, negative); it has: {listed_columns(table) or 'no columns'}"
        )
    if model_dir is None or valid_file is not None:
        raise click.UsageError(
            f"{found} holds no label column, so triplets: they are scored with --model alone"
            + (", not --valid" if valid_file is not None else "")
        )
    results = triplet_table_accuracy(load_encoder(model_dir, backend), table)
    echo_table(
        [[part, str(n), f"{acc:.4f}"] for part, (n, acc) in results.items()],
        ["part", "triplets", "cosine accuracy"],
    )


GATE_EXIT_CODE = 3


def plural(n: int, noun: str) -> str:
    """'1 row', '2,000 rows'."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


@click.command()
@validator_source_options
@backend_option
@click.argument("input_file", metavar="INPUT")
@click.option("--column", default=None, help="Column holding the values (CSV, Parquet, ...).")
@format_option("INPUT")
@click.option(
    "--output",
    "output_file",
    default=None,
    type=click.Path(path_type=Path),
    help="Write every row with verdict, score, nearest, suggestion (.csv/.tsv/.parquet/.jsonl; "
    "- for standard output, in INPUT's format).",
)
@click.option(
    "--max-anomaly-rate",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    callback=_a_number,
    help=f"Exit with code {GATE_EXIT_CODE} when the share of anomalous rows exceeds this.",
)
@click.option(
    "--prefix",
    default="",
    help="Put this before the added columns' names (city_verdict, city_score, ...), to "
    "validate several columns of one table in turn.",
)
@click.option(
    "--reasons", is_flag=True, help="Add a reason column: why each value got its verdict."
)
@click.option(
    "--no-column-evidence",
    is_flag=True,
    help="Judge each value alone: a value that fills as many rows as the listed ones is then "
    "not valid for that.",
)
@click.option("--count-missing", is_flag=True, help="Count missing cells as anomalies.")
@click.option(
    "--top", type=click.IntRange(min=0), default=15, show_default=True, help="Worst values to show."
)
@click.option(
    "--no-progress",
    is_flag=True,
    help="Hide the bar of distinct values judged (shown when standard error is a terminal).",
)
def validate(
    model_dir: Path | None,
    valid_file: str | None,
    valid_column: str | None,
    out_of_domain_file: str | None,
    backend: str,
    input_file: str,
    column: str | None,
    input_format: str | None,
    output_file: Path | None,
    max_anomaly_rate: float | None,
    prefix: str,
    reasons: bool,
    no_column_evidence: bool,
    count_missing: bool,
    top: int,
    no_progress: bool,
) -> None:
    """Give every value of a column a verdict: valid, out_of_domain, malformed or missing.

    INPUT is a CSV, TSV, Parquet or JSONL file (also .gz, .bz2, .zst or .lz4), a text file
    with one value per line, or - for standard input. Prints counts per verdict and the anomaly rate (out_of_domain and
    malformed rows); without --output also the worst values. The validator is the one
    `catembed train` wrote into --model, or one built from --valid without training.
    With --output -, the table goes to standard output and the summary to standard error.
    """
    from catembed.columns import (
        output_format,
        read_input,
        shown,
        summary_lines,
        validate_table,
        write_output,
    )
    from catembed.tables import STDIN, check_writable, readable, shown_path
    from catembed.validation import Validator
    from catembed.verdicts import Verdict

    if valid_file == input_file == "-":
        raise click.UsageError("--valid and INPUT cannot both be standard input")
    if valid_file is None and model_dir is None:
        raise click.UsageError(
            "give --model (a trained model folder) or --valid (a file of valid values)"
        )
    if valid_file is None and valid_column is not None:
        raise click.UsageError("--valid-column needs --valid")
    out_of_domain = _out_of_domain_for(valid_file, out_of_domain_file, input_file)
    if prefix and output_file is None:
        raise click.UsageError("--prefix names the columns written to --output; give --output")
    summary_to_stderr = output_file is not None and str(output_file) == STDIN
    with readable(input_file, input_format) as source:
        if output_file is not None:  # checked before the slow part
            fmt = output_format(output_file, source, input_format, valid_file, out_of_domain_file)
        table, name = read_input(source, column, input_format)
        if output_file is not None:
            check_writable(table, output_file, fmt)  # a list column to CSV, say
        valid = read_valid_values(valid_file, valid_column, "--valid-column", usual=name)
        if valid is not None:
            validator = Validator.from_values(
                valid, model=model_dir, out_of_domain=out_of_domain, backend=backend
            )
        else:
            validator = Validator.load(cast(Path, model_dir), backend)
        if output_file is None:
            # Nothing is written, so no input column is replaced or dropped (and none said to
            # be): any names that clash with none will do.
            prefix = "\0"
        report = validate_table(
            validator,
            table,
            name,
            prefix,
            not no_column_evidence,
            reasons,
            show_progress=not no_progress and sys.stderr.isatty(),
        )
        if output_file is not None:
            write_output(report, output_file, source, input_format)
            where = shown_path(output_file)
            click.echo(f"{plural(report.rows, 'row')} with verdicts written to {where}", err=True)
    distinct = sum(report.distinct().values())
    click.echo(
        f"column {name!r}: {plural(report.rows, 'row')}, {plural(distinct, 'distinct value')}",
        err=summary_to_stderr,
    )
    echo_table(
        summary_lines(report), ["verdict", "rows", "share", "distinct"], err=summary_to_stderr
    )
    trusted = report.valid_for_rows()
    if trusted:
        example = ", ".join(repr(shown(r.value, 32)) for r, _ in trusted[:3])
        values = plural(len(trusted), "distinct value")
        click.echo(
            f"{values} ({plural(sum(n for _, n in trusted), 'row')}: {example}) "
            f"{'is' if len(trusted) == 1 else 'are'} valid only for filling as many rows as the "
            "listed values; --no-column-evidence judges each value alone",
            err=summary_to_stderr,
        )
    rate = report.anomaly_rate(count_missing)
    counted = "out_of_domain + malformed" + (" + missing" if count_missing else "")
    click.echo(f"anomaly rate: {rate:.2%} ({counted})", err=summary_to_stderr)
    worst = report.worst(top, count_missing)
    if output_file is None and worst:
        click.echo("")
        echo_table(
            [
                [
                    "(missing)" if r.verdict is Verdict.MISSING else shown(r.value),
                    f"{n:,}",
                    r.verdict.value,
                    f"{r.score:.3f}",
                    shown(r.suggestion, 32) if r.suggestion else "",
                    shown(r.nearest, 32) if r.nearest and r.nearest != r.suggestion else "",
                    *([shown(r.reason, 72)] if reasons else []),
                ]
                for r, n in worst
            ],
            ["value", "rows", "verdict", "score", "suggestion", "nearest"]
            + (["reason"] if reasons else []),
        )
    if max_anomaly_rate is not None and rate > max_anomaly_rate:
        shown_rate, shown_limit = _told_apart(rate, max_anomaly_rate)
        click.echo(f"anomaly rate {shown_rate} exceeds --max-anomaly-rate {shown_limit}", err=True)
        sys.exit(GATE_EXIT_CODE)


def _told_apart(rate: float, limit: float) -> tuple[str, str]:
    """``rate`` and ``limit`` as percentages with the decimals it takes to tell them apart (2
    at least): 1 row of 3 over a limit of 0.3333 was '33.33% exceeds 33.33%'."""
    for digits in range(2, 21):
        shown = f"{rate:.{digits}%}", f"{limit:.{digits}%}"
        if shown[0] != shown[1]:
            return shown
    return f"{rate!r}", f"{limit!r}"


@click.command()
@model_option
@backend_option
@click.argument("values", nargs=-1)
@click.option("--input", "input_file", default=None, help="Read values from a file (- for stdin).")
@click.option("--column", default=None, help="Column of --input holding the values.")
@format_option("--input")
@click.option(
    "--output",
    "output_file",
    default=None,
    type=click.Path(path_type=Path),
    help="Write .jsonl, .npy or .parquet (default, or -: JSONL to stdout).",
)
def encode(
    model_dir: Path,
    backend: str,
    values: tuple[str, ...],
    input_file: str | None,
    column: str | None,
    input_format: str | None,
    output_file: Path | None,
) -> None:
    """Embed values given as arguments, in a file, or on stdin."""
    import numpy as np
    import pyarrow as pa

    from catembed.backends import check_encodable, load_encoder
    from catembed.tables import (
        STDIN,
        output_stream,
        read_format,
        read_table,
        readable,
        same_file,
        select_column,
        table_format,
        writable,
        write_table,
    )
    from catembed.verdicts import as_text, widened

    if values and input_file:
        raise click.UsageError("give values as arguments or with --input, not both")
    if values and (column or input_format):
        raise click.UsageError(
            "--column and --format describe --input, not values given as arguments"
        )
    if not values and input_file is None and sys.stdin.isatty():  # else it waits for a typist
        raise click.UsageError("give values as arguments, --input FILE, or pipe them to stdin")
    if output_file == Path(STDIN):  # standard output, as validate's --output - is
        output_file = None
    fmt = table_format(output_file) if output_file else "jsonl"
    if fmt not in ("jsonl", "npy", "parquet"):
        raise click.UsageError(
            "--output must end in .jsonl, .npy or .parquet (and may add .gz, .bz2, .zst or .lz4)"
        )
    if output_file is not None:
        target = writable(output_file, stdout=True)  # before the slow part
        if input_file not in (None, STDIN) and same_file(target, input_file):
            raise CatembedError("--output must not be the --input file: inputs are never modified")
    array = None
    if not values:
        path = input_file or STDIN
        with readable(path, input_format) as source:
            table = read_table(source, fmt=input_format)
        shown = "standard input" if path == STDIN else path
        read_as = read_format(path, input_format)
        stdin_text = input_format is None and read_as == "text"  # a pipe, <(zcat f.csv.gz)
        array = select_column(table, column, shown, stdin_as_text=stdin_text, fmt=read_as)
        if pa.types.is_dictionary(array.type):  # a pandas category column, say
            array = array.cast(array.type.value_type)
    if array is not None and pa.types.is_nested(array.type):  # dates, booleans: as validate
        raise CatembedError(f"cannot encode a column of {array.type}: give a column of texts")
    # Cells read as validate reads them: 35233.0 is '35233', NaN is missing.
    cells = list(values) if array is None else [as_text(v) for v in widened(array).to_pylist()]
    texts = ["" if v is None else v for v in cells]
    if not texts:
        raise CatembedError("no values to encode")
    check_encodable(texts)
    missing = sum(v is None for v in cells)
    if missing:  # kept, so that row i of the output is still row i of the input
        click.echo(f"{plural(missing, 'missing cell')} encoded as empty text", err=True)
    model = load_encoder(model_dir, backend)
    distinct = list(dict.fromkeys(texts))  # a categorical column repeats its values
    row_of = {text: row for row, text in enumerate(distinct)}
    vectors = model.encode(
        distinct, normalize_embeddings=True, convert_to_numpy=True, batch_size=128
    )[[row_of[text] for text in texts]]
    if output_file is None:
        for text, vector in zip(texts, vectors, strict=True):
            click.echo(
                json.dumps(
                    {"value": text, "embedding": [round(float(x), 6) for x in vector]},
                    ensure_ascii=False,
                )
            )
    elif fmt == "npy":
        with output_stream(output_file) as handle:
            np.save(handle, vectors.astype(np.float32))
    else:
        write_table(
            pa.table(
                {"value": texts, "embedding": [v.tolist() for v in vectors.astype(np.float32)]}
            ),
            output_file,
        )
    if output_file is not None:
        click.echo(
            f"{plural(len(texts), 'embedding')} of dimension {vectors.shape[1]} written to "
            f"{output_file}",
            err=True,
        )


@click.command()
@model_option
@backend_option
@click.argument("values", nargs=-1, required=True)
def similarity(model_dir: Path, backend: str, values: tuple[str, ...]) -> None:
    """Print the cosine similarity matrix of the given values."""
    from catembed.backends import check_encodable, load_encoder
    from catembed.columns import shown

    if len(values) < 2:
        raise click.UsageError("give at least two values")
    check_encodable(values)
    model = load_encoder(model_dir, backend)
    vectors = model.encode(list(values), normalize_embeddings=True, convert_to_numpy=True)
    matrix = vectors @ vectors.T
    labels = [shown(v, 24) for v in values]  # a tab or line break would break the table
    echo_table(
        [[labels[i], *(f"{x:.4f}" for x in row)] for i, row in enumerate(matrix)], ["", *labels]
    )
