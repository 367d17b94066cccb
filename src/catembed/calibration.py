"""Calibrating a validator's thresholds on held-out data built at training time.

The similarity threshold must hold for values the user never listed, so it is measured the
way a validator meets them: held-out valid values (never trained on) and out-of-domain values
that were not used as training negatives, each compared with the training values only. The
finished validator then uses every valid value as a reference, which only raises the
similarity of new valid values. Corruptions of the held-out values complete a calibration
report (``validator.json`` -> ``calibration``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from catembed.backends import DEFAULT_BATCH_SIZE, encode_normalized
from catembed.corruptions import CORRUPTION_KINDS, corrupt
from catembed.domain import DomainModel, probabilities
from catembed.metrics import auroc
from catembed.validation import JUDGED_CHUNK, Validator, similarities
from catembed.verdicts import Thresholds, ValueReport
from catembed.vocabulary_embeddings import encode_values

if TYPE_CHECKING:
    from pathlib import Path

    from catembed.backends import Encoder
    from catembed.dataset import TripletDataset

logger = logging.getLogger(__name__)

VALID_WEIGHT = 2.0  # rejecting a valid value costs twice as much as missing an outsider
LOWER_SHARE = 0.25  # where in a run of equally good thresholds the threshold sits
MIN_HELDOUT = 3  # fewer held-out values: fall back to leave-one-out over all values
CORRUPTIONS_PER_VALUE = 4
MAX_OUT_OF_DOMAIN = 400
DOMAIN_FOLDS = 5
DOMAIN_REPEATS = 3
SIMILARITY_BLOCK = 2**22  # similarities ``leave_one_out`` holds at a time (16 MB)
MIN_BLOCK_ROWS = 16


def leave_one_out(embeddings: np.ndarray) -> np.ndarray:
    """Each reference's highest similarity to the other references.

    Computed a block of rows at a time, the blocks of about equal size: the whole matrix of
    50,000 reference values is 10 GB (OpenBLAS crashed computing it), a block 16 MB. Each
    similarity is the one the whole matrix holds (blocks are never a row or few, which BLAS
    computes another way)."""
    count = len(embeddings)
    if count < 2:
        return np.ones(count, dtype=np.float32)
    blocks = min(-(-count * count // SIMILARITY_BLOCK), max(1, count // MIN_BLOCK_ROWS))
    best = np.empty(count, dtype=np.float32)
    for rows in np.array_split(np.arange(count), blocks):
        start, stop = int(rows[0]), int(rows[-1]) + 1
        block = embeddings[start:stop] @ embeddings.T
        block[np.arange(stop - start), rows] = -np.inf  # itself
        best[start:stop] = block.max(axis=1)
    return best


def calibrate_threshold(
    valid: Sequence[float] | np.ndarray, out_of_domain: Sequence[float] | np.ndarray
) -> Thresholds:
    """The similarity threshold that best separates ``valid`` from ``out_of_domain``
    similarities (valid acceptance weighted ``VALID_WEIGHT``), centred in its gap."""
    v = np.sort(np.asarray(valid, dtype=np.float64))
    o = np.sort(np.asarray(out_of_domain, dtype=np.float64))
    if len(v) == 0 or len(o) == 0:
        raise ValueError("calibration needs valid and out-of-domain similarities")
    points = np.unique(np.r_[v, o])
    candidates = np.r_[points[0] - 1e-3, (points[:-1] + points[1:]) / 2, points[-1] + 1e-3]
    accepted = 1.0 - np.searchsorted(v, candidates, side="left") / len(v)
    rejected = np.searchsorted(o, candidates, side="left") / len(o)
    objective = VALID_WEIGHT * accepted + rejected
    best = np.isclose(objective, objective.max())
    first = int(np.argmax(best))
    last = first
    while last + 1 < len(best) and best[last + 1]:
        last += 1
    # Neighbouring thresholds tie: stay in the lower part of the run. The few held-out valid
    # values are all a validator has seen of unseen ones; new valid values spread lower.
    threshold = float(candidates[first] + LOWER_SHARE * (candidates[last] - candidates[first]))
    spread = float(np.median(v) - np.median(o))
    scale = max(0.01, spread / 8) if spread > 0 else 0.02
    return Thresholds(similarity=round(threshold, 6), scale=round(scale, 6))


def calibrate_for_training(
    encoder: Encoder,
    dataset: TripletDataset,
    folder: Path,
    seed: int = 42,
    domain_encoder: Encoder | None = None,
    domain_model: str = "",
) -> Validator:
    """Calibrate on ``dataset``'s held-out values and write the validator into ``folder``.

    With ``domain_encoder`` (loadable again as ``domain_model``: the base model), the
    out-of-domain decision is a ``DomainModel`` over its embeddings, fitted on every value
    against the out-of-domain pool (it is calibrated out of fold, so it needs no held-out
    values); the report probes one fitted on the training values against the pool less the
    values it is probed on.
    """
    train_values = list(dataset.train_values)
    heldout = list(dataset.heldout_values)
    all_values = train_values + heldout
    ood = _unseen_out_of_domain(dataset, seed)
    rng = random.Random(seed)
    if len(heldout) >= MIN_HELDOUT:
        references = encode_normalized(encoder, train_values, DEFAULT_BATCH_SIZE)
        held = encode_normalized(encoder, heldout, DEFAULT_BATCH_SIZE)
        valid_sims = similarities(held, references)[0]
        probe_valid = heldout
        every = np.r_[references, held]  # the validator's, in all_values' order
    else:
        references = every = encode_normalized(encoder, all_values, DEFAULT_BATCH_SIZE)
        valid_sims = leave_one_out(references)
        train_values, probe_valid = all_values, []
    ood_sims = similarities(encode_normalized(encoder, ood, DEFAULT_BATCH_SIZE), references)[0]
    thresholds = calibrate_threshold(valid_sims, ood_sims)
    corrupted = _corruptions(probe_valid or all_values, set(all_values), rng)
    domain = probe_domain = None
    if domain_encoder is not None:
        pool = list(dataset.out_of_domain_values) or ood
        positives = encode_normalized(domain_encoder, all_values, DEFAULT_BATCH_SIZE)
        negatives = encode_values(domain_encoder, pool)
        domain = fit_domain_vectors(domain_encoder, domain_model, positives, negatives, pool)
        # The report's probe knows neither the held-out values (if any) nor the out-of-domain
        # probes.
        probes = set(ood)
        unprobed = np.array([v not in probes for v in pool])
        weights, bias = DomainModel.fit(
            positives[: len(train_values)], negatives[unprobed] if unprobed.any() else negatives
        )
        # The probe's classifier encoder gives back the valid values' embeddings just made:
        # the probe takes the training values' as its references and judges the held-out
        # values, and encoded them all again (a fifth of training on 12,000 values).
        remembered = _Remembered(domain_encoder, all_values, positives)
        probe_encoder = domain_encoder if domain_encoder is encoder else remembered
        probe_domain = replace(domain, encoder=probe_encoder, weights=weights, bias=bias)
    probe = Validator(encoder, train_values, thresholds, embeddings=references, domain=probe_domain)
    report = _report(probe, probe_valid, ood, corrupted)
    report.update(
        {
            "references": len(train_values),
            "valid_similarity": _summary(valid_sims),
            "out_of_domain_similarity": _summary(ood_sims),
        }
    )
    if domain is not None:
        decision = f"in-domain probability threshold {domain.thresholds.similarity:.3f}"
    else:
        decision = f"similarity threshold {thresholds.similarity:.3f}"
    logger.info(
        "validator: %s; on held-out data (%d valid, %d out-of-domain, %d corrupted values): %s",
        decision,
        len(probe_valid),
        len(ood),
        len(corrupted),
        ", ".join(f"{k} {v}" for k, v in report.items() if isinstance(v, float)),
    )
    if domain is not None:
        report["domain_threshold"] = domain.thresholds.similarity
    # The embeddings already made: encoding every value again was a tenth of calibration.
    validator = Validator(
        encoder, all_values, thresholds, embeddings=every, calibration=report, domain=domain
    )
    validator.save(folder)
    return validator


def fit_domain_vectors(
    encoder: Encoder,
    model: str,
    positives: np.ndarray,
    pool: np.ndarray,
    out_of_domain: Sequence[str],
) -> DomainModel:
    """A domain classifier over ``encoder``'s embeddings (loadable again as ``model``; ''
    means the validator's own encoder): ``positives``, the embeddings of the valid values,
    against ``pool``, those of ``out_of_domain``.

    Its threshold is calibrated on out-of-fold probabilities, as a validator meets values:
    every valid value with a classifier that never saw it (``DOMAIN_FOLDS``-fold, repeated
    ``DOMAIN_REPEATS`` times), against every out-of-domain value with a classifier that never
    saw its whole domain. Values of a domain the classifier saw are far easier to reject than
    those of a new domain, and new domains are what a column brings.
    """
    valid_probabilities = np.empty((DOMAIN_REPEATS, len(positives)))
    order = np.lexsort(positives.T[::-1])  # folds follow the values, not the list's order
    for repeat in range(DOMAIN_REPEATS):  # fold assignments of so few values are noisy
        folds = np.empty(len(positives), dtype=np.int64)
        folds[order] = np.random.default_rng(repeat).permutation(len(positives)) % DOMAIN_FOLDS
        for fold in range(DOMAIN_FOLDS):
            inside = folds == fold
            if inside.any() and (~inside).any():
                weights, bias = DomainModel.fit(positives[~inside], pool)
                valid_probabilities[repeat, inside] = probabilities(
                    positives[inside], weights, bias
                )
            elif inside.any():
                valid_probabilities[repeat, inside] = 0.5
    domain_folds = _domain_folds(out_of_domain)
    ood_probabilities = np.empty(len(out_of_domain))
    for fold in np.unique(domain_folds):
        inside = domain_folds == fold
        weights, bias = DomainModel.fit(positives, pool[~inside] if (~inside).any() else pool)
        ood_probabilities[inside] = probabilities(pool[inside], weights, bias)
    thresholds = calibrate_threshold(valid_probabilities.ravel(), ood_probabilities)
    weights, bias = DomainModel.fit(positives, pool)
    return DomainModel(encoder, model, weights, bias, thresholds)


class _Remembered:
    """``encoder`` that gives back the unit-length embeddings it already made of ``texts``
    (``vectors``, a row each) and encodes only the other texts."""

    def __init__(self, encoder: Encoder, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.encoder = encoder
        self.known = dict(zip(texts, vectors, strict=True))

    def __getattr__(self, name: str) -> Any:  # the tokenizer and its length, for clip_texts
        return getattr(self.encoder, name)

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        texts: Sequence[str] = inputs
        if not texts or isinstance(texts, str) or not kwargs.get("normalize_embeddings"):
            return self.encoder.encode(texts, *args, **kwargs)
        rest = list(dict.fromkeys(t for t in texts if t not in self.known))
        fresh: dict[str, np.ndarray] = {}
        if rest:
            vectors = np.asarray(self.encoder.encode(rest, *args, **kwargs), dtype=np.float32)
            fresh = dict(zip(rest, vectors, strict=True))
        return np.stack([self.known[t] if t in self.known else fresh[t] for t in texts])


def _domain_folds(values: Sequence[str]) -> np.ndarray:
    """A fold per value that keeps each built-in domain whole (other values: spread evenly)."""
    from catembed.vocabulary import load_vocabulary

    domain_of = {v: d for d, vs in load_vocabulary().items() for v in vs}
    domains = sorted({domain_of[v] for v in values if v in domain_of})
    order = {d: i for i, d in enumerate(random.Random(0).sample(domains, len(domains)))}
    folds = np.asarray(
        [
            order[domain_of[v]] % DOMAIN_FOLDS if v in domain_of else i % DOMAIN_FOLDS
            for i, v in enumerate(values)
        ]
    )
    if len(np.unique(folds)) < 2:  # one built-in domain: split it after all
        folds = np.arange(len(values)) % DOMAIN_FOLDS
    return folds


def _unseen_out_of_domain(dataset: TripletDataset, seed: int) -> list[str]:
    """Out-of-domain values never used as training negatives, when the dataset has them."""
    from catembed.dataset import OUT_OF_DOMAIN

    unseen = list(
        dict.fromkeys(t.negative for t in dataset.eval_heldout if t.negative_kind == OUT_OF_DOMAIN)
    )
    used = {t.negative for t in dataset.train if t.negative_kind == OUT_OF_DOMAIN}
    # build_triplets holds the same share of the out-of-domain pool out as of the valid values.
    n_pool = int(len(dataset.out_of_domain_values) * dataset.config.heldout_fraction)
    pool_heldout = [v for v in dataset.out_of_domain_values[:n_pool] if v not in used]
    values = list(dict.fromkeys(unseen + pool_heldout)) or list(dataset.out_of_domain_values)
    rng = random.Random(seed)
    return rng.sample(values, min(len(values), MAX_OUT_OF_DOMAIN))


def _corruptions(values: Sequence[str], known: set[str], rng: random.Random) -> list[str]:
    out: dict[str, None] = {}
    for value in values:
        for _ in range(CORRUPTIONS_PER_VALUE):
            _, text = corrupt(value, rng, CORRUPTION_KINDS)
            if text not in known and text.strip() != value:
                out.setdefault(text, None)
    return list(out)


def _report(
    probe: Validator, valid: list[str], ood: list[str], corrupted: list[str]
) -> dict[str, Any]:
    texts = valid + ood + corrupted
    reports = _verdicts(probe, texts)
    flagged = [r.is_anomaly for r in reports]
    n_valid, n_ood = len(valid), len(ood)
    report: dict[str, Any] = {
        "valid_values": n_valid,
        "out_of_domain_values": n_ood,
        "corrupted_values": len(corrupted),
    }
    if n_valid:
        report["valid_accepted"] = round(1 - float(np.mean(flagged[:n_valid])), 4)
        labels = [i >= n_valid for i in range(len(texts))]
        report["auroc"] = round(auroc(labels, [r.score for r in reports]), 4)
    report["out_of_domain_rejected"] = round(float(np.mean(flagged[n_valid : n_valid + n_ood])), 4)
    if corrupted:
        report["malformed_rejected"] = round(float(np.mean(flagged[n_valid + n_ood :])), 4)
    return report


def _verdicts(probe: Validator, texts: list[str]) -> list[ValueReport]:
    """``probe.validate(texts)``'s verdicts and scores, without the repairs it would suggest
    for malformed values, which the report never reads: suggesting them was half the
    report's time on 30,000 values. Each text is counted once, so the column's evidence
    (rows) changes none of them; distinct texts are judged a chunk at a time, as validate
    judges them."""
    distinct = list(dict.fromkeys(texts))
    known: dict[str, ValueReport] = {}
    judged: dict[str, ValueReport] = {}
    for start in range(0, len(distinct), JUDGED_CHUNK):
        chunk = distinct[start : start + JUDGED_CHUNK]
        judged.update(zip(chunk, probe.judge(chunk, repair_unseen=False, known=known), strict=True))
    return [judged[t] for t in texts]


def _summary(values: np.ndarray) -> dict[str, float]:
    q = np.quantile(values, [0.05, 0.5, 0.95]) if len(values) else [float("nan")] * 3
    return {
        "p05": round(float(q[0]), 4),
        "median": round(float(q[1]), 4),
        "p95": round(float(q[2]), 4),
    }
