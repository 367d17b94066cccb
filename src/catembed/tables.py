"""Reading and writing the tables and value lists users hand to catembed.

Formats are chosen by file suffix: ``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``;
anything else is a text file with one value per line, as is ``-`` (standard input), unless a
format is named (but not ``.json``, whose lines are no values). A compression suffix
(``.gz``, ``.bz2``, ``.zst``, ``.lz4``) is looked through, reading and writing. Every write
goes to a temporary file beside the target and is renamed into place, so a failed run never
leaves a half-written file, and input files are only ever opened for reading.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from catembed import jsonl
from catembed.errors import InputError, first_line
from catembed.verdicts import as_text, holds_many_per_cell, widened

logger = logging.getLogger(__name__)

STDIN = "-"
TEXT_COLUMN = "value"
COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
UNSUPPORTED_SUFFIXES = (".xz", ".zip", ".7z", ".br", ".lzma", ".z")


def compression(path: str | Path) -> str | None:
    """The codec a compression suffix names ('data.csv.gz': 'gzip'), else None."""
    suffix = Path(str(path)).suffix.lower()
    return COMPRESSION_SUFFIXES.get(suffix) if str(path) != STDIN else None


def table_format(path: str | Path) -> str:
    """Return the format name of ``path``: csv, tsv, parquet, jsonl or text (a compression
    suffix is looked through: 'data.csv.gz' is csv)."""
    name = Path(str(path))
    suffix = (name.with_suffix("") if compression(name) else name).suffix.lower()
    return {
        ".csv": "csv",
        ".tsv": "tsv",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".npy": "npy",
    }.get(suffix, "text")


def read_format(path: str | Path, fmt: str | None = None) -> str:
    """The format ``path`` is read as: ``fmt`` when named, else its suffix's (standard input:
    text; a suffix of no table format, '.npy' too, which only encode writes: text)."""
    if fmt or str(path) == STDIN:
        return fmt or "text"
    found = table_format(path)
    return "text" if found == "npy" else found


_JSON_FORMAT_HINT = " or pass --format jsonl"  # where a format can be named


def read_table(
    path: str | Path, dictionary: tuple[str, ...] = (), fmt: str | None = None
) -> pa.Table:
    """Read a table file (or a text file / stdin as a one-column ``value`` table).

    ``fmt`` overrides the format the suffix names (standard input: text). Parquet columns
    named in ``dictionary`` stay dictionary-encoded (one copy per distinct value).
    """
    name = str(path)
    named, fmt = fmt is not None, read_format(name, fmt)
    if name == STDIN and fmt != "text":
        raise ValueError("standard input other than text is read through readable()")
    shown = "standard input" if name == STDIN else name
    if name != STDIN:
        _check_readable(Path(name))
        inner = Path(name).with_suffix("") if compression(name) else Path(name)
        if not named and inner.suffix.lower() == ".json":  # its lines judged: '[', '  {', ...
            raise InputError(
                f"{shown} is JSON, which catembed reads as JSON Lines (an object a line): "
                f"name it .jsonl{_JSON_FORMAT_HINT}"
            )
    try:
        if fmt != "parquet" and name != STDIN:
            _check_text(_start(name), shown)
        if fmt == "text":
            return pa.table({TEXT_COLUMN: _read_lines(name)})
        if fmt == "parquet":
            source: str | pa.BufferReader = name
            if compression(name):
                identity, source = _identity(name), pa.BufferReader(_whole(name))
                _last_compressed[:] = [identity, pq.read_schema(source)]
            names = pq.read_schema(source).names
            _check_unique(names, shown)
            return pq.read_table(source, read_dictionary=[c for c in dictionary if c in names])
        if fmt == "jsonl":
            return jsonl.read_table(input_stream(name), name)
        return _read_csv(name, "\t" if fmt == "tsv" else ",")
    except pa.ArrowInvalid as error:
        raise InputError(f"cannot read {shown} as {fmt}: {first_line(error)}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{shown} is not valid UTF-8 (byte {error.start})") from None
    except OSError as error:
        raise InputError(f"cannot read {shown}: {first_line(error)}") from None


# The compressed Parquet file read last, by ``_identity``, and its schema: finding it again
# to write an output with the input's column types would decompress the whole file once more.
_last_compressed: list[Any] = [None, None]


def parquet_schema(name: str) -> pa.Schema:
    """The schema of the Parquet file ``name`` (decompressed), its columns' types as written."""
    if not compression(name):
        return pq.read_schema(name)
    identity, schema = _last_compressed
    if identity == _identity(name):
        return schema  # type: ignore[no-any-return]
    return pq.read_schema(pa.BufferReader(_whole(name)))


