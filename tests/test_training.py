from __future__ import annotations

import json
import os
import re
import stat
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from catembed import DatasetConfig, TrainingConfig, TrainingResult, build_triplets
from catembed.errors import ConfigError, InputError, ModelError
from catembed.modelcard import prepare_card_data
from catembed.models import DEFAULT_BASE_MODEL, load_model, load_tokenizer, resolve_base_model
from catembed.tables import atomic_folder

CARD_SECTIONS = [
    "## Model Details",
    "### Full Model Architecture",
    "## Usage",
    "## Evaluation",
    "#### Triplet",
    "### Seen and held-out values (catembed)",
    "### Validator (catembed)",
    "## Training Details",
    "### Training Dataset",
    "#### Non-Default Hyperparameters",
    "#### All Hyperparameters",
    "### Training Logs",
    "### Framework Versions",
    "#### TripletLoss",
    "### catembed configuration",
]


def test_short_real_training_improves_accuracy(trained: TrainingResult) -> None:
    before, after = trained.accuracy["base"], trained.accuracy["fine_tuned"]
    assert set(after) == {"seen", "heldout", "all"}
    assert after["all"] > before["all"]
    assert trained.samples_per_second > 0


def test_folder_loads_in_stock_sentence_transformers(model_dir: Path) -> None:
    model = SentenceTransformer(str(model_dir), device="cpu")
    assert model.max_seq_length == 512
    assert model.tokenizer is not None
    vectors = model.encode(["Sweaters", "Hoodies", "Toaster"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    architecture = str(model)
    assert "mean_tokens': True" in architecture or "pooling_mode': 'mean" in architecture
    assert "Normalize" in architecture


def test_training_writes_the_onnx_export_the_default_backend_runs_on(model_dir: Path) -> None:
    from catembed.backends import Backend, load_encoder, resolve_backend
    from catembed.onnx_backend import onnx_path

    texts = ["Sweaters", "Hoodies", "Toaster", "<b>Sweaters</b>"]
    stock = SentenceTransformer(str(model_dir), device="cpu").encode(texts)
    encoder = load_encoder(model_dir)
    assert onnx_path(model_dir).is_file() and resolve_backend("auto", model_dir) is Backend.ONNX
    assert "`onnx/model.onnx`" in (model_dir / "README.md").read_text(encoding="utf-8")
    np.testing.assert_allclose(encoder.encode(texts, normalize_embeddings=True), stock, atol=1e-5)


def test_card_has_every_section_and_the_values_used(
    model_dir: Path, trained: TrainingResult
) -> None:
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    for section in CARD_SECTIONS:
        assert section in card, section
    assert "TripletDistanceMetric.COSINE" in card
    assert '"triplet_margin": 0.3' in card
    assert "category_final_evaluation" in card
    assert re.search(r"\| Held-out values \| \d+ \| 0\.\d{4} \| \*\*0\.\d{4}\*\* \|", card)
    assert '"max_steps": 6' in card  # the values used, not just the defaults
    assert "widget:" in card and "source_sentence:" in card
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    assert "[3, 384]" in card
    assert "can be used for telling values of its domain from other domains' values" in card
    assert "paraphrase mining" not in card  # the template's default claim
    # The usage example loads the folder written; the validator's calibration is reported.
    assert f"SentenceTransformer({json.dumps(str(model_dir))})" in card
    assert "sentence_transformers_model_id" not in card
    calibration = json.loads((model_dir / "validator.json").read_text("utf-8"))["calibration"]
    accepted = f"| valid values accepted | {calibration['valid_values']} |"
    assert f"{accepted} {calibration['valid_accepted']:.1%} |" in card
    assert f"catembed validate --model {model_dir} " in card


def test_card_names_at_most_a_hundred_held_out_values(trained: TrainingResult) -> None:
    from catembed.modelcard import _accuracy_section

    held = trained.dataset.heldout_values
    assert all(f"'{v}'" in _accuracy_section(trained) for v in held)
    # A 79,000-value list held 11,850 out: its card was mostly their names.
    values = [f"Item {i}" for i in range(1000)]
    many = build_triplets(values, DatasetConfig(train_size=8, eval_size=8))
    section = _accuracy_section(replace(trained, dataset=many))
    named = [v for v in many.heldout_values if f"'{v}'" in section]
    assert named == list(many.heldout_values[:100])
    assert f"and {len(many.heldout_values) - 100:,} more (`build_triplets`" in section


def test_metadata_records_values_and_accuracy(model_dir: Path, trained: TrainingResult) -> None:
    metadata = json.loads((model_dir / "catembed.json").read_text(encoding="utf-8"))
    assert metadata["domain"] == "apparel"
    assert metadata["heldout_values"] == list(trained.dataset.heldout_values)
    assert metadata["training"]["learning_rate"] == 5e-5
    assert metadata["accuracy"]["fine_tuned"]["all"] == pytest.approx(
        trained.accuracy["fine_tuned"]["all"]
    )


def test_atomic_folder_refuses_to_clobber_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="--overwrite"), atomic_folder(target):
        pass
    with pytest.raises(RuntimeError), atomic_folder(target, overwrite=True) as folder:
        (folder / "half.bin").write_text("partial")
        raise RuntimeError("training failed")
    assert (target / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "new" / "deeper" / "model"):
        raise RuntimeError("training failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no 'new' left behind


def test_atomic_folder_replaces_without_touching_a_folder_named_like_its_backup(
    tmp_path: Path,
) -> None:
    # The replaced folder was set aside as '.model.old', deleting a folder of that name first.
    target, backup = tmp_path / "model", tmp_path / ".model.old"
    target.mkdir()
    (target / "modules.json").write_text("[]")
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    with atomic_folder(target, overwrite=True) as folder:
        (folder / "modules.json").write_text("[1]")
    assert (target / "modules.json").read_text() == "[1]"
    assert (backup / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.old", "model"]


def test_an_interrupt_between_the_renames_puts_the_old_folder_back(tmp_path: Path) -> None:
    # Ctrl-C after the old folder was set aside left neither in place: the old one was hidden
    # in '.model.*.old' and the new one deleted.
    target = tmp_path / "model"
    target.mkdir()
    (target / "modules.json").write_text("[]")
    renames = 0

    def interrupt_second_rename(frame: object, event: str, arg: object) -> None:
        nonlocal renames
        if event == "c_return" and arg is os.replace:
            renames += 1
            if renames == 1:  # the old folder was just set aside
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), atomic_folder(target, overwrite=True) as folder:
        (folder / "modules.json").write_text("[1]")
        sys.setprofile(interrupt_second_rename)
    sys.setprofile(None)
    assert renames == 1
    assert (target / "modules.json").read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch size"),
        ({"learning_rate": 2.0}, "learning rate"),
        ({"margin": -1}, "margin"),
        # These trained a model of nans, or failed with a traceback once training began.
        ({"margin": float("nan")}, "margin"),
        ({"margin": float("inf")}, "margin"),
        ({"epochs": float("nan")}, "epochs"),
        ({"epochs": float("inf")}, "epochs"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"lr_scheduler": "foo"}, "unknown lr scheduler 'foo'"),
        ({"lr_scheduler": "reduce_lr_on_plateau"}, "lr scheduler"),
        ({"max_steps": 0}, "max steps"),
        ({"eval_steps": -1}, "eval steps"),
        # '' was the current folder: a model there was trained from, else a load error after
        # the dataset was built ('cannot load model /home/me: Unrecognized model').
        ({"base_model": ""}, "base model must name a model folder or hub id"),
        ({"base_model": " "}, "base model must name a model folder or hub id"),
    ],
)
def test_invalid_training_config_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainingConfig(**kwargs)  # type: ignore[arg-type]


