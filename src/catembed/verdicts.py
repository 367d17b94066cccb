"""What a validator says about a value: its verdict, score, nearest reference and repair."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa

from catembed.errors import ConfigError

MAX_ROWS = 2**63 - 1  # rows a value may fill: no table holds more (10**400 overflowed a float)

DEFAULT_SCALE = 0.03  # similarity units per logit of the out-of-domain score
BOOLEAN_TEXTS = ("false", "true")  # a boolean cell's text: as JSON writes it
# A boolean's text before catembed read booleans as JSON writes them: a validator saved then
# from a boolean column lists these as its reference values (see Validator.booleans).
PYTHON_BOOLEAN_TEXTS = ("False", "True")


class Verdict(StrEnum):
    VALID = "valid"
    OUT_OF_DOMAIN = "out_of_domain"
    MALFORMED = "malformed"
    MISSING = "missing"


ANOMALIES = (Verdict.OUT_OF_DOMAIN, Verdict.MALFORMED)


@dataclass(frozen=True)
class ValueReport:
    """The validator's answer for one value."""

    value: object
    verdict: Verdict
    score: float  # in [0, 1], higher means more likely wrong; >= 0.5 for anomalies
    nearest: str  # the closest reference value ('' for missing values)
    suggestion: str = ""  # the repaired value when there is a confident one
    reason: str = ""

    @property
    def is_anomaly(self) -> bool:
        return self.verdict in ANOMALIES

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "verdict": self.verdict.value,
            "score": self.score,
            "nearest": self.nearest,
            "suggestion": self.suggestion,
            "reason": self.reason,
        }


_MISSING_TYPES = ("NAType", "NaTType", "MaskedConstant")  # pandas' NA and NaT, numpy's masked


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds: ``similarity`` is the lowest cosine similarity to a reference
    value that is still in the domain; ``scale`` how fast the score rises below it."""

    similarity: float
    scale: float = DEFAULT_SCALE

    def __post_init__(self) -> None:
        for name in ("similarity", "scale"):  # plain floats: numpy or Decimal ones break JSON
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not -1.0 <= self.similarity <= 1.0:
            raise ConfigError(f"similarity threshold must be in [-1, 1], got {self.similarity}")
        if not self.scale > 0:
            raise ConfigError(f"score scale must be positive, got {self.scale}")


def sigmoid_score(value: float, thresholds: Thresholds) -> float:
    """0.5 at the threshold, rising as ``value`` falls below it."""
    logit = (thresholds.similarity - value) / thresholds.scale
    score = 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))
    return round(score, 6)


def _narrow_float(kind: pa.DataType) -> bool:
    return bool(pa.types.is_float32(kind) or pa.types.is_float16(kind))


def widened(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A float32 or float16 column (dictionary-encoded too) as float64 values of its numbers
    as written (0.1, where a plain cast gives 0.10000000149011612); other columns as they are."""
    kind = array.type
    if pa.types.is_dictionary(kind) and _narrow_float(kind.value_type):
        array = array.cast(kind.value_type)  # its dictionary's values came out widened
    elif not _narrow_float(kind):
        return array
    if pa.types.is_float16(array.type):  # pyarrow writes it at length (0.0999755859375)
        return _float16_widened(array)
    return array.cast(pa.string()).cast(pa.float64())