def _identity(name: str) -> tuple[str, int, int, int]:
    """``name`` and what changes when its file is replaced or written to."""
    info = os.stat(name)
    return name, info.st_ino, info.st_size, info.st_mtime_ns


def input_stream(name: str) -> pa.NativeFile:
    """``name`` opened for reading, decompressed when its suffix names a codec."""
    return pa.input_stream(name, compression=compression(name))


def starts_with_bom(name: str) -> bool:
    """Whether the file ``name`` (decompressed) starts with a UTF-8 byte order mark."""
    with input_stream(name) as stream:
        return bytes(stream.read(3)) == b"\xef\xbb\xbf"


def _start(name: str) -> bytes:
    """The first bytes of the file ``name`` (decompressed)."""
    with input_stream(name) as stream:
        return bytes(stream.read(16))


# What a file read as text may be instead, by its first bytes (none of which starts UTF-8
# text): Excel's 'Unicode text' and 'CSV UTF-16', a compressed file without its suffix, a
# workbook, a Parquet file (its first page header follows 'PAR1').
_NOT_TEXT = (
    ((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"), "UTF-32 text", "save it as UTF-8"),
    ((b"\xff\xfe", b"\xfe\xff"), "UTF-16 text", "save it as UTF-8"),
    ((b"\x1f\x8b",), "gzip-compressed", "add .gz to its name, or decompress it"),
    (
        tuple(b"BZh%d1AY&SY" % level for level in range(1, 10)),
        "bzip2-compressed",
        "add .bz2 to its name, or decompress it",
    ),
    ((b"\x28\xb5\x2f\xfd",), "zstd-compressed", "add .zst to its name, or decompress it"),
    ((b"\x04\x22\x4d\x18",), "lz4-compressed", "add .lz4 to its name, or decompress it"),
    ((b"\xfd7zXZ\x00",), "xz-compressed", "decompress it, or recompress it with gzip"),
    ((b"PK\x03\x04",), "a zip file (an Excel workbook?)", "save it as CSV UTF-8"),
    ((b"PAR1\x15",), "a Parquet file", "name it .parquet or pass --format parquet"),
    ((b"\x93NUMPY",), "a NumPy array (as encode writes)", "give a table or text file of values"),
)


def _check_text(start: bytes, shown: str) -> None:
    """Refuse, in one line, a file read as text whose first bytes ``start`` say it is not
    UTF-8 text: the readers' own errors showed its bytes ('Expected 2 columns, got 1: \\x00')."""
    for prefixes, kind, fix in _NOT_TEXT:
        if start.startswith(prefixes):
            if kind.endswith("compressed") and compression(shown):
                fix = "decompress it once more"
            elif shown == "standard input":
                fix = _streamed(fix)
            raise InputError(f"{shown} is not valid UTF-8 text: it is {kind}; {fix}")


def _whole(name: str) -> pa.Buffer:
    """The whole (decompressed) content of the file ``name``."""
    with input_stream(name) as stream:
        return stream.read_buffer()


@contextmanager
def readable(path: str, fmt: str | None) -> Iterator[str]:
    """``path`` itself, or a temporary copy of it where the readers need a file they can read
    more than once: standard input in a format other than text, and a pipe ('<(zcat
    a.csv.gz)', a FIFO), whose copy keeps its name and so its suffix; errors in the block
    name the copy as the user did ('standard input', the pipe's path)."""
    if path == STDIN:
        if fmt in (None, "text"):
            yield path
            return
        name, shown = "stdin", "standard input"
    elif _is_pipe(path):
        name, shown = Path(path).name, path
    else:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="catembed-stdin-") as folder:
        copy = str(Path(folder) / name)
        with open(copy, "wb") as handle:
            if path == STDIN:
                shutil.copyfileobj(sys.stdin.buffer, handle)
            else:
                try:
                    with open(path, "rb") as pipe:
                        shutil.copyfileobj(pipe, handle)
                except OSError as error:
                    raise InputError(f"cannot read {path}: {error.strerror or error}") from None
        try:
            yield copy
        except InputError as error:
            raise InputError(_streamed(str(error).replace(copy, shown))) from None


def _streamed(message: str) -> str:
    """``message`` for standard input or a pipe, which have no name to add a suffix to."""
    return re.sub(r"add \.\w+ to its name, or decompress it", "decompress it first", message)


def _is_pipe(path: str) -> bool:
    """Whether ``path`` is a pipe or other stream that can be read only once (not a regular
    file, not a folder); a path that cannot be looked at is left to the readers' errors."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def listed_columns(table: pa.Table) -> str:
    """The table's column names for a one-line message (odd names quoted, and names with a
    comma, which would read as two)."""
    return ", ".join(
        n if n.isprintable() and n.strip() == n and n and "," not in n else repr(n)
        for n in table.column_names
    )


def select_column(
    table: pa.Table,
    column: str | None,
    source: str,
    option: str = "--column",
    stdin_as_text: bool = False,
    fmt: str | None = None,
) -> pa.ChunkedArray:
    """Pick ``column`` from ``table``, or its only column when ``column`` is None (``option``
    names the option that picks one; ``stdin_as_text`` and ``fmt``: see ``no_column``)."""
    if column is None:
        if table.num_columns == 1:
            return table.column(0)
        raise unpicked_column(table, source, option)
    if column not in table.column_names:
        raise no_column(table, column, source, stdin_as_text, fmt)
    return table.column(column)


def unpicked_column(table: pa.Table, source: str, option: str = "--column") -> InputError:
    """The error for a table of other than one column when ``option`` picks none."""
    if not table.num_columns:  # JSONL rows of {}: not 'has several columns ()'
        return InputError(f"{source} has no columns")
    names = listed_columns(table)
    return InputError(f"{source} has several columns ({names}); choose one with {option}")


def no_column(
    table: pa.Table,
    column: str,
    source: str,
    stdin_as_text: bool = False,
    fmt: str | None = None,
) -> InputError:
    """The error for a ``column`` that ``table`` lacks, with a hint when its header, read as
    ``fmt``, is one column holding another delimiter (see ``misread_header``), when it was
    standard input or a file without a table suffix (a pipe) read as text
    (``stdin_as_text``), or when a column differs only in case or the spaces around it
    ('id, category' has ' category')."""
    misread = misread_header(table, fmt)
    if misread:
        return InputError(f"{source} has no column {column!r}: {misread}")
    message = f"{source} has no column {column!r}; its columns are: "
    message += listed_columns(table) or "none"
    alike = [n for n in table.column_names if n.strip().casefold() == column.strip().casefold()]
    if alike:
        message += f" (did you mean {alike[0]!r}?)"
    elif stdin_as_text:
        message += f"; {source} is read as text: name its format with --format"
    return InputError(message)


def misread_header(table: pa.Table, fmt: str | None) -> str | None:
    """Why ``table``, read as ``fmt``, lacks the columns asked for, when its header is one
    column holding another delimiter: "read as TSV, its header is one column, 'id,category'
    (comma-separated? pass --format csv)"; else None."""
    delimiter = _other_delimiter(table, fmt)
    if delimiter is None or fmt is None:
        return None
    name = table.column_names[0]
    if delimiter == ",":
        hint = "comma-separated? pass --format csv"
    elif delimiter == "\t":
        hint = "tab-separated? pass --format tsv"
    else:
        hint = f"another delimiter? {fmt.upper()} files are read with "
        hint += "commas" if fmt == "csv" else "tabs"
    return f"read as {fmt.upper()}, its header is one column, {name!r} ({hint})"


