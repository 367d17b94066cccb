"""Tests for catembed.corruptions: every kind changes its input, deterministically."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from catembed import corruptions
from catembed.corruptions import CORRUPTION_KINDS, CORRUPTIONS, corrupt, join_values

VALUES = (
    "Sweaters",
    "Polo Shirts",
    "T",
    "Ab",
    "Car Battery 12V",
    "Café Crème",
    "Hoodies & Sweatshirts",
)
# Awkward inputs: caseless, repeated chars, separators, edge whitespace, non-Latin, emoji.
ODD_VALUES = (
    "123",
    "aa",
    "aaa",
    "7",
    "T-Shirts",
    " Jeans ",
    "N/A",
    "ß",
    "Ωμέγα",
    "日本",
    "👕",
    "a b",
)
INVISIBLE_KINDS = {"whitespace", "control_chars"}
SEEDS = range(50)


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
@pytest.mark.parametrize("value", VALUES + ODD_VALUES)
def test_every_kind_changes_its_input(kind: str, value: str) -> None:
    fn = CORRUPTIONS[kind]
    for seed in SEEDS:
        out = fn(value, random.Random(seed))
        assert isinstance(out, str)
        assert out != value, (kind, value, seed)
        if kind not in INVISIBLE_KINDS:
            assert out.strip() != value.strip(), (kind, value, seed, out)


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_fuzzed_inputs_are_changed(kind: str) -> None:
    gen = random.Random(1234)
    alphabet = "aAbBsStTeE zZ09&'\"-_.é日\t\xa0"
    for seed in range(300):
        value = "".join(gen.choice(alphabet) for _ in range(gen.randint(1, 8)))
        out = CORRUPTIONS[kind](value, random.Random(seed))
        assert out != value, (kind, value, seed)
        if kind not in INVISIBLE_KINDS:
            assert out.strip() != value.strip(), (kind, value, seed, out)


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_empty_value_gives_nonempty_output(kind: str) -> None:
    assert CORRUPTIONS[kind]("", random.Random(0)) != ""


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_same_seed_same_output(kind: str) -> None:
    fn = CORRUPTIONS[kind]
    for value in VALUES:
        for seed in range(10):
            assert fn(value, random.Random(seed)) == fn(value, random.Random(seed))


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_does_not_use_global_random(kind: str) -> None:
    random.seed(1)
    first = CORRUPTIONS[kind]("Polo Shirts", random.Random(7))
    random.seed(2)
    assert CORRUPTIONS[kind]("Polo Shirts", random.Random(7)) == first


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
@pytest.mark.parametrize("value", ["Sweaters", "Polo Shirts"])
def test_different_seeds_vary(kind: str, value: str) -> None:
    # Every kind draws something from rng for these values, so none is exempt.
    outputs = {CORRUPTIONS[kind](value, random.Random(seed)) for seed in range(20)}
    assert len(outputs) >= 2, (kind, outputs)


def test_registry_shape() -> None:
    assert len(CORRUPTION_KINDS) >= 20
    assert tuple(CORRUPTIONS) == CORRUPTION_KINDS
    assert len(set(CORRUPTION_KINDS)) == len(CORRUPTION_KINDS)
    for kind in CORRUPTION_KINDS:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", kind), kind
    assert "plural_noise" not in CORRUPTIONS
    with pytest.raises(TypeError):
        CORRUPTIONS["markup"] = CORRUPTIONS["hashtag"]  # type: ignore[index]


def test_required_kinds_present() -> None:
    required = {
        "markup", "hashtag", "bracket", "punctuation", "case_noise", "char_substitution",
        "typo_insert", "typo_delete", "typo_swap", "typo_double", "typo_replace", "truncate",
        "join", "numeric_suffix", "version_suffix", "html_entity", "mojibake", "emoji",
        "quotes", "placeholder", "whitespace", "control_chars", "underscore_join",
    }  # fmt: skip
    assert required <= set(CORRUPTION_KINDS)


def test_corrupt_picks_among_given_kinds_and_reports_kind() -> None:
    rng = random.Random(0)
    seen: Counter[str] = Counter()
    for _ in range(200):
        kind, out = corrupt("Sweaters", rng, kinds=["markup", "hashtag"])
        seen[kind] += 1
        assert out != "Sweaters"
        assert out.startswith("#") if kind == "hashtag" else "<" in out
    assert set(seen) == {"markup", "hashtag"}


def test_corrupt_default_uses_all_kinds_and_is_deterministic() -> None:
    a = [corrupt("Polo Shirts", random.Random(s)) for s in range(300)]
    b = [corrupt("Polo Shirts", random.Random(s)) for s in range(300)]
    assert a == b
    assert {kind for kind, _ in a} == set(CORRUPTION_KINDS)
    assert all(out != "Polo Shirts" for _, out in a)


def test_corrupt_output_matches_the_reported_kind() -> None:
    for seed in range(50):
        kind, out = corrupt("Sweaters", random.Random(seed))
        rng = random.Random(seed)
        rng.choice(list(CORRUPTION_KINDS))  # the draw corrupt() made to pick the kind
        assert CORRUPTIONS[kind]("Sweaters", rng) == out


def test_corrupt_rejects_unknown_and_empty_kinds() -> None:
    with pytest.raises(ValueError, match="bogus_kind"):
        corrupt("Sweaters", random.Random(0), kinds=["markup", "bogus_kind"])
    with pytest.raises(ValueError):
        corrupt("Sweaters", random.Random(0), kinds=[])
    with pytest.raises(TypeError):
        corrupt("Sweaters", random.Random(0), kinds="markup")


def _outputs(kind: str, value: str, n: int = 50) -> list[str]:
    return [CORRUPTIONS[kind](value, random.Random(seed)) for seed in range(n)]


def test_markup_wraps_in_tag() -> None:
    for out in _outputs("markup", "Sweaters"):
        assert re.fullmatch(r"<(\w+)>Sweaters</\1>", out) or out == "Sweaters<br>", out


def test_hashtag() -> None:
    outs = _outputs("hashtag", "Polo Shirts")
    assert all(o.startswith("#") for o in outs)
    assert "#Polo Shirts" in outs and "#PoloShirts" in outs


def test_bracket_and_punctuation_add_one_stray_mark() -> None:
    for out in _outputs("bracket", "Sweaters"):
        assert out[0] in "[](){}<>" or out[-1] in "[](){}<>"
        assert out.strip("[](){}<>") in ("Sweaters", "Sweater")
    assert "Sweater]" in _outputs("bracket", "Sweaters", 200)
    for out in _outputs("punctuation", "Sweaters"):
        assert "Sweaters" in out and out.strip("*-.~!?,:;") == "Sweaters"


def test_case_noise_changes_only_case() -> None:
    for out in _outputs("case_noise", "Polo Shirts"):
        assert out.lower() == "polo shirts"
    assert CORRUPTIONS["case_noise"]("123", random.Random(0)) == "123_"


def test_char_substitution_uses_lookalikes() -> None:
    for out in _outputs("char_substitution", "Sweaters"):
        assert len(out) == len("Sweaters") and re.search(r"[4@3157$!08]", out), out


def test_typo_kinds() -> None:
    for out in _outputs("typo_swap", "Sweaters"):
        assert sorted(out) == sorted("Sweaters")
    for out in _outputs("typo_delete", "Sweaters"):
        assert len(out) == 7
    for out in _outputs("typo_insert", "Sweaters"):
        assert len(out) == 9
    for out in _outputs("typo_double", "Sweaters"):
        assert len(out) == 9 and re.search(r"(.)\1", out)
    for out in _outputs("typo_replace", "Sweaters"):
        assert len(out) == 8 and sum(a != b for a, b in zip(out, "Sweaters", strict=True)) == 1


def test_typo_swap_builds_only_the_swaps_at_the_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each swap was built and stripped to tell whether it shows: O(n^2), 2 s a call and half
    # a minute of dataset build for one 100 kB value. The same swaps are picked, as before.
    def every_visible_swap(value: str) -> list[str]:
        swaps = (
            value[:i] + value[i + 1] + value[i] + value[i + 2 :] for i in range(len(value) - 1)
        )
        return [s for s in swaps if s != value and s.strip() != value.strip()]

    for value in (*VALUES, *ODD_VALUES, " a b", "a \t", "\t a", " \tab\t ", "  ", " a"):
        for seed in SEEDS:
            out = CORRUPTIONS["typo_swap"](value, random.Random(seed))
            assert out in (every_visible_swap(value) or [out]), (value, out)
    built = Counter[str]()

    def visible(value: str, out: str) -> bool:
        built[out] += 1
        return out.strip() != value.strip()

    monkeypatch.setattr(corruptions, "_visible", visible)
    long_value = "Polo Shirts " * 1000 + "Polo"
    out = CORRUPTIONS["typo_swap"](long_value, random.Random(0))
    assert sorted(out) == sorted(long_value) and out != long_value
    assert built.total() <= 2  # the swaps at its two ends at most, not 12,000


def test_truncate_is_strict_prefix() -> None:
    for value in ("Sweaters", "Polo Shirts", "Ab", "Car Battery 12V"):
        for out in _outputs("truncate", value):
            assert value.startswith(out) and 1 <= len(out) < len(value), (value, out)
    assert CORRUPTIONS["truncate"]("T", random.Random(0)) == "T."


def test_join() -> None:
    for out in _outputs("join", "Polo Shirts"):
        assert re.fullmatch(r".+(;|\||, | / |,| \| |; | \+ ).+", out) and "Polo" in out
    assert "Polo Shirts;Polo Shirts" in _outputs("join", "Polo Shirts", 300)
    joined = join_values("Sweaters", "Cardigans", random.Random(3))
    assert joined.startswith("Sweaters") and joined.endswith("Cardigans")


def test_suffix_kinds() -> None:
    for out in _outputs("numeric_suffix", "Sweaters"):
        assert re.fullmatch(r"Sweaters([ _-]?\d+| \(\d\))", out), out
    for out in _outputs("version_suffix", "Sweaters"):
        assert out.startswith("Sweaters") and len(out) > len("Sweaters")


def test_html_entity() -> None:
    for out in _outputs("html_entity", "Hoodies & Sweatshirts"):
        assert out in ("Hoodies &amp; Sweatshirts", "Hoodies &#38; Sweatshirts")
    for out in _outputs("html_entity", "Polo Shirts"):
        assert re.search(r"&(#\d+|[a-z]+);", out), out
    assert "Polo&#32;Shirts" in _outputs("html_entity", "Polo Shirts", 200)


def test_mojibake() -> None:
    assert "CafÃ© CrÃ¨me" in _outputs("mojibake", "Café Crème")
    for out in _outputs("mojibake", "Sweaters"):
        assert any(seq in out for seq in ("Ã", "â€", "Â", "ï¿½")), out


def test_emoji_and_quotes_keep_value() -> None:
    for kind in ("emoji", "quotes"):
        for out in _outputs(kind, "Sweaters"):
            assert "Sweaters" in out and len(out) > len("Sweaters")
    assert '"Sweaters"' in _outputs("quotes", "Sweaters", 200)


def test_placeholder() -> None:
    junk = {"N/A", "n/a", "null", "NULL", "None", "???", "-", "--", "TBD", "unknown", "#N/A"}
    junk |= {"NaN", "(blank)", "0", "."}
    for out in _outputs("placeholder", "Sweaters"):
        assert out in junk
    assert "N/A" not in _outputs("placeholder", "N/A", 200)


def test_invisible_kinds_keep_visible_text() -> None:
    for out in _outputs("whitespace", "Polo Shirts"):
        assert out.split() == ["Polo", "Shirts"]
    zero_width = dict.fromkeys(map(ord, "\u200b\ufeff\u00ad\x00\r\n\u200c\u200d\u2060"))
    for out in _outputs("control_chars", "Polo Shirts"):
        assert out.translate(zero_width) == "Polo Shirts"


def test_underscore_join() -> None:
    outs = set(_outputs("underscore_join", "Polo Shirts", 200))
    assert {"Polo_Shirts", "polo-shirts", "PoloShirts", "Polo.Shirts"} <= outs
    for out in _outputs("underscore_join", "Sweaters"):
        # one separator at an inner position
        assert re.fullmatch(r"S\w*[_-]\w*s", out) and re.sub(r"[_-]", "", out) == "Sweaters"
