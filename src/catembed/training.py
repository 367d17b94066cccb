"""Fine-tuning with the seed card's recipe: TripletLoss (cosine, margin 0.3), batch 64,
4 epochs, learning rate 5e-5, linear schedule without warm-up, seed 42."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catembed.calibration import calibrate_for_training
from catembed.dataset import DatasetConfig, TripletDataset, build_triplets
from catembed.errors import ConfigError, InputError
from catembed.evaluation import accuracy_by_part, triplet_columns
from catembed.modelcard import prepare_card_data, write_model_card
from catembed.models import DEFAULT_BASE_MODEL, MAX_SEQ_LENGTH, load_model
from catembed.tables import atomic_folder, check_folder_target
from catembed.validation import domain_model_of
from catembed.vocabulary import DEFAULT_DOMAIN, domain_values

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("models") / f"catembed-{DEFAULT_DOMAIN}"
EVALUATOR_NAME = "category_final_evaluation"
METADATA_FILE = "catembed.json"
# transformers' schedules that need nothing beyond warm-up and total steps (the others want a
# metric or extra arguments, and failed only once training began).
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
)
MAX_SEED = 2**32 - 1  # numpy's legacy seeding, which transformers' set_seed uses


@dataclass(frozen=True)
class TrainingConfig:
    """Training hyperparameters; the defaults are the seed card's recipe."""

    base_model: str = DEFAULT_BASE_MODEL
    epochs: float = 4
    batch_size: int = 64
    learning_rate: float = 5e-5
    margin: float = 0.3
    seed: int = 42
    warmup_ratio: float = 0.0
    lr_scheduler: str = "linear"
    max_seq_length: int = MAX_SEQ_LENGTH
    max_steps: int = -1  # > 0 stops early (smoke tests); -1 trains all epochs
    eval_steps: int | None = None  # None: evaluate at the end of every epoch
    fast: bool = True  # catembed's loop (distinct texts once, tight padding); False: stock trainer
    bf16: bool = False  # opt-in bfloat16 autocast; weights and optimizer stay float32

    def __post_init__(self) -> None:
        if not str(self.base_model).strip():  # Path('') is the current folder: trained from it
            raise ConfigError("base model must name a model folder or hub id, got an empty name")
        if not 0 < self.epochs < math.inf:
            raise ConfigError(f"epochs must be positive, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning rate must be in (0, 1), got {self.learning_rate}")
        if not 0 <= self.margin < math.inf:  # a nan margin trained a model of nans
            raise ConfigError(f"margin must be a non-negative number, got {self.margin}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warm-up ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 1 <= self.max_seq_length <= MAX_SEQ_LENGTH:
            raise ConfigError(
                f"max sequence length must be in [1, {MAX_SEQ_LENGTH}], got {self.max_seq_length}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be in [0, {MAX_SEED}], got {self.seed}")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise ConfigError(
                f"unknown lr scheduler {self.lr_scheduler!r}; choose one of: "
                + ", ".join(LR_SCHEDULERS)
            )
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"max steps must be positive (-1: all epochs), got {self.max_steps}")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise ConfigError(f"eval steps must be at least 1, got {self.eval_steps}")


@dataclass
class TrainingResult:
    """What a training run produced and measured."""

    model_dir: Path
    dataset: TripletDataset
    accuracy: dict[str, dict[str, float]]  # {"base"|"fine_tuned": {"seen"|"heldout"|"all": acc}}
    train_seconds: float
    samples_per_second: float
    log_history: list[dict[str, float]] = field(default_factory=list)


