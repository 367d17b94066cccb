"""Validators: a verdict, a score, the nearest reference value and a repair for every value.

A validator is a model plus the reference valid values, their embeddings and calibrated
thresholds. ``catembed train`` writes one into the model folder (``validator.json`` and
``validator.safetensors``; the folder still loads in stock sentence-transformers)::

    >>> from catembed import Validator
    >>> validator = Validator.load("models/catembed-apparel")
    >>> [r.verdict.value for r in validator.validate(["Hoodies", "<b>Sweaters</b>", "Toaster"])]
    ['valid', 'malformed', 'out_of_domain']

A value is checked in this order, and the first rule that fires decides:

1. ``missing``: None, NaN or an empty / whitespace-only cell (score 1).
2. ``valid``: exactly one of the reference values (score 0).
3. ``malformed``: a broken spelling of a reference value (markup, entities, case, spaces,
   punctuation, one-edit typos, cut short, a version suffix), repaired as ``suggestion``;
   a placeholder ('N/A', '???'); a value whose format no reference value has (characters,
   casing, invisible characters, misspelled English words).
4. ``out_of_domain`` when the value is judged outside the domain, else ``valid``. With a
   domain classifier (``DomainModel``, calibrated by ``catembed train``), that is when its
   in-domain probability is below its calibrated threshold; without one, when the highest
   cosine similarity to a reference value is below the calibrated threshold. A value
   written wholly in the reference values' words ('Bock' next to 'Maibock / Helles Bock')
   stays ``valid`` (score 0.45).
5. When the values form a column, its row counts can revise 3 and 4 (see
   catembed.column_evidence).

``score`` is in [0, 1] and ranks anomalies first: ``valid`` values always score below 0.5,
``out_of_domain`` and ``malformed`` ones at or above it.
"""

from __future__ import annotations

import json
import logging
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from catembed.backends import (
    DEFAULT_BACKEND,
    DEFAULT_BATCH_SIZE,
    check_backend,
    clip_texts,
    encode_normalized,
)
from catembed.column_evidence import revised_by_column
from catembed.domain import probabilities
from catembed.errors import InputError, ModelError, first_line
from catembed.normalize import doubtful_values
from catembed.repair import LONG_TEXT, FormatProfile, Repairer, named, split_joined
from catembed.tables import atomic_file
from catembed.verdicts import (
    BOOLEAN_TEXTS,
    MAX_ROWS,
    PYTHON_BOOLEAN_TEXTS,
    Thresholds,
    ValueReport,
    Verdict,
    as_text,
    cells,
    check_single_values,
    missing_report,
    report_fields,
    sigmoid_score,
)

if TYPE_CHECKING:
    from catembed.backends import Encoder
    from catembed.domain import DomainModel

logger = logging.getLogger(__name__)

VALIDATOR_FILE = "validator.json"
EMBEDDINGS_FILE = "validator.safetensors"
FORMAT_VERSION = 1
JUDGED_CHUNK = 2048  # distinct values judged at a time
# Scores of verdicts the spelling alone decides, by how sure the rule is.
RESPELLING_MAX_SCORE = 0.25  # a respelling is suggested only when it is clearly valid
_RULE_SCORES = {"placeholder": 0.99, "repair": 0.95, "format": 0.9, "word": 0.8}
IN_REFERENCE_WORDS_SCORE = 0.45  # a doubted value written in the reference values' words
LONGEST_CHECKED = 10_000  # characters; a longer value far longer than any reference is malformed


def _load_encoder(name: str, backend: str) -> Encoder:
    """A model folder (the base model's name included, where its package ships it) with
    ``backend``; anything else (a hub id) with torch."""
    from catembed.backends import load_encoder
    from catembed.models import load_model, resolve_base_model

    folder = name if Path(name).is_dir() else resolve_base_model(name)
    if Path(folder, "modules.json").is_file():
        return load_encoder(folder, backend)
    return load_model(name)