def _other_delimiter(table: pa.Table, fmt: str | None) -> str | None:
    """The delimiter other than ``fmt``'s that the header of a one-column CSV or TSV holds."""
    if fmt not in ("csv", "tsv") or table.num_columns != 1:
        return None
    name = table.column_names[0]
    others = ("," if fmt == "tsv" else "\t", ";", "|")
    return next((d for d in others if d in name), None)


def warn_if_misread(table: pa.Table, source: str, fmt: str | None, renamed: bool = False) -> None:
    """Warn when a one-column CSV or TSV, its format told by its suffix, holds another
    delimiter as often in every row as in its header: a comma-separated '.tsv' read whole.
    Only a warning: a one-column 'City, State' file is just as regular. ``renamed``: its
    format has no option, so the advice is to rename it."""
    delimiter = _other_delimiter(table, fmt)
    if delimiter is None or table.num_rows == 0:
        return
    expected = table.column_names[0].count(delimiter)
    try:
        counts = pc.min_max(pc.count_substring(table.column(0).cast(pa.string()), delimiter))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return
    if counts["min"].as_py() == counts["max"].as_py() == expected:
        shown = {",": "comma", "\t": "tab"}.get(delimiter, repr(delimiter))
        plural = "s" if expected > 1 else ""
        misread = str(misread_header(table, fmt))
        if renamed:
            misread = misread.replace("pass --format ", "name it .")
        logger.warning("%s: %s; every row holds its %s%s too", source, misread, shown, plural)


