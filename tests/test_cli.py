from __future__ import annotations

import datetime
import decimal
import gzip
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from catembed._cli_options import check_output_folder
from catembed.cli import main
from catembed.errors import InputError


def run(*args: str, input: str | bytes | None = None) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("command", _commands(main))
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output
    help_text = result.output.split("Options:")[0].split("\n", 2)[-1].strip()
    assert help_text, f"{command} has no help text"


def test_dataset_build_writes_every_format_and_prints_statistics(tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text(
        "Sweaters\nCardigan\nTrousers\nJackets\nDresses\nBlouses\nJeans\nSkirts\nHoodies\nShorts\n"
    )
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / fmt
        result = run(
            "dataset",
            "build",
            "--valid",
            str(valid),
            "--output",
            str(out),
            "--format",
            fmt,
            "--train-size",
            "100",
            "--eval-size",
            "30",
        )
        assert result.exit_code == 0, result.output
        assert (out / f"train.{fmt}").is_file() and (out / f"eval.{fmt}").is_file()
        assert "100 triplets" in result.output and "30 triplets" in result.output
        assert "mean tokens" in result.output
    # Files already there are kept unless --overwrite says otherwise.
    kept = (tmp_path / "csv" / "train.csv").read_bytes()
    again = CliRunner().invoke(main, ["dataset", "build", "--output", str(tmp_path / "csv")])
    assert again.exit_code == 1 and "train.csv already exists; pass --overwrite" in again.output
    assert (tmp_path / "csv" / "train.csv").read_bytes() == kept
    other = ["dataset", "build", "--output", str(tmp_path / "csv"), "--format", "jsonl"]
    again = CliRunner().invoke(main, other)  # nor mixed with files of another format
    assert again.exit_code == 1 and "train.csv already exists" in again.output
    assert CliRunner().invoke(main, [*other, "--overwrite"]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["eval.jsonl", "train.jsonl"]
    again = CliRunner().invoke(main, ["dataset", "build", "--output", str(valid)])
    assert again.exit_code == 1 and "is a file, not a folder" in again.output
    table = pq.read_table(tmp_path / "parquet" / "train.parquet")
    assert table.num_rows == 100
    assert valid.read_text().startswith("Sweaters\n")  # input untouched


def test_dataset_build_from_a_csv_column(tmp_path: Path) -> None:
    csv = tmp_path / "catalog.csv"
    csv.write_text("id,category\n1,Sweaters\n2,Cardigan\n3,Sweaters\n4,Jeans\n5,Dresses\n")
    result = run(
        "dataset",
        "build",
        "--valid",
        str(csv),
        "--column",
        "category",
        "--output",
        str(tmp_path / "d"),
        "--train-size",
        "20",
        "--eval-size",
        "4",
    )
    assert result.exit_code == 0, result.output
    assert "4 for training, 0 held out" in result.output


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--valid", "missing.txt"], "file not found: missing.txt"),
        ("", ["--valid", "{path}"], "no valid values found"),
        ("Sweaters\n", ["--valid", "{path}"], "at least 2 distinct valid values"),
        (
            "a,b\nSweaters,1\n",
            ["--valid", "{path}.csv", "--column", "category"],
            "has no column 'category'",
        ),
        ("Sweaters\nJeans\n", ["--valid", "{path}", "--epochs", "0"], "epochs must be positive"),
        (None, ["--domain", "spaceships"], "unknown domain"),
        (None, ["--config", "nowhere.toml"], "config file not found"),
        (b"Sweaters\n\xff\xfeJeans\n", ["--valid", "{path}"], "not valid UTF-8"),
    ],
)
def test_train_bad_input_is_a_one_line_error(
    tmp_path: Path, setup: str | bytes | None, args: list[str], message: str
) -> None:
    path = tmp_path / "valid"
    if any("{path}.csv" in a for a in args):
        path = tmp_path / "valid.csv"
    if isinstance(setup, bytes):
        path.write_bytes(setup)
    elif setup is not None:
        path.write_text(setup)
    argv = [a.replace("{path}.csv", str(path)).replace("{path}", str(path)) for a in args]
    result = CliRunner().invoke(main, ["train", *argv, "--output", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--valid", "--out-of-domain", "--config"])
def test_train_overwrite_never_deletes_an_input_inside_the_model(
    tmp_path: Path, option: str
) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "catembed.json").write_text("{}")
    given = out / ("recipe.json" if option == "--config" else "values.txt")
    given.write_text("{}" if option == "--config" else "Parrots\nCanaries\nFinches\n")
    argv = ["train", option, str(given), "--output", str(out), "--overwrite", "--max-steps", "1"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: --output {out} holds the {option} file {given}, which --overwrite would "
        "delete; move it or name a new folder"
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(["catembed.json", given.name])


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
@pytest.mark.parametrize(
    ("option", "output", "message"),
    [
        # It said 'values.txt exists and is not a folder', and with --overwrite
        # 'values.txt lies inside values.txt, which --overwrite replaces'.
        ("--valid", "{input}", "--output {output} is the --valid file; name a new folder"),
        ("--out-of-domain", "{link}", "--output {output} is the --out-of-domain file; name a"),
        ("--config", "{input}", "--output {output} is the --config file; name a new folder"),
        # Without --overwrite it said to pass --overwrite, which would then be refused.
        ("--valid", "{tmp}/data", "--output {output} holds the --valid file {input}"),
        ("--valid", "{tmp}", "--output {output} holds the --valid file {input}"),
        ("--config", "{tmp}/data/..", "--output {output} holds the --config file {input}"),
    ],
)
def test_train_never_touches_an_input_that_output_names(
    tmp_path: Path, option: str, output: str, message: str, overwrite: list[str]
) -> None:
    (tmp_path / "data").mkdir()
    given = tmp_path / "data" / ("recipe.json" if option == "--config" else "values.txt")
    content = "{}" if option == "--config" else "Parrots\nCanaries\nFinches\n"
    given.write_text(content)
    (tmp_path / "link").symlink_to(given)
    out = output.format(input=given, tmp=tmp_path, link=tmp_path / "link")
    argv = ["train", option, str(given), "--output", out, *overwrite, "--max-steps", "1"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: " + message.format(output=out, input=given)
    ), result.output
    if overwrite and "holds" in message:
        assert lines[0].endswith(", which --overwrite would delete; move it or name a new folder")
    assert given.read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link"]


def test_train_refuses_an_output_holding_a_link_to_an_input(tmp_path: Path) -> None:
    # The link would go with the folder: the name given as --valid would then be gone.
    values = tmp_path / "values.txt"
    values.write_text("Parrots\nCanaries\nFinches\n")
    out = tmp_path / "model"
    out.mkdir()
    (out / "catembed.json").write_text("{}")
    (out / "valid.txt").symlink_to(values)
    argv = ["train", "--valid", str(out / "valid.txt"), "--output", str(out), "--overwrite"]
    argv += ["--max-steps", "1"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1
    assert f"holds the --valid file {out / 'valid.txt'}, which --overwrite" in result.output
    assert (out / "valid.txt").read_text() == values.read_text()


def test_sigterm_stops_a_command_even_inside_an_except_exception(tmp_path: Path) -> None:
    # Loading a model catches Exception; a SIGTERM there was reported as a failed load.
    code = (
        "import os, signal, sys, sentence_transformers as st\n"
        "load = st.SentenceTransformer.__init__\n"
        "def init(self, *a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return load(self, *a, **k)\n"
        "st.SentenceTransformer.__init__ = init\n"
        "from catembed.cli import main\n"
        "main(['train', '--output', sys.argv[1], '--max-steps', '1'])\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-c", code, str(tmp_path / "m")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "Error: terminated"
    assert list(tmp_path.iterdir()) == []


def test_commands_run_outside_the_main_thread_too() -> None:
    import threading

    results: list[click.testing.Result] = []
    worker = threading.Thread(target=lambda: results.append(run("kinds")))
    worker.start()
    worker.join()
    assert results[0].exit_code == 0, results[0].output
    assert "case_noise" in results[0].output


def test_train_without_evaluation_says_so(tmp_path: Path) -> None:
    argv = ["train", "--output", str(tmp_path / "m"), "--max-steps", "1", "--eval-size", "0"]
    result = CliRunner().invoke(main, [*argv, "--no-progress", "--train-size", "64"])
    assert result.exit_code == 0, result.output
    assert "no evaluation: the dataset has no evaluation triplets" in result.output
    assert "evaluation  base model" not in result.output
    assert "accuracy:" not in result.output  # 'base model accuracy: ' with nothing after it
    # sentence-transformers' own card was skipped (a template error): only catembed's parts.
    card = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    for section in ("## Usage", "## Training Details", "### Seen and held-out values (catembed)"):
        assert section in card, section
    assert "No evaluation triplets were built (`eval_size` 0)." in card


def test_the_cards_validate_command_runs_as_written_for_a_folder_with_spaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shell split the unquoted path: 'catembed validate --model /tmp/my models/v1 ...'.
    out = tmp_path / "my models" / "apparel v1"
    argv = ["train", "--output", str(out), "--max-steps", "1", "--train-size", "64"]
    assert run(*argv, "--no-progress").exit_code == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    command = next(line for line in card.splitlines() if line.startswith("catembed validate"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "products.csv").write_text("category\nSweaters\n<b>Hoodies</b>\n")
    words = shlex.split(command)
    assert words[:4] == ["catembed", "validate", "--model", str(out)]
    result = run(*words[1:])
    assert result.exit_code == 0, result.output
    assert re.search(r"<b>Hoodies</b> +1 +malformed", result.output), result.output


@pytest.mark.parametrize("command", [["train"], ["dataset", "build"]])
def test_domain_and_valid_together_are_refused(tmp_path: Path, command: list[str]) -> None:
    # --domain was ignored for --valid, even a misspelt one: the user's list was used instead.
    values = tmp_path / "values.txt"
    values.write_text("Parrots\nCanaries\nFinches\n")
    out = tmp_path / "out"
    argv = [*command, "--valid", str(values), "--domain", "toyz", "--output", str(out)]
    result = CliRunner().invoke(
        main, [*argv, "--max-steps" if command == ["train"] else "--seed", "1"]
    )
    assert result.exit_code == 2
    assert result.output == (
        "Error: give --valid or --domain (built-in values), not both"
        f" (see 'main {' '.join(command)} --help')\n"
    )
    assert not out.exists()


def test_dataset_build_with_a_few_out_of_domain_values(tmp_path: Path) -> None:
    # Too few to hold a share out for the held-out triplets: an IndexError traceback.
    values, negatives = tmp_path / "values.txt", tmp_path / "other.txt"
    twelve = (
        "Sweaters Cardigan Trousers Jackets Dresses Hoodies Skirts Jeans Shorts Coats Blouses Socks"
    )
    values.write_text("\n".join(twelve.split()))
    negatives.write_text("Toaster\nKettle\n")
    argv = ["dataset", "build", "--valid", str(values), "--out-of-domain", str(negatives)]
    result = run(*argv, "--output", str(tmp_path / "data"), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "data" / "eval.jsonl").open()]
    heldout = {r["negative"] for r in rows if r["part"] == "heldout"}
    assert heldout & {"Toaster", "Kettle"}
    assert "2 held out" in result.output


def test_dataset_build_into_an_impossible_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    result = run("dataset", "build", "--output", str(tmp_path / "file.txt" / "sub"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: cannot create {tmp_path / 'file.txt' / 'sub'}: Not a directory"
    ]


def test_train_into_a_folder_below_a_file_is_one_line(tmp_path: Path) -> None:
    # It said 'cannot write .../file.txt/model: File exists', as if the model folder did.
    (tmp_path / "file.txt").write_text("not a folder")
    result = run("train", "--output", str(tmp_path / "file.txt" / "model"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: cannot write {tmp_path / 'file.txt' / 'model'}: {tmp_path / 'file.txt'} is a file"
    ]


def test_a_train_that_fails_leaves_no_folders_for_its_output(tmp_path: Path) -> None:
    # The folders above --output were made up front and left behind, empty, by any failure.
    valid = tmp_path / "valid.txt"
    valid.write_text("Jeans\n")
    result = run("train", "--valid", str(valid), "--output", str(tmp_path / "a" / "b" / "model"))
    assert result.exit_code == 1 and "need at least 2 distinct valid values" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["valid.txt"]


def test_dataset_build_stopped_between_its_files_keeps_the_old_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each file was renamed into place as written: stopped before eval, the new train file sat
    # beside the old eval file, whose held-out values it had trained on.
    import catembed.tables

    out = tmp_path / "data"
    assert run("dataset", "build", "--output", str(out), "--train-size", "20").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write = catembed.tables.write_table
    calls = []

    def stopped_at_the_second(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(catembed.tables, "write_table", stopped_at_the_second)
    result = run("dataset", "build", "--output", str(out), "--seed", "7", "--overwrite")
    assert result.exit_code == 1 and result.output == "Error: interrupted\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_dataset_build_stopped_in_a_new_folder_leaves_no_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The folders of --output were made before the files were written, and left behind empty.
    import catembed.tables

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(catembed.tables, "write_table", stopped)
    out = tmp_path / "new" / "data"
    result = run("dataset", "build", "--output", str(out), "--train-size", "20")
    assert result.exit_code == 1 and result.output == "Error: interrupted\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "name"), [("--valid", "train.csv"), ("--out-of-domain", "eval.jsonl")]
)
def test_dataset_build_overwrite_never_replaces_its_own_input(
    tmp_path: Path, option: str, name: str
) -> None:
    # The input was replaced by the triplets written (or deleted as another format's file).
    out = tmp_path / "data"
    out.mkdir()
    given = out / name
    text = {
        "train.csv": "value\nParrots\nCanaries\nFinches\n",
        "eval.jsonl": '{"value": "Kettle"}\n',
    }
    given.write_text(text[name])
    before = given.read_bytes()
    argv = ["dataset", "build", option, str(given), "--output", str(out), "--overwrite"]
    result = run(*argv, "--format", "parquet", "--train-size", "20")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {given} is one of the files --overwrite replaces in {out}; "
        "move it or choose another --output"
    ]
    assert [p.name for p in out.iterdir()] == [name]
    assert given.read_bytes() == before


@pytest.mark.parametrize("base", ["missing", "file.txt", "empty"])
def test_dataset_build_with_a_bad_base_model_is_one_line_and_writes_nothing(
    tmp_path: Path, base: str
) -> None:
    # The tokenizer was loaded after the output folder was made: a traceback, an empty folder.
    (tmp_path / "file.txt").write_text("not a model")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "data"
    result = run("dataset", "build", "--output", str(out), "--base-model", str(tmp_path / base))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("Error: ")
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "option", "value", "message"),
    [
        ("train", "--epochs", "0", "epochs must be positive, got 0.0"),
        ("train", "--epochs", "nan", "epochs must be positive, got nan"),
        ("train", "--batch-size", "-1", "batch size must be at least 1, got -1"),
        ("train", "--learning-rate", "-1", "learning rate must be in (0, 1), got -1.0"),
        ("train", "--margin", "-0.1", "margin must be a non-negative number, got -0.1"),
        ("train", "--warmup-ratio", "1", "warm-up ratio must be in [0, 1), got 1.0"),
        ("train", "--max-steps", "0", "max steps must be positive (-1: all epochs), got 0"),
        ("train", "--seed", "-1", "seed must be in [0, 4294967295], got -1"),
        ("train", "--train-size", "0", "train size must be 1 to 1,000,000 triplets, got 0"),
        ("train", "--eval-size", "-1", "eval size must be 0 to 1,000,000 triplets, got -1"),
        ("train", "--heldout-fraction", "1", "held-out fraction must be in [0, 1), got 1.0"),
        ("train", "--corruption-rate", "2", "corruption rate must be in [0, 1], got 2.0"),
        ("train", "--corruption-kinds", "bogus", "unknown corruption kinds ['bogus']; known"),
        ("dataset build", "--seed", "-1", "seed must be in [0, 4294967295], got -1"),
        ("dataset build", "--train-size", "0", "train size must be 1 to 1,000,000 triplets"),
        ("train", "--base-model", "", "base model must name a model folder or hub id"),
        ("dataset build", "--base-model", "", "base model must name a model folder or hub id"),
    ],
)
def test_an_option_out_of_range_is_a_usage_error(
    tmp_path: Path, command: str, option: str, value: str, message: str
) -> None:
    # They exited 1 with the range alone ('batch size must be at least 1'), no option named.
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*command.split(), "--output", str(out), option, value])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: Invalid value for '{option}': {message}")
    assert result.output.endswith(f" {command} --help')\n")
    assert len(result.output.splitlines()) == 1, result.output
    assert not out.exists()


@pytest.mark.parametrize("command", ["encode", "similarity", "validate", "evaluate", "serve"])
def test_an_empty_model_is_a_usage_error_even_inside_a_model_folder(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    # --model '' was Path(''), the current folder: run inside a model, it was used unawares.
    monkeypatch.chdir(model_dir)
    result = run(command, "--model", "", "Sweaters", input="Sweaters\n")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: Invalid value for '--model': must not be empty")
    assert len(result.output.splitlines()) == 1, result.output


def test_train_with_a_config_value_out_of_range_names_the_key(tmp_path: Path) -> None:
    # It said 'epochs must be positive, got 0.0': no file, no key, as if --epochs were given.
    config = tmp_path / "recipe.toml"
    config.write_text("[training]\nepochs = 0\n")
    result = run("train", "--config", str(config), "--output", str(tmp_path / "out"))
    assert result.exit_code == 1  # as for the file's other mistakes (a string for a number)
    assert result.output.splitlines() == [
        f"Error: config file {config}: training.epochs: epochs must be positive, got 0.0"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_output_folder_that_is_or_holds_an_input_is_refused(
    tmp_path: Path, overwrite: bool
) -> None:
    # For train, whose --output X --valid X said 'X exists and is not a folder', and with
    # --overwrite 'X lies inside X, which --overwrite replaces'.
    (tmp_path / "data").mkdir()
    values = tmp_path / "data" / "values.txt"
    values.write_text("Parrots\nCanaries\n")
    (tmp_path / "link").symlink_to(values)
    inputs = {"--valid": str(values), "--config": None, "--out-of-domain": "-"}
    with pytest.raises(InputError, match=r"^--output \S+ is the --valid file; name a new folder$"):
        check_output_folder(values, overwrite, inputs)
    with pytest.raises(InputError, match=r"\S+link is the --valid file"):  # through a link
        check_output_folder(tmp_path / "link", overwrite, inputs)
    held = f"holds the --valid file {values}" + (
        ", which --overwrite would delete; move it or" if overwrite else ";"
    )
    for folder in (tmp_path / "data", tmp_path, tmp_path / "data" / ".."):
        with pytest.raises(InputError, match=re.escape(f"--output {folder} {held} name a new")):
            check_output_folder(folder, overwrite, inputs)
    inside = {"--valid": str(tmp_path / "data" / "valid.txt")}  # a link there goes with it
    (tmp_path / "data" / "valid.txt").symlink_to(tmp_path / "link")
    with pytest.raises(InputError, match="holds the --valid file"):
        check_output_folder(tmp_path / "data", overwrite, inside)
    check_output_folder(tmp_path / "model", overwrite, inputs)  # a new folder beside them
    check_output_folder(tmp_path / "data" / "model", overwrite, inputs)
    assert values.read_text() == "Parrots\nCanaries\n"


def test_train_refuses_to_overwrite_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["train", "--output", str(out), "--max-steps", "1"])
    assert result.exit_code == 1
    assert "--overwrite" in result.output
    assert len(result.output.strip().splitlines()) == 1  # refused before any training step
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [(signal.SIGINT, 1, "interrupted"), (signal.SIGTERM, 128 + signal.SIGTERM, "terminated")],
)
def test_train_stopped_midway_keeps_the_old_model_and_leaves_nothing(
    tmp_path: Path, signum: int, code: int, message: str
) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "catembed.json").write_text("{}")  # the model an --overwrite would replace
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "catembed.cli", "train", "--output", str(out), "--overwrite"]
    log = tmp_path.parent / f"{tmp_path.name}.log"
    with log.open("w") as handle:
        # A shell's background job ignores SIGINT, and a child inherits that: restore it.
        restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
        process = subprocess.Popen(command, stderr=handle, env=env, preexec_fn=restore)
    deadline = time.monotonic() + 120
    while "step/s]" not in log.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    assert list(tmp_path.glob(".model.*.tmp"))  # training, in the temporary folder
    process.send_signal(signum)
    assert process.wait(timeout=120) == code
    assert log.read_text().splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.name for p in out.iterdir()] == ["catembed.json"]


