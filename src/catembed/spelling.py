"""Finding the reference values near a value in spelling, fast where they are many.

The string rules compare a value's canonical form with every reference value's
(``catembed.repair.Repairer``): one edit away makes a typo, and the nearest in spelling is the
suggestion or the nearest value of a malformed one. ``rapidfuzz.process.extractOne`` over
every key costs about 0.1 microsecond a key, per value: a column of 100,000 distinct values
next to 10,000 reference values spent 150 of its 370 (profiled) seconds there. A
:class:`SpellingIndex` gives the same answers (the same key, the first in order among equals,
with the same score) without comparing each value with each key one call at a time:

- ``within_one_edit`` looks up the strings one edit from the value, where they are fewer
  than the keys;
- ``nearest`` compares a batch of values with ``rapidfuzz.process.cdist``, on every core
  where they are many, in blocks of bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

NEAREST_BLOCK = 2**21  # similarities ``nearest`` holds at a time (16 MB of float64)
# Comparisons worth starting threads for: starting them costs about 1 ms, a serial
# comparison of a few values with a few keys microseconds (a server's request, say).
PARALLEL_PAIRS = 2**20


class SpellingIndex:
    """Keys, in order, searched by optimal-string-alignment (OSA) distance."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self._order = {key: i for i, key in enumerate(self.keys)}
        self._alphabet = "".join(sorted({c for key in self.keys for c in key}))

    def within_one_edit(self, form: str) -> str | None:
        """The key at the smallest OSA distance from ``form`` if it is at most 1, the first
        in order among equals: ``process.extractOne(form, keys, scorer=OSA.distance,
        score_cutoff=1)``'s choice, or None."""
        if form in self._order:
            return form
        # Making and looking up an edit costs about two comparisons with a key.
        edits = 2 * (len(form) + 1) * (len(self._alphabet) + 1)
        if len(self.keys) <= 2 * edits:
            match = process.extractOne(form, self.keys, scorer=OSA.distance, score_cutoff=1)
            return None if match is None else str(match[0])
        found = self._order.keys() & one_edit_strings(form, self._alphabet)
        return min(found, key=self._order.__getitem__) if found else None

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