def read_values(
    path: str | Path, column: str | None = None, option: str = "--column", usual: str | None = None
) -> list[str]:
    """Read a list of distinct non-empty values, in first-seen order, from a file's column
    (picked by ``option``; without one, the column named ``usual`` or 'value', if any)."""
    with readable(str(path), None) as source:
        try:
            table = read_table(source)
        except InputError as error:  # no --format names a file of values' format
            raise InputError(str(error).removesuffix(_JSON_FORMAT_HINT)) from None
    if column is None and table.num_columns > 1:  # the usual name, else 'value'
        column = next((c for c in (usual, TEXT_COLUMN) if c in table.column_names), None)
    source = "standard input" if str(path) == STDIN else str(path)
    fmt = read_format(path)
    array = select_column(table, column, source, option, fmt=fmt)
    if holds_many_per_cell(array.type):  # else each list read as its Python text, "['Jeans']"
        name = column if column is not None else table.column_names[0]
        raise InputError(
            f"{source}: column {name!r} holds {array.type} values; give one value per cell"
        )
    if column is None:
        warn_if_misread(table, source, fmt, renamed=True)
    seen: dict[str, None] = {}
    for item in widened(array).to_pylist():
        text = as_text(item)  # as a validator reads a cell: 35233.0 is '35233', NaN missing
        if text is not None and text.strip():
            seen.setdefault(text.strip(), None)
    return list(seen)


def write_table(
    table: pa.Table,
    path: str | Path,
    fmt: str | None = None,
    style: TextStyle | None = None,
    **parquet_options: Any,
) -> None:
    """Write ``table`` in the format its suffix names (or ``fmt``; text: first column only),
    atomically; ``-`` writes to standard output. CSV and TSV rows end as ``style`` says;
    ``parquet_options`` go to the Parquet writer."""
    fmt = fmt or table_format(path)
    with output_stream(path) as handle:
        _write(table, handle, fmt, path, style or TextStyle(), **parquet_options)


@dataclass(frozen=True)
class TextStyle:
    """How a text file is written: a byte order mark first or not, and its line end."""

    bom: bool = False
    line_end: str = "\n"

    @classmethod
    def of(cls, name: str) -> TextStyle:
        """The style of the text file ``name``, from its start ('\\r\\n' if its first
        line ends so; '\\r' where no line ends in '\\n', as old Mac files' do)."""
        with input_stream(name) as stream:
            start = bytes(stream.read(1 << 16))
        end = start.find(b"\n")
        crlf = end > 0 and start[end - 1 : end] == b"\r"
        line_end = "\r\n" if crlf else "\r" if end < 0 and b"\r" in start else "\n"
        return cls(start.startswith(b"\xef\xbb\xbf"), line_end)


