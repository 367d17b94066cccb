"""Validating a table column: each distinct value is judged once, results mapped to every row.

Columns repeat values heavily, so the column is dictionary-encoded (Parquet columns are read
that way directly), the validator judges the dictionary, and the report columns are built as
dictionary arrays over the same indices: 10 million rows with 1,000 distinct values cost 1,000
judgements and a few arrays of row indices.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catembed import jsonl
from catembed.column_evidence import established_only
from catembed.errors import InputError
from catembed.tables import (
    STDIN,
    TEXT_COLUMN,
    TextStyle,
    input_stream,
    no_column,
    output_stream,
    parquet_schema,
    read_format,
    read_table,
    same_file,
    starts_with_bom,
    table_format,
    unpicked_column,
    warn_if_misread,
    writable,
    write_table,
)
from catembed.verdicts import (
    ANOMALIES,
    ValueReport,
    Verdict,
    as_text,
    holds_many_per_cell,
    missing_report,
    widened,
)

if TYPE_CHECKING:
    from catembed.validation import Validator

logger = logging.getLogger(__name__)

REPORT_COLUMNS = ("verdict", "score", "nearest", "suggestion")
OUTPUT_FORMATS = ("csv", "tsv", "parquet", "jsonl")
SHOWN_CHARACTERS = 48


@dataclass(frozen=True)
class ColumnReport:
    """The input table with the report columns added, and one report per distinct value."""

    table: pa.Table
    column: str
    reports: list[ValueReport]  # one per distinct value; missing cells share the last one
    rows_per_report: list[int]
    names: tuple[str, ...] = REPORT_COLUMNS  # of the added columns, as in the table
    dropped: tuple[str, ...] = ()  # input columns of an earlier run left out

    def fields(self, report: ValueReport) -> list[object]:
        """``report``'s values of the added columns (``reason`` last, when it is one)."""
        values = (report.verdict.value, report.score, report.nearest, report.suggestion)
        return [*values, report.reason][: len(self.names)]

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    def counts(self) -> dict[Verdict, int]:
        counts = dict.fromkeys(Verdict, 0)
        for report, rows in zip(self.reports, self.rows_per_report, strict=True):
            counts[report.verdict] += rows
        return counts

    def distinct(self) -> dict[Verdict, int]:
        """Distinct values per verdict, missing cells (empty, blank, null) as one, as in
        ``worst``."""
        distinct = dict.fromkeys(Verdict, 0)
        for report, rows in zip(self.reports, self.rows_per_report, strict=True):
            if rows:
                distinct[report.verdict] += 1
        distinct[Verdict.MISSING] = min(distinct[Verdict.MISSING], 1)
        return distinct

    def anomaly_rate(self, count_missing: bool = False) -> float:
        counts = self.counts()
        bad = sum(counts[v] for v in ANOMALIES) + (counts[Verdict.MISSING] if count_missing else 0)
        return bad / self.rows if self.rows else 0.0

    def valid_for_rows(self) -> list[tuple[ValueReport, int]]:
        """The values valid only for filling as many rows as the listed ones, and their rows."""
        pairs = zip(self.reports, self.rows_per_report, strict=True)
        return [(r, n) for r, n in pairs if n and established_only(r)]

    def worst(self, limit: int = 10, count_missing: bool = False) -> list[tuple[ValueReport, int]]:
        """The ``limit`` likeliest anomalies (missing cells too with ``count_missing``, as one
        report: empty, blank and null cells alike) and their rows."""
        reports = list(zip(self.reports, self.rows_per_report, strict=True))
        pairs = [(r, n) for r, n in reports if n and r.verdict in ANOMALIES]
        missing = sum(n for r, n in reports if r.verdict is Verdict.MISSING)
        if count_missing and missing:
            pairs.append((missing_report(None), missing))
        pairs.sort(key=lambda pair: (-pair[0].score, -pair[1]))
        return pairs[:limit]


