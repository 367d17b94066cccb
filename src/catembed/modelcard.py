"""The model card: sentence-transformers' own card plus what catembed measures beyond it."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from catembed.dataset import DatasetConfig
    from catembed.training import TrainingConfig, TrainingResult
    from catembed.validation import Validator

CARD_FILE = "README.md"
SECTION_ANCHOR = "## Training Details"
MAX_LISTED_HELDOUT = 100  # held-out values the card names
PARTS = (
    ("seen", "Seen values"),
    ("heldout", "Held-out values"),
    ("all", "All (`category_final_evaluation`)"),
)


def prepare_card_data(
    model: SentenceTransformer, base_model: str, dataset_name: str, evaluated: bool = True
) -> None:
    """Name the base model and training data before sentence-transformers writes its card."""
    from catembed.models import hub_id

    card = model.model_card_data
    # A hub id links to its page, by its whole id ('all-MiniLM-L6-v2' linked to a page that
    # does not exist); a local folder has none (it linked to huggingface.co/<path>).
    card.base_model = None if Path(base_model).expanduser().is_dir() else hub_id(base_model)
    card.model_name = f"catembed {dataset_name} model based on {base_model}"
    card.train_datasets = [{"name": f"catembed {dataset_name} triplets"}]
    # Without evaluation triplets (eval_size 0) a named eval set with no columns broke the
    # card's template: sentence-transformers skipped its whole card, logging a traceback.
    card.eval_datasets = [{"name": f"catembed {dataset_name} triplets"}] if evaluated else []
    # The template's default ('semantic search, paraphrase mining, ...') claims more than a
    # model trained to pull one domain's values together does.
    card.task_name = (
        "telling values of its domain from other domains' values and malformed spellings "
        "(cosine accuracy below). It pulls a domain's values together, so it is not meant for "
        "search among them"
    )
    card.add_tags(["catembed", "data-validation", "categorical"])


def write_model_card(
    folder: Path,
    result: TrainingResult,
    config: TrainingConfig,
    data: DatasetConfig,
    validator: Validator | None = None,
) -> None:
    """Add catembed's sections to the card that ``model.save`` wrote into ``folder``."""
    path = folder / CARD_FILE
    card = path.read_text(encoding="utf-8") if path.exists() else ""
    # The usage example loads the folder written, not a Hub id it never had.
    shown = json.dumps(str(result.model_dir))
    card = card.replace("# Download from the 🤗 Hub\n", "# The folder `catembed train` wrote\n")
    card = card.replace(
        'SentenceTransformer("sentence_transformers_model_id")', f"SentenceTransformer({shown})"
    )
    sections = [_accuracy_section(result)]
    if validator is not None:
        onnx = (folder / "onnx" / "model.onnx").is_file()
        sections.append(_validator_section(validator, str(result.model_dir), onnx))
    sections += [_dataset_section(result, data), _config_section(config, data)]
    extra = "\n".join(sections)
    if SECTION_ANCHOR in card:
        card = card.replace(SECTION_ANCHOR, extra + "\n" + SECTION_ANCHOR, 1)
    else:
        card = card.rstrip() + "\n\n" + extra
    path.write_text(card, encoding="utf-8")