def check_writable(table: pa.Table, path: str | Path, fmt: str | None = None) -> None:
    """Fail now, not after the slow part, if ``table``'s columns cannot be written to ``path``
    (a list column to CSV): its first row is written to memory, and bytes that CSV would
    write as text are checked to be UTF-8 in every row."""
    fmt = fmt or table_format(path)
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if fmt in ("csv", "tsv") and _holds_bytes(kind):
            cells = column.chunks
            if pa.types.is_dictionary(column.type):
                cells = [chunk.dictionary for chunk in cells]
            try:
                for chunk in cells:
                    chunk.cast(pa.large_string())
            except pa.ArrowInvalid:
                raise InputError(
                    f"cannot write {shown_path(path)} as {fmt}: column {name!r} holds bytes that "
                    "are not UTF-8 text; write .parquet or .jsonl instead"
                ) from None
    _write(table.slice(0, 1), io.BytesIO(), fmt, path, TextStyle())


def _holds_bytes(kind: pa.DataType) -> bool:
    """Whether a column of ``kind`` holds bytes: of any length, fixed or viewed too."""
    return any(
        check(kind)
        for check in (
            pa.types.is_binary,
            pa.types.is_large_binary,
            pa.types.is_fixed_size_binary,
            pa.types.is_binary_view,
        )
    )


def _write(
    table: pa.Table,
    handle: BinaryIO,
    fmt: str,
    path: str | Path,
    style: TextStyle,
    **parquet_options: Any,
) -> None:
    if fmt == "parquet":
        try:
            pq.write_table(table, handle, **parquet_options)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise InputError(
                f"cannot write {shown_path(path)} as parquet: {first_line(error)}; "
                "write .jsonl instead"
            ) from None
    elif fmt in ("csv", "tsv"):
        delimiter = "\t" if fmt == "tsv" else ","
        table = _as_judged(table)  # pyarrow writes a bare count of a duration's unit
        try:
            quoting = _csv_quoting(table, delimiter)
            options = pacsv.WriteOptions(
                delimiter=delimiter,
                quoting_style=quoting,
                quoting_header=quoting,
                eol=style.line_end,
            )
            if style.bom:
                handle.write(b"\xef\xbb\xbf")
            pacsv.write_csv(table, handle, options)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise InputError(
                f"cannot write {shown_path(path)} as {fmt}: {first_line(error)}; "
                "write .parquet or .jsonl instead"
            ) from None
    elif fmt == "jsonl":
        # A float32 cell as written, 0.1, not its float64 widening 0.10000000149011612.
        table = pa.table([widened(c) for c in table.columns], names=table.column_names)
        for row in table.to_pylist():
            try:
                line = json.dumps(row, ensure_ascii=False, default=_json_default, allow_nan=False)
            except ValueError:  # NaN or infinity: no JSON number, so null
                line = json.dumps(_finite(row), ensure_ascii=False, default=_json_default)
            handle.write(line.encode("utf-8") + b"\n")
    else:
        for value in table.column(0).to_pylist():
            handle.write(("" if value is None else str(value)).encode("utf-8") + b"\n")


