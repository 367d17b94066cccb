from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from catembed.backends import encode_normalized
from catembed.errors import ConfigError
from catembed.vocabulary import DEFAULT_DOMAIN, domain_values, load_vocabulary, out_of_domain_values
from catembed.vocabulary_embeddings import (
    PROBES,
    TOLERANCE,
    encode_values,
    shipped,
    vocabulary_values,
)


def test_vocabulary_has_many_domains_of_clean_values() -> None:
    vocabulary = load_vocabulary()
    assert len(vocabulary) >= 20
    assert next(iter(vocabulary)) == DEFAULT_DOMAIN == "apparel"
    for domain, values in vocabulary.items():
        assert len(values) >= 30, domain
        assert len(set(values)) == len(values), domain
        for value in values:
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 &-]*[A-Za-z0-9]", value), value


def test_a_value_belongs_to_one_domain_only() -> None:
    owner: dict[str, str] = {}
    for domain, values in load_vocabulary().items():
        for value in values:
            key = value.casefold()
            assert owner.setdefault(key, domain) == domain, f"{value} in {owner[key]} and {domain}"


def test_out_of_domain_pool_skips_the_domains_of_the_valid_values() -> None:
    apparel = domain_values("apparel")
    pool = out_of_domain_values(list(apparel[:3]))
    assert pool and not set(pool) & set(apparel)
    assert set(domain_values("toys")) <= set(pool)


def test_unknown_domain_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown domain 'spaceships'"):
        domain_values("spaceships")


class _Counting:
    """A real model, counting the texts it is asked to encode."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.texts: list[str] = []

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        self.texts.extend(texts)
        return self.model.encode(texts, **kwargs)  # type: ignore[attr-defined,no-any-return]


def test_the_shipped_embeddings_are_the_base_models_own(_base_model: object) -> None:
    # Fails after an edit of the vocabulary: python -m catembed.vocabulary_embeddings
    values = vocabulary_values()
    assert len(shipped()) == len(values)
    fresh = encode_normalized(_base_model, values, 128)  # type: ignore[arg-type]
    stored = np.stack([shipped()[v] for v in values])
    assert np.abs(fresh - stored).max() <= TOLERANCE


def test_built_in_values_are_not_encoded_again_by_the_base_model(_base_model: object) -> None:
    texts = [*out_of_domain_values(["Sweaters"])[:300], "Toaster Oven Mitts", "Sweaters"]
    texts.append(texts[0])  # a repeat keeps its place
    counting = _Counting(_base_model)
    encoded = encode_values(counting, texts)
    assert len(counting.texts) == PROBES + 1  # the probes, and the one unknown value
    assert "Toaster Oven Mitts" in counting.texts
    fresh = encode_normalized(_base_model, texts, 128)  # type: ignore[arg-type]
    assert encoded.shape == fresh.shape and np.abs(encoded - fresh).max() <= TOLERANCE


def test_another_model_encodes_every_value_itself(model_dir: Path) -> None:
    from catembed.models import load_model

    counting = _Counting(load_model(str(model_dir)))  # fine-tuned: its probes differ
    texts = out_of_domain_values(["Sweaters"])[:50]
    encoded = encode_values(counting, texts)
    assert len(counting.texts) == PROBES + len(texts)
    fresh = encode_normalized(counting.model, texts, 128)  # type: ignore[arg-type]
    assert np.abs(encoded - fresh).max() <= TOLERANCE


class _Wider:
    """A real model's embeddings, each written twice: 768 dimensions, as larger models have."""

    def __init__(self, model: object) -> None:
        self.model = model

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        vectors = self.model.encode(texts, **kwargs)  # type: ignore[attr-defined]
        return np.hstack([vectors, vectors]) / np.sqrt(2)  # type: ignore[no-any-return]


def test_a_model_of_another_width_encodes_every_value_itself(_base_model: object) -> None:
    texts = out_of_domain_values(["Sweaters"])[:20]
    encoded = encode_values(_Wider(_base_model), texts)
    assert encoded.shape == (20, 768)