def test_a_model_neither_on_disk_nor_reachable_is_a_one_line_error(tmp_path: Path) -> None:
    # Offline this failed after about 70 s of hub retries; the cache is tried, then the hub once.
    with pytest.raises(ModelError, match="cannot load model nobody/nothing-here: "):
        load_model("nobody/nothing-here")
    with pytest.raises(ModelError, match="neither a folder nor a hub id"):
        load_model(str(tmp_path / "missing"))


def test_a_base_model_that_is_a_file_is_named_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file named without a folder was looked up as a hub id: 'couldn't connect to
    # https://huggingface.co' offline, though the file is right there.
    monkeypatch.chdir(tmp_path)
    Path("model.safetensors").write_bytes(b"not a model")
    message = r"^model\.safetensors is a file; give the model folder that holds it$"
    with pytest.raises(ModelError, match=message):
        load_model("model.safetensors")
    with pytest.raises(ModelError, match=message):
        load_tokenizer("model.safetensors")


def test_a_hub_id_without_its_organisation_is_read_as_sentence_transformers_reads_it() -> None:
    # Refused before as 'neither a folder nor a hub id'; SentenceTransformer takes them.
    assert resolve_base_model("all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
    assert resolve_base_model("bert-base-uncased") == "bert-base-uncased"  # transformers' own
    assert resolve_base_model("all-MiniLM-L6-v2") == resolve_base_model(DEFAULT_BASE_MODEL)
    with pytest.raises(ModelError, match="cannot load model all-mpnet-base-v2: "):
        load_model("all-mpnet-base-v2")  # offline here: looked for, not refused


@pytest.mark.parametrize(
    ("given", "card"),
    [
        ("all-MiniLM-L6-v2", DEFAULT_BASE_MODEL),  # its page was huggingface.co/all-MiniLM-L6-v2
        (DEFAULT_BASE_MODEL, DEFAULT_BASE_MODEL),
        ("bert-base-uncased", "bert-base-uncased"),
    ],
)
def test_the_card_names_a_short_hub_id_by_its_whole_id(
    base_model: SentenceTransformer, given: str, card: str
) -> None:
    prepare_card_data(base_model, given, "custom")
    assert base_model.model_card_data.base_model == card


def test_calibration_logs_the_threshold_that_decides(
    base_model: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from catembed import DatasetConfig, build_triplets
    from catembed.calibration import calibrate_for_training
    from catembed.vocabulary import domain_values

    dataset = build_triplets(domain_values("apparel"), DatasetConfig(train_size=64, eval_size=64))
    with caplog.at_level("INFO", logger="catembed"):
        validator = calibrate_for_training(
            base_model,
            dataset,
            tmp_path,
            domain_encoder=base_model,  # type: ignore[arg-type]
        )
    assert validator.domain is not None
    threshold = validator.domain.thresholds.similarity
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("validator:")]
    assert line.startswith(
        f"validator: in-domain probability threshold {threshold:.3f}; on held-out data "
        f"({len(dataset.heldout_values)} valid, "
    )
    assert "valid_accepted" in line and "domain_threshold" not in line


def test_a_short_list_gets_the_domain_classifier_too(base_model: object, tmp_path: Path) -> None:
    # Under 15 values (3 held out at 20%), training fell back to a similarity threshold on the
    # fine-tuned model, which rejected every unseen valid value ('Kids Jeans', 'Polo Shirts');
    # from_values on the same list accepted them.
    from catembed import DatasetConfig, build_triplets
    from catembed.calibration import calibrate_for_training

    values = ["Sweaters", "Jeans", "Hoodies", "Cardigans", "Trousers", "T-Shirts", "Jackets"]
    dataset = build_triplets(values, DatasetConfig(train_size=64, eval_size=32))
    assert len(dataset.heldout_values) < 3
    validator = calibrate_for_training(
        base_model,
        dataset,
        tmp_path,
        domain_encoder=base_model,  # type: ignore[arg-type]
    )
    assert validator.domain is not None
    reports = validator.validate(["Kids Jeans", "Polo Shirts", "Car Battery", "Toaster"])
    verdicts = [r.verdict.value for r in reports]
    assert verdicts == ["valid", "valid", "out_of_domain", "out_of_domain"]


def test_the_stock_trainer_trains_without_evaluation_triplets(tmp_path: Path) -> None:
    # --stock --eval-size 0 crashed in the trainer ("num_samples=0"); the fast loop trained.
    from catembed import DatasetConfig, train

    values = ["Sweaters", "Hoodies", "Jeans", "Skirts", "Jackets"]
    config = TrainingConfig(max_steps=1, fast=False)
    result = train(values, tmp_path / "m", config, DatasetConfig(train_size=16, eval_size=0))
    assert result.accuracy == {"base": {}, "fine_tuned": {}}
    card = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    assert "No evaluation triplets were built" in card  # not an empty table
    model = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert model.encode(["Jeans"]).shape == (1, 384)


def test_a_new_model_folder_gets_the_mode_mkdir_gives(model_dir: Path) -> None:
    # It was 0700, the temporary folder's: a server or colleague under another user could not
    # read the model.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(model_dir.stat().st_mode) == 0o777 & ~umask
    # and its files what a plain write gives: model.safetensors was 0600, unreadable to others
    for path in ("model.safetensors", "validator.json", "validator.safetensors", "README.md"):
        assert stat.S_IMODE((model_dir / path).stat().st_mode) == 0o666 & ~umask, path


def test_a_replaced_folder_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir(mode=0o750)
    (folder / "old.txt").write_text("old", "utf-8")
    with atomic_folder(folder, overwrite=True) as new:
        (new / "new.txt").write_text("new", "utf-8")
    assert [p.name for p in folder.iterdir()] == ["new.txt"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750


def test_overwrite_replaces_only_a_model_folder(tmp_path: Path) -> None:
    from catembed import train

    project = tmp_path / "project"
    project.mkdir()
    (project / "categories.txt").write_text("Sweaters\nHoodies\n")
    with pytest.raises(InputError, match=r"is not a model folder .*categories\.txt"):
        train(["Sweaters", "Hoodies"], project, overwrite=True)
    assert (project / "categories.txt").read_text() == "Sweaters\nHoodies\n"


def test_an_output_that_cannot_be_written_fails_before_training(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    from catembed import train

    with pytest.raises(InputError, match=r"cannot write .*file\.txt/model"):
        train(["Sweaters", "Hoodies"], tmp_path / "file.txt" / "model")


def test_overwrite_replaces_the_model_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # '--output . --overwrite' trained for minutes, then failed: "PosixPath('.') has an empty name".
    from catembed import DatasetConfig, train

    old = tmp_path / "model"
    old.mkdir()
    (old / "catembed.json").write_text("{}")  # what an earlier run left
    monkeypatch.chdir(old)
    config, data = TrainingConfig(epochs=0.5), DatasetConfig(train_size=16, eval_size=8)
    values = ["Sweaters", "Hoodies", "Jeans"]
    result = train(values, ".", config, data, overwrite=True, show_progress=False)
    # Half an epoch of 16 triplets is one step of 16 (the rate counted 8); one training time.
    assert result.samples_per_second * result.train_seconds == pytest.approx(16)
    card = (old / "README.md").read_text(encoding="utf-8")
    assert f"Training took {result.train_seconds:.1f} s" in card
    assert "### Training Time" not in card
    assert json.loads((old / "catembed.json").read_text())["dataset"]["train_size"] == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert SentenceTransformer(str(old), device="cpu").encode(["Jeans"]).shape == (1, 384)


def test_a_relative_local_base_model_is_recorded_so_it_loads_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # validator.json recorded '--base-model model' as given, so the validator loaded only from
    # the folder training ran in; the card linked the path as a hub id.
    from catembed import DatasetConfig, Validator, train
    from catembed.models import DEFAULT_BASE_MODEL, resolve_base_model
    from catembed.vocabulary import domain_values

    base = Path(resolve_base_model(DEFAULT_BASE_MODEL))
    monkeypatch.chdir(base.parent)
    config = TrainingConfig(base_model=base.name, max_steps=1)
    data = DatasetConfig(train_size=16, eval_size=8)
    train(list(domain_values("toys")), tmp_path / "m", config, data, show_progress=False)
    monkeypatch.chdir(tmp_path)
    assert Validator.load(tmp_path / "m").domain is not None
    metadata = json.loads((tmp_path / "m" / "catembed.json").read_text(encoding="utf-8"))
    assert metadata["training"]["base_model"] == str(base)
    card = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    assert "\n- **Base model:**" not in card  # was '[model](https://huggingface.co/model)'
    assert "\nbase_model:" not in card.split("\n---\n", 1)[0]


def test_a_local_base_model_gets_its_export_in_the_cache_never_in_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The validator's domain classifier encodes with the base model: without an export of it
    # the default backend fell back to torch for every validate of a model trained on a local
    # base; and the user's base folder is theirs, not ours to write into.
    import shutil

    from catembed import DatasetConfig, train
    from catembed.backends import Backend, resolve_backend
    from catembed.models import DEFAULT_BASE_MODEL, resolve_base_model
    from catembed.vocabulary import domain_values

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    base = tmp_path / "base"
    shutil.copytree(resolve_base_model(DEFAULT_BASE_MODEL), base)
    assert resolve_backend("auto", base) is Backend.TORCH  # no export, not a package's
    config = TrainingConfig(base_model=str(base), max_steps=1)
    data = DatasetConfig(train_size=16, eval_size=8)
    train(list(domain_values("toys")), tmp_path / "m", config, data, show_progress=False)
    assert not (base / "onnx").exists()
    assert resolve_backend("auto", base) is Backend.ONNX
    assert len(list((tmp_path / "cache").rglob("model.onnx"))) == 1


def test_a_model_trained_from_a_catembed_model_keeps_the_base_models_domain_classifier(
    model_dir: Path, tmp_path: Path
) -> None:
    # '--base-model models/catembed-apparel' fitted the domain classifier on that folder's
    # fine-tuned embeddings, which the README says it never is (from_values maps it back).
    from catembed import DatasetConfig, Validator, train
    from catembed.models import DEFAULT_BASE_MODEL

    config = TrainingConfig(base_model=str(model_dir), max_steps=1)
    data = DatasetConfig(train_size=16, eval_size=8)
    output = tmp_path / "again"
    train(["Sweaters", "Hoodies", "Jeans"], output, config, data, show_progress=False)
    settings = json.loads((output / "validator.json").read_text(encoding="utf-8"))
    assert settings["domain"]["model"] == DEFAULT_BASE_MODEL
    assert f"a logistic regression on `{DEFAULT_BASE_MODEL}` embeddings" in (
        output / "README.md"
    ).read_text(encoding="utf-8")
    metadata = json.loads((output / "catembed.json").read_text(encoding="utf-8"))
    assert metadata["training"]["base_model"] == str(model_dir.resolve())
    assert Validator.load(output).domain is not None


def test_overwrite_refuses_an_output_that_holds_the_base_model(
    model_dir: Path, tmp_path: Path
) -> None:
    # Replacing the base model's own folder left the card and the validator naming the new
    # model as the base the domain classifier was fitted on.
    import shutil

    from catembed import train

    base = tmp_path / "base"
    shutil.copytree(model_dir, base)
    before = (base / "model.safetensors").read_bytes()
    with pytest.raises(InputError, match=r"the base model .* lies inside .*--overwrite"):
        train(["Sweaters", "Hoodies"], base, TrainingConfig(base_model=str(base)), overwrite=True)
    assert (base / "model.safetensors").read_bytes() == before