def _csv_quoting(table: pa.Table, delimiter: str) -> str:
    """'none' when no cell or column name needs quotes, else 'needed': pyarrow's 'needed'
    quotes every text cell, which turns a plain TSV into one that ``cut`` misreads. An empty
    text needs its quotes too, or it reads back as a missing cell; an empty column name does
    not (',category': pandas' unnamed index), unless it is the only one (an empty line)."""
    special = f'^$|[{delimiter}"\r\n]'  # empty, or holding a delimiter, quote or line end
    in_names = special if table.num_columns == 1 else special.removeprefix("^$|")
    if any(re.search(in_names, name) for name in table.column_names):
        return "needed"
    for column in table.columns:
        kind = column.type
        texts: list[pa.Array] = list(column.chunks)
        if pa.types.is_dictionary(kind):  # its values, not its millions of rows
            texts, kind = [chunk.dictionary for chunk in column.chunks], kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            if any(pc.any(pc.match_substring_regex(t, special)).as_py() for t in texts):
                return "needed"
        elif not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_null(kind)
            or pa.types.is_boolean(kind)
        ):
            return "needed"  # dates, lists, binary, ...: let pyarrow decide
    return "none"


def shown_path(path: str | Path) -> str:
    """``path`` as messages name it ('-': standard output)."""
    return "standard output" if str(path) == STDIN else str(path)


@contextmanager
def output_stream(path: str | Path) -> Iterator[BinaryIO]:
    """A binary handle on ``path``, renamed into place once the block succeeds; ``-`` is
    standard output."""
    if str(path) == STDIN:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    codec = compression(path)
    with atomic_file(path) as tmp, tmp.open("wb") as handle:
        if codec is None:
            yield handle
        else:
            with pa.CompressedOutputStream(handle, codec) as compressed:
                yield compressed


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place if the block succeeds."""
    target = _target(path)
    tmp = _temporary_beside(target)
    try:
        yield tmp
        # The mode a plain write would give: the old file's, else the umask's (not 0600).
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.exists() else _new_mode())
        os.replace(tmp, target)
    except OSError as error:
        raise InputError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        tmp.unlink(missing_ok=True)


def writable(path: str | Path, stdout: bool = False) -> Path:
    """The file ``path`` names, checked for writing: through a link to where it points, in a
    folder that takes new files; a folder, a device or a pipe there is refused rather than
    replaced (pointing to ``-`` when the caller takes it for standard output, ``stdout``)."""
    target = _target(path, stdout)
    # A read-only folder or file system, found now rather than after the slow part.
    _temporary_beside(target).unlink()
    return target


def _target(path: str | Path, stdout: bool = False) -> Path:
    """``writable``'s checks, short of trying a write."""
    target = Path(path)
    if target.is_symlink():
        try:
            target = target.resolve()
        except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError on a loop
            raise InputError(f"{path} is a link that leads back to itself") from None
    if target.is_dir():
        raise InputError(f"{path} is a folder, not a file")
    if target.exists() and not target.is_file():
        hint = "write to a file, or to - for stdout" if stdout else "write to a file"
        raise InputError(f"{path} is not a regular file; {hint}")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        if parent.exists():  # 'folder x.csv does not exist' of a file that does
            raise InputError(f"{parent} is a file, not a folder")
        raise InputError(f"folder {parent} does not exist")
    return target


def _temporary_beside(target: Path) -> Path:
    """A new empty file in ``target``'s folder, to be renamed into place or removed."""
    parent = target.parent if str(target.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as error:
        raise InputError(f"cannot write to {parent}: {error.strerror or error}") from None
    os.close(fd)
    return Path(name)


def same_file(target: Path, name: str) -> bool:
    """Whether ``target`` and ``name`` are one existing file (through links too)."""
    try:
        return target.samefile(name)
    except (OSError, RuntimeError):  # either missing, or a link loop
        return False


def _new_mode(folder: bool = False) -> int:
    """The mode a plain create would give a new file (or folder): the umask's."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def check_folder_target(path: str | Path, overwrite: bool = False) -> Path:
    """``path`` as a folder ``atomic_folder`` may write, or an InputError."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise InputError(
            f"{target} already exists and is not empty; pass --overwrite (in Python: "
            "overwrite=True) to replace it"
        )
    return target