def test_encode_from_arguments_file_and_stdin(model_dir: Path, tmp_path: Path) -> None:
    result = run("encode", "--model", str(model_dir), "Sweaters", "Toaster")
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["value"] for r in rows] == ["Sweaters", "Toaster"]
    assert len(rows[0]["embedding"]) == 384
    # '--output -' is standard output, as for validate: it was 'must end in .jsonl, ...'.
    dashed = run("encode", "--model", str(model_dir), "Sweaters", "Toaster", "--output", "-")
    assert dashed.exit_code == 0 and dashed.output == result.output

    values = tmp_path / "values.txt"
    values.write_text("Sweaters\nHoodies\nToaster\n")
    npy = tmp_path / "out.npy"
    assert (
        run(
            "encode", "--model", str(model_dir), "--input", str(values), "--output", str(npy)
        ).exit_code
        == 0
    )
    array = np.load(npy)
    assert array.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-5)

    parquet = tmp_path / "out.parquet"
    assert (
        run(
            "encode", "--model", str(model_dir), "--output", str(parquet), input="Jeans\nBlender\n"
        ).exit_code
        == 0
    )
    table = pq.read_table(parquet)
    assert table.column("value").to_pylist() == ["Jeans", "Blender"]
    embeddings = np.array(table.column("embedding").to_pylist())
    assert embeddings.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # A missing cell keeps its row, as empty text, and is reported.
    table_file = tmp_path / "in.csv"
    table_file.write_text("category\nJeans\n\nBlender\n", "utf-8")
    npy = tmp_path / "out.npy"
    result = run(
        "encode", "--model", str(model_dir), "--input", str(table_file), "--output", str(npy)
    )
    assert result.exit_code == 0 and "1 missing cell encoded as empty text" in result.stderr
    assert np.load(npy).shape == (3, 384)


