"""Spelling searches give what rapidfuzz's extractOne over every reference key gives."""

from __future__ import annotations

import itertools
import random

import pytest
from rapidfuzz import process
from rapidfuzz.distance import OSA

from catembed.normalize import canonical
from catembed.repair import FormatProfile, Repairer
from catembed.spelling import SpellingIndex, one_edit_apart, one_edit_strings


def _strings(rng: random.Random, count: int, letters: str, lengths: tuple[int, int]) -> list[str]:
    found: dict[str, None] = {}
    while len(found) < count:
        size = rng.randint(*lengths)
        found.setdefault("".join(rng.choice(letters) for _ in range(size)), None)
    return list(found)


def _mutated(rng: random.Random, keys: list[str], letters: str, count: int) -> list[str]:
    """Keys with one or two random edits (some land on other keys), and keys themselves."""
    forms = []
    for _ in range(count):
        form = rng.choice(keys)
        for _ in range(rng.choice((0, 1, 1, 2))):
            at = rng.randrange(len(form) + 1)
            edit = rng.randrange(4)
            if edit == 0 and at < len(form):
                form = form[:at] + form[at + 1 :]
            elif edit == 1 and at + 1 < len(form):
                form = form[:at] + form[at + 1] + form[at] + form[at + 2 :]
            elif edit == 2 and at < len(form):
                form = form[:at] + rng.choice(letters) + form[at + 1 :]
            else:
                form = form[:at] + rng.choice(letters + "xé") + form[at:]
        forms.append(form)
    return forms


def test_one_edit_strings_are_every_string_one_osa_edit_away() -> None:
    word, alphabet = "abca", "abc"
    candidates = {
        "".join(p)
        for n in range(len(word) - 1, len(word) + 2)
        for p in itertools.product(alphabet, repeat=n)
    }
    expected = {c for c in candidates if OSA.distance(word, c) == 1}
    assert one_edit_strings(word, alphabet) == expected


@pytest.mark.parametrize("count", [6, 3000])  # rapidfuzz over every key; the edits looked up
def test_within_one_edit_is_extract_ones_choice(count: int) -> None:
    rng = random.Random(count)
    letters = "abcd "
    keys = _strings(rng, count, letters, (3, 7))
    index = SpellingIndex(keys)
    for form in _mutated(rng, keys, letters, 2000):
        match = process.extractOne(form, keys, scorer=OSA.distance, score_cutoff=1)
        assert index.within_one_edit(form) == (None if match is None else match[0]), form


def test_nearest_is_extract_ones_choice_and_score_first_of_equals() -> None:
    rng = random.Random(7)
    letters = "abcde"
    keys = _strings(rng, 400, letters, (2, 9))
    forms = [*_mutated(rng, keys, letters, 300), "", "zzzz", "a" * 30]
    found = SpellingIndex(keys).nearest(forms)
    for form, (at, score) in zip(forms, found, strict=True):
        match = process.extractOne(form, keys, scorer=OSA.normalized_similarity, score_cutoff=0)
        assert match is not None
        assert (keys[at], score, at) == (match[0], match[1], match[2]), form
    assert SpellingIndex([]).nearest(["abc"]) == [(-1, 0.0)]


def test_nearest_in_blocks_or_threads_is_as_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = _strings(random.Random(1), 50, "abc", (2, 6))
    forms = _mutated(random.Random(2), keys, "abc", 40)
    whole = SpellingIndex(keys).nearest(forms)
    monkeypatch.setattr("catembed.spelling.NEAREST_BLOCK", 120)  # blocks of 2 forms
    assert SpellingIndex(keys).nearest(forms) == whole
    monkeypatch.setattr("catembed.spelling.PARALLEL_PAIRS", 0)  # on every core
    assert SpellingIndex(keys).nearest(forms) == whole


def _closest_by_extract_one(repairer: Repairer, text: str, min_ratio: float) -> str:
    """``Repairer.closest`` as it was: rapidfuzz's extractOne over every key."""
    form = canonical(text)
    if not form or len(form) > 4 * max(repairer.profile.max_length, 1):
        return ""
    match = process.extractOne(
        form, repairer._keys, scorer=OSA.normalized_similarity, score_cutoff=min_ratio
    )
    return repairer._canonical[match[0]] if match else ""


def test_repairer_nearest_and_closest_are_extract_ones() -> None:
    rng = random.Random(3)
    words = ["teddy", "bear", "play", "dough", "kite", "puzzle", "cube", "water", "gun"]
    reference = list(
        dict.fromkeys(" ".join(rng.sample(words, rng.randint(1, 3))).title() for _ in range(60))
    )
    repairer = Repairer(reference, FormatProfile.learn(reference))
    texts = [m.title() for m in _mutated(rng, [r.lower() for r in reference], "abdeoy ", 400)]
    # Exactly 0.8 alike (2 edits in 10 characters): not close enough by rapidfuzz's cutoff.
    texts += ["TÃ¨eddy Bar", "poay.dough", "", "!!!", "x" * 500]
    nearest = repairer.nearest(texts)
    for text, (value, close) in zip(texts, nearest, strict=True):
        assert value == _closest_by_extract_one(repairer, text, 0.0), text
        assert close == _closest_by_extract_one(repairer, text, 0.8), text
        assert repairer.closest(text) == close
        assert repairer.closest(text, min_ratio=0.0) == value
    assert repairer.nearest(["Teeddy Bar"])[0] == ("Teddy Bear", "")


def testone_edit_apart_is_an_osa_distance_of_one() -> None:
    texts = ["".join(p) for n in range(5) for p in itertools.product("abc", repeat=n)]
    for a, b in itertools.product(texts, repeat=2):
        assert one_edit_apart(a, b) == (OSA.distance(a, b) == 1), (a, b)
