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