def test_encode_is_consistent_across_outputs(model_dir: Path, tmp_path: Path) -> None:
    npy = tmp_path / "a.npy"
    run("encode", "--model", str(model_dir), "Sweaters", "--output", str(npy))
    line = json.loads(run("encode", "--model", str(model_dir), "Sweaters").output)
    np.testing.assert_allclose(np.load(npy)[0], line["embedding"], atol=1e-5)
    packed = tmp_path / "a.npy.gz"  # compressed as its name says, like every other output
    run("encode", "--model", str(model_dir), "Sweaters", "--output", str(packed))
    with gzip.open(packed) as handle:
        np.testing.assert_array_equal(np.load(handle), np.load(npy))


def test_encode_reads_cells_as_validate_does(model_dir: Path, tmp_path: Path) -> None:
    # A pandas category column (dictionary-encoded) was refused; a float column encoded
    # 'nan' and '0.10000000149011612'. Each distinct value is encoded once, rows kept.
    data = tmp_path / "in.parquet"
    category = pa.array(["Jeans", "Blender", "Jeans"]).dictionary_encode()
    floats = pa.array([35233.0, float("nan"), 0.1], pa.float32())
    pq.write_table(pa.table({"category": category, "zip": floats}), data)
    args = ["encode", "--model", str(model_dir), "--input", str(data)]
    result = run(*args, "--column", "category")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["value"] for r in rows] == ["Jeans", "Blender", "Jeans"]
    assert rows[0]["embedding"] == rows[2]["embedding"]
    result = run(*args, "--column", "zip")
    assert [json.loads(line)["value"] for line in result.stdout.splitlines()] == [
        "35233",
        "",
        "0.1",
    ]
    assert "1 missing cell encoded as empty text" in result.stderr