@contextmanager
def new_folder(folder: Path) -> Iterator[Path]:
    """Make ``folder`` and its missing parents; should the block fail (or be stopped), the
    folders it made are removed again, deepest first, as long as they are empty."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for made_folder in made:
            try:
                made_folder.rmdir()
            except OSError:
                break
        raise


@contextmanager
def atomic_folder(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; move it into place if the block succeeds.

    An existing non-empty target is refused unless ``overwrite``; then it is replaced only
    once the new folder is complete. A failed run leaves no folders it made behind.
    """
    target = check_folder_target(path, overwrite)
    with new_folder(target.parent):
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            yield tmp
            # The modes plain writes would give, not the temporary folder's 0700 or the 0600
            # of files some libraries write (model.safetensors); the folder keeps a replaced
            # one's. Set once it is written, as a read-only folder's mode would stop the writing.
            for inside, folders, files in os.walk(tmp):
                for name in folders:
                    os.chmod(os.path.join(inside, name), _new_mode(True))
                for name in files:
                    os.chmod(os.path.join(inside, name), _new_mode())
            mode = stat.S_IMODE(target.stat().st_mode) if target.is_dir() else _new_mode(True)
            os.chmod(tmp, mode)
            if target.exists():
                _replace_folder(tmp, target)
            else:
                os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_folder(new: Path, target: Path) -> None:
    """Move ``new`` into the place of the folder ``target``, which is removed."""
    # Set aside in a folder of its own: a fixed name ('.model.old') could be the user's.
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    try:
        os.replace(target, old / target.name)
        os.replace(new, target)
    except BaseException:  # Ctrl-C between the renames: the old folder goes back
        if not target.exists() and (old / target.name).exists():
            os.replace(old / target.name, target)
            old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _finite(value: object) -> object:
    """``value`` with each NaN or infinite float in it (in lists and objects too) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _as_judged(table: pa.Table) -> pa.Table:
    """``table`` with its duration columns as the text they are judged as (``as_text``), and
    its float16 columns as the numbers (0.1, which pyarrow writes 0.0999755859375)."""
    for index, field in enumerate(table.schema):
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_float16(kind):
            table = table.set_column(index, field.name, widened(table.column(index)))
        elif pa.types.is_duration(kind):
            cells = table.column(index).cast(kind)  # not dictionary-encoded
            distinct = pc.unique(cells)
            texts = pa.array([as_text(v) for v in distinct], pa.string())
            table = table.set_column(index, field.name, texts.take(pc.index_in(cells, distinct)))
    return table


def _json_default(value: object) -> object:
    if isinstance(value, timedelta):  # pandas' Timedelta too, which str() writes otherwise
        return as_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _read_csv(name: str, delimiter: str) -> pa.Table:
    """Every column as text, exactly as written ('00123' and 'true' stay so); only empty
    cells are nulls. A one-column file keeps its blank lines as empty cells. Quotes that
    break CSV's rules are an error in CSV and text in TSV, which has no quoting of its own."""
    table = _parse_csv(name, delimiter, quoting=True)
    broken = _broken_quoting(name, delimiter)
    if broken is None:
        return table
    if delimiter == "\t":
        logger.warning("%s: quotes read as text, as they do not quote values (%s)", name, broken)
        return _parse_csv(name, delimiter, quoting=False)
    if "closing quote" in broken:
        broken += ' (a quote inside a quoted value is written twice: "5"" Speakers")'
    raise InputError(f"cannot read {name} as csv: {broken}")


def _parse_csv(name: str, delimiter: str, quoting: bool) -> pa.Table:
    try:
        return _read_csv_in_blocks(
            name, lambda: input_stream(name), delimiter, pacsv.ReadOptions(), quoting
        )
    except pa.ArrowInvalid as error:
        if "invalid UTF8" in str(error):
            raise InputError(f"{name} is not valid UTF-8 text; save it as UTF-8") from None
        header_only = "infer number of columns" in str(error)
        if "straddl" not in str(error) and not header_only:
            raise
    # A value longer than a read block (1 MB): read again in blocks that hold it. A header
    # with no line end after it, which pyarrow calls an empty file: read with one.
    data = _whole(name)
    if header_only:
        data = pa.py_buffer(data.to_pybytes() + b"\n")
    big = pacsv.ReadOptions(block_size=min(max(data.size + 1, 1 << 20), 2**31 - 1))
    return _read_csv_in_blocks(name, lambda: pa.BufferReader(data), delimiter, big, quoting)


