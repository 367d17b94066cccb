"""The domain classifier: is a value of the column's domain, whatever its spelling?

A logistic regression over embeddings of an encoder that was not fine-tuned (the base model):
fine-tuning on a few values overfits them, so unseen valid values end up as far from the
references as outsiders do, while the base model's embedding space still places them inside.
``catembed.calibration.fit_domain_vectors`` fits one and calibrates its threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from catembed.backends import DEFAULT_BATCH_SIZE, encode_normalized

if TYPE_CHECKING:
    from catembed.backends import Encoder
    from catembed.verdicts import Thresholds

DOMAIN_L2 = 1e-2  # regularisation of the classifier
NEWTON_STEPS = 50  # at most; it takes 3 to 6


@dataclass
class DomainModel:
    """A linear in-domain classifier over ``encoder``'s embeddings, fitted with the reference
    values as positives and out-of-domain values as negatives; ``thresholds.similarity``
    is the lowest in-domain probability that is still in the domain."""

    encoder: Encoder
    model: str  # what ``Validator.load`` loads the encoder from ('': the validator's own)
    weights: np.ndarray
    bias: float
    thresholds: Thresholds

    def probabilities(
        self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """In-domain probability of each text."""
        if not texts:
            return np.zeros(0, dtype=np.float64)
        vectors = encode_normalized(self.encoder, texts, batch_size)
        return probabilities(vectors, self.weights, self.bias)

    @staticmethod
    def fit(
        positives: np.ndarray, negatives: np.ndarray, l2: float = DOMAIN_L2
    ) -> tuple[np.ndarray, float]:
        """Weights and bias of a class-balanced, L2-regularised logistic regression.

        Newton's method in numpy: the loss is strictly convex and, so regularised, nearly
        quadratic, so a few steps reach the optimum, and validating with the onnx
        backend never imports torch for it.
        """
        x = np.c_[
            np.r_[positives, negatives].astype(np.float64), np.ones(len(positives) + len(negatives))
        ]
        y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
        share = np.where(y > 0, 0.5 / len(positives), 0.5 / len(negatives))
        penalty = np.full(x.shape[1], l2)
        penalty[-1] = 0.0  # the bias is not regularised

        def loss(theta: np.ndarray) -> float:
            z = x @ theta
            return float(share @ (np.logaddexp(0.0, z) - y * z) + penalty @ (theta * theta))

        narrow = x.astype(np.float32)
        theta = np.zeros(x.shape[1])
        current = loss(theta)
        for _ in range(NEWTON_STEPS):
            p = 1.0 / (1.0 + np.exp(-(x @ theta)))
            gradient = x.T @ (share * (p - y)) + 2 * penalty * theta
            # float32 is precise enough for the direction, and twice as fast
            hessian = (
                (narrow * (share * p * (1 - p))[:, None].astype(np.float32)).T @ narrow
            ).astype(np.float64)
            hessian[np.diag_indices_from(hessian)] += 2 * penalty
            step = np.linalg.solve(hessian, gradient)
            scale = 1.0
            while (trial := loss(theta - scale * step)) > current and scale > 1e-6:
                scale /= 2  # a damped step, should a full one overshoot
            theta, current = theta - scale * step, trial
            if np.abs(scale * step).max() < 1e-7:
                break
        return theta[:-1].astype(np.float32), float(theta[-1])


def probabilities(vectors: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """In-domain probability of each row of ``vectors`` under ``weights`` and ``bias``."""
    logits = vectors.astype(np.float64) @ weights.astype(np.float64) + bias
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0))))