def test_encode_reads_every_column_validate_reads(model_dir: Path, tmp_path: Path) -> None:
    # Booleans, dates, decimals and bytes were 'cannot encode a column of bool', though
    # validate judges them as the texts they hold; only lists and objects are refused.
    data = tmp_path / "in.parquet"
    columns = {
        "flag": pa.array([True, None]),
        "day": pa.array([datetime.date(2024, 3, 1), None]),
        "price": pa.array([decimal.Decimal("2.50"), None]),
        "raw": pa.array([b"Jeans", None]),
        "tags": pa.array([["Jeans"], None]),
    }
    pq.write_table(pa.table(columns), data)
    args = ["encode", "--model", str(model_dir), "--input", str(data), "--column"]
    for column, text in (("flag", "true"), ("day", "2024-03-01"), ("price", "2.50")):
        result = run(*args, column)
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["value"] for r in rows] == [text, ""]
        judged = run("validate", "--model", str(model_dir), str(data), "--column", column)
        assert text in judged.stdout
    raw = [json.loads(line) for line in run(*args, "raw").stdout.splitlines()]
    given = json.loads(run("encode", "--model", str(model_dir), "Jeans").stdout)
    assert raw[0]["value"] == given["value"] == "Jeans"
    np.testing.assert_allclose(raw[0]["embedding"], given["embedding"], atol=1e-5)
    result = run(*args, "tags")
    assert result.exit_code == 1
    last = result.output.splitlines()[-1]
    assert last.startswith("Error: cannot encode a column of list<")
    assert last.endswith(": give a column of texts")


