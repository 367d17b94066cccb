"""Column evidence: what a column's row counts say that its distinct values alone do not.

Four rules revise the per-value verdicts of a column (``Validator.validate``):

- a value the string rules call a typo or a cut-short reference value is judged by the model
  instead when it fills at least as many rows as that reference value: typos are rarer than
  what they misspell, so 'Conroe' in 13 rows next to 'Monroe' in 2 is a value of its own;
- a value the domain classifier doubts but does not rule out is valid when it fills about as
  many rows as the reference values the column uses ('heart attack' in 279 of 1,000 rows when
  only 'pneumonia' was listed);
- a value one edit away from an accepted value that fills many times more rows is that value
  misspelt ('Knife Blok' in a column full of 'Knife Block'), even when neither is listed;
- an anomaly without a suggestion is suggested the value of that kind it is closest to in
  spelling, when close enough ('hearx axxack' -> 'heart attack'), unless it is out of domain
  and made of real words: 'Lightning Cable' is no misspelling of 'Lightning Balls'.

Each needs values filling many rows, so lists of distinct values are judged as before.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from rapidfuzz.distance import OSA

from catembed.backends import clip_texts, unreadable_at
from catembed.normalize import canonical
from catembed.repair import (
    LONG_TEXT,
    MIN_TYPO_LENGTH,
    TRUNCATION_REASON,
    TYPO_REASON,
    digits_only_differ,
)
from catembed.spelling import SpellingIndex
from catembed.verdicts import ValueReport, Verdict

if TYPE_CHECKING:
    from catembed.validation import Validator

logger = logging.getLogger(__name__)

# A value one edit from an accepted value that fills this many times more rows is its typo.
RARE_VARIANT_RATIO = 10
MIN_VARIANT_TARGET_ROWS = 20
RARE_VARIANT_SCORE = 0.85
FREQUENT_SUGGESTION_SIMILARITY = 0.75  # normalized OSA similarity to a frequent value
# Anomalies times frequent values ``frequent_suggestions`` compares at most (about 2 s); past
# that, with the most frequent values only.
MAX_SUGGESTION_COMPARISONS = 200_000_000
# A doubted value that fills as many rows as the reference values a column uses is valid.
MIN_COLUMN_ROWS = 100
ESTABLISHED_PROBABILITY_SHARE = 0.6
MIN_ESTABLISHED_ROWS = 4  # where the reference values fill few rows each
ESTABLISHED_SCORE = 0.45
# A typo-like value that fills this many rows, and no fewer than its reference value, is not
# a typo.
MIN_COMMON_VARIANT_ROWS = 5
ESTABLISHED_REASON = "fills {rows} rows, about as many as the reference values of this column"


def revised_by_column(
    validator: Validator, judged: dict[str, ValueReport], rows: Counter[str]
) -> dict[str, ValueReport]:
    """Revised reports for the values of ``judged`` (distinct value -> report) that the
    column's ``rows`` (value -> row count) change."""
    revised = common_variants(validator, judged, rows)
    revised |= established(validator, {**judged, **revised}, rows)
    revised |= rare_variants(validator, {**judged, **revised}, rows)
    return revised | frequent_suggestions(validator, {**judged, **revised}, rows)


