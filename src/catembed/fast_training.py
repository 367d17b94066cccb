"""catembed's training loop: the seed recipe without the waste of short category strings.

A batch of 64 triplets holds 192 texts but only about a hundred distinct ones, each a few
tokens long. This loop

- encodes each distinct text of a batch once and indexes its embedding into every place it
  appears, so gradients from all of them flow into the one shared forward pass;
- packs the distinct texts of a BERT-style mean-pooling model end to end into a few rows,
  each text attending only to itself (a block-diagonal mask, positions restarting at 0),
  so the encoder runs on almost no padding; other models get length-sorted runs, each
  padded only to its own longest text;
- runs plain torch around sentence-transformers' own modules and ``TripletLoss``: fused AdamW
  (betas 0.9/0.999, eps 1e-8, no weight decay), the same linear schedule, gradient clipping
  at 1.0, the same seed and the same batch order as the stock trainer's sampler;
- trains only the word-embedding rows of tokens the training texts use (a few thousand of
  30,522): without weight decay AdamW never moves a row whose gradient was always zero, so
  this is the same update without a dense 30,522-row gradient and optimizer pass each step;
- evaluates with a ``TripletEvaluator`` that encodes each distinct evaluation text once.

The loss on a batch equals the stock ``TripletLoss`` on it (see tests/test_fast_training.py);
the model card is filled by sentence-transformers' own card callback, so it has the same
sections as a stock-trained model's card.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator
from sentence_transformers.sentence_transformer.losses import TripletDistanceMetric, TripletLoss

from catembed.packing import distinct_positions, embed_distinct, token_ids
from catembed.training import EVALUATOR_NAME, TrainingConfig, trainer_arguments

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from catembed.dataset import Triplet, TripletDataset

logger = logging.getLogger(__name__)

MAX_GRAD_NORM = 1.0
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8


def batch_loss(
    model: SentenceTransformer,
    loss: TripletLoss,
    triplets: Sequence[Triplet],
    tokens: dict[str, list[int]],
) -> torch.Tensor:
    """The recipe's TripletLoss on ``triplets``, each distinct text encoded once."""
    texts = [text for t in triplets for text in (t.anchor, t.positive, t.negative)]
    distinct, positions = distinct_positions(texts)
    embeddings = embed_distinct(model, distinct, [tokens[text] for text in distinct])
    index = torch.tensor(positions, dtype=torch.long, device=embeddings.device).view(-1, 3)
    columns = [embeddings[index[:, column]] for column in range(3)]
    result: torch.Tensor = loss.compute_loss_from_embeddings(columns, torch.empty(0))
    return result


class UsedRows(torch.nn.Module):
    """A word-embedding table whose trainable part is the rows of ``ids``; other rows are
    read, unchanged, from the original ``table``."""

    ids: torch.Tensor
    remap: torch.Tensor

    def __init__(self, table: torch.nn.Embedding, ids: torch.Tensor) -> None:
        super().__init__()
        self.table = table
        self.rows = torch.nn.Parameter(table.weight.detach()[ids].clone())
        self.register_buffer("ids", ids)
        remap = torch.full((table.num_embeddings,), -1, dtype=torch.long, device=ids.device)
        remap[ids] = torch.arange(len(ids), device=ids.device)
        self.register_buffer("remap", remap)
        pad = table.padding_idx
        self.padding_idx = int(remap[pad]) if pad is not None and int(remap[pad]) >= 0 else None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mapped = self.remap[input_ids]
        if bool((mapped >= 0).all()):
            return torch.nn.functional.embedding(mapped, self.rows, self.padding_idx)
        with torch.no_grad():  # a text outside the training set (evaluation): full table
            return torch.nn.functional.embedding(input_ids, self.merged())

    def merged(self) -> torch.Tensor:
        """The whole table with the trained rows in place."""
        weight = self.table.weight.detach().clone()
        weight[self.ids] = self.rows.detach()
        return weight


@contextmanager
def train_used_rows(model: SentenceTransformer, tokens: Iterable[list[int]]) -> Iterator[None]:
    """Within the block, the word embeddings of ``model`` train only the rows of the token
    ids in ``tokens``; on exit the trained rows are written back into the original table."""
    transformer = getattr(model[0], "auto_model", None)
    table = getattr(transformer, "get_input_embeddings", lambda: None)()
    used = {i for ids in tokens for i in ids}
    if transformer is None or not isinstance(table, torch.nn.Embedding) or not used:
        yield
        return
    if table.padding_idx is not None:
        used.add(table.padding_idx)
    ids = torch.tensor(sorted(used), dtype=torch.long, device=table.weight.device)
    rows = UsedRows(table, ids)
    table.weight.requires_grad_(False)
    transformer.set_input_embeddings(rows)
    try:
        yield
    finally:
        with torch.no_grad():
            table.weight[ids] = rows.rows.detach()
        table.weight.requires_grad_(True)
        transformer.set_input_embeddings(table)