def test_encode_refuses_a_pipe_as_output_and_points_to_stdout(
    model_dir: Path, tmp_path: Path
) -> None:
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    result = run("encode", "--model", str(model_dir), "Jeans", "--output", str(pipe))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: {pipe} is not a regular file; write to a file, or to - for stdout"
    )
    stdout = run("encode", "--model", str(model_dir), "Jeans", "--output", "-")
    assert stdout.exit_code == 0 and json.loads(stdout.output)["value"] == "Jeans"


def test_encode_reads_a_table_on_stdin_with_format(model_dir: Path) -> None:
    args = ["encode", "--model", str(model_dir), "--column", "category"]
    result = run(*args, "--format", "csv", input="id,category\n1,Jeans\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["value"] == "Jeans"
    result = run(*args, input="id,category\n1,Jeans\n")
    assert result.exit_code == 1 and "name its format with --format" in result.output
    result = run(*args, "Jeans")  # --column would be ignored
    assert result.exit_code == 2 and "not values given as arguments" in result.output


def test_encode_without_values_on_a_terminal_says_what_to_give(model_dir: Path) -> None:
    import pty

    terminal, other = pty.openpty()
    command = [sys.executable, "-m", "catembed.cli", "encode", "--model", str(model_dir)]
    try:  # it used to wait for the values to be typed
        done = subprocess.run(command, stdin=other, capture_output=True, text=True, timeout=120)
    finally:
        os.close(terminal)
        os.close(other)
    assert done.returncode == 2 and "pipe them to stdin" in done.stderr


def test_similarity_shows_invisible_characters_in_its_labels(model_dir: Path) -> None:
    result = run("similarity", "--model", str(model_dir), "Sweaters", "Hood\nies", "")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2 + 3  # a line break in a label broke the table
    assert lines[3].startswith("Hood\\nies ") and lines[4].startswith("'' ")


def test_similarity_prints_a_matrix(model_dir: Path) -> None:
    result = run("similarity", "--model", str(model_dir), "Sweaters", "Hoodies", "Car Battery")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 + 3
    diagonal = [float(lines[2 + i].split()[-3 + i]) for i in range(3)]
    assert diagonal == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)
    sweaters = [float(x) for x in lines[2].split()[-3:]]
    assert sweaters[1] > sweaters[2]  # Hoodies closer to Sweaters than Car Battery


