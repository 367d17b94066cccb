"""Clean names of real columns that the string rules called malformed, beside the corruptions
of the same shape that must stay malformed. Each list was a false alarm on real data (the Raha
tables, Google's product taxonomy, ST-bench) or on names like them."""

from __future__ import annotations

from catembed import Validator, Verdict


def test_a_lone_dotted_initialism_is_a_name_not_casing_noise(base_model: object) -> None:
    countries = ["Canada", "Mexico", "France", "Germany", "Japan", "Brazil", "United Kingdom"]
    validator = Validator.from_values(countries, model=base_model)  # type: ignore[arg-type]
    reports = {r.value: r for r in validator.validate(["U.S.A.", "U.K.", "U.S.A", "Spain."])}
    for value in ["U.S.A.", "U.K."]:  # were 'unusual casing'
        assert reports[value].verdict is not Verdict.MALFORMED, reports[value].reason
    # Cut short, or a dot added to a name: still malformed.
    assert reports["U.S.A"].verdict is Verdict.MALFORMED
    assert reports["Spain."].verdict is Verdict.MALFORMED
    assert reports["Spain."].suggestion == "Spain"


def test_a_qualifier_in_brackets_is_part_of_a_name(base_model: object) -> None:
    shoes = ["Sneakers", "Boots", "Sandals", "Slippers", "Loafers", "High Heels", "Clogs"]
    validator = Validator.from_values(shoes, model=base_model)  # type: ignore[arg-type]
    qualified = ["Shoes (Men's)", "Boots (Kids)", "Slippers [Wool]", "Running Shoes (Wide Fit)"]
    broken = ["Boots (Sandals)", "Sneakers (copy)", "Clogs (2)", "Sandals]", "(Slippers",
              "Loafers (v2)", "Sandals (Boots"]  # fmt: skip
    reports = {r.value: r for r in validator.validate(qualified + broken, column_evidence=False)}
    for value in qualified:  # were 'characters never used in reference values: '()''
        assert reports[value].verdict is not Verdict.MALFORMED, reports[value].reason
    # A reference value in the brackets, a copy's mark, a bracket alone: still malformed.
    for value in broken:
        assert reports[value].verdict is Verdict.MALFORMED, value
    assert reports["Boots (Sandals)"].reason == "joins Boots and Sandals"


def test_a_rare_word_no_likely_slip_explains_is_no_typo(base_model: object) -> None:
    grains = ["Rice", "Barley", "Oats", "Wheat Flour", "Lentils", "Chickpeas", "Brown Rice"]
    validator = Validator.from_values(grains, model=base_model)  # type: ignore[arg-type]
    assert validator.profile.word_check  # a column of English words: its words are checked
    rare = ["Quinoa", "Sapote", "Haori"]  # only 'quinol', 'sapota', 'maori', across the keys
    # A common word with any edit, a word as rare as 'gesso' or 'beanies' with a common slip
    # (a letter doubled, two swapped): still misspelt.
    typos = ["Whext Germ", "Oatmeel", "Lentil Soupp", "Gessso", "Beanise"]
    reports = {r.value: r for r in validator.validate(rare + typos, column_evidence=False)}
    for value in rare:  # were "unknown word 'quinoa'"
        assert reports[value].verdict is not Verdict.MALFORMED, reports[value].reason
    for value in typos:
        assert reports[value].reason.startswith("unknown word"), value
        assert reports[value].verdict is Verdict.MALFORMED


def test_a_name_that_starts_another_is_not_cut_short_in_a_column_of_names(
    base_model: object,
) -> None:
    # First names: one in ten listed starts another ('robert', 'roberta'), so a name that
    # starts a listed one ('chris' beside 'christine') is a name, not a cut.
    names = ["robert", "roberta", "simone", "martina", "daniela", "christine", "paul", "oskar",
             "helga", "ingrid", "walter", "werner", "ursula", "gerhard", "monika", "renate",
             "johann", "sabine", "stefan", "jurgen"]  # fmt: skip
    validator = Validator.from_values(names, model=base_model)  # type: ignore[arg-type]
    assert validator.validate(["chris"], column_evidence=False)[0].reason != "cut short"
    assert validator.validate(["simon"], column_evidence=False)[0].reason != "cut short"
    # Product categories start no other: a value that starts one is still cut short.
    games = ["Board Games", "Card Games", "Jigsaw Puzzles", "Kites", "Dolls", "Yo-Yos"]
    shop = Validator.from_values(games, model=base_model)  # type: ignore[arg-type]
    report = shop.validate(["Board Gam"], column_evidence=False)[0]
    assert report.verdict is Verdict.MALFORMED and report.reason == "cut short"
    assert report.suggestion == "Board Games"
