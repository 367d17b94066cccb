from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import TripletDistanceMetric, TripletLoss

from catembed import DatasetConfig, TrainingConfig, TrainingResult, build_triplets
from catembed.cli import main
from catembed.config import load_configs
from catembed.fast_training import batch_loss, train_used_rows
from catembed.packing import (
    distinct_positions,
    embed_distinct,
    length_runs,
    pack_rows,
    packable,
    token_ids,
)


def test_distinct_positions_index_every_text_once() -> None:
    distinct, positions = distinct_positions(["Sweaters", "Hoodies", "Sweaters", "Toaster"])
    assert distinct == ["Sweaters", "Hoodies", "Toaster"]
    assert positions == [0, 1, 0, 2]


def test_length_runs_cover_every_position_in_order() -> None:
    lengths = [3, 3, 3, 4, 4, 5, 9, 12]
    runs = length_runs(lengths, overhead=4)
    assert [i for run in runs for i in run] == list(range(len(lengths)))
    assert len(runs) > 1  # a 12-token text does not pad the 3-token ones
    assert length_runs(lengths, overhead=10_000) == [range(8)]
    with pytest.raises(ValueError, match="sorted"):
        length_runs([5, 3])


def test_pack_rows_place_every_text_once_within_capacity() -> None:
    lengths = [3, 9, 4, 4, 12, 30, 5, 3, 7]
    rows = pack_rows(lengths, capacity=12)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert [5] in rows  # longer than a row: alone
    assert all(sum(lengths[i] for i in row) <= 12 for row in rows if row != [5])
    assert len(rows) == 5  # [30] alone, the other 47 tokens in the fewest rows of 12


def _packing_texts() -> list[str]:
    texts = ["Sweaters", "Car Battery", "Hoodies", "<b>Sweaters</b>", "T-Shirts", "#Socks"]
    texts += [f"Wool Blend Cardigan Sweater Size {n}" for n in range(12)]
    texts.append(" ".join(["Extra Long Category Name"] * 8))  # longer than one row
    return texts


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_embeddings_equal_encoding_each_text(
    base_model: SentenceTransformer, attention: str
) -> None:
    base_model[0].auto_model.set_attn_implementation(attention)
    assert packable(base_model)
    texts = _packing_texts()
    tokens = token_ids(base_model, texts)
    assert len(pack_rows([len(tokens[t]) for t in texts], 24)) > 2
    with torch.no_grad():
        packed = embed_distinct(base_model.eval(), texts, [tokens[t] for t in texts])
    reference = base_model.encode(texts, convert_to_tensor=True, batch_size=1)
    torch.testing.assert_close(packed, reference, atol=1e-5, rtol=1e-4)


def test_models_that_cannot_pack_encode_in_length_runs(base_model: SentenceTransformer) -> None:
    from sentence_transformers.sentence_transformer.modules import Pooling

    cls_model = SentenceTransformer(modules=[base_model[0], Pooling(384, pooling_mode="cls")])
    assert not packable(cls_model)
    texts = _packing_texts()
    tokens = token_ids(cls_model, texts)
    with torch.no_grad():
        fast = embed_distinct(cls_model.eval(), texts, [tokens[t] for t in texts])
    reference = cls_model.encode(texts, convert_to_tensor=True, batch_size=1)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-4)


def test_training_only_used_rows_gives_the_dense_update(base_model: SentenceTransformer) -> None:
    triplets = build_triplets(None, DatasetConfig(train_size=64, eval_size=0)).train
    texts = [x for t in triplets for x in (t.anchor, t.positive, t.negative)]
    table = base_model[0].auto_model.get_input_embeddings()
    before = table.weight.detach().clone()
    models = {"dense": copy.deepcopy(base_model), "rows": base_model}
    for name, model in models.items():
        loss = TripletLoss(model, distance_metric=TripletDistanceMetric.COSINE, triplet_margin=0.3)
        tokens = token_ids(model, texts)
        with train_used_rows(model, tokens.values() if name == "rows" else []):
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
            model.eval()  # no dropout: both see the same network
            for _ in range(2):
                batch_loss(model, loss, triplets, tokens).backward()
                optimizer.step()
                optimizer.zero_grad()
    assert base_model[0].auto_model.get_input_embeddings() is table  # the table is back
    assert table.weight.requires_grad
    dense = dict(models["dense"].named_parameters())
    for name, parameter in base_model.named_parameters():
        torch.testing.assert_close(parameter, dense[name], atol=1e-6, rtol=1e-5, msg=name)
    moved = (table.weight.detach() != before).any(dim=1)
    used = {i for ids in base_model.tokenizer(texts)["input_ids"] for i in ids}
    assert 0 < int(moved.sum()) <= len(used)
    assert set(moved.nonzero().flatten().tolist()) <= used


