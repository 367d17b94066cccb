"""String checks of long and odd values: linear time, and reasons that name a few pieces."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from rapidfuzz import process
from rapidfuzz.distance import OSA

from catembed import repair, spelling
from catembed.corruptions import CORRUPTIONS
from catembed.repair import (
    _ABBREVIATION,
    FAR_KEY_COST,
    MIN_TYPO_LENGTH,
    FormatProfile,
    Repairer,
    _misspells,
    _one_edits,
    _rarest_count,
    english_counts,
    english_words,
    named,
)
from catembed.vocabulary import domain_values

# The pattern before it was made linear: initials were matched again from each of their
# letters on, each try giving letters back one by one ('A.' * 5000 + 'a' took 0.5 s).
BACKTRACKING_ABBREVIATION = re.compile(r"\b(?:[A-Z][a-z]?\.(?= [A-Z])|(?:[A-Z]\.){2,}(?!\w))")
INITIALS = [
    "Washington D.C.",
    "J.R.R. Tolkien",
    "J. R. Smith Park",
    "St. Louis",
    "Mt. Vernon",
    "U.S.A.",
    "U.S. Open",
    "E.T. The Extra-Terrestrial",
    "Ph.D. Programs",
    "Dr. Who",
    "D.C.",
    "A.",
    "A.B",
    "A.B.Cd",
    "A.B.C.d",
    "A.B.1",
    "A.B_",
    "A.B.-C.",
    "xA.B.C.",
    "1A.B.",
    "A..B.C.",
    "AB.C.D.",
    "Ab.C.D. E",
    "a.b.c.",
    "É.U.A.",
    "A.B.é",
    "A." * 50 + "a",
    "xA." * 20,
    "",
    ".",
]


def test_initials_are_found_where_the_backtracking_pattern_found_them() -> None:
    odd = ("".join(chars) for n in range(1, 7) for chars in itertools.product("A.a _", repeat=n))
    for text in itertools.chain(INITIALS, odd):
        spans = [m.span() for m in _ABBREVIATION.finditer(text)]
        assert spans == [m.span() for m in BACKTRACKING_ABBREVIATION.finditer(text)], text


LENGTH_ISSUE = "{} characters, far longer than any reference value"
FIVE_TYPOS = ", ".join(["'sweatres'"] * 5)


@pytest.mark.parametrize(
    ("value", "issues"),
    [
        ("A." * 50_000 + "a", ["characters never used in reference values: '.'", "unusual casing"]),
        ("A. " * 33_333, ["characters never used in reference values: '.'", "unusual casing"]),
        ("X.Y.z" * 20_000, ["characters never used in reference values: '.'", "unusual casing"]),
        ("iPhone " * 14_285, []),  # each word asked whether the value was one word
        ("Jeans MA " * 11_111, ["unusual casing"]),
        ("Blu-ray" + "-ray" * 25_000, []),  # each hyphen searched back for the compound's start
        ("Sweatres " * 11_111, [f"unknown word {FIVE_TYPOS}, ... (11106 more)"]),  # checked once
    ],
)
def test_a_value_of_100000_characters_is_checked_in_linear_time(
    value: str, issues: list[str]
) -> None:
    # A column with a long reference value lets long values through to every check; these
    # took seconds to minutes each.
    profile = FormatProfile.learn(["Sweaters", "Jeans", "Wool Socks", "Blu-ray Players"])
    spaced = ["leading or trailing whitespace"] if value != value.strip() else []
    assert profile.issues(value) == [*spaced, LENGTH_ISSUE.format(len(value)), *issues]


def test_a_reason_names_a_few_pieces_and_counts_the_rest() -> None:
    assert named(["Jeans", "Socks"], " and ") == "Jeans and Socks"
    six = [f"v{i}" for i in range(6)]
    assert named(six, ", ") == "v0, v1, v2, v3, v4, v5"  # '... (1 more)' says no less
    assert named([*six, "v6"], ", ", quoted=True) == "'v0', 'v1', 'v2', 'v3', 'v4', ... (2 more)"
    assert named(["x" * 1000, "Jeans"], " and ") == "x" * 77 + "... and Jeans"


def _typos(value: str, seed: int) -> list[str]:
    kinds = ["typo_insert", "typo_delete", "typo_swap", "typo_double", "typo_replace"]
    return [CORRUPTIONS[kind](value, random.Random(seed)) for kind in kinds]


def test_long_keys_are_compared_in_one_pass_to_the_same_repairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each long key in one pass, not by an edit distance (0.3 s a key of 50,000 characters).
    rng = random.Random(0)
    words = ["Wool", "Socks", "Denim", "Jackets", "Sweaters", "Hoodies"]
    # Keys about as long as the bound, the longest shorter than it, the shortest longer.
    near = [" ".join(rng.choice(words) for _ in range(n // 5))[:n] for n in (1999, 2000, 2001)]
    reference = [*domain_values("apparel"), *near, near[1][:-1] + "x"]
    profile = FormatProfile.learn(reference)
    repairer = Repairer(reference, profile)
    forms = [t.casefold() for i, v in enumerate(reference) for t in _typos(v, i)]
    for form in forms:
        if form not in repairer._canonical:
            match = process.extractOne(form, repairer._keys, scorer=OSA.distance, score_cutoff=1)
            assert repairer._spelling.within_one_edit(form) == (match[0] if match else None)
    values = [t for i, v in enumerate(domain_values("apparel")) for t in _typos(v, i)]
    repairs = [repairer.repair(v) for v in values]
    monkeypatch.setattr(spelling, "LONG_KEY", MIN_TYPO_LENGTH)  # every key in one pass
    assert [Repairer(reference, profile).repair(v) for v in values] == repairs


def _misspells_by_every_edit(word: str, english: frozenset[str], known: frozenset[str]) -> bool:
    """``_misspells`` as it was: each of ``_one_edits`` with its cost, one by one."""
    if len(word) > repair.MAX_WORD_LENGTH:
        return True
    counts, rarest = english_counts(), _rarest_count()
    return any(
        e in known or (e in english and (counts.get(e, rarest) > rarest or cost < FAR_KEY_COST))
        for e, cost in _one_edits(word).items()
    )


def _typed(rng: random.Random, words: list[str]) -> list[str]:
    """English words, some with a letter dropped, added or replaced, and random strings."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    typed = ["", "a", "ab", "abc", "aab", "quinoa", "sapote", "haori", "shrots", "x" * 41]
    for word in rng.sample(words, 1500):
        at = rng.randrange(len(word) + 1)
        kind = rng.randrange(4)
        if kind == 0:
            word = word[:at] + word[at + 1 :]
        elif kind == 1:
            word = word[:at] + rng.choice(letters) + word[at:]
        elif kind == 2:
            word = word[:at] + rng.choice(letters) + word[at + 1 :]
        typed.append(word)
    typed += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    return typed


