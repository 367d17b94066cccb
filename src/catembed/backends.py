"""Inference backends: every encoder answers sentence-transformers' ``encode`` call.

``torch`` is the stock SentenceTransformer; ``onnx`` and ``onnx-int8`` run ONNX Runtime on
files exported once into the model folder (``onnx/``) and reused (see catembed.onnx_backend).
``auto``, the default, is ``onnx`` where onnxruntime is installed and the model has an export
(``catembed train`` writes one), else ``torch``: the same embeddings within 1e-6, twice as fast,
and a process that only validates never imports torch.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from catembed.errors import ConfigError, InputError
from catembed.models import check_model_folder, load_model


class Backend(StrEnum):
    AUTO = "auto"
    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"


DEFAULT_BACKEND = Backend.AUTO
MAX_ENCODED_CHARACTERS = 2000  # of a value; the tokenizer keeps 512 tokens anyway
DEFAULT_BATCH_SIZE = 128


class Encoder(Protocol):
    """What catembed needs of a model: ``encode(texts, batch_size=..., normalize_embeddings=True,
    convert_to_numpy=True) -> np.ndarray`` of shape (n, dimension)."""

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any: ...


def check_backend(backend: Backend | str) -> Backend:
    """The backend ``backend`` names, or a ConfigError listing them."""
    try:
        return Backend(backend)
    except ValueError:
        known = ", ".join(b.value for b in Backend)
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {known}") from None


def onnx_available() -> bool:
    """Whether the onnx backends can run and export here (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def resolve_backend(backend: Backend | str, folder: str | Path) -> Backend:
    """The backend ``backend`` names for the model folder ``folder``; ``auto`` is ``onnx``
    where onnxruntime is installed and ``folder`` has an ONNX export or is a package's model
    (exported once into the user's cache), else ``torch``."""
    chosen = check_backend(backend)
    if chosen is not Backend.AUTO:
        return chosen
    if not onnx_available():
        return Backend.TORCH
    from catembed.onnx_backend import has_export, installed

    found = Path(folder)
    return Backend.ONNX if has_export(found) or installed(found) else Backend.TORCH


def load_encoder(path: str | Path, backend: Backend | str = DEFAULT_BACKEND) -> Encoder:
    """Load the model folder at ``path`` for inference with ``backend``."""
    check_backend(backend)
    folder = check_model_folder(path)
    chosen = resolve_backend(backend, folder)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the encoder's threads are enough
    if chosen is Backend.TORCH:
        return load_model(str(folder))
    from catembed.onnx_backend import OnnxEncoder

    return OnnxEncoder(folder, quantized=chosen is Backend.ONNX_INT8)


def unreadable_at(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (it has no UTF-8 form, and no tokenizer takes
    it), or None. Python reads bytes that are not UTF-8 so (in a command-line argument, say),
    and JSON can escape one."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def check_encodable(texts: Sequence[str]) -> None:
    """Refuse a text that ``unreadable_at`` finds a lone surrogate in."""
    for number, text in enumerate(texts, 1):
        position = unreadable_at(text)
        if position is not None:
            raise InputError(
                f"value {number} is not valid UTF-8 text (character {position + 1}): {text[:40]!r}"
            )


def encode_normalized(encoder: Encoder, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Unit-length float32 embeddings of ``texts``, one row each."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    check_encodable(texts)
    vectors = encoder.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    return np.asarray(vectors, dtype=np.float32)


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return max(1, len(cpus))
        cores.add((package, core))
    return max(1, len(cores) or os.cpu_count() or 1)