def domain_model_of(name: str) -> str:
    """The encoder of the domain classifier that ``catembed train`` wrote into the model
    folder ``name`` ('' for anything else)."""
    if not name:
        return ""
    try:
        data = json.loads(Path(name, VALIDATOR_FILE).read_text(encoding="utf-8"))
        return str(data["domain"]["model"] or "")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _listed(values: Iterable[object], name: str) -> list[str]:
    """The distinct non-empty texts of ``values`` (missing cells skipped), in order."""
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} takes a list of values, not one string")
    if getattr(values, "ndim", 1) == 0:  # numpy's one value
        raise TypeError(f"{name} takes a list of values, not one value")
    if hasattr(values, "columns") or getattr(values, "ndim", 1) != 1:  # not its column names
        raise TypeError(f"{name} takes one column of values, not a table or a matrix")
    column = cells(values)
    check_single_values(values, column, name)
    texts = (as_text(v) for v in column)
    return list(dict.fromkeys(t.strip() for t in texts if t is not None and t.strip()))


def _row_counts(rows: Iterable[Any]) -> list[int]:
    """``rows`` as plain non-negative integers, or an InputError."""
    if isinstance(rows, str | bytes | Mapping) or getattr(rows, "ndim", 1) != 1:
        raise InputError("rows must be a list of row counts, one per value")
    counts = []
    for n in rows:
        if isinstance(n, bool | np.bool_):
            raise InputError(f"rows must hold whole numbers of rows, got {n!r}")
        try:
            count = operator.index(n)  # integers of any kind; not floats or None
        except TypeError:
            raise InputError(f"rows must hold whole numbers of rows, got {n!r}") from None
        if count < 0:
            raise InputError(f"rows must not be negative, got {count}")
        if count > MAX_ROWS:  # the column rules' arithmetic would overflow a float
            raise InputError(
                f"rows must be at most 2**63 - 1, got a number of {len(str(count))} digits"
            )
        counts.append(count)
    return counts