def _float16_widened(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A float16 column as float64 values of numpy's shortest text of each, as ``as_text``
    reads a float16 scalar."""
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array([_float16_widened(c) for c in array.chunks], pa.float64())
    numbers = array.to_numpy(zero_copy_only=False)
    nulls = array.is_null().to_numpy(zero_copy_only=False)
    return pa.array([str(n) for n in numbers], pa.string(), mask=nulls).cast(pa.float64())


def cells(values: Iterable[object]) -> list[object]:
    """The cells of a column (list, generator, numpy, pandas, pyarrow) for ``as_text``: a
    float32 pyarrow or pandas column keeps its numbers as written, where iterating it gives
    their float64 widening (pandas yields Python floats: 0.10000000149011612 for 0.1)."""
    if hasattr(values, "to_pylist"):
        return list((widened(values) if hasattr(values, "type") else values).to_pylist())
    dtype = getattr(values, "dtype", None)
    if not isinstance(values, np.ndarray) and dtype is not None:
        categories = getattr(dtype, "categories", None)  # pandas' category dtype
        inner = categories.dtype if categories is not None else dtype
        inner = getattr(inner, "numpy_dtype", inner)  # pandas' pyarrow-backed dtypes
        if isinstance(inner, np.dtype) and inner.kind == "f" and inner.itemsize < 8:
            values = np.asarray(values)  # numpy's float32 scalars, which as_text reads as written
    return values if isinstance(values, list) else list(values)


_CONTAINERS = (list, tuple, dict, set, frozenset)
_SHOWN_CELL = 60  # characters of a refused cell in its error


def holds_many_per_cell(kind: pa.DataType) -> bool:
    """Whether a column of ``kind`` (dictionary-encoded or not) holds lists, objects or maps."""
    return bool(pa.types.is_nested(kind.value_type if pa.types.is_dictionary(kind) else kind))


def check_single_values(values: object, column: list[object], name: str) -> None:
    """Raise TypeError when ``values`` (whose cells are ``column``) is a column of lists,
    objects or maps, whose text would be their Python spelling ("['Jeans']", judged malformed
    and repaired to 'Jeans'): a nested pyarrow column, or cells that are lists, tuples,
    dicts, sets or arrays."""
    kind = getattr(values, "type", None)
    if isinstance(kind, pa.DataType):
        if holds_many_per_cell(kind):
            raise TypeError(f"{name} takes one value per cell, not a column of {kind}")
        return  # a typed column of single values: no cell to look at
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind != "O":
        return  # numbers, texts or times, one per cell
    for index, cell in enumerate(column):
        if type(cell) is not str and (
            isinstance(cell, _CONTAINERS) or (isinstance(cell, np.ndarray) and cell.ndim > 0)
        ):
            shown = repr(cell)
            if len(shown) > _SHOWN_CELL:
                shown = shown[: _SHOWN_CELL - 1] + "…"
            raise TypeError(
                f"{name} takes one value per cell; value {index} is a "
                f"{type(cell).__name__}: {shown}"
            )


def as_text(value: object, booleans: tuple[str, str] = BOOLEAN_TEXTS) -> str | None:
    """The text a cell is judged as, or None when the cell is missing (None, NaN, pandas'
    NA and NaT, numpy's NaT and masked value). A boolean is 'true' or 'false', as a JSONL
    file writes it and as a JSONL column mixing it with text reads it, whatever holds it
    (``booleans``: the texts of False and True, for a validator that lists them otherwise)."""
    if hasattr(value, "as_py"):  # a pyarrow scalar; a float32 one as written, as widened's
        value = widened(value).as_py() if hasattr(value, "type") else value.as_py()
    if value is None or type(value).__name__ in _MISSING_TYPES:
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else _datetime_text(value)
    if isinstance(value, np.timedelta64):
        return None if np.isnat(value) else _numpy_duration_text(value)
    if isinstance(value, timedelta):  # pandas' Timedelta too
        return _duration_text(_nanoseconds(value))
    if isinstance(value, bool | np.bool_):  # as JSON writes it, not Python's 'True'
        return booleans[bool(value)]
    if isinstance(value, np.integer):
        value = int(value)  # exactly: a float would round ids beyond 2**53
    if isinstance(value, np.float32 | np.float16):
        value = float(str(value))  # as written, 0.1, not its float64 widening 0.10000000149...
    if isinstance(value, numbers.Real) and not isinstance(value, int):
        value = float(value)  # numpy floats too
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal) and value.is_nan():  # math.isnan fails on a signalling NaN
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # over Python's 4,300 digits: malformed whatever its digits
            return f"{value:x}"
    return str(value)


_DAYS_OR_LONGER = frozenset({"D", "W", "M", "Y"})


def _datetime_text(value: np.datetime64) -> str:
    """A numpy time as pandas and pyarrow write it, '2024-01-31 09:30:00', so a column's
    ``to_numpy()`` is judged as the column is; not numpy's '2024-01-31T09:30:00.000000'. A
    date stays '2024-01-31'."""
    unit = np.datetime_data(value.dtype)[0]
    if unit in _DAYS_OR_LONGER:
        return str(value)
    if unit in ("ns", "ps", "fs", "as") and value.astype("datetime64[ns]").astype(np.int64) % 1000:
        return str(value).replace("T", " ", 1)  # finer than datetime holds: pandas' spelling
    moment = value.astype("datetime64[us]").item()
    return str(moment) if isinstance(moment, datetime) else str(value).replace("T", " ", 1)


def _duration_text(nanoseconds: int) -> str:
    """A duration as Python writes a timedelta, '1 day, 0:00:03.500000', with nanoseconds
    where it has them, whatever held it: pyarrow (a pandas Timedelta in nanoseconds), numpy
    ('86403 seconds') or pandas ('1 days 00:00:03')."""
    microseconds, rest = divmod(nanoseconds, 1000)
    text = str(timedelta(microseconds=microseconds))
    if rest:
        text += f"{rest:03d}" if "." in text else f".000000{rest:03d}"
    return text


def _nanoseconds(value: timedelta) -> int:
    exact = getattr(value, "value", None)  # a pandas Timedelta's nanoseconds
    if isinstance(exact, int):
        return exact
    return ((value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds) * 1000


_UNIT_NANOSECONDS = {"W": 604_800 * 10**9, "D": 86_400 * 10**9, "h": 3_600 * 10**9}
_UNIT_NANOSECONDS |= {"m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _numpy_duration_text(value: np.timedelta64) -> str:
    """As ``_duration_text``; months, years and units finer than nanoseconds as numpy writes
    them ('3 months'), and so a duration past timedelta's 999,999,999 days."""
    unit, count = np.datetime_data(value.dtype)
    if unit not in _UNIT_NANOSECONDS:
        return str(value)
    try:
        return _duration_text(int(value.astype(np.int64)) * count * _UNIT_NANOSECONDS[unit])
    except OverflowError:
        return str(value)


def missing_report(value: object) -> ValueReport:
    return ValueReport(value, Verdict.MISSING, 1.0, "", "", "empty cell")


def report_fields(report: ValueReport) -> tuple[Verdict, float, str, str, str]:
    return report.verdict, report.score, report.nearest, report.suggestion, report.reason