def read_input(path: str, column: str | None, fmt: str | None = None) -> tuple[pa.Table, str]:
    """Read the table to validate (``fmt``: its format, if not the suffix's) and name the
    column holding the values."""
    table = read_table(path, dictionary=(column,) if column else (), fmt=fmt)
    source = "standard input" if path == STDIN else path
    if column is None:
        if table.num_columns == 1:
            column = table.column_names[0]
            if fmt is None and path != STDIN:  # a format named is taken at its word
                warn_if_misread(table, source, table_format(path))
        elif TEXT_COLUMN in table.column_names:
            column = TEXT_COLUMN
        else:
            raise unpicked_column(table, source)
    elif column not in table.column_names:
        read_as = read_format(path, fmt)
        raise no_column(table, column, source, fmt is None and read_as == "text", read_as)
    if table.num_rows == 0:
        raise InputError(f"{source} has no rows to validate")
    check_one_value_per_cell(table, column)  # now, not once the model has loaded
    return table, column


def check_one_value_per_cell(table: pa.Table, column: str) -> None:
    """Raise InputError when ``column`` holds lists, objects or maps."""
    kind = table.schema.field(column).type
    if holds_many_per_cell(kind):
        raise one_value_per_cell(column, kind)


def one_value_per_cell(column: str, kind: pa.DataType) -> InputError:
    """The error for a column of lists, objects or maps, which ``validate`` cannot judge."""
    return InputError(f"column {column!r} holds {kind} values; validate needs one value per cell")


def validate_table(
    validator: Validator,
    table: pa.Table,
    column: str,
    prefix: str = "",
    column_evidence: bool = True,
    reasons: bool = False,
    show_progress: bool = False,
) -> ColumnReport:
    """Add ``verdict``, ``score``, ``nearest`` and ``suggestion`` (and ``reason`` with
    ``reasons``) to every row of ``table``, named with ``prefix`` first so that several
    columns can be validated in turn; the column's row counts are evidence unless
    ``column_evidence`` is off. ``show_progress`` shows a bar of distinct values judged."""
    names = tuple(prefix + name for name in (*REPORT_COLUMNS, *(["reason"] if reasons else [])))
    if column in names:
        hint = "rename it" if prefix else "rename it or give --prefix"
        raise InputError(
            f"the column to validate is named {column!r}, as a column validate adds; {hint}"
        )
    encoded = _dictionary_encode(table.column(column), column)
    dictionary = encoded.chunk(0).dictionary if encoded.num_chunks else pa.array([], pa.string())
    missing = len(dictionary)  # nulls point one past the dictionary, at the missing report
    indices = [pc.fill_null(c.indices, pa.scalar(missing, c.indices.type)) for c in encoded.chunks]
    counts = np.zeros(missing + 1, dtype=np.int64)
    for chunk in indices:
        counts += np.bincount(chunk.to_numpy(zero_copy_only=False), minlength=missing + 1)
    reports = validator.validate(
        widened(dictionary).to_pylist(),
        rows=counts[:missing].tolist(),
        column_evidence=column_evidence,
        show_progress=show_progress,
    )
    reports.append(missing_report(None))
    columns = [
        pa.array([r.verdict.value for r in reports], pa.string()),
        pa.array([r.score for r in reports], pa.float64()),
        pa.array([r.nearest for r in reports], pa.string()),
        pa.array([r.suggestion for r in reports], pa.string()),
        pa.array([r.reason for r in reports], pa.string()),
    ][: len(names)]
    out = table
    for name in names:
        if name in out.column_names:
            logger.warning("replacing the input's own %r column", name)
            out = out.drop_columns([name])
    stale: tuple[str, ...] = ()
    reason = prefix + "reason"
    if not reasons and names[0] in table.column_names and reason in table.column_names:
        # An earlier run's output: its reasons would contradict the new verdicts.
        logger.warning("dropping the input's %r column, an earlier run's reasons", reason)
        out, stale = out.drop_columns([reason]), (reason,)
    for name, values in zip(names, columns, strict=True):
        if pa.types.is_floating(values.type):  # the score: plain, the texts: dictionaries
            kind = values.type
            chunks = [pc.take(values, chunk) for chunk in indices]
        else:
            kind = pa.dictionary(pa.int32(), values.type)
            chunks = [pa.DictionaryArray.from_arrays(chunk, values) for chunk in indices]
        out = out.append_column(name, pa.chunked_array(chunks, type=kind))
    return ColumnReport(out, column, reports, [int(n) for n in counts], names, stale)


