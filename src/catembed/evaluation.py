"""Measuring models: triplet accuracy, each distinct text encoded once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from catembed.backends import Encoder
from catembed.errors import InputError
from catembed.verdicts import as_text, cells

if TYPE_CHECKING:
    import pyarrow as pa

    from catembed.dataset import Triplet

Columns = tuple[Sequence[str], Sequence[str], Sequence[str]]  # anchors, positives, negatives


def encode_distinct(
    model: Encoder, texts: Sequence[str], batch_size: int = 128
) -> dict[str, np.ndarray]:
    """Encode each distinct text once; return ``{text: unit vector}``."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return {}
    vectors = model.encode(
        distinct, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    return dict(zip(distinct, np.asarray(vectors, dtype=np.float32), strict=True))


def accuracy_by_part(model: Encoder, parts: Mapping[str, Columns]) -> dict[str, float]:
    """Triplet accuracy of each part, every distinct text of all parts encoded once.

    The same measure as sentence-transformers' ``TripletEvaluator`` ``cosine_accuracy``: the
    share of triplets whose anchor is closer (cosine) to the positive than to the negative.
    """
    vectors = encode_distinct(model, [t for columns in parts.values() for c in columns for t in c])
    results: dict[str, float] = {}
    for name, (anchors, positives, negatives) in parts.items():
        if not anchors:
            results[name] = float("nan")
            continue
        a, p, n = (np.stack([vectors[t] for t in c]) for c in (anchors, positives, negatives))
        positive_scores = np.einsum("ij,ij->i", a, p)
        negative_scores = np.einsum("ij,ij->i", a, n)
        results[name] = float(np.mean(positive_scores > negative_scores))
    return results


def triplet_accuracy(
    model: Encoder, anchors: Sequence[str], positives: Sequence[str], negatives: Sequence[str]
) -> float:
    """Share of triplets whose anchor is closer (cosine) to the positive than to the negative."""
    return accuracy_by_part(model, {"all": (anchors, positives, negatives)})["all"]


def triplet_columns(triplets: Sequence[Triplet]) -> Columns:
    return (
        [t.anchor for t in triplets],
        [t.positive for t in triplets],
        [t.negative for t in triplets],
    )


def accuracy_of_triplets(model: Encoder, triplets: Sequence[Triplet]) -> float:
    return triplet_accuracy(model, *triplet_columns(triplets))


def triplet_table_accuracy(model: Encoder, table: pa.Table) -> dict[str, tuple[int, float]]:
    """Accuracy of a triplet table, overall and per ``part`` when the table has one.

    Returns ``{part: (triplets, accuracy)}`` with the overall figure under ``"all"``.
    """
    missing = [c for c in ("anchor", "positive", "negative") if c not in table.column_names]
    if missing:
        from catembed.tables import listed_columns

        names = listed_columns(table)
        raise InputError(f"triplet data needs columns anchor, positive, negative; it has: {names}")
    a, p, n = (
        [as_text(v) or "" for v in cells(table.column(c))]
        for c in ("anchor", "positive", "negative")
    )
    if not a:
        raise InputError("the triplet data is empty")
    for name, texts in (("anchor", a), ("positive", p), ("negative", n)):
        # Scored as a triplet, an empty text (or one of spaces, missing as a cell) only
        # lowers the accuracy.
        row = next((i for i, text in enumerate(texts, 1) if not text.strip()), None)
        if row is not None:
            raise InputError(f"triplet {row} has an empty {name}: each needs three texts")
    labels = cells(table.column("part")) if "part" in table.column_names else []
    rows: dict[str, list[int]] = {"all": list(range(len(a)))}
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):  # one pass, not one per part
        part = as_text(label)
        if part is not None:  # a triplet without a part counts in 'all' only
            groups.setdefault(part, []).append(i)
    named_all = len(groups.get("all", rows["all"]))
    if named_all != len(a):  # it replaced the overall figure
        raise InputError(
            f"part 'all' holds {named_all} of the {len(a)} triplets, but all names every "
            "triplet's figure: rename that part"
        )
    rows |= groups
    parts = {
        name: ([a[i] for i in picked], [p[i] for i in picked], [n[i] for i in picked])
        for name, picked in rows.items()
    }
    accuracy = accuracy_by_part(model, parts)
    return {name: (len(rows[name]), accuracy[name]) for name in rows}
