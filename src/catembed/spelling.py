"""Finding the reference values near a value in spelling, fast where they are many.

The string rules compare a value's canonical form with every reference value's
(``catembed.repair.Repairer``): one edit away makes a typo, and the nearest in spelling is the
suggestion or the nearest value of a malformed one. ``rapidfuzz.process.extractOne`` over
every key costs about 0.1 microsecond a key, per value: a column of 100,000 distinct values
next to 10,000 reference values spent 150 of its 370 (profiled) seconds there. A
:class:`SpellingIndex` gives the same answers (the same key, the first in order among equals,
with the same score) without comparing each value with each key one call at a time:

- ``within_one_edit`` looks up the strings one edit from the value, where they are fewer
  than the keys, and compares a value with the long keys about as long in one pass each
  (an edit distance costs the product of the lengths: 0.3 s for two of 50,000 characters);
- ``nearest`` compares a batch of values with ``rapidfuzz.process.cdist``, on every core
  where they are many, in blocks of bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

LONG_KEY = 2_000  # characters: keys this long are compared in one pass each
NEAREST_BLOCK = 2**21  # similarities ``nearest`` holds at a time (16 MB of float64)
# Comparisons worth starting threads for: starting them costs about 1 ms, a serial
# comparison of a few values with a few keys microseconds (a server's request, say).
PARALLEL_PAIRS = 2**20


class SpellingIndex:
    """Keys, in order, searched by optimal-string-alignment (OSA) distance."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self._order = {key: i for i, key in enumerate(self.keys)}
        self._short = [key for key in self.keys if len(key) < LONG_KEY]
        self._long: dict[int, list[str]] = {}  # by length
        for key in self.keys:
            if len(key) >= LONG_KEY:
                self._long.setdefault(len(key), []).append(key)
        self._alphabet = "".join(sorted({c for key in self._short for c in key}))

    def within_one_edit(self, form: str) -> str | None:
        """The key at the smallest OSA distance from ``form`` if it is at most 1, the first
        in order among equals: ``process.extractOne(form, keys, scorer=OSA.distance,
        score_cutoff=1)``'s choice, or None."""
        if form in self._order:
            return form
        found = []
        if len(form) <= LONG_KEY:  # a longer one is more than one edit from every short key
            found += self._short_within_one_edit(form)
        near = [k for n in (-1, 0, 1) for k in self._long.get(len(form) + n, [])]
        found += [k for k in near if one_edit_apart(form, k)]
        return min(found, key=self._order.__getitem__, default=None)

    def _short_within_one_edit(self, form: str) -> list[str]:
        # Making and looking up an edit costs about two comparisons with a key.
        edits = 2 * (len(form) + 1) * (len(self._alphabet) + 1)
        if len(self._short) <= 2 * edits:
            match = process.extractOne(form, self._short, scorer=OSA.distance, score_cutoff=1)
            return [] if match is None else [str(match[0])]
        found = self._order.keys() & one_edit_strings(form, self._alphabet)
        return [min(found, key=self._order.__getitem__)] if found else []

    def nearest(self, forms: Sequence[str]) -> list[tuple[int, float]]:
        """For each of ``forms``, the position of the key most like it (normalized OSA
        similarity, the first in order among equals) and that similarity, as
        ``process.extractOne(form, keys, scorer=OSA.normalized_similarity)`` gives them;
        (-1, 0.0) where there are no keys."""
        if not self.keys:
            return [(-1, 0.0)] * len(forms)
        asked = list(dict.fromkeys(forms))
        found: dict[str, tuple[int, float]] = {}
        step = max(1, NEAREST_BLOCK // len(self.keys))
        for start in range(0, len(asked), step):
            block = asked[start : start + step]
            workers = -1 if len(block) * len(self.keys) >= PARALLEL_PAIRS else 1
            scores = process.cdist(
                block,
                self.keys,
                scorer=OSA.normalized_similarity,
                dtype=np.float64,
                workers=workers,
            )
            best = scores.argmax(axis=1)  # the first of equals, as extractOne keeps
            for form, at, row in zip(block, best, scores, strict=True):
                found[form] = (int(at), float(row[at]))
        return [found[form] for form in forms]


def one_edit_strings(word: str, alphabet: str) -> set[str]:
    """The strings one OSA edit from ``word`` (a character deleted, two neighbours swapped, one
    replaced by or one inserted from ``alphabet``), ``word`` itself left out."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = [a + b[1:] for a, b in splits if b]
    edits += [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    edits += [a + c + b[1:] for a, b in splits if b for c in alphabet]
    edits += [a + c + b for a, b in splits for c in alphabet]
    found = set(edits)
    found.discard(word)
    return found


def one_edit_apart(a: str, b: str) -> bool:
    """Whether one delete, insert, replacement or swap of neighbours turns ``a`` into ``b``:
    ``OSA.distance(a, b) == 1``, in one pass over both."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    pairs = enumerate(zip(a, b, strict=False))
    at = next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))  # first difference
    if len(a) != len(b):
        shorter, longer = sorted((a, b), key=len)
        return longer[at + 1 :] == shorter[at:]
    replaced = a[at + 1 :] == b[at + 1 :]
    return replaced or (a[at : at + 2] == b[at : at + 2][::-1] and a[at + 2 :] == b[at + 2 :])