def _accuracy_section(result: TrainingResult) -> str:
    base, tuned = result.accuracy["base"], result.accuracy["fine_tuned"]
    sizes = {
        "seen": len(result.dataset.eval_seen),
        "heldout": len(result.dataset.eval_heldout),
        "all": len(result.dataset.evaluation),
    }
    rows = [
        f"| {label} | {sizes[key]} | {base[key]:.4f} | **{tuned[key]:.4f}** |"
        for key, label in PARTS
        if key in tuned
    ]
    held = result.dataset.heldout_values
    heldout = ", ".join(f"'{v}'" for v in held[:MAX_LISTED_HELDOUT]) or "none"
    if len(held) > MAX_LISTED_HELDOUT:  # a long list's card was its held-out values
        heldout += (
            f" and {len(held) - MAX_LISTED_HELDOUT:,} more (`build_triplets` with this card's"
            " values, dataset config and seed lists them all)"
        )
    table = [
        "| Evaluation part | Triplets | Base model | Fine-tuned |",
        "|:----------------|---------:|-----------:|-----------:|",
        *rows,
    ]
    return "\n".join(
        [
            "### Seen and held-out values (catembed)",
            "",
            "Cosine accuracy of the base model before fine-tuning and of this model, on the",
            "evaluation triplets over values seen in training and over valid values that were held",
            "out of training entirely (what a validator meets in real columns).",
            "",
            *(table if rows else ["No evaluation triplets were built (`eval_size` 0)."]),
            "",
            f"Held-out values: {heldout}.",
            "",
            f"Training took {result.train_seconds:.1f} s "
            f"({result.samples_per_second:.1f} training samples/s).",
            "",
        ]
    )


def _validator_section(validator: Validator, folder: str, onnx: bool = False) -> str:
    report = validator.calibration or {}
    domain = validator.domain
    figures = [
        ("valid values accepted", "valid_accepted", "valid_values"),
        ("out-of-domain values rejected", "out_of_domain_rejected", "out_of_domain_values"),
        ("malformed values rejected", "malformed_rejected", "corrupted_values"),
    ]
    rows = [
        f"| {label} | {report[count]} | {report[share]:.1%} |"
        for label, share, count in figures
        if share in report and count in report
    ]
    decision = (
        f"a logistic regression on `{domain.model or 'this model'}` embeddings, in-domain "
        f"probability threshold {domain.thresholds.similarity:.3f}"
        if domain is not None
        else f"cosine similarity threshold {validator.thresholds.similarity:.3f}"
    )
    auroc = f" (AUROC of the score {report['auroc']:.4f})" if "auroc" in report else ""
    return "\n".join(
        [
            "### Validator (catembed)",
            "",
            f"This folder is also a validator (`validator.json`, `validator.safetensors`): "
            f"{len(validator.reference)} reference values and, to tell values of other domains, "
            f"{decision}. Checked at training time on values held out of it{auroc}:",
            "",
            "| Held-out check | Values | Share |",
            "|:---------------|-------:|------:|",
            *rows,
            "",
            "```bash",
            f"catembed validate --model {shlex.quote(folder)} products.csv --column category",
            "```",
            "",
            "```python",
            "from catembed import Validator",
            "",
            f"validator = Validator.load({json.dumps(folder)})",
            'print(validator.validate(["Hoodies", "<b>Sweaters</b>", "Toaster"]))',
            "```",
            "",
            *(
                [
                    "`onnx/model.onnx` is this model exported to ONNX: catembed runs it by default "
                    "where onnxruntime is installed (`--backend torch` runs the weights above).",
                    "",
                ]
                if onnx
                else []
            ),
        ]
    )


def _dataset_section(result: TrainingResult, data: DatasetConfig) -> str:
    kinds = Counter(t.negative_kind for t in result.dataset.train)
    kind_rows = [f"| `{kind}` | {count} |" for kind, count in kinds.most_common()]
    return "\n".join(
        [
            "### Triplet dataset (catembed)",
            "",
            f"- Valid values: {len(result.dataset.train_values)} used in training, "
            f"{len(result.dataset.heldout_values)} held out",
            f"- Out-of-domain pool: {len(result.dataset.out_of_domain_values)} values",
            f"- Share of malformed negatives: {data.corruption_rate}",
            f"- Corruption kinds: {', '.join(data.corruption_kinds)}",
            "",
            "| Negative kind | Training triplets |",
            "|:--------------|------------------:|",
            *kind_rows,
            "",
        ]
    )


def _config_section(config: TrainingConfig, data: DatasetConfig) -> str:
    values = {"training": asdict(config), "dataset": asdict(data)}
    return "\n".join(
        [
            "### catembed configuration",
            "",
            "The values this model was trained with (`catembed train --config` accepts this shape):",
            "",
            "```json",
            json.dumps(values, indent=2),
            "```",
            "",
        ]
    )
