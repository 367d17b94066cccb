"""Calibration helpers compute what their plain formulas compute."""

from __future__ import annotations

import numpy as np
import pytest

from catembed import calibration
from catembed.calibration import leave_one_out


def _whole_matrix(embeddings: np.ndarray) -> np.ndarray:
    """``leave_one_out`` as it was: every similarity at once."""
    matrix = embeddings @ embeddings.T
    np.fill_diagonal(matrix, -np.inf)
    return np.asarray(matrix.max(axis=1), dtype=np.float32)


def _unit_rows(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 64)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("count", [2, 3, 17, 300])
def test_leave_one_out_in_blocks_is_the_whole_matrix(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    embeddings = _unit_rows(count, count)
    whole = _whole_matrix(embeddings)
    assert leave_one_out(embeddings).tolist() == whole.tolist()
    monkeypatch.setattr(calibration, "SIMILARITY_BLOCK", 2000)  # blocks of 16 to 20 rows
    found = leave_one_out(embeddings)
    assert found.dtype == np.float32
    assert found.tolist() == whole.tolist()


def test_leave_one_out_of_one_value_is_one() -> None:
    assert leave_one_out(_unit_rows(1, 0)).tolist() == [1.0]
