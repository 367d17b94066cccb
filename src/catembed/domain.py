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
        """Weights and bias of a class-balanced, L2-regularised logistic regression."""
        import torch

        x = torch.tensor(np.r_[positives, negatives], dtype=torch.float64)
        y = torch.tensor(np.r_[np.ones(len(positives)), np.zeros(len(negatives))])
        share = torch.where(y > 0, 0.5 / len(positives), 0.5 / len(negatives))
        w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            losses = torch.nn.functional.binary_cross_entropy_with_logits(
                x @ w + b, y, reduction="none"
            )
            loss = (share * losses).sum() + l2 * (w * w).sum()
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        optimizer.step(closure)  # type: ignore[no-untyped-call]
        return w.detach().numpy().astype(np.float32), float(b.detach()[0])


def probabilities(vectors: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """In-domain probability of each row of ``vectors`` under ``weights`` and ``bias``."""
    logits = vectors.astype(np.float64) @ weights.astype(np.float64) + bias
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0))))
