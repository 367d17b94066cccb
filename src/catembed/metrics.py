"""Scoring a validator on labelled values: precision, recall, F1, AUROC, confusion matrix.

numpy only: AUROC is the rank-sum (Mann-Whitney U) statistic, ties counted half.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from catembed.errors import InputError
from catembed.verdicts import as_text, cells

if TYPE_CHECKING:
    import pyarrow as pa

    from catembed.validation import Validator

logger = logging.getLogger(__name__)

LABELS = ("valid", "out_of_domain", "malformed")
ANOMALY = "anomaly"  # out_of_domain or malformed, as one class
MISSING = "missing"
SHOWN_UNKNOWN = 10  # unknown labels an error names: a column of values read as labels has many


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve of ``scores`` for the positive ``labels`` (NaN if one class)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_scores = s[order]
    # Average ranks over ties.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(s)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    u = ranks[y].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int  # values of the label
    predicted: int = 0  # values given it


def class_scores(truth: Sequence[str], predicted: Sequence[str], label: str) -> ClassScores:
    """Precision, recall and F1 of one label (0 where undefined)."""
    t = np.asarray(truth) == label
    p = np.asarray(predicted) == label
    hits = int((t & p).sum())
    precision = hits / int(p.sum()) if p.any() else 0.0
    recall = hits / int(t.sum()) if t.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ClassScores(precision, recall, f1, int(t.sum()), int(p.sum()))


def confusion_matrix(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str], columns: Sequence[str]
) -> list[list[int]]:
    """Counts of (true label row, predicted verdict column)."""
    matrix = [[0] * len(columns) for _ in labels]
    row = {label: i for i, label in enumerate(labels)}
    col = {label: i for i, label in enumerate(columns)}
    for t, p in zip(truth, predicted, strict=True):
        if t in row and p in col:
            matrix[row[t]][col[p]] += 1
    return matrix


@dataclass(frozen=True)
class LabelledEvaluation:
    """A validator's results against labels valid / out_of_domain / malformed."""

    per_label: dict[str, ClassScores]  # the three labels plus "anomaly"
    auroc: float  # of the score, anomaly (out_of_domain or malformed) against valid
    confusion: list[list[int]]
    labels: tuple[str, ...]
    verdicts: tuple[str, ...]
    count: int


def evaluate_labelled(
    labels: Sequence[str], verdicts: Sequence[str], scores: Sequence[float]
) -> LabelledEvaluation:
    """Compare verdicts and scores with ``labels`` (``LABELS``, and ``missing`` for empty
    cells, as validate's output has it); missing verdicts and labels count as anomalies."""
    unknown = sorted(set(labels) - {*LABELS, MISSING})
    if unknown:
        raise InputError(
            f"unknown labels {unknown}; labels must be one of: {', '.join(LABELS)} (or {MISSING})"
        )
    if not labels:
        raise InputError("the labelled data is empty")
    rows = (*LABELS, MISSING) if MISSING in labels else LABELS
    per_label = {label: class_scores(labels, verdicts, label) for label in rows}
    truth_anomaly = [label != "valid" for label in labels]
    said_anomaly = [v != "valid" for v in verdicts]
    per_label[ANOMALY] = class_scores(
        [ANOMALY if a else "valid" for a in truth_anomaly],
        [ANOMALY if a else "valid" for a in said_anomaly],
        ANOMALY,
    )
    columns = (*LABELS, MISSING)
    return LabelledEvaluation(
        per_label=per_label,
        auroc=auroc(truth_anomaly, scores),
        confusion=confusion_matrix(labels, verdicts, rows, columns),
        labels=rows,
        verdicts=columns,
        count=len(labels),
    )


