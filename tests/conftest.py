"""Shared fixtures: the real base model and one short real training run, once per session."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from catembed import DatasetConfig, TrainingConfig, TrainingResult, train
from catembed.models import DEFAULT_BASE_MODEL, load_model

# A short run of the real recipe: enough steps to move the model, few enough for CI.
SMOKE_TRAINING = TrainingConfig(max_steps=6)
SMOKE_DATA = DatasetConfig(train_size=384, eval_size=120)


@pytest.fixture(scope="session")
def _base_model():  # type: ignore[no-untyped-def]
    return load_model(DEFAULT_BASE_MODEL)


@pytest.fixture
def base_model(_base_model):  # type: ignore[no-untyped-def]
    """A private copy of the base model, safe to modify in a test."""
    return copy.deepcopy(_base_model)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    """One real training run on the built-in apparel domain, shared by the whole session."""
    output = tmp_path_factory.mktemp("models") / "apparel"
    return train(None, output, SMOKE_TRAINING, SMOKE_DATA, show_progress=False)


@pytest.fixture(scope="session")
def model_dir(trained: TrainingResult) -> Path:
    return trained.model_dir