def train(
    valid: Sequence[str] | None = None,
    output: str | Path = DEFAULT_OUTPUT,
    config: TrainingConfig | None = None,
    data: DatasetConfig | None = None,
    domain: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    out_of_domain: Sequence[str] | None = None,
) -> TrainingResult:
    """Build a triplet dataset, fine-tune, evaluate, and write the model folder with its card.

    ``valid`` are the user's valid values; without them the built-in ``domain`` (default
    apparel) is used. ``out_of_domain`` replaces the built-in negatives (see build_triplets).
    The folder is written atomically: it appears only when complete, validator included.
    """
    for argument, given in (("valid", valid), ("out_of_domain", out_of_domain)):
        if isinstance(given, str | bytes):
            raise TypeError(f"{argument} must be a list of texts, not one string")
    if config is not None and not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    if data is not None and not isinstance(data, DatasetConfig):
        raise TypeError(f"data must be a DatasetConfig, got {type(data).__name__}")
    target = _output_folder(output, overwrite)  # before minutes of work, not after
    config = config or TrainingConfig()
    if Path(config.base_model).expanduser().is_dir():  # recorded, and loaded again from anywhere
        config = replace(config, base_model=os.path.abspath(Path(config.base_model).expanduser()))
        if overwrite and Path(config.base_model).resolve().is_relative_to(target.resolve()):
            # Replaced, it would leave the card and the validator naming the new model as base.
            raise InputError(
                f"the base model {config.base_model} lies inside {output}, which --overwrite "
                "replaces; choose another --output"
            )
    data = data or DatasetConfig(seed=config.seed)
    name = (domain or DEFAULT_DOMAIN) if valid is None else "custom"
    values = list(valid) if valid is not None else list(domain_values(name))
    negatives = list(out_of_domain) if out_of_domain is not None else None
    dataset = build_triplets(values, data, negatives)
    logger.info(
        "dataset: %d training triplets, %d + %d evaluation triplets (seen + held-out values)",
        len(dataset.train),
        len(dataset.eval_seen),
        len(dataset.eval_heldout),
    )
    model = load_model(config.base_model)
    model.max_seq_length = config.max_seq_length
    prepare_card_data(model, config.base_model, name, evaluated=bool(dataset.evaluation))
    before = _evaluate_parts(model, dataset)
    if before:  # else eval_size 0: nothing measured, and no empty line saying so
        logger.info("base model accuracy: %s", _format(before))

    with atomic_folder(target, overwrite=overwrite) as folder:
        started = time.perf_counter()
        with _card_progress(show_progress):
            log_history = (_fit_fast if config.fast else _fit)(
                model, dataset, config, show_progress
            )
        seconds = time.perf_counter() - started
        # The card's time is ours, below; sentence-transformers' would count until the save.
        model.model_card_data._training_start_time = None
        after = _evaluate_parts(model, dataset)
        if after:
            logger.info("fine-tuned accuracy: %s", _format(after))
        model.save(str(folder))
        # The domain classifier runs on base-model embeddings, never fine-tuned ones: a base
        # model catembed trained hands on the encoder its own classifier used.
        domain_model = domain_model_of(config.base_model) or config.base_model
        validator = calibrate_for_training(
            model,
            dataset,
            folder,
            seed=data.seed,
            domain_encoder=load_model(domain_model),
            domain_model=domain_model,
        )
        accuracy = {"base": before, "fine_tuned": after}
        trained = _trained_samples(dataset, config)
        result = TrainingResult(
            model_dir=Path(output),
            dataset=dataset,
            accuracy=accuracy,
            train_seconds=seconds,
            samples_per_second=trained / seconds if seconds else 0.0,
            log_history=log_history,
        )
        _write_metadata(folder, result, config, data, name)
        _export_onnx(folder, Path(output), domain_model)
        write_model_card(folder, result, config, data, validator)
    return result


def _export_onnx(folder: Path, output: Path, domain_model: str) -> None:
    """The ONNX exports that the default backend (``auto``) runs on: the model's into its
    folder, the base model's (its domain classifier's encoder) into the user's cache, never
    into the base model's folder. Without onnxruntime, or if the export fails, validate runs
    on torch."""
    from catembed.backends import onnx_available
    from catembed.models import resolve_base_model

    if not onnx_available():
        return
    from catembed.onnx_backend import ensure_onnx

    base = Path(resolve_base_model(domain_model))
    try:
        ensure_onnx(folder, shown_as=str(output / "onnx" / "model.onnx"))
        if base.is_dir():
            ensure_onnx(base, cached=True)
    except Exception as error:  # an architecture the exporter cannot trace: torch still works
        logger.warning("no ONNX export, inference will use torch: %s", error)


