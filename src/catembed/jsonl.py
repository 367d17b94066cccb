"""JSON Lines as written: rows read without type guessing, and lines written back with
fields added.

Python's ``json`` reads each line (pyarrow's reader turns date-like texts into timestamps and
integers beyond 64 bits into rounded floats, and refuses a field that mixes types), and an
output line is its input line with the new fields appended before the closing brace.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from typing import BinaryIO, cast

import pyarrow as pa

from catembed.errors import InputError

_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # a surrogate escape: maybe unpaired


def lines(stream: BinaryIO, name: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line of a JSON Lines ``stream``, blank ones too; a line
    that is not UTF-8 is an error naming its number."""
    with io.BufferedReader(cast(io.RawIOBase, stream)) as handle:
        for number, data in enumerate(handle, 1):
            try:
                line = data.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{name} line {number} is not valid UTF-8") from None
            yield number, line


def rows(stream: BinaryIO, name: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of each non-blank line of a JSON Lines ``stream``: one row each."""
    return ((number, line) for number, line in lines(stream, name) if line.strip())


def read_table(stream: BinaryIO, name: str) -> pa.Table:
    """Every field as written: no dates read into strings, no big integers rounded to
    floats; a field that mixes types (dirty data) becomes text, its non-string values as
    their JSON. A key absent from a row is a null cell there."""
    columns: dict[str, list[object]] = {}
    texts: dict[str, str] = {}  # one copy of each repeated text
    count = 0
    for number, line in rows(stream, name):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{name} line {number} is not valid JSON: {error.msg}") from None
        except RecursionError:
            raise InputError(f"{name} line {number} is nested too deeply") from None
        except ValueError:  # Python's limit on the digits of an integer
            raise InputError(f"{name} line {number} holds a number of over 4,300 digits") from None
        if _LONE_SURROGATE.search(line):
            row = _without_lone_surrogates(row)
        if not isinstance(row, dict):
            raise InputError(f"{name} line {number} is not a JSON object")
        for key, value in row.items():
            if key not in columns:
                columns[key] = [None] * count
            columns[key].append(texts.setdefault(value, value) if type(value) is str else value)
        count += 1
        if len(row) < len(columns):
            for cells in columns.values():
                if len(cells) < count:
                    cells.append(None)
    if not count:
        raise InputError(f"{name} has no rows")
    return pa.table({key: _json_column(cells) for key, cells in columns.items()})


def _without_lone_surrogates(value: object) -> object:
    """``value`` with each unpaired surrogate escape ('\\ud800') in its texts, which no UTF-8
    text can hold, replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _json_column(values: list[object]) -> pa.Array:
    kinds = {type(v) for v in values} - {type(None)}
    if len(kinds) <= 1 or kinds == {int, float}:
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # integers beyond 64 bits, objects of changing shape
    return pa.array(
        [v if v is None or isinstance(v, str) else _json_text(v) for v in values],
        pa.string(),
    )


def _json_text(value: object) -> str | None:
    """A non-text JSON value as its JSON text; NaN as a missing cell."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return json.dumps(value, ensure_ascii=False)


class _Raw(str):
    """A JSON number or constant exactly as written ('2.50', '1e400', 'NaN')."""


class _Object(list[tuple[str, object]]):
    """A JSON object's (key, value) pairs in order, duplicates kept."""


def with_fields(line: str, fragment: str, names: Sequence[str]) -> str:
    """``line``, a JSON object, with the fields ``names`` of ``fragment`` ('"a": 1, "b": 2')
    added at its end, the line otherwise as written. A line whose object has fields of those
    names of its own is written anew with them replaced, its other fields as written."""
    if "\\" in line or any(name in line for name in names):  # maybe such a key, escaped or not
        pairs = json.loads(
            line, object_pairs_hook=_Object, parse_float=_Raw, parse_int=_Raw, parse_constant=_Raw
        )
        if any(key in names for key, _ in pairs):
            kept = [(k, v) for k, v in pairs if k not in names]
            added = json.loads("{" + fragment + "}", object_pairs_hook=_Object)
            return _json(_Object(kept + added))
    content = line.rstrip()
    body, after = content[:-1], line[len(content) :]
    return f"{body}{'' if body.strip() == '{' else ', '}{fragment}}}{after}"


def _json(value: object) -> str:
    """JSON text of a value parsed with ``_Object`` and ``_Raw``: numbers as written."""
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, str):
        surrogates = any("\ud800" <= c <= "\udfff" for c in value)
        return json.dumps(value, ensure_ascii=surrogates)
    if isinstance(value, _Object):
        return "{" + ", ".join(f"{_json(k)}: {_json(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    return json.dumps(value)
