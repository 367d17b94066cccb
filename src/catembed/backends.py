"""Inference backends: every encoder answers sentence-transformers' ``encode`` call.

``torch`` is the stock SentenceTransformer; ``onnx`` and ``onnx-int8`` run ONNX Runtime on
files exported once into the model folder (``onnx/``) and reused (see catembed.onnx_backend).
``auto``, the default, is ``onnx`` where onnxruntime is installed and the model has an export
(``catembed train`` writes one), else ``torch``: the same embeddings within 1e-6, twice as fast,
and a process that only validates never imports torch.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import weakref
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
# Of a value, for an encoder without a tokenizer to cut it exactly (see clip_texts).
MAX_ENCODED_CHARACTERS = 2000
DEFAULT_BATCH_SIZE = 128
# A long text is first cut to this many characters per token the model keeps (4,096 for 256
# tokens): text averages 4 to 5 characters a token, so the cut keeps several times the tokens
# needed. TextClipper checks that it does, and cuts longer where it does not.
CHARACTERS_PER_KEPT_TOKEN = 16


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
    """Load the model folder at ``path`` for inference with ``backend``; long texts are cut
    before they are tokenized (see :class:`TextClipper`)."""
    check_backend(backend)
    folder = check_model_folder(path)
    chosen = resolve_backend(backend, folder)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the encoder's threads are enough
    if chosen is Backend.TORCH:
        return ClippedEncoder(load_model(str(folder)))
    from catembed.onnx_backend import OnnxEncoder

    return ClippedEncoder(OnnxEncoder(folder, quantized=chosen is Backend.ONNX_INT8))


class TextClipper:
    """Cuts long texts to a prefix that the tokenizer turns into the same first ``max_length``
    tokens as the whole text: tokenizing a 6 MB text took 11 s, for the model to keep 256.

    Why the tokens are the same: a tokenizer splits a text into words (at spaces and
    punctuation) and each word's tokens depend on that word alone; only the prefix's last word
    may be cut. So when the prefix's first ``max_length`` tokens lie in words before a later
    one, they are the whole text's first tokens. ``CHARACTERS_PER_KEPT_TOKEN`` characters a
    token hold several times that many in any text of words; a prefix that holds too few (a
    run of spaces, a word of thousands of letters, which is one '[UNK]') is doubled until it
    does, up to the whole text. An added token ('[MASK]') written across the cut would change
    an earlier word too: those words end the longest added token's length before the cut. A
    tokenizer that truncates at the left is not clipped.
    """

    def __init__(self, tokenizer: Any, max_length: int | None) -> None:
        self.max_length = max_length or 0
        self.limit = self.max_length * CHARACTERS_PER_KEPT_TOKEN
        backend = getattr(tokenizer, "backend_tokenizer", None)  # a tokenizers.Tokenizer
        self._tokenizer: Any = None
        if backend is None or not max_length:
            return
        if getattr(tokenizer, "truncation_side", "right") != "right":
            return
        from tokenizers import Tokenizer

        plain = Tokenizer.from_str(backend.to_str())  # a copy: others call the original
        plain.no_padding()
        plain.no_truncation()
        self._tokenizer = plain
        added = plain.get_added_tokens_decoder().values()
        self._margin = max((len(token.content) for token in added), default=0)

    @property
    def clips(self) -> bool:
        """Whether it cuts long texts: it has a fast tokenizer that truncates at the right."""
        return self._tokenizer is not None

    def __call__(self, texts: Sequence[str]) -> list[str]:
        if self._tokenizer is None:
            return list(texts)
        return [self.clip(text) if len(text) > self.limit else text for text in texts]

    def clip(self, text: str) -> str:
        """``text``, or a prefix of it that the tokenizer cuts to the same tokens."""
        if self._tokenizer is None:
            return text
        length = self.limit
        while length < len(text):
            head = text[:length]
            if self._keeps_its_tokens(head):
                return head
            length *= 2
        return text

    def _keeps_its_tokens(self, head: str) -> bool:
        """Whether ``head``'s first ``max_length`` tokens lie in words that end, ``_margin``
        characters before its end, before a later word starts."""
        encoding = self._tokenizer.encode(head, add_special_tokens=False)
        words, offsets = encoding.word_ids, encoding.offsets
        last = self.max_length - 1  # the kept tokens are among the first max_length
        for after in range(last + 1, len(words)):
            if words[after] != words[last]:
                return bool(offsets[after - 1][1] + self._margin <= len(head))
        return False


class ClippedEncoder:
    """An encoder whose texts :class:`TextClipper` cuts before its ``encode`` tokenizes them;
    other attributes come from the encoder."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self.clipper = TextClipper(
            getattr(encoder, "tokenizer", None), getattr(encoder, "max_seq_length", None)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def encode(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, str):
            inputs = self.clipper.clip(inputs)
        elif isinstance(inputs, list | tuple) and all(isinstance(i, str) for i in inputs):
            inputs = self.clipper(inputs)
        return self._encoder.encode(inputs, *args, **kwargs)


_CLIPPERS: weakref.WeakKeyDictionary[Any, TextClipper] = weakref.WeakKeyDictionary()


def clip_texts(encoder: Encoder, texts: Sequence[str]) -> list[str]:
    """``texts`` cut to what ``encoder`` sees of them, sparing its tokenizer the rest of a long
    one: by a :class:`TextClipper` of its tokenizer, to a prefix of the very same tokens (the
    encoders of ``load_encoder`` cut them so themselves: they get them whole). An encoder
    with no tokenizer to ask gets ``MAX_ENCODED_CHARACTERS`` of each."""
    own = getattr(encoder, "clipper", None)
    clipper = own if isinstance(own, TextClipper) else _clipper_of(encoder)
    if not clipper.clips:
        return [text[:MAX_ENCODED_CHARACTERS] for text in texts]
    return list(texts) if clipper is own else clipper(texts)


def _clipper_of(encoder: Encoder) -> TextClipper:
    """A :class:`TextClipper` of ``encoder``'s tokenizer, made once per encoder (copying the
    tokenizer takes 80 ms) unless it takes no weak reference."""
    max_length = getattr(encoder, "max_seq_length", None)
    with contextlib.suppress(TypeError):
        clipper = _CLIPPERS.get(encoder)
        if clipper is not None and clipper.max_length == (max_length or 0):
            return clipper
    clipper = TextClipper(getattr(encoder, "tokenizer", None), max_length)
    with contextlib.suppress(TypeError):
        _CLIPPERS[encoder] = clipper
    return clipper


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