def _broken_quoting(name: str, delimiter: str) -> str | None:
    """Where the quotes of a delimited file break CSV's rules, or None. pyarrow reads such
    files without a word: a quote never closed takes the rest of the file into one value
    (rows lost), and '"Best" Sellers' loses its quotes."""
    if _plainly_quoted(name, delimiter):
        return None
    csv.field_size_limit(2**31 - 1)
    with io.TextIOWrapper(input_stream(name), encoding="utf-8-sig", newline="") as text:
        rows = csv.reader(text, delimiter=delimiter, strict=True)
        start = 1
        try:
            for _ in rows:
                start = rows.line_num + 1
        except csv.Error as error:
            if "unexpected end of data" in str(error):
                return f"the quote that opens a value on line {start} never closes"
            if "expected after" in str(error):
                return f"line {rows.line_num}: text after a closing quote"
            return f"line {rows.line_num}: {error}"
    return None


def _plainly_quoted(name: str, delimiter: str) -> bool:
    """Whether each line of the file is whole fields, each quoted as CSV quotes or holding
    no quote: the common case, checked by pyarrow's regular expressions over the lines, 64 MB
    at a time. False leaves it to the csv module (a quote mid-value, a line break in one)."""
    d = "\\t" if delimiter == "\t" else re.escape(delimiter)
    field = f'(?:"(?:[^"]|"")*"|[^{d}"\r\n]*)'
    pattern = f"^{field}(?:{d}{field})*\r?\n?$"
    rest = b""
    with input_stream(name) as stream:
        first = True
        while chunk := stream.read(1 << 26):
            data = rest + bytes(chunk)
            if first:
                data, first = data.removeprefix(b"\xef\xbb\xbf"), False
            end = data.rfind(b"\n") + 1
            if not _lines_match(data[:end], pattern):
                return False
            rest = data[end:]
    return _lines_match(rest, pattern)


def _lines_match(data: bytes, pattern: str) -> bool:
    """Whether every line of ``data`` (UTF-8 text) matches ``pattern``."""
    if not data:
        return True
    if b'"' not in data:
        return True  # no quotes, nothing to break
    bytes_ = np.frombuffer(data, np.uint8)
    starts = np.flatnonzero(bytes_ == ord("\n")) + 1
    offsets = np.concatenate([[0], starts[starts < len(data)], [len(data)]]).astype(np.int64)
    lines = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)
    )
    return bool(pc.all(pc.match_substring_regex(lines, pattern)).as_py())


def _read_csv_in_blocks(
    name: str,
    source: Callable[[], str | pa.NativeFile],
    delimiter: str,
    blocks: pacsv.ReadOptions,
    quoting: bool = True,
) -> pa.Table:
    parse = pacsv.ParseOptions(
        delimiter=delimiter, quote_char='"' if quoting else False, newlines_in_values=quoting
    )
    names = pacsv.open_csv(source(), read_options=blocks, parse_options=parse).schema.names
    _check_unique(names, name)
    parse.ignore_empty_lines = len(names) > 1
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=False,
    )
    return pacsv.read_csv(
        source(), read_options=blocks, parse_options=parse, convert_options=convert
    )


def _check_unique(names: list[str], shown: str) -> None:
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(f"{shown} has more than one column named {duplicated[0]!r}")


def _read_lines(name: str) -> list[str]:
    if name == STDIN:
        data = sys.stdin.buffer.read()
        _check_text(data[:16], "standard input")  # files: read_table checked their start
    else:
        with input_stream(name) as stream:
            data = stream.read()
    text = data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\n" not in text:  # old Mac line ends; elsewhere a carriage return is in a value
        text = text.replace("\r", "\n")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if path.suffix.lower() in UNSUPPORTED_SUFFIXES:
        raise InputError(
            f"{path}: {path.suffix} compression is not supported; use .gz, .bz2, .zst or .lz4"
        )
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}: permission denied")