def test_evaluate_prints_accuracy_per_part(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    run("dataset", "build", "--output", str(out), "--train-size", "10", "--eval-size", "40")
    result = run("evaluate", "--model", str(model_dir), "--data", str(out / "eval.csv"))
    assert result.exit_code == 0
    parts = {line.split()[0]: line.split() for line in result.output.splitlines()[2:]}
    assert set(parts) == {"all", "seen", "heldout"}
    assert parts["all"][1] == "40"
    assert 0.5 <= float(parts["all"][2]) <= 1.0


def test_evaluate_keeps_the_overall_figure_when_a_part_is_named_all(
    model_dir: Path, tmp_path: Path
) -> None:
    # A part named 'all' replaced the overall row: '1 triplet' of 2, with that part's accuracy.
    data = tmp_path / "eval.csv"
    data.write_text(
        "anchor,positive,negative,part\nSweaters,Hoodies,Toaster,all\nJeans,Trousers,Kettle,x\n",
        "utf-8",
    )
    result = run("evaluate", "--model", str(model_dir), "--data", str(data))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: part 'all' holds 1 of the 2 triplets, but all names every triplet's figure: "
        "rename that part"
    )
    data.write_text(data.read_text("utf-8").replace(",x\n", ",all\n"), "utf-8")
    result = run("evaluate", "--model", str(model_dir), "--data", str(data))
    assert result.exit_code == 0  # every triplet: the same figure, shown once
    assert [line.split()[:2] for line in result.output.splitlines()[2:]] == [["all", "2"]]