class Validator:
    """Reference values, their embeddings and thresholds, with the encoder that made them."""

    def __init__(
        self,
        encoder: Encoder,
        reference: Sequence[str],
        thresholds: Thresholds,
        embeddings: np.ndarray | None = None,
        profile: FormatProfile | None = None,
        calibration: dict[str, Any] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        domain: DomainModel | None = None,
        model: str = "",
    ) -> None:
        self.reference = list(dict.fromkeys(v for v in reference if v.strip()))
        self.model = model  # where ``load`` finds the encoder; '': the folder it is saved in
        self._home: Path | None = None  # the model folder it was loaded from, if model is ''
        if not self.reference:
            raise InputError("a validator needs at least one reference value")
        self.encoder = encoder
        self.thresholds = thresholds
        self.batch_size = batch_size
        self.profile = profile or FormatProfile.learn(self.reference)
        self.calibration = calibration or {}
        if embeddings is None:
            embeddings = encode_normalized(encoder, clip_texts(encoder, self.reference), batch_size)
        if embeddings.shape[0] != len(self.reference):
            raise ModelError(
                f"validator has {len(self.reference)} reference values "
                f"but {embeddings.shape[0]} embeddings"
            )
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.domain = domain
        self._domain_embeddings: np.ndarray | None = None
        self._repairer = Repairer(self.reference, self.profile)
        self._index = {v: i for i, v in enumerate(self.reference)}
        # A validator of booleans saved by a catembed that read them as Python writes them
        # lists 'True' and 'False' (or one of them) and nothing else: its boolean cells are
        # judged as it lists them. Text cells are judged as written whatever the reference,
        # and any other reference ('True' among other values) judges booleans as JSON does.
        legacy = set(self.reference) <= set(PYTHON_BOOLEAN_TEXTS)
        self.booleans = PYTHON_BOOLEAN_TEXTS if legacy else BOOLEAN_TEXTS

    @classmethod
    def load(
        cls, path: str | Path, backend: str = DEFAULT_BACKEND, encoder: Encoder | None = None
    ) -> Validator:
        """Load the validator of a trained model folder (with its own encoder unless given)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from catembed.backends import load_encoder
        from catembed.models import check_model_folder

        folder = Path(path)
        settings_path = folder / VALIDATOR_FILE
        if not settings_path.is_file():  # a model folder without validator data, or none
            check_model_folder(folder)
        if not settings_path.is_file() or not (folder / EMBEDDINGS_FILE).is_file():
            raise ModelError(
                f"{folder} has no validator data ({VALIDATOR_FILE}, {EMBEDDINGS_FILE}); "
                "train it with `catembed train`, or build one from valid values "
                "(`catembed validate --valid`, Validator.from_values)"
            )
        try:
            data = json.loads(settings_path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ModelError(f"{settings_path} is not a JSON object")
            if data.get("format_version") != FORMAT_VERSION:
                raise ModelError(
                    f"{settings_path} has format version {data.get('format_version')!r}; "
                    f"this catembed reads version {FORMAT_VERSION}"
                )
            tensors = load_file(str(folder / EMBEDDINGS_FILE))
            embeddings = tensors["reference_embeddings"]
            thresholds = Thresholds(**data["thresholds"])
            profile = FormatProfile.from_dict(data["profile"])
            reference = data["reference"]
            if not isinstance(reference, list) or not all(isinstance(v, str) for v in reference):
                raise ModelError(f"{settings_path}: reference must be a list of strings")
            settings = data.get("domain")
            model = str(data.get("model") or "")
            if encoder is None and not model and not (folder / "modules.json").is_file():
                raise ModelError(
                    f"{folder} holds no model and its validator names none (it was built with "
                    "an encoder object): load it with Validator.load(path, encoder=...)"
                )
            if encoder is None:  # the folder's own model, or the one from_values recorded
                encoder = _load_encoder(model, backend) if model else load_encoder(folder, backend)
            domain = None
            if settings is not None:
                from catembed.domain import DomainModel

                name = str(settings["model"])
                domain = DomainModel(
                    _load_encoder(name, backend) if name else encoder,
                    name,
                    tensors["domain_weights"],
                    float(settings["bias"]),
                    Thresholds(**settings["thresholds"]),
                )
            _check_numbers(embeddings, thresholds, domain)
        except ModelError:
            raise
        except (ValueError, KeyError, TypeError, OverflowError, OSError, SafetensorError) as error:
            first = first_line(error)
            raise ModelError(f"cannot read the validator in {folder}: {first}") from None
        validator = cls(
            encoder,
            reference,
            thresholds,
            model=model,
            embeddings=embeddings,
            profile=profile,
            calibration=data.get("calibration"),
            domain=domain,
        )
        validator._home = None if model else folder.resolve()
        return validator

    @classmethod
    def from_values(
        cls,
        values: Iterable[object],
        model: str | Path | Encoder | None = None,
        threshold: float | None = None,
        out_of_domain: Iterable[object] | None = None,
        backend: str = DEFAULT_BACKEND,
    ) -> Validator:
        """Build a validator from valid values with any model (default: the base model).

        Without ``threshold`` it is calibrated against ``out_of_domain`` values (default: the
        built-in domains unlike ``values``), and the out-of-domain decision is a
        ``DomainModel`` over the model's embeddings; with ``threshold`` it is the highest
        cosine similarity to a value.
        """
        from catembed.calibration import calibrate_threshold, fit_domain_vectors, leave_one_out
        from catembed.models import DEFAULT_BASE_MODEL
        from catembed.vocabulary import negative_pool
        from catembed.vocabulary_embeddings import encode_values

        reference = _listed(values, "values")
        if len(reference) < 2:
            raise InputError("need at least 2 distinct valid values to build a validator")
        if warning := doubtful_values(reference):
            logger.warning(warning)
        encoder: Encoder
        check_backend(backend)
        if not (model is None or isinstance(model, str | Path) or hasattr(model, "encode")):
            raise TypeError(f"model must be a path, a model name or an encoder, got {model!r}")
        name = ""  # an encoder object: saved, the validator uses its folder's model
        if model is None or isinstance(model, str | Path):
            name = str(model or DEFAULT_BASE_MODEL)
            encoder = _load_encoder(name, backend)
            if Path(name).is_dir():
                name = str(Path(name).resolve())
        else:
            encoder = model
        embeddings = encode_normalized(encoder, clip_texts(encoder, reference), DEFAULT_BATCH_SIZE)
        if threshold is not None:
            return cls(encoder, reference, Thresholds(threshold), embeddings=embeddings, model=name)
        given = None if out_of_domain is None else _listed(out_of_domain, "out_of_domain")
        negatives = negative_pool(
            reference, given, "need at least 1 out-of-domain value to calibrate a validator"
        )
        pool = encode_values(encoder, clip_texts(encoder, negatives))
        thresholds = calibrate_threshold(
            leave_one_out(embeddings), similarities(pool, embeddings)[0]
        )
        base = domain_model_of(name)
        if base:  # a trained folder: its classifier's encoder, never the fine-tuned one
            domain_encoder = _load_encoder(base, backend)
            domain = fit_domain_vectors(
                domain_encoder,
                base,
                encode_normalized(
                    domain_encoder, clip_texts(domain_encoder, reference), DEFAULT_BATCH_SIZE
                ),
                encode_values(domain_encoder, clip_texts(domain_encoder, negatives)),
                negatives,
            )
        else:
            domain = fit_domain_vectors(encoder, "", embeddings, pool, negatives)
        return cls(encoder, reference, thresholds, embeddings=embeddings, domain=domain, model=name)

    def save(self, folder: str | Path) -> None:
        """Write ``validator.json`` and ``validator.safetensors`` into ``folder``. Any folder
        will do: a validator built from a model name or path (``from_values``) records it, and
        one loaded from a model folder records that folder when saved elsewhere; one built with
        an encoder object records none, so ``load`` needs that encoder (``encoder=``) unless
        the folder is that model's."""
        from safetensors.numpy import save_file

        from catembed import __version__

        target = Path(folder)
        if target.exists() and not target.is_dir():
            raise InputError(f"{target} is a file, not a folder")
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create {target}: {error.strerror or error}") from None
        model = self.model
        if not model and self._home is not None and self._home != target.resolve():
            model = str(self._home)  # saved away from its model folder: that folder's model
        data = {
            "format_version": FORMAT_VERSION,
            "catembed_version": __version__,
            "thresholds": asdict(self.thresholds),
            "calibration": self.calibration,
            "profile": self.profile.to_dict(),
            "reference": self.reference,
            "model": model,
        }
        tensors = {"reference_embeddings": self.embeddings}
        if self.domain is not None:
            data["domain"] = {
                "model": self.domain.model,
                "bias": self.domain.bias,
                "thresholds": asdict(self.domain.thresholds),
            }
            tensors["domain_weights"] = np.asarray(self.domain.weights, dtype=np.float32)
        # Serialised in full before anything is written: a failure leaves the folder as it was.
        text = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        # Both files are renamed into place only once both are written: stopped between them,
        # new embeddings (and classifier weights) were read with the old values and bias.
        with ExitStack() as stack:
            embeddings = stack.enter_context(atomic_file(target / EMBEDDINGS_FILE))
            settings = stack.enter_context(atomic_file(target / VALIDATOR_FILE))
            save_file(tensors, str(embeddings))
            settings.write_bytes(text)

    def validate(
        self,
        values: Iterable[object],
        rows: Sequence[int] | None = None,
        column_evidence: bool = True,
        show_progress: bool = False,
    ) -> list[ValueReport]:
        """One report per value, in order; each distinct value is judged once.

        ``values`` is a column (repeats count as rows), or its distinct values with ``rows``
        giving how many rows hold each. The column is evidence too: a well-formed value the
        domain classifier doubts but does not rule out is valid when it fills as many rows as
        the reference values the column uses; a value one edit away from a value that fills
        many times more rows is that value misspelt ('Knife Blok' in a column full of
        'Knife Block'), even when neither is a reference value; and a typo-like value that
        fills at least as many rows as the reference value it resembles is judged by the
        model instead ('Conroe' next to 'Monroe'). ``column_evidence=False`` judges each value
        alone, whatever its rows: a batch of rows mapped to a wrong value is then no more
        trusted than one row of it. ``show_progress`` shows a bar of distinct values judged.
        """
        if isinstance(values, str | bytes | bytearray | memoryview):
            raise TypeError("validate takes a list of values; for one value, pass [value]")
        if getattr(values, "ndim", 1) == 0:  # numpy's one value, not a table
            raise TypeError("validate takes a list of values; for one value, pass [value]")
        if hasattr(values, "columns") or getattr(values, "ndim", 1) != 1:
            raise TypeError("validate takes one column of values, not a table or a matrix")
        if isinstance(values, Mapping):  # its counts would be dropped without a word
            raise TypeError(
                "validate takes a list of values, not a mapping; for counts, pass "
                "validate(list(counts), rows=list(counts.values()))"
            )
        # Any iterable: a generator, numpy array, pandas Series, pyarrow array.
        column = cells(values)  # a float32 one as written: 0.1, not 0.10000000149
        check_single_values(values, column, "validate")
        per_value = None if rows is None else _row_counts(rows)
        if per_value is not None and len(per_value) != len(column):
            raise InputError(f"rows has {len(per_value)} counts for {len(column)} values")
        keys = [as_text(v, self.booleans) for v in column]
        distinct = list(dict.fromkeys(k for k in keys if k is not None))
        judged: dict[str, ValueReport] = {}
        known: dict[str, ValueReport] = {}  # every text judged in this run, rewrites too
        with tqdm(
            total=len(distinct), desc="Judging", unit=" values", disable=not show_progress
        ) as bar:
            # In chunks: the bar moves, and a column of many distinct values, its rewrites
            # and their embeddings are held a chunk at a time.
            for start in range(0, len(distinct), JUDGED_CHUNK):
                chunk = distinct[start : start + JUDGED_CHUNK]
                judged.update(zip(chunk, self.judge(chunk, known=known), strict=True))
                bar.update(len(chunk))
        counts: Counter[str] = Counter()
        for key, n in zip(keys, per_value or [1] * len(keys), strict=True):
            if key is not None:
                counts[key] += n
        if column_evidence:
            judged.update(revised_by_column(self, judged, counts))
        reports = []
        for value, key in zip(column, keys, strict=True):
            report = judged.get(key) if key is not None else None
            if report is None:
                report = missing_report(value)
            elif report.value is not value:
                report = ValueReport(value, *report_fields(report))
            reports.append(report)
        return reports

    def judge(
        self,
        texts: Sequence[str],
        repair_unseen: bool = True,
        *,
        known: dict[str, ValueReport] | None = None,
    ) -> list[ValueReport]:
        """Reports for distinct non-missing texts (whitespace-only counts as missing).

        A malformed value with no reference value to repair it to is suggested the plainest of
        its rewrites (``Repairer.rewrites``: '<b>Board Games</b>' -> 'Board Games', 'Canton
        MA' -> 'Canton', 'SANDBOX TOYS' -> 'Sandbox Toys') that is judged valid, else the
        likeliest respelling ('Denim Shrots' -> 'Denim Shorts') that is clearly valid.
        ``known`` holds texts judged before (before any suggestion), reused and added to: a
        rewrite is often a value of the column itself ('ROOFING' -> 'Roofing').
        """
        known = {} if known is None else known
        reports = self._judge_batch(texts, known)
        if not repair_unseen:
            return reports
        # Not long values: each of their rewrites would be judged, as costly as the value.
        broken = {
            str(r.value)
            for r in reports
            if r.verdict is Verdict.MALFORMED
            and not r.suggestion
            and not self.profile.far_longer(str(r.value))
            and len(str(r.value)) <= LONG_TEXT
        }
        best = self._first_valid(broken, broken, self._repairer.rewrites, 1.0, known)
        rest = broken - best.keys()
        respellings = self.profile.respellings
        best |= self._first_valid(rest, broken, respellings, RESPELLING_MAX_SCORE, known)
        return [replace(r, suggestion=best[r.value]) if r.value in best else r for r in reports]

    def _first_valid(
        self,
        values: set[str],
        broken: set[str],
        propose: Callable[[str], list[str]],
        max_score: float,
        known: dict[str, ValueReport],
    ) -> dict[str, str]:
        """For each of ``values``, the first of its proposed repairs (none of them ``broken``)
        judged valid with a score of at most ``max_score``; all are judged in one batch."""
        options = {value: propose(value) for value in sorted(values)}
        candidates = [
            c
            for c in dict.fromkeys(c for cs in options.values() for c in cs)
            if c.strip() and c not in broken
        ]
        if not candidates:
            return {}
        judged = dict(zip(candidates, self._judge_batch(candidates, known), strict=True))
        best = {}
        for value, choices in options.items():
            for choice in choices:
                report = judged.get(choice)
                if report and report.verdict is Verdict.VALID and report.score <= max_score:
                    best[value] = choice
                    break
        return best

    def _judge_batch(
        self, texts: Sequence[str], known: dict[str, ValueReport]
    ) -> list[ValueReport]:
        """Reports for ``texts`` without suggestions of unseen values; ``known`` (texts
        judged before) is reused and added to."""
        # String rules first: only values they pass are encoded (about half, in dirty columns).
        decided: dict[str, ValueReport] = {}
        unspelled: dict[str, _Unspelled] = {}
        for text in dict.fromkeys(texts):
            if text in known:
                decided[text] = known[text]
            elif not text.strip():
                decided[text] = missing_report(text)
            elif text in self._index:
                decided[text] = ValueReport(text, Verdict.VALID, 0.0, text)
            else:
                report = self._string_rules(text)
                if isinstance(report, _Unspelled):
                    unspelled[text] = report
                elif report is not None:
                    decided[text] = report
        # The nearest reference values in spelling, of all at once: with many reference
        # values, comparing each value with each of them is most of the string rules' time.
        nearest = self._repairer.nearest(list(unspelled))
        for (text, rule), (value, close) in zip(unspelled.items(), nearest, strict=True):
            decided[text] = rule.report(value, close)
        pending = [t for t in dict.fromkeys(texts) if t not in decided]
        decided.update(zip(pending, self.model_reports(pending), strict=True))
        known.update(decided)
        return [decided[t] for t in texts]

    def model_reports(self, texts: Sequence[str]) -> list[ValueReport]:
        """Reports from the embedding model alone, without string rules, for ``texts``."""
        if not texts:
            return []
        if self.domain is not None and self.domain.encoder is not self.encoder:
            # The classifier's own (base) encoder decides and gives the nearest value too:
            # fine-tuning pulls a domain's values together, so its nearest value is near chance.
            clipped = clip_texts(self.domain.encoder, texts)
            vectors = encode_normalized(self.domain.encoder, clipped, self.batch_size)
            references = self._domain_references()
        else:
            clipped = clip_texts(self.encoder, texts)
            vectors = encode_normalized(self.encoder, clipped, self.batch_size)
            if vectors.shape[1] != self.embeddings.shape[1]:
                raise ModelError(
                    f"the encoder gives {vectors.shape[1]} dimensions, "
                    f"the validator's references {self.embeddings.shape[1]}"
                )
            references = self.embeddings
        top, where = similarities(vectors, references)
        inside: list[float | None] = [None] * len(texts)
        if self.domain is not None:
            inside = list(probabilities(vectors, self.domain.weights, self.domain.bias))
        return [
            self._embedding_rule(text, float(s), int(i), None if p is None else float(p))
            for text, s, i, p in zip(texts, top, where, inside, strict=True)
        ]

    def _domain_references(self) -> np.ndarray:
        """The reference values' embeddings by the domain classifier's encoder (computed once)."""
        if self._domain_embeddings is None:
            assert self.domain is not None
            encoder = self.domain.encoder
            self._domain_embeddings = encode_normalized(
                encoder, clip_texts(encoder, self.reference), self.batch_size
            )
        return self._domain_embeddings

    def _string_rules(self, text: str) -> ValueReport | _Unspelled | None:
        """A malformed verdict from the spelling alone (one that waits for the nearest
        reference value in spelling), or None to ask the model."""
        if len(text) > LONGEST_CHECKED and self.profile.far_longer(text):
            # Its length is verdict enough; each check would scan megabytes again.
            reason = self.profile.length_issue(text)
            return ValueReport(text, Verdict.MALFORMED, _RULE_SCORES["format"], "", "", reason)
        repair = self._repairer.repair(text)
        if repair is not None:
            return self._malformed(text, "repair", repair.suggestion, repair.reason)
        joined = (
            split_joined(text, self._index)
            or self._repairer.glued(text)
            or self._repairer.joined_in(text)
        )
        if joined:
            return _Unspelled(text, "format", "joins " + named(joined, " and "), suggest=False)
        issues = self.profile.issues(text)
        if not issues:
            return None
        kind = "placeholder" if issues == ["placeholder"] else "format"
        if kind == "placeholder":
            return self._malformed(text, kind, "", "; ".join(issues))
        if all(i.startswith("unknown word") for i in issues):
            kind = "word"
        return _Unspelled(text, kind, "; ".join(issues), suggest=True)

    def _embedding_rule(
        self, text: str, similarity: float, index: int, inside: float | None = None
    ) -> ValueReport:
        nearest = self.reference[index]
        if inside is not None and self.domain is not None:
            thresholds = self.domain.thresholds
            score = sigmoid_score(inside, thresholds)
            measure = f"in-domain probability {inside:.3f}"
            detail = f" (nearest {nearest!r}, similarity {similarity:.3f})"
        else:
            thresholds = self.thresholds
            score = sigmoid_score(similarity, thresholds)
            measure, detail = f"similarity {similarity:.3f} to {nearest!r}", ""
        side = "below" if score >= 0.5 else "above"
        reason = f"{measure} is {side} {thresholds.similarity:.3f}{detail}"
        if score >= 0.5 and self.profile.in_reference_words(text):
            score = IN_REFERENCE_WORDS_SCORE  # the domain's own words, recombined
            reason = f"written in the reference values' own words, though {reason}"
        if score >= 0.5:
            return ValueReport(text, Verdict.OUT_OF_DOMAIN, score, nearest, "", reason)
        # Not listed, so it needs a reason too: why the model let it in.
        return ValueReport(text, Verdict.VALID, score, nearest, "", reason)

    def _malformed(self, text: str, kind: str, suggestion: str, reason: str) -> ValueReport:
        if kind == "placeholder":
            nearest = ""  # a placeholder stands for no value at all
        else:
            nearest = suggestion or self._repairer.closest(text, min_ratio=0.0)
        return ValueReport(text, Verdict.MALFORMED, _RULE_SCORES[kind], nearest, suggestion, reason)