def output_format(
    path: str | Path,
    source: str,
    source_format: str | None = None,
    valid: str | None = None,
    out_of_domain: str | None = None,
) -> str:
    """The format ``path`` will be written in, once it is checked: a table format, not the
    input file nor the files of valid values ``valid`` or of negatives ``out_of_domain``, a
    file in an existing folder; ``-`` (standard output) takes the input's format (a text
    input's is CSV)."""
    source_format = read_format(source, source_format)
    if str(path) == STDIN:
        return "csv" if source_format == "text" else source_format
    fmt = table_format(path)
    if fmt not in OUTPUT_FORMATS:
        from catembed.config import OptionError  # pydantic: only when needed

        raise OptionError(  # a usage error in the CLI, as encode's
            "must end in .csv, .tsv, .parquet or .jsonl (and may add .gz, .bz2, .zst or .lz4), "
            f"got {path}",
            param_hint="'--output'",
        )
    target = writable(path, stdout=True)
    if source != STDIN and same_file(target, source):
        raise InputError("--output must not be the input file: the input is never modified")
    for option, given in (("--valid", valid), ("--out-of-domain", out_of_domain)):
        if given is not None and given != STDIN and same_file(target, given):
            raise InputError(f"--output must not be the {option} file: inputs are never modified")
    return fmt


def write_output(
    report: ColumnReport, path: str | Path, source: str, source_format: str | None = None
) -> None:
    """Write the validated table atomically (see ``output_format``)."""
    fmt, read_as = output_format(path, source, source_format), read_format(source, source_format)
    if fmt == "jsonl" and source != STDIN and read_as == "jsonl":
        _append_to_jsonl(report, source, path)
        return
    table = report.table
    if fmt == "parquet":
        # Min/max statistics of 10 million dictionary-encoded strings cost more than the rest
        # of the write together; keep them for the plain columns only (the validated column
        # was read dictionary-encoded, whatever its type in the file).
        plain = [f.name for f in table.schema if not pa.types.is_dictionary(f.type)]
        if read_as == "parquet":
            table = _as_written(table, report.column, parquet_schema(source))
        write_table(table, path, fmt, write_statistics=plain, row_group_size=2**20)
        return
    columns = []  # in CSV/TSV an empty report field as an empty cell
    for name, column in zip(table.column_names, table.columns, strict=True):
        if fmt != "jsonl" and name in report.names:
            column = _empty_as_null(column)
        columns.append(column)
    text_input = source != STDIN and read_as in ("csv", "tsv")
    style = TextStyle.of(source) if text_input else None  # CRLF and a BOM kept
    write_table(pa.table(columns, names=table.column_names), path, fmt, style)


def _as_written(table: pa.Table, column: str, schema: pa.Schema) -> pa.Table:
    """``table`` with ``column``, read dictionary-encoded, back as ``schema`` has it (a
    string column stays one, not pandas' category)."""
    field = schema.field(column)
    if table.schema.field(column).type == field.type:
        return table
    index = table.column_names.index(column)
    cells = table.column(column)
    if pa.types.is_dictionary(cells.type) and not pa.types.is_dictionary(field.type):
        cells = cells.cast(cells.type.value_type)  # no cast from a dictionary to string_view
    return table.set_column(index, field, cells.cast(field.type))


