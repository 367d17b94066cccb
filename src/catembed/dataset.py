"""Build (anchor, positive, negative) triplet datasets from a list of valid values.

Anchor and positive are two different valid values; the negative is either a value of another
domain (``out_of_domain``) or a malformed variant of a valid value (named by its corruption
kind). A share of the valid values is held out of training entirely, so the evaluation split
measures both values seen in training and values the model has never seen.
"""

from __future__ import annotations

import logging
import random
import unicodedata
from dataclasses import dataclass, field
from statistics import mean
from typing import TYPE_CHECKING

import pyarrow as pa

from catembed.backends import check_encodable
from catembed.corruptions import CORRUPTION_KINDS, corrupt, join_values
from catembed.errors import ConfigError, InputError
from catembed.normalize import doubtful_values
from catembed.vocabulary import DEFAULT_DOMAIN, domain_values, negative_pool

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEFAULT_TRAIN_SIZE = 2120
DEFAULT_EVAL_SIZE = 177
DEFAULT_HELDOUT_FRACTION = 0.2
DEFAULT_CORRUPTION_RATE = 0.5
DEFAULT_SEED = 42
MAX_TRIPLETS = 1_000_000  # a million triplets train for hours here; more only fill memory
OUT_OF_DOMAIN = "out_of_domain"
COLUMNS = ("anchor", "positive", "negative")
MIN_TRAINING_VALUES = 2
ANCHOR_CORRUPTION_SHARE = 0.7
# Near-miss spellings are the hardest negatives ('Tuxed' for 'Tuxedo'): drawn twice as often.
HARD_KINDS = (
    "typo_insert",
    "typo_delete",
    "typo_swap",
    "typo_double",
    "typo_replace",
    "truncate",
    "char_substitution",
)
# Kinds an uncased BERT tokenizer cannot see ('SWEATERS', ' Sweaters', 'Swea\u200bters' all
# tokenize like 'Sweaters'): as negatives they teach nothing and cap accuracy, so training
# leaves them to the validator's format checks unless asked for explicitly.
HIDDEN_FROM_TOKENIZER = ("case_noise", "whitespace", "control_chars")
DEFAULT_CORRUPTION_KINDS = tuple(k for k in CORRUPTION_KINDS if k not in HIDDEN_FROM_TOKENIZER)


@dataclass(frozen=True)
class DatasetConfig:
    """How a triplet dataset is built; the defaults reproduce the seed card's shape."""

    train_size: int = DEFAULT_TRAIN_SIZE
    eval_size: int = DEFAULT_EVAL_SIZE
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION
    corruption_rate: float = DEFAULT_CORRUPTION_RATE
    corruption_kinds: tuple[str, ...] = DEFAULT_CORRUPTION_KINDS
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if not 1 <= self.train_size <= MAX_TRIPLETS:
            raise ConfigError(
                f"train size must be 1 to {MAX_TRIPLETS:,} triplets, got {self.train_size:,}"
            )
        if not 0 <= self.eval_size <= MAX_TRIPLETS:
            raise ConfigError(
                f"eval size must be 0 to {MAX_TRIPLETS:,} triplets, got {self.eval_size:,}"
            )
        if self.seed < 0:  # random.Random(-7) is random.Random(7)
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed}")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ConfigError(f"held-out fraction must be in [0, 1), got {self.heldout_fraction}")
        if not 0.0 <= self.corruption_rate <= 1.0:
            raise ConfigError(f"corruption rate must be in [0, 1], got {self.corruption_rate}")
        unknown = sorted(set(self.corruption_kinds) - set(CORRUPTION_KINDS))
        if unknown or not self.corruption_kinds:
            known = ", ".join(CORRUPTION_KINDS)
            problem = f"unknown corruption kinds {unknown}" if unknown else "no corruption kinds"
            raise ConfigError(f"{problem}; known kinds: {known}")


@dataclass(frozen=True)
class Triplet:
    anchor: str
    positive: str
    negative: str
    negative_kind: str  # "out_of_domain" or the corruption kind


@dataclass(frozen=True)
class TripletDataset:
    """A train split and an evaluation split in two parts: seen and held-out values."""

    train: list[Triplet]
    eval_seen: list[Triplet]
    eval_heldout: list[Triplet]
    train_values: tuple[str, ...]
    heldout_values: tuple[str, ...]
    out_of_domain_values: tuple[str, ...]
    config: DatasetConfig = field(default_factory=DatasetConfig)

    @property
    def evaluation(self) -> list[Triplet]:
        return self.eval_seen + self.eval_heldout

    def table(self, split: str) -> pa.Table:
        """Return ``train`` or ``eval`` as a table; eval rows say their ``part``."""
        if split == "train":
            parts = [("train", self.train)]
        elif split == "eval":
            parts = [("seen", self.eval_seen), ("heldout", self.eval_heldout)]
        else:
            raise ValueError(f"unknown split {split!r}")
        rows = [(part, t) for part, triplets in parts for t in triplets]
        return pa.table(
            {
                "anchor": [t.anchor for _, t in rows],
                "positive": [t.positive for _, t in rows],
                "negative": [t.negative for _, t in rows],
                "negative_kind": [t.negative_kind for _, t in rows],
                "part": [part for part, _ in rows],
            }
        )


