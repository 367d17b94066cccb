"""Inference backends: every encoder answers sentence-transformers' ``encode`` call.

``torch`` is the stock SentenceTransformer; faster backends load files exported once into
the model folder and reused.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from catembed.errors import ConfigError
from catembed.models import check_model_folder, load_model


class Backend(StrEnum):
    TORCH = "torch"


DEFAULT_BACKEND = Backend.TORCH


class Encoder(Protocol):
    """What catembed needs of a model: ``encode(texts, batch_size=..., normalize_embeddings=True,
    convert_to_numpy=True) -> np.ndarray`` of shape (n, dimension)."""

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any: ...


def load_encoder(path: str | Path, backend: Backend | str = DEFAULT_BACKEND) -> Encoder:
    """Load the model folder at ``path`` for inference with ``backend``."""
    try:
        chosen = Backend(backend)
    except ValueError:
        known = ", ".join(b.value for b in Backend)
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {known}") from None
    folder = check_model_folder(path)
    if chosen is Backend.TORCH:
        return load_model(str(folder))
    raise ConfigError(f"backend {chosen.value} is not available")  # pragma: no cover
