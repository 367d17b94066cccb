"""ONNX Runtime encoders: fp32 and int8 (dynamic quantization) exports of a model folder.

sentence-transformers' own ONNX path (``backend="onnx"``, ``export_dynamic_quantized_onnx_model``)
needs ``optimum``, and optimum-onnx pins ``transformers<4.58`` while catembed needs transformers 5,
so the two cannot be installed together. catembed therefore exports with ``torch.onnx.export``
(the whole SentenceTransformer: transformer, pooling and Normalize in one graph) and quantizes
its MatMul weights to int8 blocks with onnxruntime's ``MatMulNBitsQuantizer``. The files go
where sentence-transformers keeps its ONNX exports (``onnx/model.onnx``,
``onnx/model_int8.onnx``) and keep its output name ``last_hidden_state`` next to catembed's
``sentence_embedding``. They are exported once,
on first use, written atomically, and reused afterwards.

Encoding with an export needs neither torch nor transformers: the model folder's
``tokenizer.json`` is read by the ``tokenizers`` library, so a process that only validates
skips seconds of imports.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catembed.errors import ModelError, first_line
from catembed.tables import atomic_file

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model_int8.onnx"
# Dynamic quantization's file, from earlier catembed versions (removed when int8 is next
# exported): each activation had one scale for the whole batch, so a text's embedding changed
# with the texts batched with it.
DYNAMIC_INT8_FILE = "model_qint8.onnx"
ONNX_OPSET = 17
EMBEDDING_OUTPUT = "sentence_embedding"
TOKEN_OUTPUT = "last_hidden_state"
# Only the matrix multiplications' weights are quantized, in blocks of QUANTIZED_BLOCK along
# their inputs; activations are quantized per token and block as they are computed
# (accuracy level 4: int8 arithmetic), so a text's embedding is the same in any batch.
QUANTIZED_OPS = ("MatMul",)
QUANTIZED_BLOCK = 128
SOURCE_FILE = "source.json"  # beside the exports: the model files they were made from
# Files of a model folder that do not change its embeddings: exports, card, catembed's data.
NOT_EXPORTED = frozenset(
    {ONNX_DIR, "README.md", "validator.json", "validator.safetensors", "catembed.json"}
)
INSTALL_HINT = "pip install 'catembed[onnx]'"


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelError(f"the onnx backends need onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


def onnx_path(folder: str | Path, quantized: bool = False) -> Path:
    """Where the (quantized) ONNX export of the model folder lives."""
    return Path(folder) / ONNX_DIR / (ONNX_INT8_FILE if quantized else ONNX_FILE)


def has_export(folder: Path) -> bool:
    """Whether an fp32 export of ``folder`` as it is now exists, in it or in the user's cache."""
    return _current(folder) or onnx_path(_cache_folder(folder)).is_file()