def evaluate_table(
    validator: Validator,
    table: pa.Table,
    source: str,
    column: str | None = None,
    labels: list[str] | None = None,
) -> LabelledEvaluation:
    """Validate a labelled table (a ``label`` column and the values' ``column``: by default
    ``value``, or the only other column) and score it (``labels``: its ``read_labels``, when
    already read)."""
    column = values_column(table, source, column)
    if labels is None:
        labels = read_labels(table, source, column)
    reports = validator.validate(table.column(column))  # a float32 0.1 as 0.1
    verdicts = [r.verdict.value for r in reports]
    empty = sum(
        v == MISSING and label != MISSING for v, label in zip(verdicts, labels, strict=True)
    )
    if empty:
        rows = "1 row has" if empty == 1 else f"{empty} rows have"
        logger.warning("%s: %s no value, judged missing, which counts as an anomaly", source, rows)
    return evaluate_labelled(labels, verdicts, [r.score for r in reports])


def read_labels(table: pa.Table, source: str, column: str) -> list[str]:
    """The labels of a labelled table, normalised ('Out of domain' as out_of_domain), or an
    error naming what is wrong with them: checked before a model is loaded for them."""
    from catembed.columns import check_one_value_per_cell

    check_one_value_per_cell(table, column)
    if table.num_rows == 0:
        raise InputError(f"{source} has a header but no rows")
    # Read as a value is: NaN, like null, is no label, and a Parquet 1.0 is '1'.
    raw = [as_text(label) for label in cells(table.column("label"))]
    unlabelled = [row for row, label in enumerate(raw, 1) if label is None or not label.strip()]
    if unlabelled:  # a blank label was an unknown one, '  '
        first = f"row {unlabelled[0]:,}"
        rows = f"{first} has" if len(unlabelled) == 1 else f"{len(unlabelled):,} rows have"
        more = f", {first} first" if len(unlabelled) > 1 else ""
        raise InputError(f"{source}: {rows} no label{more}")
    labels = [normal_label(label) for label in raw]
    unknown = list(
        dict.fromkeys(r for r, n in zip(raw, labels, strict=True) if n not in (*LABELS, MISSING))
    )
    if unknown:  # named as written ('OOD'), not as normalised ('ood'); a few of them
        more = f" and {len(unknown) - SHOWN_UNKNOWN:,} more" if len(unknown) > SHOWN_UNKNOWN else ""
        raise InputError(
            f"{source}: unknown labels {unknown[:SHOWN_UNKNOWN]}{more}; labels must be one of: "
            f"{', '.join(LABELS)} (or {MISSING})"
        )
    return labels


def values_column(
    table: pa.Table, source: str, column: str | None = None, fmt: str | None = None
) -> str:
    """The column of a labelled table holding its values: ``column`` when given, else
    ``value``, or the only column besides ``label`` (``fmt``: the format it was read as)."""
    from catembed.tables import listed_columns, no_column

    others = [c for c in table.column_names if c != "label"]
    if column is None:
        column = "value" if "value" in others else (others[0] if len(others) == 1 else None)
        if column is None:
            names = listed_columns(table)
            raise InputError(
                f"{source} needs a value and a label column; it has: {names} "
                "(choose the values' column with --column)"
            )
    elif column == "label":  # not 'has no column label' of a file that has one
        raise InputError(f"{source}: --column names the values' column, not the labels'")
    elif column not in others:
        raise no_column(table, column, source, fmt=fmt)
    return column


def normal_label(label: object) -> str:
    """A label as ``LABELS`` write it: 'Valid', ' out-of-domain' and 'Out of domain' too."""
    return "_".join(str(label).replace("-", " ").split()).casefold()


def evaluation_tables(evaluation: LabelledEvaluation) -> list[tuple[list[str], list[list[str]]]]:
    """(header, rows) of the per-verdict scores and of the confusion matrix."""
    scores = [  # n/a: no value has the label (recall, F1), or none was given it (precision)
        [
            label,
            f"{s.precision:.4f}" if s.predicted else "n/a",
            f"{s.recall:.4f}" if s.support else "n/a",
            f"{s.f1:.4f}" if s.support else "n/a",  # none given it: recall 0, so F1 0
            str(s.support),
        ]
        for label, s in evaluation.per_label.items()
    ]
    confusion = [
        [label, *(str(n) for n in row)]
        for label, row in zip(evaluation.labels, evaluation.confusion, strict=True)
    ]
    return [
        (["label", "precision", "recall", "F1", "support"], scores),
        (["true \\ verdict", *evaluation.verdicts], confusion),
    ]