@dataclass(frozen=True)
class _Unspelled:
    """A malformed verdict of the string rules still to be given its nearest reference value
    in spelling, and with ``suggest``, that value as its suggestion when close enough."""

    text: str
    kind: str
    reason: str
    suggest: bool

    def report(self, nearest: str, close: str) -> ValueReport:
        """The report, given the reference value nearest in spelling and that value again
        where it is close enough, else '' (``Repairer.nearest``)."""
        suggestion = close if self.suggest else ""
        score = _RULE_SCORES[self.kind]
        return ValueReport(self.text, Verdict.MALFORMED, score, nearest, suggestion, self.reason)


def _check_numbers(
    embeddings: np.ndarray, thresholds: Thresholds, domain: DomainModel | None
) -> None:
    """Refuse a validator whose numbers could not have been written by ``save``."""
    if embeddings.ndim != 2:
        raise ValueError(f"reference embeddings have shape {embeddings.shape}, not a matrix")
    numbers = [thresholds.similarity, thresholds.scale]
    arrays = [embeddings]
    if domain is not None:
        numbers += [domain.bias, domain.thresholds.similarity, domain.thresholds.scale]
        arrays.append(domain.weights)
        if domain.weights.shape != (embeddings.shape[1],):
            raise ValueError(
                f"domain weights have shape {domain.weights.shape}, "
                f"the embeddings {embeddings.shape[1]} dimensions"
            )
    if not np.isfinite(numbers).all() or not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("a threshold, weight or embedding is not a finite number")


def similarities(vectors: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Highest cosine similarity of each row of ``vectors`` to ``reference``, and where."""
    top = np.empty(len(vectors), dtype=np.float32)
    where = np.empty(len(vectors), dtype=np.int64)
    step = max(1, 2**22 // max(1, len(reference)))  # bounded memory for large inputs
    for start in range(0, len(vectors), step):
        block = vectors[start : start + step] @ reference.T
        where[start : start + step] = block.argmax(axis=1)
        top[start : start + step] = block.max(axis=1)
    return top, where
