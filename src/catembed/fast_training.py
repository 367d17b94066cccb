"""catembed's training loop: the seed recipe without the waste of short category strings.

A batch of 64 triplets holds 192 texts but only about a hundred distinct ones, each a few
tokens long. This loop

- encodes each distinct text of a batch once and indexes its embedding into every place it
  appears, so gradients from all of them flow into the one shared forward pass;
- sorts the distinct texts by token length and splits them into runs that minimise padded
  tokens plus a per-run overhead, each padded only to its own longest text;
- runs plain torch around sentence-transformers' own modules and ``TripletLoss``: fused AdamW
  (betas 0.9/0.999, eps 1e-8, no weight decay), the same linear schedule, gradient clipping
  at 1.0, the same seed and the same batch order as the stock trainer's sampler;
- evaluates with a ``TripletEvaluator`` that encodes each distinct evaluation text once.

The loss on a batch equals the stock ``TripletLoss`` on it (see tests/test_fast_training.py);
the model card is filled by sentence-transformers' own card callback, so it has the same
sections as a stock-trained model's card.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator
from sentence_transformers.sentence_transformer.losses import TripletDistanceMetric, TripletLoss
from sentence_transformers.util import batch_to_device

from catembed.training import EVALUATOR_NAME, TrainingConfig, trainer_arguments

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from catembed.dataset import Triplet, TripletDataset

logger = logging.getLogger(__name__)

# The cost of one more forward call, in padded tokens: runs shorter than this are merged.
DEFAULT_RUN_OVERHEAD_TOKENS = 96
MAX_GRAD_NORM = 1.0
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8


def distinct_positions(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """Return the distinct texts in first-seen order and, for each text, its distinct index."""
    index: dict[str, int] = {}
    positions = [index.setdefault(text, len(index)) for text in texts]
    return list(index), positions


def length_runs(lengths: Sequence[int], overhead: int = DEFAULT_RUN_OVERHEAD_TOKENS) -> list[range]:
    """Split positions ``0..n-1`` of ascending ``lengths`` into consecutive runs.

    Each run is padded to its last (longest) length; the split minimises padded tokens plus
    ``overhead`` per run (dynamic programming, O(n^2) for the few hundred texts of a batch).
    """
    n = len(lengths)
    if any(lengths[i] > lengths[i + 1] for i in range(n - 1)):
        raise ValueError("lengths must be sorted ascending")
    best = [0.0] + [math.inf] * n
    start_of = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(end):
            cost = best[start] + overhead + (end - start) * lengths[end - 1]
            if cost < best[end]:
                best[end], start_of[end] = cost, start
    runs: list[range] = []
    end = n
    while end > 0:
        runs.append(range(start_of[end], end))
        end = start_of[end]
    return runs[::-1]


def embed_distinct(
    model: SentenceTransformer, texts: Sequence[str], lengths: Sequence[int]
) -> torch.Tensor:
    """Embed distinct ``texts`` (token counts ``lengths``) in length-sorted runs, keeping the
    graph; row ``i`` of the result is the embedding of ``texts[i]``."""
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    parts = []
    for run in length_runs([lengths[i] for i in order]):
        features = model.preprocess([texts[order[j]] for j in run])
        features = batch_to_device(features, model.device)
        parts.append(model(features)["sentence_embedding"])
    stacked = torch.cat(parts)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    return stacked[inverse.to(stacked.device)]


def batch_loss(
    model: SentenceTransformer,
    loss: TripletLoss,
    triplets: Sequence[Triplet],
    token_counts: dict[str, int],
) -> torch.Tensor:
    """The recipe's TripletLoss on ``triplets``, each distinct text encoded once."""
    texts = [text for t in triplets for text in (t.anchor, t.positive, t.negative)]
    distinct, positions = distinct_positions(texts)
    embeddings = embed_distinct(model, distinct, [token_counts[text] for text in distinct])
    index = torch.tensor(positions, dtype=torch.long, device=embeddings.device).view(-1, 3)
    columns = [embeddings[index[:, column]] for column in range(3)]
    result: torch.Tensor = loss.compute_loss_from_embeddings(columns, torch.empty(0))
    return result


def token_counts(model: SentenceTransformer, texts: Sequence[str]) -> dict[str, int]:
    """Tokens per distinct text (special tokens included, truncated to max_seq_length)."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return {}
    encoded = model.tokenizer(distinct, truncation=True, max_length=model.max_seq_length)
    return {text: len(ids) for text, ids in zip(distinct, encoded["input_ids"], strict=True)}


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
    counts = token_counts(model, [x for t in train for x in (t.anchor, t.positive, t.negative)])

    with tempfile.TemporaryDirectory(prefix="catembed-trainer-") as scratch:
        args = trainer_arguments(config, scratch, eval_steps, show_progress)
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
    progress = tqdm(total=total, disable=not show_progress, desc="training", unit="step")
    model.train()
    for epoch in range(math.ceil(total / steps_per_epoch)):
        generator.manual_seed(config.seed + epoch)
        for indices in sampler:
            with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=config.bf16):
                value = batch_loss(model, loss, [train[i] for i in indices], counts)
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
                    history.append(_evaluate(model, evaluator, state.epoch, state.global_step))
                    model.train()
            if state.global_step >= total:
                break
    progress.close()
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