def _output_folder(output: str | Path, overwrite: bool) -> Path:
    """``output`` as an absolute folder path that train may write, or an InputError."""
    target = check_folder_target(output, overwrite)
    if overwrite and target.is_dir() and not _replaceable(target):
        held = ", ".join(sorted(p.name for p in target.iterdir())[:3])
        raise InputError(
            f"{output} is not a model folder (it holds {held}); --overwrite only replaces a "
            "model folder, so choose another --output"
        )
    folder = Path(os.path.abspath(target))  # '.' has no name to write a folder beside
    # Probed where the folders to make would go; they are made once training succeeds.
    existing = next(p for p in (folder.parent, *folder.parent.parents) if p.exists())
    if not existing.is_dir():
        raise InputError(f"cannot write {output}: {existing} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=existing))
    except OSError as error:
        raise InputError(f"cannot write {output}: {error.strerror or error}") from None
    return folder


def _replaceable(folder: Path) -> bool:
    """Whether --overwrite may replace ``folder``: empty, or a model (catembed's or any
    sentence-transformers folder), never a folder of the user's other files."""
    return not any(folder.iterdir()) or any(
        (folder / name).is_file() for name in (METADATA_FILE, "modules.json")
    )


def _fit(
    model: SentenceTransformer, dataset: TripletDataset, config: TrainingConfig, show_progress: bool
) -> list[dict[str, float]]:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator
    from sentence_transformers.sentence_transformer.losses import TripletDistanceMetric, TripletLoss
    from transformers import TrainerCallback

    train_data = Dataset.from_dict(_columns(dataset.train))
    eval_triplets = dataset.evaluation
    eval_data = evaluator = None  # with --eval-size 0 (an empty eval set crashed the trainer)
    if eval_triplets:
        eval_data = Dataset.from_dict(_columns(eval_triplets))
        evaluator = TripletEvaluator(
            anchors=eval_data["anchor"],
            positives=eval_data["positive"],
            negatives=eval_data["negative"],
            name=EVALUATOR_NAME,
            batch_size=config.batch_size,
        )
    steps_per_epoch = math.ceil(len(dataset.train) / config.batch_size)
    eval_steps = config.eval_steps or steps_per_epoch
    if config.max_steps > 0:
        eval_steps = min(eval_steps, config.max_steps)

    class _ReportEvaluation(TrainerCallback):  # type: ignore[misc]
        def on_evaluate(
            self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any
        ) -> None:
            accuracy = (metrics or {}).get(f"eval_{EVALUATOR_NAME}_cosine_accuracy")
            if accuracy is not None:
                logger.info(
                    "epoch %.2f, step %d: %s cosine accuracy %.4f",
                    state.epoch or 0.0,
                    state.global_step,
                    EVALUATOR_NAME,
                    accuracy,
                )

    with tempfile.TemporaryDirectory(prefix="catembed-trainer-") as scratch:
        args = trainer_arguments(config, scratch, eval_steps, show_progress, evaluator is not None)
        loss = TripletLoss(
            model, distance_metric=TripletDistanceMetric.COSINE, triplet_margin=config.margin
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=train_data,
            eval_dataset=eval_data,
            loss=loss,
            evaluator=evaluator,
            callbacks=[_ReportEvaluation()],
        )
        _quiet_trainer_logs(trainer)
        trainer.train()
        return list(trainer.state.log_history)


def _fit_fast(
    model: SentenceTransformer, dataset: TripletDataset, config: TrainingConfig, show_progress: bool
) -> list[dict[str, float]]:
    from catembed.fast_training import fit_fast

    return fit_fast(model, dataset, config, show_progress)


@contextmanager
def _card_progress(show: bool) -> Iterator[None]:
    """Without ``show``, also hide the bar sentence-transformers' model card draws while it
    picks widget examples (its own tqdm; the trainer's ``disable_tqdm`` does not reach it)."""
    if show:
        yield
        return
    from sentence_transformers.base import model_card

    bar = model_card.tqdm  # type: ignore[attr-defined]
    model_card.tqdm = functools.partial(bar, disable=True)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        model_card.tqdm = bar  # type: ignore[attr-defined]


def trainer_arguments(
    config: TrainingConfig,
    output_dir: str,
    eval_steps: int,
    show_progress: bool,
    evaluate: bool = True,
) -> Any:
    """The recipe as ``SentenceTransformerTrainingArguments``; the fast loop follows the same
    values and reports them in the card's hyperparameters."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float here is a ratio (transformers v5)
        seed=config.seed,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=eval_steps,
        logging_steps=eval_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=not show_progress,
        use_cpu=not _has_cuda(),
        bf16=config.bf16,
    )


def _quiet_trainer_logs(trainer: Any) -> None:
    """Keep the progress bar but drop the raw log dicts; our callback reports evaluations."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class _Progress(ProgressCallback):  # type: ignore[misc]
        def on_log(self, *args: Any, **kwargs: Any) -> None:
            pass

    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(_Progress())


def _evaluate_parts(model: SentenceTransformer, dataset: TripletDataset) -> dict[str, float]:
    parts = {"seen": dataset.eval_seen, "heldout": dataset.eval_heldout, "all": dataset.evaluation}
    columns = {name: triplet_columns(triplets) for name, triplets in parts.items() if triplets}
    return accuracy_by_part(model, columns)


def _total_steps(dataset: TripletDataset, config: TrainingConfig) -> int:
    per_epoch = math.ceil(len(dataset.train) / config.batch_size)
    total = math.ceil(per_epoch * config.epochs)
    return min(total, config.max_steps) if config.max_steps > 0 else total


def _trained_samples(dataset: TripletDataset, config: TrainingConfig) -> int:
    """Triplets the steps ran through: whole epochs, then the batches of the last one."""
    per_epoch = math.ceil(len(dataset.train) / config.batch_size)
    epochs, steps = divmod(_total_steps(dataset, config), per_epoch)
    return epochs * len(dataset.train) + min(steps * config.batch_size, len(dataset.train))


def _columns(triplets: Sequence[Any]) -> dict[str, list[str]]:
    return {
        "anchor": [t.anchor for t in triplets],
        "positive": [t.positive for t in triplets],
        "negative": [t.negative for t in triplets],
    }


def _write_metadata(
    folder: Path, result: TrainingResult, config: TrainingConfig, data: DatasetConfig, domain: str
) -> None:
    metadata = {
        "catembed_version": _version(),
        "domain": domain,
        "training": asdict(config),
        "dataset": asdict(data),
        "train_values": list(result.dataset.train_values),
        "heldout_values": list(result.dataset.heldout_values),
        "accuracy": result.accuracy,
        "train_seconds": round(result.train_seconds, 2),
        "samples_per_second": round(result.samples_per_second, 2),
    }
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def _format(accuracy: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in accuracy.items())


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _version() -> str:
    from catembed import __version__

    return __version__