def test_evaluate_reads_triplet_cells_as_validate_reads_them(
    model_dir: Path, tmp_path: Path
) -> None:
    # Cells were str()-ed: a float NaN was scored as the text 'nan', 35233.0 as '35233.0', and
    # triplets without a part made a part named 'None'.
    data = tmp_path / "eval.jsonl"
    rows = [
        {"anchor": "Sweaters", "positive": "Hoodies", "negative": "Toaster", "part": "seen"},
        {"anchor": "Jeans", "positive": "Trousers", "negative": "Kettle"},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    result = run("evaluate", "--model", str(model_dir), "--data", str(data))
    assert result.exit_code == 0, result.output
    assert [line.split()[:2] for line in result.output.splitlines()[2:]] == [
        ["all", "2"],
        ["seen", "1"],
    ]
    parquet = tmp_path / "eval.parquet"
    pq.write_table(
        pa.table({"anchor": [1.5, float("nan")], "positive": [2.5, 3.0], "negative": ["a", "b"]}),
        parquet,
    )
    result = run("evaluate", "--model", str(model_dir), "--data", str(parquet))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: triplet 2 has an empty anchor: each needs three texts"
    )


def test_evaluate_refuses_column_for_data_without_labels(model_dir: Path, tmp_path: Path) -> None:
    # --column was ignored: a file whose labels sit in a column not named label was scored
    # as triplets, or said to lack their columns, without a word about --column.
    data = tmp_path / "eval.csv"
    data.write_text("anchor,positive,negative\nSweaters,Hoodies,Toaster\n", "utf-8")
    result = run("evaluate", "--model", str(model_dir), "--data", str(data), "--column", "x")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: --column names the column of labelled values, and {data} has no label column"
        " (see 'main evaluate --help')"
    )
    assert run("evaluate", "--model", str(model_dir), "--data", str(data)).exit_code == 0