def frequent_suggestions(
    validator: Validator, judged: dict[str, ValueReport], rows: Counter[str]
) -> dict[str, ValueReport]:
    """Anomalies without a suggestion, suggested the accepted value of the column that fills
    ``RARE_VARIANT_RATIO`` times their rows (and ``MIN_VARIANT_TARGET_ROWS``) and is closest
    in spelling, when at least ``FREQUENT_SUGGESTION_SIMILARITY`` alike (among the most
    frequent values only, where comparing every pair would pass
    ``MAX_SUGGESTION_COMPARISONS``). Out-of-domain values written in real words (English or
    the reference values') are other values, not misspellings, and get none. Values longer
    than ``LONG_TEXT`` neither get nor give one, as in ``Repairer.closest``: their edit
    distances would cost the product of the lengths."""
    frequent = {k: v for k, v in _frequent_values(judged, rows).items() if len(k) <= LONG_TEXT}
    pending = [
        t
        for t, r in judged.items()
        if r.is_anomaly
        and not r.suggestion
        and rows[t] > 0
        and not (r.verdict is Verdict.OUT_OF_DOMAIN and validator.profile.in_real_words(t))
    ]
    if not frequent or not pending:
        return {}
    keys = list(frequent)
    room = max(1, MAX_SUGGESTION_COMPARISONS // len(pending))
    if len(keys) > room:  # a column too varied to compare every pair: the likeliest targets
        kept = set(sorted(keys, key=lambda k: -rows[frequent[k]])[:room])
        logger.info(
            "repairs: %d anomalies compared with the %d most frequent of %d frequent values,"
            " not every one (at most %d pairs)",
            len(pending),
            len(kept),
            len(keys),
            MAX_SUGGESTION_COMPARISONS,
        )
        keys = [k for k in keys if k in kept]
    longest = max(len(k) for k in keys) / FREQUENT_SUGGESTION_SIMILARITY  # longer: too unlike
    forms = {
        t: form
        for t in pending
        if 0 < len(form := canonical(t)) <= longest and min(len(t), len(form)) <= LONG_TEXT
    }
    found = {}
    nearest = SpellingIndex(keys).nearest(list(forms.values()))
    for (text, form), (at, _) in zip(forms.items(), nearest, strict=True):
        # Alike enough by rapidfuzz's own cutoff arithmetic, as extractOne decided it.
        alike = OSA.normalized_similarity(
            form, keys[at], score_cutoff=FREQUENT_SUGGESTION_SIMILARITY
        )
        if alike > 0 and rows[frequent[keys[at]]] >= RARE_VARIANT_RATIO * rows[text]:
            found[text] = replace(judged[text], suggestion=frequent[keys[at]])
    return found


def common_variants(
    validator: Validator, judged: dict[str, ValueReport], rows: Counter[str]
) -> dict[str, ValueReport]:
    """The model's reports for values called a typo or a cut-short form of a reference value
    that fill at least as many rows as that value (and at least ``MIN_COMMON_VARIANT_ROWS``).
    One holding a lone surrogate stays malformed: no model takes it."""
    if sum(rows.values()) < MIN_COLUMN_ROWS:
        return {}
    spelled = [
        t
        for t, r in judged.items()
        if r.verdict is Verdict.MALFORMED
        and r.reason in (TYPO_REASON, TRUNCATION_REASON)
        and rows[t] >= max(MIN_COMMON_VARIANT_ROWS, rows[r.suggestion])
        and unreadable_at(t) is None
    ]
    found = {}
    for text, report in zip(spelled, validator.model_reports(spelled), strict=True):
        like = judged[text].suggestion
        note = (
            f"{judged[text].reason} ({like!r}), but fills {rows[text]} rows to its "
            f"{rows[like]}: a value of its own"
        )
        found[text] = replace(report, reason=f"{report.reason}; {note}" if report.reason else note)
    return found


def established(
    validator: Validator, judged: dict[str, ValueReport], rows: Counter[str]
) -> dict[str, ValueReport]:
    """Valid reports for out-of-domain values about as common in the column as the
    reference values it uses (half the rows of the rarest, and at least 20; or, in columns
    whose reference values fill fewer rows each, as many as their median and at least
    ``MIN_ESTABLISHED_ROWS``), when the domain classifier's probability is not far below its
    threshold (at least ``ESTABLISHED_PROBABILITY_SHARE`` of it)."""
    used = sorted(rows[t] for t in validator.reference if rows[t] > 0)
    if validator.domain is None or len(used) < 2 or sum(rows.values()) < MIN_COLUMN_ROWS:
        return {}
    bar = max(MIN_VARIANT_TARGET_ROWS, used[0] / 2)
    # A city in 13 rows is common in a column of hundreds of cities filling 3 rows each.
    bar = max(MIN_ESTABLISHED_ROWS, min(bar, statistics.median(used)))
    doubted = [
        t for t, r in judged.items() if r.verdict is Verdict.OUT_OF_DOMAIN and rows[t] >= bar
    ]
    if not doubted:
        return {}
    floor = ESTABLISHED_PROBABILITY_SHARE * validator.domain.thresholds.similarity
    inside = validator.domain.probabilities(clip_texts(validator.domain.encoder, doubted))
    found = {}
    for text, probability in zip(doubted, inside, strict=True):
        if probability >= floor:
            reason = (
                ESTABLISHED_REASON.format(rows=rows[text])
                + f" (in-domain probability {probability:.3f} alone would call it out of domain)"
            )
            found[text] = replace(
                judged[text], verdict=Verdict.VALID, score=ESTABLISHED_SCORE, reason=reason
            )
    return found


def established_only(report: ValueReport) -> bool:
    """Whether ``report`` is valid only because its value is common in the column."""
    return report.verdict is Verdict.VALID and report.reason.startswith(
        ESTABLISHED_REASON.split("{", 1)[0]
    )


def rare_variants(
    validator: Validator, judged: dict[str, ValueReport], rows: Counter[str]
) -> dict[str, ValueReport]:
    """Malformed reports for accepted or out-of-domain values that are rare one-edit
    variants of a frequent accepted value of the same column."""
    listed = set(validator.reference)
    frequent = _frequent_values(judged, rows)
    most = max(rows.values(), default=0)  # once, not once per value: columns of many values
    candidates = [
        t
        for t, r in judged.items()
        if t not in listed
        and r.verdict in (Verdict.VALID, Verdict.OUT_OF_DOMAIN)
        and rows[t] * RARE_VARIANT_RATIO <= most
    ]
    if not frequent:
        return {}
    spelling = SpellingIndex(list(frequent))
    found: dict[str, ValueReport] = {}
    for text in candidates:
        form = canonical(text)
        if len(form) < MIN_TYPO_LENGTH:
            continue
        key = spelling.within_one_edit(form)
        if key is None or key == form or digits_only_differ(form, key):
            continue
        target = frequent[key]
        ratio = rows[target] / max(rows[text], 1)
        if ratio >= RARE_VARIANT_RATIO:
            reason = f"one edit from {target!r}, which fills {ratio:.0f}x more rows"
            found[text] = ValueReport(
                text, Verdict.MALFORMED, RARE_VARIANT_SCORE, target, target, reason
            )
    return found


def _frequent_values(judged: dict[str, ValueReport], rows: Counter[str]) -> dict[str, str]:
    """Canonical form -> accepted value, for values filling ``MIN_VARIANT_TARGET_ROWS`` rows."""
    frequent = {
        canonical(t): t
        for t, r in judged.items()
        if r.verdict is Verdict.VALID and rows[t] >= MIN_VARIANT_TARGET_ROWS
    }
    frequent.pop("", None)
    return frequent