def _stock_loss(model: SentenceTransformer, loss: TripletLoss, triplets: list) -> torch.Tensor:  # type: ignore[type-arg]
    features = [
        model.preprocess([getattr(t, column) for t in triplets])
        for column in ("anchor", "positive", "negative")
    ]
    result: torch.Tensor = loss(features, torch.empty(0))
    return result


def test_fast_loss_and_gradients_equal_the_stock_triplet_loss(
    base_model: SentenceTransformer,
) -> None:
    triplets = build_triplets(None, DatasetConfig(train_size=64, eval_size=0)).train
    texts = [x for t in triplets for x in (t.anchor, t.positive, t.negative)]
    assert len(set(texts)) < len(texts)  # the batch repeats texts, as real batches do
    loss = TripletLoss(base_model, distance_metric=TripletDistanceMetric.COSINE, triplet_margin=0.3)
    base_model.eval()  # no dropout: both paths see the same network

    stock = _stock_loss(base_model, loss, triplets)
    stock.backward()
    stock_grads = {
        n: p.grad.clone() for n, p in base_model.named_parameters() if p.grad is not None
    }
    base_model.zero_grad(set_to_none=True)

    fast = batch_loss(base_model, loss, triplets, token_ids(base_model, texts))
    fast.backward()
    fast_grads = {n: p.grad for n, p in base_model.named_parameters() if p.grad is not None}

    assert float(stock) > 0
    assert float(fast) == pytest.approx(float(stock), abs=1e-5)
    assert fast_grads.keys() == stock_grads.keys()
    for name, grad in stock_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, atol=1e-5, rtol=1e-3, msg=name)


def test_embed_distinct_keeps_the_callers_order(base_model: SentenceTransformer) -> None:
    texts = ["Sweaters", "Car Battery", "Hoodies", "<b>Sweaters</b> and more words here"]
    tokens = token_ids(base_model, texts)
    with torch.no_grad():
        fast = embed_distinct(base_model.eval(), texts, [tokens[t] for t in texts])
    reference = base_model.encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-4)


def test_fast_is_the_default_and_the_config_file_can_switch_it(tmp_path: Path) -> None:
    assert TrainingConfig().fast is True
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps({"training": {"fast": False}}), encoding="utf-8")
    assert load_configs(config)[0].fast is False


def test_the_fast_run_logs_evaluations_and_fills_the_card(
    trained: TrainingResult, model_dir: Path
) -> None:
    evaluations = [
        h for h in trained.log_history if "eval_category_final_evaluation_cosine_accuracy" in h
    ]
    assert evaluations and evaluations[-1]["step"] == 6
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    assert '"fast": true' in card
    logs = card.split("### Training Logs", 1)[1].split("###", 1)[0]
    assert re.search(
        r"\| Step \| Training Loss \| category_final_evaluation_cosine_accuracy \|", logs
    )
    assert re.search(r"\| 6 +\| 0\.\d+ +\| 0\.\d+ +\|", logs)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flag", "recorded", "card_line"),
    [
        ("--stock", {"fast": False}, '"fast": false'),
        ("--bf16", {"fast": True, "bf16": True}, '"bf16": true'),
    ],
)
def test_cli_training_switches_train_and_are_recorded(
    tmp_path: Path, flag: str, recorded: dict[str, bool], card_line: str
) -> None:
    output = tmp_path / "model"
    args = ["-q", "train", flag, "--max-steps", "4", "--train-size", "256"]
    args += ["--eval-size", "80", "--no-progress", "--output", str(output)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "it/s]" not in result.stderr and "Computing widget" not in result.stderr  # no bars
    metadata = json.loads((output / "catembed.json").read_text(encoding="utf-8"))
    for key, value in recorded.items():
        assert metadata["training"][key] is value
    accuracy = metadata["accuracy"]
    assert accuracy["fine_tuned"]["all"] > accuracy["base"]["all"]
    assert card_line in (output / "README.md").read_text(encoding="utf-8")


def test_bf16_loss_stays_close_to_the_float32_loss(base_model: SentenceTransformer) -> None:
    triplets = build_triplets(None, DatasetConfig(train_size=64, eval_size=0)).train
    texts = [x for t in triplets for x in (t.anchor, t.positive, t.negative)]
    tokens = token_ids(base_model, texts)
    loss = TripletLoss(base_model, distance_metric=TripletDistanceMetric.COSINE, triplet_margin=0.3)
    base_model.eval()
    with torch.no_grad():
        full = batch_loss(base_model, loss, triplets, tokens)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = batch_loss(base_model, loss, triplets, tokens)
    assert float(full) > 0
    assert float(half) == pytest.approx(float(full), rel=0.05)
