"""Calibration helpers compute what their plain formulas compute."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from catembed import DatasetConfig, Validator, build_triplets, calibration
from catembed.backends import encode_normalized
from catembed.calibration import leave_one_out
from catembed.models import DEFAULT_BASE_MODEL
from catembed.verdicts import Thresholds, Verdict
from catembed.vocabulary import domain_values


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


class _Counted:
    """A real encoder that counts the texts it is asked to encode."""

    def __init__(self, encoder: SentenceTransformer) -> None:
        self.encoder = encoder
        self.texts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def encode(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        self.texts.update(texts)
        return self.encoder.encode(texts, *args, **kwargs)


@pytest.mark.parametrize("values", [12, 4])  # held-out values, and too few to hold any out
def test_calibration_encodes_each_valid_value_once(
    base_model: SentenceTransformer, tmp_path: Path, values: int
) -> None:
    # The validator written encoded every value again (the training values twice, with none
    # held out): a tenth of calibrating on 12,000 values.
    dataset = build_triplets(domain_values("apparel")[:values], DatasetConfig(train_size=8))
    counted = _Counted(base_model)
    validator = calibration.calibrate_for_training(
        counted,  # type: ignore[arg-type]
        dataset,
        tmp_path,
        domain_encoder=base_model,
        domain_model=DEFAULT_BASE_MODEL,
    )
    listed = [*dataset.train_values, *dataset.heldout_values]
    assert {v: counted.texts[v] for v in listed} == dict.fromkeys(listed, 1)
    assert validator.reference == listed
    again = encode_normalized(base_model, listed, 64)
    assert np.abs(validator.embeddings - again).max() < 1e-5
    saved = Validator.load(tmp_path, encoder=base_model)  # type: ignore[arg-type]
    assert np.array_equal(saved.embeddings, validator.embeddings)


def test_calibration_report_encodes_no_valid_value_again(
    base_model: SentenceTransformer, tmp_path: Path
) -> None:
    # The report's probe encoded the training values again with the classifier's encoder, as
    # its references, and the held-out values as values to judge: the valid values twice.
    dataset = build_triplets(domain_values("apparel")[:20], DatasetConfig(train_size=8))
    domain_encoder = _Counted(copy.deepcopy(base_model))
    validator = calibration.calibrate_for_training(
        base_model,
        dataset,
        tmp_path,
        domain_encoder=domain_encoder,  # type: ignore[arg-type]
        domain_model=DEFAULT_BASE_MODEL,
    )
    listed = [*dataset.train_values, *dataset.heldout_values]
    assert {v: domain_encoder.texts[v] for v in listed} == dict.fromkeys(listed, 1)
    assert validator.calibration["valid_values"] == len(dataset.heldout_values) > 0


def test_remembered_encoder_encodes_only_new_texts(base_model: SentenceTransformer) -> None:
    counted = _Counted(base_model)
    known = ["Sweaters", "Hoodies"]
    made = encode_normalized(base_model, known, 64)
    remembered = calibration._Remembered(counted, known, made)  # type: ignore[arg-type]
    texts = ["Hoodies", "Toaster", "Sweaters", "Toaster"]
    vectors = encode_normalized(remembered, texts, 64)  # type: ignore[arg-type]
    assert counted.texts == Counter({"Toaster": 1})
    assert np.array_equal(vectors[[0, 2]], made[[1, 0]])
    again = encode_normalized(base_model, texts, 64)
    assert np.abs(vectors - again).max() < 1e-5
    assert np.array_equal(vectors[1], vectors[3])


def test_report_verdicts_are_validates_without_suggestions(
    base_model: SentenceTransformer,
) -> None:
    # The report judged its probes with validate, which also looks for a repair of each
    # malformed value (half the report's time on 30,000 values) that the report never reads.
    listed = list(domain_values("apparel"))[:40]
    thresholds = Thresholds(similarity=0.5, scale=0.05)
    probe = Validator(base_model, listed[:30], thresholds)  # type: ignore[arg-type]
    texts = [*listed[30:], "Toaster", "Sweatrs", "<b>Hoodies</b>", "SKIRTS", "Sweatrs", " "]
    texts += [f"{v}x" for v in listed[:10]] + ["Kettle", "Tuxed"]
    expected = probe.validate(texts)
    reports = calibration._verdicts(probe, texts)
    assert [(r.value, r.verdict, r.score) for r in reports] == [
        (r.value, r.verdict, r.score) for r in expected
    ]
    assert any(r.verdict is Verdict.MALFORMED for r in reports)
    assert any(r.verdict is not Verdict.MALFORMED for r in reports)