def build_triplets(
    valid: list[str] | tuple[str, ...] | None = None,
    config: DatasetConfig | None = None,
    out_of_domain: list[str] | tuple[str, ...] | None = None,
) -> TripletDataset:
    """Build a triplet dataset from ``valid`` values (default: the built-in apparel domain).

    ``out_of_domain`` defaults to every built-in domain that does not overlap ``valid``.
    """
    if config is not None and not isinstance(config, DatasetConfig):
        raise TypeError(f"config must be a DatasetConfig, got {type(config).__name__}")
    config = config or DatasetConfig()
    values = _distinct(domain_values(DEFAULT_DOMAIN) if valid is None else valid)
    if not values:
        raise InputError("the list of valid values is empty")
    if len(values) < MIN_TRAINING_VALUES:
        raise InputError(f"need at least {MIN_TRAINING_VALUES} distinct valid values, got 1")
    if valid is not None and (warning := doubtful_values(values)):
        logger.warning(warning)
    known = set(values)
    given = None if out_of_domain is None else _distinct(out_of_domain)
    pool = negative_pool(values, given, "no out-of-domain values are left to use as negatives")

    rng = random.Random(config.seed)
    shuffled = rng.sample(values, len(values))
    n_heldout = int(len(values) * config.heldout_fraction)
    if n_heldout < 2 or len(values) - n_heldout < MIN_TRAINING_VALUES:
        n_heldout = 0  # too few values to hold a pair out
    heldout, seen = shuffled[:n_heldout], shuffled[n_heldout:]
    pool = rng.sample(pool, len(pool))
    n_pool_heldout = int(len(pool) * config.heldout_fraction) if n_heldout else 0
    pool_heldout, pool_seen = pool[:n_pool_heldout], pool[n_pool_heldout:]
    # A pool too small to hold a share out (a few --out-of-domain values) serves both parts.
    pool_heldout = pool_heldout or pool_seen

    n_eval_heldout = config.eval_size // 2 if n_heldout else 0
    builder = _Builder(rng, config, known)
    return TripletDataset(
        train=builder.triplets(seen, pool_seen, config.train_size),
        eval_seen=builder.triplets(seen, pool_seen, config.eval_size - n_eval_heldout),
        eval_heldout=builder.triplets(heldout, pool_heldout, n_eval_heldout),
        train_values=tuple(seen),
        heldout_values=tuple(heldout),
        out_of_domain_values=tuple(pool),
        config=config,
    )


@dataclass
class _Builder:
    rng: random.Random
    config: DatasetConfig
    known: set[str]

    def triplets(self, values: list[str], pool: list[str], size: int) -> list[Triplet]:
        return [self._triplet(values, pool) for _ in range(size)]

    def _triplet(self, values: list[str], pool: list[str]) -> Triplet:
        anchor, positive = self.rng.sample(values, 2)
        if self.rng.random() >= self.config.corruption_rate:
            return Triplet(anchor, positive, self.rng.choice(pool), OUT_OF_DOMAIN)
        # A broken spelling of the triplet's own values, mostly the anchor's: the hardest and
        # most useful negative ("Sweaters" must sit closer to "Cardigan" than to "Sweatrs").
        source = anchor if self.rng.random() < ANCHOR_CORRUPTION_SHARE else positive
        kinds = self.config.corruption_kinds
        weighted = [*kinds, *(k for k in kinds if k in HARD_KINDS)]
        for _ in range(20):
            kind, negative = corrupt(source, self.rng, weighted)
            if kind == "join" and self.rng.random() < 0.5:
                negative = join_values(source, self.rng.choice(values), self.rng)
            if negative not in self.known and tokenizer_view(negative) != tokenizer_view(source):
                return Triplet(anchor, positive, negative, kind)
        return Triplet(anchor, positive, self.rng.choice(pool), OUT_OF_DOMAIN)


def token_statistics(
    table: pa.Table, tokenizer: PreTrainedTokenizerBase, limit: int = 1000
) -> dict[str, dict[str, float]]:
    """Min/mean/max token counts per text column over the first ``limit`` rows, as in ST cards."""
    stats: dict[str, dict[str, float]] = {}
    for column in COLUMNS:
        texts = table.column(column).to_pylist()[:limit]
        if not texts:
            continue
        lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
        stats[column] = {"min": min(lengths), "mean": round(mean(lengths), 2), "max": max(lengths)}
    return stats


def tokenizer_view(text: str) -> str:
    """Roughly what an uncased BERT tokenizer sees: no case, accents, control or format
    characters, and whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text).casefold()
    kept = (c for c in decomposed if unicodedata.category(c) not in ("Mn", "Cc", "Cf"))
    return " ".join("".join(kept).split())


def _distinct(values: list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(values, str):
        raise TypeError("values must be a list of texts, not one string")
    given = list(values)
    for value in given:
        if not isinstance(value, str):
            raise TypeError(f"values must be texts, got {value!r}")
    if isinstance(values, set | frozenset):  # in an order of their hashes, new each run
        given.sort()
    check_encodable(given)  # a lone surrogate: the tokenizer's TypeError, once the model loaded
    seen: dict[str, None] = {}
    for value in given:
        text = value.strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)
