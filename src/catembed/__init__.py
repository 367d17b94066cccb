"""catembed: small embedding models that know what belongs in a categorical column."""

from __future__ import annotations

from catembed.dataset import DatasetConfig, TripletDataset, build_triplets
from catembed.errors import CatembedError
from catembed.training import TrainingConfig, TrainingResult, train
from catembed.validation import Validator
from catembed.verdicts import ValueReport, Verdict

__version__ = "0.1.0"

__all__ = [
    "CatembedError",
    "DatasetConfig",
    "TrainingConfig",
    "TrainingResult",
    "TripletDataset",
    "Validator",
    "ValueReport",
    "Verdict",
    "__version__",
    "build_triplets",
    "train",
]