def _model_files(folder: Path) -> dict[str, Path]:
    """The model files an export is made from: all but the exports, the card and catembed's
    own files, which do not change the embeddings."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name.split("/")[0] not in NOT_EXPORTED:
            found[name] = path
    return found


def _source(folder: Path) -> dict[str, list[Any]]:
    """Size, modification time and SHA-256 of each model file of ``folder``."""
    return {
        name: [path.stat().st_size, path.stat().st_mtime_ns, _digest(path)]
        for name, path in _model_files(folder).items()
    }


def _digest(path: Path) -> str:
    status = path.stat()
    return _file_digest(str(path), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_digest(name: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, read once per process while its size and time stay (choosing the
    backend and loading the export both check a copied folder's files)."""
    with open(name, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _current(folder: Path) -> bool:
    """Whether ``folder`` holds an fp32 export made from its model files as they are now: a
    model saved again over it (by sentence-transformers, say) makes its export stale. A file
    of the same size but another time (a copy that did not keep times) is compared by its
    SHA-256; one removed since (the weights, by a deployment that keeps the export alone) is
    no sign of a change."""
    if not onnx_path(folder).is_file():
        return False
    try:
        recorded = json.loads((folder / ONNX_DIR / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict):
        return False
    for name, path in _model_files(folder).items():
        status, known = path.stat(), recorded.get(name)
        if not isinstance(known, list) or len(known) != 3 or known[0] != status.st_size:
            return False
        if known[1] != status.st_mtime_ns and known[2] != _digest(path):
            return False
    return True


def ensure_onnx(
    folder: str | Path, quantized: bool = False, shown_as: str = "", cached: bool = False
) -> Path:
    """Return the ONNX file of ``folder``, exporting (and quantizing) it first if missing;
    a model folder that cannot be written (a read-only mount, another user's), that a Python
    package installed (the base model) or that is not to be written (``cached``: a base model
    train read) gets its exports in the user's cache instead."""
    _require_onnxruntime()
    folder = Path(folder)
    current = _current(folder)
    if current and onnx_path(folder, quantized).is_file():  # the usual case: no cache key
        return onnx_path(folder, quantized)
    cache = _cache_folder(folder)
    if onnx_path(cache, quantized).is_file():
        return onnx_path(cache, quantized)
    writable = not cached and not installed(folder) and _can_write(folder / ONNX_DIR)
    base = folder if writable else cache
    fp32 = onnx_path(folder) if current else None
    fp32 = fp32 or (onnx_path(cache) if onnx_path(cache).is_file() else None)
    if fp32 is None:
        fp32 = onnx_path(base)
        if base == folder:  # a stale int8 export would outlive its source
            onnx_path(folder, quantized=True).unlink(missing_ok=True)
        _export(folder, fp32, shown_as)
        with _atomic_path(base / ONNX_DIR / SOURCE_FILE) as tmp:
            tmp.write_text(json.dumps(_source(folder)), encoding="utf-8")
    target = onnx_path(base, quantized)
    if quantized:
        _quantize(fp32, target)
    return target


def _cache_folder(folder: Path) -> Path:
    """Where the exports of a model folder that cannot be written go: the user's cache,
    named after the folder and its files' sizes and times (a retrained model gets new ones)."""
    key = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape"))
    for path in sorted(folder.iterdir()):
        if path.is_file():
            found = path.stat()
            key.update(f"\0{path.name}\0{found.st_size}\0{found.st_mtime_ns}".encode())
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "catembed" / ONNX_DIR / key.hexdigest()[:16]


def installed(folder: Path) -> bool:
    """Whether ``folder`` lies inside an installed package (site-packages)."""
    return any(part in ("site-packages", "dist-packages") for part in folder.resolve().parts)


def _can_write(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (made if missing)."""
    try:
        folder.mkdir(exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _export(folder: Path, target: Path, shown_as: str = "") -> None:
    import torch

    from catembed.models import load_model

    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise ModelError(f"exporting to ONNX needs the onnx package: {INSTALL_HINT}") from None
    logger.info("exporting %s to %s", "the model" if shown_as else folder, shown_as or target)
    model = load_model(str(folder)).eval()
    names = _input_names(model.tokenizer)
    example = model.preprocess(["Sweaters", "Car Battery"])
    inputs = tuple(example[name] for name in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes[TOKEN_OUTPUT] = {0: "batch", 1: "sequence"}
    axes[EMBEDDING_OUTPUT] = {0: "batch"}
    with _atomic_path(target) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(
            _graph(model, names),
            inputs,
            str(tmp),
            input_names=list(names),
            output_names=[TOKEN_OUTPUT, EMBEDDING_OUTPUT],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _quantize(source: Path, target: Path) -> None:
    _require_onnxruntime()
    import onnx

    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as error:  # it needs onnx-ir
        raise ModelError(f"int8 quantization needs {error.name}: {INSTALL_HINT}") from None

    logger.info("quantizing %s to int8", source)
    quiet = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # a line for each node it leaves alone
    try:
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(source)),
            bits=8,
            block_size=QUANTIZED_BLOCK,
            is_symmetric=True,
            accuracy_level=4,
            op_types_to_quantize=QUANTIZED_OPS,
        )
        quantizer.process()
        with _atomic_path(target) as tmp:
            onnx.save_model(quantizer.model.model, str(tmp))
    finally:
        quiet.setLevel(level)
    (target.parent / DYNAMIC_INT8_FILE).unlink(missing_ok=True)


def _graph(model: SentenceTransformer, names: Sequence[str]) -> Any:
    """The SentenceTransformer as one traceable function of its tokenizer's inputs."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model(dict(zip(names, tensors, strict=True)))
            return out["token_embeddings"], out[EMBEDDING_OUTPUT]

    return Graph()


@contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``, readable like any file the user writes,
    and rename it into place if the block succeeds."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelError(f"cannot write the ONNX export into {target.parent}: {error}") from None
    umask = os.umask(0)
    os.umask(umask)
    with atomic_file(target) as tmp:
        yield tmp
        tmp.chmod(0o666 & ~umask)


def _input_names(tokenizer: Any) -> tuple[str, ...]:
    names = tuple(getattr(tokenizer, "model_input_names", None) or ())
    return names or ("input_ids", "attention_mask")


class OnnxEncoder:
    """Encode with an ONNX export of a model folder; answers sentence-transformers' ``encode``."""

    def __init__(self, folder: str | Path, quantized: bool = False, threads: int | None = None):
        from catembed.backends import physical_cores

        ort = _require_onnxruntime()
        self.path = ensure_onnx(folder, quantized)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or physical_cores()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime's InvalidProtobuf, ...: a truncated copy
            raise ModelError(
                f"cannot load the ONNX export {self.path} (remove it: --backend onnx "
                f"exports the model again): {first_line(error)}"
            ) from None
        self.max_seq_length = _max_seq_length(Path(folder))
        self.tokenizer = _tokenizer(Path(folder))
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._dimension = int(self.session.get_outputs()[1].shape[1] or 0) or None

    def get_sentence_embedding_dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.encode(["catembed"]).shape[1])
        return self._dimension

    get_embedding_dimension = get_sentence_embedding_dimension

    def encode(
        self,
        inputs: str | Sequence[str],
        *args: Any,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Embed ``sentences`` like ``SentenceTransformer.encode`` (longest texts first, each
        batch padded to its own longest text); returns float32 rows in the input order."""
        if args:
            raise TypeError("OnnxEncoder.encode takes its options as keywords")
        single = isinstance(inputs, str)
        texts = [inputs] if isinstance(inputs, str) else [str(s) for s in inputs]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(texts), max(1, batch_size))
        rows: list[np.ndarray] = []
        for start in _progress(starts, bool(show_progress_bar)):
            batch = [texts[i] for i in order[start : start + batch_size]]
            rows.append(self._run(batch))
        dimension = rows[0].shape[1] if rows else self.get_sentence_embedding_dimension()
        vectors = np.empty((len(texts), dimension), dtype=np.float32)
        if rows:
            vectors[np.asarray(order)] = np.concatenate(rows)
        if normalize_embeddings:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors /= np.maximum(norms, 1e-12)
        result: Any = vectors[0] if single else vectors
        if convert_to_tensor or not convert_to_numpy:
            import torch

            tensor = torch.from_numpy(np.ascontiguousarray(result))
            return tensor if convert_to_tensor else list(tensor)
        return result

    def _run(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_tensors="np",
        )
        feeds = {}
        for name in self._inputs:
            value = encoded.get(name)
            if value is None:  # e.g. token_type_ids from a tokenizer that does not return them
                value = np.zeros_like(encoded["input_ids"])
            feeds[name] = np.asarray(value, dtype=np.int64)
        (output,) = self.session.run([EMBEDDING_OUTPUT], feeds)
        return np.asarray(output, dtype=np.float32)


def _tokenizer(folder: Path) -> Any:
    """The folder's tokenizer: ``tokenizer.json`` read by the ``tokenizers`` library (what
    transformers' fast tokenizers run), else transformers' own."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder))
    return _FastTokenizer(path, _pad_token_name(folder))


class _FastTokenizer:
    """``tokenizer.json`` answering transformers' tokenizer call, as far as catembed calls it:
    ``padding`` to the batch's longest text, ``truncation`` at ``max_length`` tokens."""

    def __init__(self, path: Path, pad_token: str | None) -> None:
        self._json = path.read_text(encoding="utf-8")
        self._pad_token = pad_token
        self._tokenizers: dict[tuple[bool, int | None], Any] = {}  # tokenizers.Tokenizer

    def _configured(self, padding: bool, max_length: int | None) -> Any:
        key = (padding, max_length)
        found = self._tokenizers.get(key)
        if found is None:
            from tokenizers import Tokenizer

            found = Tokenizer.from_str(self._json)
            found.no_padding()  # a saved file may pad or cut every text to a fixed length
            found.no_truncation()
            if padding:
                name = self._pad_token or (found.padding or {}).get("pad_token") or "[PAD]"
                found.enable_padding(pad_id=found.token_to_id(name) or 0, pad_token=name)
            if max_length is not None:
                found.enable_truncation(max_length)
            self._tokenizers[key] = found
        return found

    @property
    def backend_tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer``, cutting and padding nothing (as transformers names it)."""
        return self._configured(False, None)

    def __call__(
        self,
        texts: list[str],
        padding: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> dict[str, Any]:
        tokenizer = self._configured(bool(padding), max_length if truncation else None)
        batch = tokenizer.encode_batch(list(texts))
        out: dict[str, Any] = {
            "input_ids": [e.ids for e in batch],
            "token_type_ids": [e.type_ids for e in batch],
            "attention_mask": [e.attention_mask for e in batch],
        }
        if return_tensors == "np":
            return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
        return out


def _pad_token_name(folder: Path) -> str | None:
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        token = json.loads(config.read_text(encoding="utf-8")).get("pad_token")
    except (ValueError, AttributeError):
        return None
    token = token.get("content") if isinstance(token, dict) else token
    return token if isinstance(token, str) else None


def _max_seq_length(folder: Path) -> int:
    from catembed.models import MAX_SEQ_LENGTH

    for name in ("sentence_bert_config.json", "sentence_transformers_config.json"):
        path = folder / name
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8")).get("max_seq_length")
            if isinstance(value, int) and value > 0:
                return value
    return MAX_SEQ_LENGTH


def _progress(items: range, show: bool) -> Any:
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="Batches", unit="batch")
