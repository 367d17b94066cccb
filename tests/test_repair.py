"""String checks of long and odd values: linear time, and reasons that name a few pieces."""

from __future__ import annotations

import itertools
import re

import pytest

from catembed.repair import _ABBREVIATION, FormatProfile, named

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