class DistinctTripletEvaluator(TripletEvaluator):  # type: ignore[misc]
    """``TripletEvaluator`` that encodes each distinct text of its triplets once.

    Same metrics, names and model-card entry as the stock evaluator.
    """

    _cache: dict[str, np.ndarray] | None = None

    def __call__(  # type: ignore[override]
        self,
        model: SentenceTransformer,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
    ) -> dict[str, float]:
        texts = [str(text) for text in (*self.anchors, *self.positives, *self.negatives)]
        distinct = list(dict.fromkeys(texts))
        vectors = model.encode(distinct, batch_size=self.batch_size, convert_to_numpy=True)
        self._cache = dict(zip(distinct, vectors, strict=True))
        try:
            metrics: dict[str, float] = super().__call__(model, output_path, epoch, steps)
        finally:
            self._cache = None
        return metrics

    def embed_inputs(
        self,
        model: SentenceTransformer,
        sentences: Any,
        encode_fn_name: str | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        if self._cache is None:
            return super().embed_inputs(model, sentences, encode_fn_name, **kwargs)  # type: ignore[no-any-return]
        return np.stack([self._cache[s] for s in sentences])

    @property
    def description(self) -> str:
        return "Triplet"


@dataclass
class _CardTrainer:
    """What sentence-transformers' card callback reads from a trainer."""

    train_dataset: Any
    eval_dataset: Any
    loss: Any
    callback_handler: Any = field(default_factory=lambda: _Callbacks())


@dataclass
class _Callbacks:
    callbacks: list[Any] = field(default_factory=list)


def fit_fast(
    model: SentenceTransformer, dataset: TripletDataset, config: TrainingConfig, show_progress: bool
) -> list[dict[str, float]]:
    """Train ``model`` in place with the recipe in ``config``; return the log history."""
    from sentence_transformers.sentence_transformer.model_card import (
        SentenceTransformerModelCardCallback,
    )
    from tqdm.auto import tqdm
    from transformers import TrainerControl, TrainerState, get_scheduler, set_seed

    set_seed(config.seed)
    if torch.cuda.is_available():  # where the stock trainer would train too
        model.to("cuda")
    train, evaluation = dataset.train, dataset.evaluation
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = math.ceil(steps_per_epoch * config.epochs)
    if config.max_steps > 0:
        total = min(total, config.max_steps)
    eval_steps = min(config.eval_steps or steps_per_epoch, total)

    loss = TripletLoss(
        model, distance_metric=TripletDistanceMetric.COSINE, triplet_margin=config.margin
    )
    evaluator = DistinctTripletEvaluator(
        anchors=[t.anchor for t in evaluation],
        positives=[t.positive for t in evaluation],
        negatives=[t.negative for t in evaluation],
        name=EVALUATOR_NAME,
        batch_size=config.batch_size,
    )
    tokens = token_ids(model, [x for t in train for x in (t.anchor, t.positive, t.negative)])

    with tempfile.TemporaryDirectory(prefix="catembed-trainer-") as scratch:
        args = trainer_arguments(config, scratch, eval_steps, show_progress, bool(evaluation))
    defaults = type(args)(output_dir="unused", accelerator_config={"use_configured_state": True})
    card = SentenceTransformerModelCardCallback(defaults.to_dict())
    state, control = TrainerState(max_steps=total), TrainerControl()
    card.on_init_end(
        args,
        state,
        control,
        model=model,
        trainer=_CardTrainer(_columns(train), _columns(evaluation) if evaluation else None, loss),  # type: ignore[arg-type]
    )
    card.on_train_begin(args, state, control, model=model)

    with train_used_rows(model, tokens.values()):
        fused = model.device.type in ("cpu", "cuda")
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=config.learning_rate,
            betas=ADAM_BETAS,
            eps=ADAM_EPSILON,
            weight_decay=0.0,
            fused=fused or None,
        )
        scheduler = get_scheduler(
            config.lr_scheduler,
            optimizer,
            num_warmup_steps=math.ceil(total * config.warmup_ratio),
            num_training_steps=total,
        )
        # The stock trainer's order: accelerate's SeedableRandomSampler reseeds with seed + epoch.
        generator = torch.Generator()
        sampler = torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(range(len(train)), generator=generator),
            batch_size=config.batch_size,
            drop_last=False,
        )

        history: list[dict[str, float]] = []
        running, counted = 0.0, 0
        with tqdm(total=total, disable=not show_progress, desc="training", unit="step") as progress:
            model.train()
            for epoch in range(math.ceil(total / steps_per_epoch)):
                generator.manual_seed(config.seed + epoch)
                for indices in sampler:
                    with torch.autocast(
                        model.device.type, dtype=torch.bfloat16, enabled=config.bf16
                    ):
                        value = batch_loss(model, loss, [train[i] for i in indices], tokens)
                    value.backward()  # type: ignore[no-untyped-call]
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    running += float(value.detach())
                    counted += 1
                    state.global_step += 1
                    state.epoch = state.global_step / steps_per_epoch
                    progress.update(1)
                    if state.global_step % eval_steps == 0 or state.global_step == total:
                        logs = {
                            "loss": round(running / counted, 4),
                            "grad_norm": float(grad_norm),
                            "learning_rate": float(scheduler.get_last_lr()[0]),
                            "epoch": state.epoch,
                        }
                        running, counted = 0.0, 0
                        history.append({**logs, "step": state.global_step})
                        card.on_log(args, state, control, model=model, logs=logs)
                        if evaluation:
                            history.append(
                                _evaluate(model, evaluator, state.epoch, state.global_step)
                            )
                            model.train()
                    if state.global_step >= total:
                        break
    model.eval()
    return history


def _evaluate(
    model: SentenceTransformer, evaluator: DistinctTripletEvaluator, epoch: float, step: int
) -> dict[str, float]:
    metrics = evaluator(model, epoch=epoch, steps=step)  # type: ignore[arg-type]
    accuracy = metrics.get(f"{EVALUATOR_NAME}_cosine_accuracy")
    if accuracy is not None:
        logger.info(
            "epoch %.2f, step %d: %s cosine accuracy %.4f", epoch, step, EVALUATOR_NAME, accuracy
        )
    return {
        **{f"eval_{key}": float(value) for key, value in metrics.items()},
        "epoch": epoch,
        "step": step,
    }


def _columns(triplets: Sequence[Triplet]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "anchor": [t.anchor for t in triplets],
            "positive": [t.positive for t in triplets],
            "negative": [t.negative for t in triplets],
        }
    )