@pytest.mark.parametrize("cell", ["", " ", "   "])
def test_evaluate_refuses_a_triplet_with_an_empty_cell(
    model_dir: Path, tmp_path: Path, cell: str
) -> None:
    # A cell of spaces, missing as a value, was scored as a text: accuracy lowered silently.
    data = tmp_path / "eval.csv"
    data.write_text(f"anchor,positive,negative\nSweaters,Hoodies,Toaster\nJeans,{cell},Kettle\n")
    result = run("evaluate", "--model", str(model_dir), "--data", str(data))
    assert result.exit_code == 1
    assert result.output.strip() == "Error: triplet 2 has an empty positive: each needs three texts"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encode", "--model", "{missing}", "x"], "model folder not found"),
        (["encode", "--model", "{model}/modules.json", "x"], "is a file; give the model folder"),
        (["encode", "--model", "{tmp}", "x"], "not a sentence-transformers model folder"),
        (["similarity", "--model", "{model}", "only-one"], "at least two"),
        (["evaluate", "--model", "{model}", "--data", "{tmp}/none.csv"], "file not found"),
        (["encode", "--model", "{model}", "x", "--output", "{tmp}/out.xlsx"], "must end in"),
        # The output is checked before the input is read and anything is encoded.
        (
            [
                "encode",
                "--model",
                "{model}",
                "--input",
                "{tmp}/none.txt",
                "--output",
                "{tmp}/no/o.npy",
            ],
            "folder {tmp}/no does not exist",
        ),
        # Below a file: it said 'folder .../lists.parquet does not exist' of a file that does.
        (
            ["encode", "--model", "{model}", "x", "--output", "{tmp}/lists.parquet/o.npy"],
            "{tmp}/lists.parquet is a file, not a folder",
        ),
        # Bytes that are not UTF-8 reach Python as lone surrogates.
        (["encode", "--model", "{model}", "caf\udce9"], "value 1 is not valid UTF-8 text"),
        (["similarity", "--model", "{model}", "x", "caf\udce9"], "value 2 is not valid UTF-8"),
        (["encode", "--model", "{model}", "--input", "{tmp}/lists.parquet"], "a column of list"),
    ],
)
def test_inference_commands_bad_input(
    model_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    pq.write_table(pa.table({"value": [["a"], ["b"]]}), tmp_path / "lists.parquet")
    argv = [a.format(missing=tmp_path / "nope", tmp=tmp_path, model=model_dir) for a in args]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code != 0
    assert message.format(tmp=tmp_path) in result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message.format(tmp=tmp_path) in errors[0], result.output


def test_kinds_says_which_corruptions_are_trained_on_by_default() -> None:
    lines = run("kinds").output.splitlines()
    trained = lines[0].removeprefix("corruption kinds trained on by default: ").split(", ")
    assert "markup" in trained and "case_noise" not in trained and len(trained) == 20
    assert lines[1].endswith(": case_noise, whitespace, control_chars")
    assert sum(line.startswith("domain ") for line in lines) == 27


@pytest.mark.parametrize(
    ("argv", "message", "command"),
    [
        (["validate", "--bogus", "x"], "No such option '--bogus'.", "catembed validate"),
        (["validate"], "Missing argument 'INPUT'.", "catembed validate"),
        (["nosuch"], "No such command 'nosuch'.", "catembed"),
        (["--bogus"], "No such option '--bogus'.", "catembed"),
        (
            ["dataset", "build", "--seed", "x"],
            "Invalid value for '--seed'",
            "catembed dataset build",
        ),
    ],
)
def test_a_usage_error_is_one_line_with_exit_code_2(
    argv: list[str], message: str, command: str
) -> None:
    # click printed the usage and a hint on lines of their own above the error.
    done = subprocess.run(
        [sys.executable, "-m", "catembed", *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"Error: {message}")
    assert done.stderr.endswith(f" (see '{command} --help')\n")


def test_python_dash_m_catembed_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "catembed", "kinds", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: catembed kinds")


def test_a_list_spanning_every_built_in_domain_takes_its_negatives_from_out_of_domain(
    model_dir: Path, tmp_path: Path
) -> None:
    from catembed.vocabulary import load_vocabulary

    store = [values[0] for values in load_vocabulary().values()]  # a department store's list
    valid = tmp_path / "departments.txt"
    valid.write_text("\n".join(store) + "\n", "utf-8")
    others = tmp_path / "other.csv"
    others.write_text("value\nParis\nTokyo\nCrimson\nTuesday\nXL\nCotton\nIn Stock\n", "utf-8")
    train = ["train", "--valid", str(valid), "--max-steps", "1", "--no-progress"]
    result = run(*train, "--output", str(tmp_path / "m1"))
    assert result.exit_code == 1
    assert "overlap every built-in domain" in result.output
    assert "--out-of-domain" in result.output
    result = run(*train, "--output", str(tmp_path / "m2"), "--out-of-domain", str(others))
    assert result.exit_code == 0, result.output
    build = ["dataset", "build", "--valid", str(valid), "--output", str(tmp_path / "data")]
    assert run(*build, "--format", "parquet", "--out-of-domain", str(others)).exit_code == 0
    negatives = pq.read_table(tmp_path / "data" / "train.parquet").to_pylist()
    used = {r["negative"] for r in negatives if r["negative_kind"] == "out_of_domain"}
    assert used and used <= {"Paris", "Tokyo", "Crimson", "Tuesday", "XL", "Cotton", "In Stock"}
    check = ["validate", "--valid", str(valid), str(valid)]
    assert "need at least 1 out-of-domain value" in run(*check).output
    result = run(*check, "--out-of-domain", str(others))
    assert result.exit_code == 0, result.output
    assert "valid          " in result.output
    refused = run("validate", "--model", str(model_dir), str(valid), "--out-of-domain", str(others))
    assert refused.exit_code == 2 and "--out-of-domain needs --valid" in refused.output
    same = "every out-of-domain value given is also one of the valid values (case aside)"
    assert same in run(*check, "--out-of-domain", str(valid)).output
    assert (
        same in run(*train, "--output", str(tmp_path / "m3"), "--out-of-domain", str(valid)).output
    )
