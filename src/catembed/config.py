"""Configuration files for ``catembed train --config``: JSON or TOML, checked strictly.

The shape is the one written into every model card::

    {"training": {"epochs": 4, "batch_size": 64, ...}, "dataset": {"train_size": 2120, ...}}

Values given on the command line win over the file, which wins over the defaults. A value out
of range is an error naming where it came from: a key of the file (a ConfigError, as the file's
other mistakes), or an option (an OptionError, which the CLI shows as a usage error).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from catembed.dataset import DatasetConfig
from catembed.errors import ConfigError
from catembed.training import TrainingConfig

C = TypeVar("C")


class OptionError(ConfigError, click.BadParameter):
    """A command-line value a configuration refuses: a ConfigError to the library, and to the
    CLI a usage error naming the option (exit 2), as click's own for a value of a wrong type."""


class _TrainingSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Strict types: 'batch_size = true' was read as batch size 1, and "5e-5" in quotes as a
    # number; a whole number still does for a float.
    base_model: StrictStr | None = None
    epochs: StrictFloat | None = None
    batch_size: StrictInt | None = None
    learning_rate: StrictFloat | None = None
    margin: StrictFloat | None = None
    seed: StrictInt | None = None
    warmup_ratio: StrictFloat | None = None
    lr_scheduler: StrictStr | None = None
    max_seq_length: StrictInt | None = None
    max_steps: StrictInt | None = None
    eval_steps: StrictInt | None = None
    fast: StrictBool | None = None
    bf16: StrictBool | None = None


class _DatasetSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_size: StrictInt | None = None
    eval_size: StrictInt | None = None
    heldout_fraction: StrictFloat | None = None
    corruption_rate: StrictFloat | None = None
    corruption_kinds: tuple[StrictStr, ...] | None = None
    seed: StrictInt | None = None


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    training: _TrainingSection = _TrainingSection()
    dataset: _DatasetSection = _DatasetSection()


def load_configs(
    path: str | Path | None,
    training: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
) -> tuple[TrainingConfig, DatasetConfig]:
    """Merge defaults, the optional file at ``path`` and explicit overrides (None = unset),
    the values of command-line options named like the keys (``batch_size``: --batch-size)."""
    file = _read(Path(path)) if path else _ConfigFile()
    given_training, given_dataset = _set(training), _set(dataset)
    # Each value with where it came from, which an error names.
    train_values = {
        **_from_file(file.training, f"config file {path}: training"),
        **from_options(given_training),
    }
    data_values = {
        **_from_file(file.dataset, f"config file {path}: dataset"),
        **from_options(given_dataset),
    }
    # One seed drives both the data and the training unless the dataset names its own; a seed
    # given explicitly (--seed) also beats the file's dataset seed, which every card's config has.
    explicit = "seed" in given_training and "seed" not in given_dataset
    if explicit or ("seed" in train_values and "seed" not in data_values):
        data_values["seed"] = train_values["seed"]
    return build(TrainingConfig, train_values), build(DatasetConfig, data_values)


def build(cls: type[C], values: dict[str, tuple[Any, str]]) -> C:
    """``cls`` from ``(value, where)`` pairs: a value out of range raises an error naming its
    ``where``, an option ('--epochs') or a key of a config file ('config file x: training')."""
    for key, (value, where) in values.items():
        try:
            cls(**{key: value})  # each field is checked on its own, so the bad one is known
        except ConfigError as error:
            if where.startswith("--"):
                raise OptionError(str(error), param_hint=f"'{where}'") from None
            raise ConfigError(f"{where}.{key}: {error}") from None
        except (TypeError, ValueError) as error:  # a wrong type from a Python caller
            raise ConfigError(f"{key}: {error}") from None
    return cls(**{key: value for key, (value, _) in values.items()})


def _from_file(section: BaseModel, where: str) -> dict[str, tuple[Any, str]]:
    return {key: (value, where) for key, value in section.model_dump(exclude_none=True).items()}


def from_options(values: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Command-line values for ``build``, keyed like the fields they set (``max_wait_ms``)."""
    return {key: (value, "--" + key.replace("_", "-")) for key, value in values.items()}


def _read(path: Path) -> _ConfigFile:
    if path.is_dir():  # 'not found' of a folder that is there
        raise ConfigError(f"config file {path} is a folder; give the JSON or TOML file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        raise ConfigError(f"config file {path}: YAML is not read; write it as JSON or TOML (.toml)")
    kind = "TOML" if suffix == ".toml" else "JSON"
    try:
        text = path.read_text(encoding="utf-8-sig")  # Notepad and PowerShell start with a BOM
        raw = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        read_as = "" if suffix in (".json", ".toml") else " (read as JSON: name a TOML file .toml)"
        raise ConfigError(f"cannot parse config file {path} as {kind}{read_as}: {error}") from None
    try:
        return _ConfigFile.model_validate(raw)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])  # '' for the whole file
        # 'a valid dictionary or instance of _TrainingSection': the class means nothing to users
        message = problem["msg"].split(" or instance of ")[0]
        raise ConfigError(f"config file {path}: {where + ': ' if where else ''}{message}") from None


def _set(values: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (values or {}).items() if value is not None}
