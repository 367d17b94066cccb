from __future__ import annotations

import json
from pathlib import Path

import pytest

from catembed.config import OptionError, load_configs
from catembed.errors import ConfigError


def test_defaults_are_the_seed_recipe() -> None:
    training, data = load_configs(None)
    assert (
        training.epochs,
        training.batch_size,
        training.learning_rate,
        training.margin,
        training.seed,
    ) == (4, 64, 5e-5, 0.3, 42)
    assert (training.lr_scheduler, training.warmup_ratio, training.max_seq_length) == (
        "linear",
        0.0,
        512,
    )
    assert (data.train_size, data.eval_size, data.seed) == (2120, 177, 42)


def test_file_then_command_line_override(tmp_path: Path) -> None:
    path = tmp_path / "recipe.json"
    path.write_text(
        json.dumps({"training": {"epochs": 2, "margin": 0.5}, "dataset": {"train_size": 300}})
    )
    training, data = load_configs(path, {"margin": 0.4, "seed": 7}, {"eval_size": 50})
    assert (training.epochs, training.margin, training.seed) == (2, 0.4, 7)
    assert (data.train_size, data.eval_size, data.seed) == (300, 50, 7)


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[training]\nbatch_size = 32\n[dataset]\ncorruption_kinds = ["markup", "hashtag"]\n'
    )
    training, data = load_configs(path)
    assert training.batch_size == 32 and data.corruption_kinds == ("markup", "hashtag")
    path.write_text("[training]\nepochs = 2\nlearning_rate = 1e-4\n")  # 2 is a float too
    assert load_configs(path)[0].epochs == 2


@pytest.mark.parametrize("name", ["recipe.json", "recipe.toml"])
def test_a_config_file_that_starts_with_a_byte_order_mark(tmp_path: Path, name: str) -> None:
    # "Unexpected UTF-8 BOM" (JSON), "Invalid statement" (TOML): as Notepad saves them.
    path = tmp_path / name
    text = "[training]\nepochs = 2\n" if name.endswith(".toml") else '{"training": {"epochs": 2}}'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_configs(path)[0].epochs == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"training": {"epoch": 3}}', "training.epoch: Extra inputs"),
        ('{"training": {"epochs": "many"}}', "training.epochs"),
        ("{not json", "cannot parse"),
        ('{"training": {"batch_size": 0}}', "batch size"),
        # Read leniently, true was batch size 1 and "yes" turned the fast loop on.
        ('{"training": {"batch_size": true}}', "training.batch_size: Input should be a valid int"),
        ('{"training": {"epochs": true}}', "training.epochs: Input should be a valid number"),
        ('{"training": {"learning_rate": "5e-5"}}', "training.learning_rate"),
        ('{"training": {"fast": "yes"}}', "training.fast: Input should be a valid boolean"),
        ('{"dataset": {"corruption_kinds": "markup"}}', "dataset.corruption_kinds"),
        ('{"dataset": {"seed": -1}}', "seed must be a non-negative integer"),
        ("[1]", r"bad\.json: Input should be a valid dictionary"),
        ('{"training": null}', r"bad\.json: training: Input should be a valid dictionary$"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_configs(path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("recipe.yaml", r"recipe\.yaml: YAML is not read; write it as JSON or TOML \(\.toml\)$"),
        ("recipe.cfg", r"recipe\.cfg as JSON \(read as JSON: name a TOML file \.toml\): Expecting"),
        ("recipe.json", r"recipe\.json as JSON: Expecting"),
    ],
)
def test_a_config_file_of_another_format_says_what_it_was_read_as(
    tmp_path: Path, name: str, message: str
) -> None:
    # A YAML file got "Expecting value: line 1 column 1", a JSON parser's complaint.
    path = tmp_path / name
    path.write_text("training:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match=message):
        load_configs(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_configs("nowhere.json")
    folder = tmp_path / "recipe.json"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"recipe\.json is a folder; give the JSON or TOML file"):
        load_configs(folder)  # 'config file not found' of a folder that is there


def test_seed_on_the_command_line_drives_the_data_of_a_card_config(tmp_path: Path) -> None:
    # Every card's config names a dataset seed; `--config card.json --seed 7` trained on seed
    # 42's triplets with seed 7, though --seed is the "random seed for data and training".
    path = tmp_path / "card.json"
    path.write_text(json.dumps({"training": {"seed": 42}, "dataset": {"seed": 42}}))
    training, data = load_configs(path, {"seed": 7})
    assert (training.seed, data.seed) == (7, 7)
    training, data = load_configs(path, {"seed": 7}, {"seed": 3})  # both given: each its own
    assert (training.seed, data.seed) == (7, 3)
    training, data = load_configs(path)
    assert (training.seed, data.seed) == (42, 42)
    path.write_text(json.dumps({"training": {"seed": 5}, "dataset": {"seed": 9}}))
    assert [c.seed for c in load_configs(path)] == [5, 9]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # A range error gave the dataclass's message alone: no file, no key.
        ('{"training": {"epochs": 0}}', r"bad\.json: training\.epochs: epochs must be positive"),
        ('{"training": {"margin": -1}}', r"bad\.json: training\.margin: margin must be a non-neg"),
        ('{"training": {"max_seq_length": 0}}', r"training\.max_seq_length: .*, got 0$"),
        ('{"training": {"lr_scheduler": "x"}}', r"training\.lr_scheduler: unknown lr scheduler"),
        ('{"dataset": {"heldout_fraction": 1}}', r"dataset\.heldout_fraction: held-out fraction"),
        ('{"training": {"seed": -1}}', r"bad\.json: training\.seed: seed must be in"),
    ],
)
def test_a_config_value_out_of_range_names_the_file_and_key(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as raised:
        load_configs(path)
    assert not isinstance(raised.value, OptionError)  # a file's mistake, as its other ones


def test_a_command_line_value_out_of_range_names_the_option(tmp_path: Path) -> None:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"training": {"epochs": 0}, "dataset": {"eval_size": -1}}))
    with pytest.raises(OptionError, match="batch size must be at least 1") as raised:
        load_configs(path, {"epochs": 2, "batch_size": 0})
    assert raised.value.format_message().startswith("Invalid value for '--batch-size': ")
    with pytest.raises(OptionError) as raised:
        load_configs(None, None, {"corruption_kinds": ("bogus",)})
    assert "'--corruption-kinds': unknown corruption kinds ['bogus']" in (
        raised.value.format_message()
    )
    # Values the command line replaces are not checked: they are not used.
    training, data = load_configs(path, {"epochs": 2}, {"eval_size": 5})
    assert (training.epochs, data.eval_size) == (2, 5)
