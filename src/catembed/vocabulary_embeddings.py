"""The built-in vocabulary's embeddings under the default base model, shipped with the package.

Every validator built without training (``Validator.from_values``, ``catembed validate
--valid``) and every training run fits its domain classifier against the built-in values, and
encoding those 1,344 values costs seconds on a CPU each time. The package ships them
(``data/vocabulary-embeddings.safetensors``), and ``encode_values`` takes them when the
encoder is that model: it must give a few of them back within ``TOLERANCE``, so another model,
a fine-tuned one or a quantized backend encodes every value itself.

    python -m catembed.vocabulary_embeddings    # write them again after editing the vocabulary
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from catembed.backends import DEFAULT_BATCH_SIZE, encode_normalized
from catembed.vocabulary import load_vocabulary

if TYPE_CHECKING:
    from catembed.backends import Encoder

FILE = "data/vocabulary-embeddings.safetensors"
TOLERANCE = 1e-4  # largest difference per dimension: batching alone moves them by about 1e-6
PROBES = 4  # values encoded to tell whether the encoder is the one they were written with


def vocabulary_values() -> list[str]:
    """The built-in values in file order, each once: the rows of the shipped embeddings."""
    return list(dict.fromkeys(v for values in load_vocabulary().values() for v in values))


@cache
def shipped() -> dict[str, np.ndarray]:
    """Built-in value -> its shipped embedding; empty when the file is absent."""
    from safetensors.numpy import load

    source = resources.files("catembed").joinpath(FILE)
    if not source.is_file():
        return {}
    matrix = load(source.read_bytes())["embeddings"]
    values = vocabulary_values()
    if len(matrix) != len(values):  # written for another vocabulary: not to be trusted
        return {}
    return dict(zip(values, matrix, strict=True))


def encode_values(
    encoder: Encoder, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """``encode_normalized(encoder, texts)``, with built-in values taken from the shipped
    embeddings when ``encoder`` gives its probes back."""
    known = shipped()
    distinct = dict.fromkeys(texts)
    found = [t for t in distinct if t in known]
    if len(found) <= PROBES:
        return encode_normalized(encoder, texts, batch_size)
    probes = found[:: max(1, len(found) // PROBES)][:PROBES]
    encoded = encode_normalized(encoder, probes, batch_size)
    stored = np.stack([known[t] for t in probes])
    if encoded.shape != stored.shape or np.abs(encoded - stored).max() > TOLERANCE:
        return encode_normalized(encoder, texts, batch_size)
    rest = [t for t in distinct if t not in known]
    fresh = dict(zip(rest, encode_normalized(encoder, rest, batch_size), strict=True))
    return np.stack([known[t] if t in known else fresh[t] for t in texts]).astype(np.float32)


def write(path: Path) -> None:
    """Encode the built-in values with the default base model into ``path``."""
    from safetensors.numpy import save_file

    from catembed.models import DEFAULT_BASE_MODEL, load_model

    model = load_model(DEFAULT_BASE_MODEL)
    save_file(
        {"embeddings": encode_normalized(model, vocabulary_values(), DEFAULT_BATCH_SIZE)},
        str(path),
        metadata={"model": DEFAULT_BASE_MODEL},
    )


if __name__ == "__main__":
    target = Path(__file__).with_name("data") / Path(FILE).name
    write(target)
    print(f"wrote {target}")
