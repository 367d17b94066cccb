"""Measuring models: triplet accuracy, each distinct text encoded once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from catembed.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from catembed.dataset import Triplet


class Encoder(Protocol):
    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any: ...


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


def triplet_accuracy(
    model: Encoder, anchors: Sequence[str], positives: Sequence[str], negatives: Sequence[str]
) -> float:
    """Share of triplets whose anchor is closer (cosine) to the positive than to the negative.

    The same measure as sentence-transformers' ``TripletEvaluator`` ``cosine_accuracy``.
    """
    if not anchors:
        return float("nan")
    vectors = encode_distinct(model, [*anchors, *positives, *negatives])
    a = np.stack([vectors[t] for t in anchors])
    p = np.stack([vectors[t] for t in positives])
    n = np.stack([vectors[t] for t in negatives])
    positive_scores = np.einsum("ij,ij->i", a, p)
    negative_scores = np.einsum("ij,ij->i", a, n)
    return float(np.mean(positive_scores > negative_scores))


def accuracy_of_triplets(model: Encoder, triplets: Sequence[Triplet]) -> float:
    return triplet_accuracy(
        model,
        [t.anchor for t in triplets],
        [t.positive for t in triplets],
        [t.negative for t in triplets],
    )


def triplet_table_accuracy(model: Encoder, table: pa.Table) -> dict[str, tuple[int, float]]:
    """Accuracy of a triplet table, overall and per ``part`` when the table has one.

    Returns ``{part: (triplets, accuracy)}`` with the overall figure under ``"all"``.
    """
    missing = [c for c in ("anchor", "positive", "negative") if c not in table.column_names]
    if missing:
        names = ", ".join(table.column_names)
        raise InputError(f"triplet data needs columns anchor, positive, negative; it has: {names}")
    columns = {
        c: [_text(v) for v in table.column(c).to_pylist()]
        for c in ("anchor", "positive", "negative")
    }
    if not columns["anchor"]:
        raise InputError("the triplet data is empty")
    parts = table.column("part").to_pylist() if "part" in table.column_names else []
    results = {"all": (len(columns["anchor"]), _accuracy(model, columns, None, parts))}
    for part in dict.fromkeys(parts):
        rows = [i for i, p in enumerate(parts) if p == part]
        results[str(part)] = (len(rows), _accuracy(model, columns, rows, parts))
    return results


def _accuracy(
    model: Encoder, columns: dict[str, list[str]], rows: list[int] | None, parts: list[object]
) -> float:
    pick = (lambda values: values) if rows is None else (lambda values: [values[i] for i in rows])
    return triplet_accuracy(
        model, pick(columns["anchor"]), pick(columns["positive"]), pick(columns["negative"])
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)