def test_misspells_is_the_check_of_every_edit_with_its_cost() -> None:
    rng = random.Random(0)
    english = english_words()
    words = sorted(english)
    known = frozenset([*rng.sample(words, 200), "toyz", "kaleidoscope"])
    for word in _typed(rng, words):
        assert _misspells(word, english, known) == _misspells_by_every_edit(word, english, known)
        common = {e for e, cost in _one_edits(word).items() if cost < FAR_KEY_COST}
        assert repair._edit_strings(word) == set(_one_edits(word)), word
        assert {e for e in _one_edits(word) if repair._common_slip(word, e)} == common, word


def test_spell_checks_remembered_are_those_made_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repair, "MAX_CHECKED_WORDS", 50)
    values = ["Denim Shorts", "Wool Socks", "Knife Block", "Garden Hose", "Teddy Bear"]
    texts = ["Denim Shrots", "Wool Sokcs", "Knife Blok", "Gardne Hose", "Teddy Baer", "Shrots"]
    texts += [" ".join(w) for w in itertools.permutations(["Shrots", "Sokcs", "Blok", "Hose"], 3)]
    fresh = [FormatProfile.learn(values).unknown_words(t) for t in texts]
    profile = FormatProfile.learn(values)
    assert [profile.unknown_words(t) for t in texts * 3] == fresh * 3
    assert 0 < len(profile._misspelt) <= 50