def _empty_as_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Empty texts of a text column as nulls; a dictionary column stays one, its dictionary
    changed (a few values, where its rows are millions)."""
    if pa.types.is_dictionary(column.type):
        if not pa.types.is_string(column.type.value_type):
            return column
        chunks = [
            pa.DictionaryArray.from_arrays(c.indices, _no_empty(c.dictionary))
            for c in column.chunks
        ]
        return pa.chunked_array(chunks, type=column.type)
    return _no_empty(column) if pa.types.is_string(column.type) else column


def _no_empty(texts: Any) -> Any:
    return pc.if_else(pc.equal(texts, ""), pa.scalar(None, texts.type), texts)


def _append_to_jsonl(report: ColumnReport, source: str, target: str | Path) -> None:
    """Each input line as written, with the report's fields added (``jsonl.with_fields``)."""
    fragments = [
        json.dumps(dict(zip(report.names, report.fields(r), strict=True)), ensure_ascii=False)[1:-1]
        for r in report.reports
    ]
    chunks = report.table.column(report.names[0]).chunks
    row_reports = np.concatenate(
        [c.indices.to_numpy(zero_copy_only=False) for c in chunks] or [np.zeros(0, np.int32)]
    )
    written = 0
    with output_stream(target) as out:
        if starts_with_bom(source):
            out.write("\ufeff".encode())
        for _, line in jsonl.lines(input_stream(source), source):
            if not line.strip():  # a blank line: no row, kept as written
                out.write(line.encode())
                continue
            if written == len(row_reports):
                raise InputError(f"{source} changed while it was being validated")
            text = line.rstrip("\r\n")
            fields = fragments[row_reports[written]]
            out.write((jsonl.with_fields(text, fields, report.names + report.dropped)).encode())
            out.write(line[len(text) :].encode())
            written += 1
    if written != report.rows:
        raise InputError(f"{source} changed while it was being validated")


def summary_lines(report: ColumnReport, count_missing: bool = False) -> list[list[str]]:
    """Rows of (verdict, rows, share, distinct values) for the summary table."""
    counts, distinct = report.counts(), report.distinct()
    rows = report.rows or 1
    return [
        [
            verdict.value,
            f"{counts[verdict]:,}",
            f"{counts[verdict] / rows:.2%}",
            f"{distinct[verdict]:,}",
        ]
        for verdict in Verdict
    ]


def shown(text: object, width: int = SHOWN_CHARACTERS) -> str:
    """A value as a terminal can show it: invisible characters escaped, long text cut."""
    if not isinstance(text, str):
        text = as_text(text)  # as it was judged: bytes decoded, 2.0 as '2'
    if text is None:
        return "(null)"
    out = []
    for char in str(text):
        if char == " " or not (char.isspace() or unicodedata.category(char) in ("Cc", "Cf")):
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    value = "".join(out)
    if value != value.strip() or not value:
        value = repr(value)
    return value if len(value) <= width else value[: width - 1] + "…"


def _dictionary_encode(array: pa.ChunkedArray, column: str) -> pa.ChunkedArray:
    if pa.types.is_null(array.type):
        array = array.cast(pa.string())
    array = _as_text(array)
    try:
        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        unified = array.unify_dictionaries()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        raise one_value_per_cell(column, array.type) from None
    chunks = [c.cast(pa.dictionary(pa.int32(), c.dictionary.type)) for c in unified.chunks]
    return pa.chunked_array(chunks, type=pa.dictionary(pa.int32(), unified.type.value_type))


def _as_text(array: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column of bytes (text as older Parquet writers store it) as text, plain or
    dictionary-encoded alike; bytes that are not UTF-8 stay bytes, judged as
    ``Validator.validate`` judges them (decoded with replacement characters)."""
    kind = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    if isinstance(kind, pa.BaseExtensionType) and not pa.types.is_nested(kind.storage_type):
        # A UUID column: its cells as Python writes them, as Validator.validate judges them,
        # not 'holds extension<arrow.uuid> values; validate needs one value per cell'.
        texts = [None if v is None else as_text(v) for v in array.to_pylist()]
        return pa.chunked_array([pa.array(texts, pa.string())])
    text = {pa.binary(): pa.string(), pa.large_binary(): pa.large_string()}.get(kind)
    if text is None:
        return array
    if pa.types.is_dictionary(array.type):
        text = pa.dictionary(array.type.index_type, text)
    try:
        return array.cast(text)
    except pa.ArrowInvalid:
        return array
