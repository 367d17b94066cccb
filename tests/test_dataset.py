from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from catembed import DatasetConfig, build_triplets, train
from catembed.corruptions import CORRUPTION_KINDS
from catembed.dataset import (
    DEFAULT_CORRUPTION_KINDS,
    HIDDEN_FROM_TOKENIZER,
    OUT_OF_DOMAIN,
    token_statistics,
    tokenizer_view,
)
from catembed.errors import ConfigError, InputError
from catembed.vocabulary import domain_values

VALUES = [
    "Sweaters",
    "Cardigan",
    "Trousers",
    "Jackets",
    "Dresses",
    "Blouses",
    "Jeans",
    "Skirts",
    "Hoodies",
    "Shorts",
]


def test_defaults_reproduce_the_seed_shape() -> None:
    data = build_triplets()
    assert len(data.train) == 2120
    assert len(data.evaluation) == 177
    assert data.eval_seen and data.eval_heldout
    assert set(data.train_values) | set(data.heldout_values) == set(domain_values("apparel"))


def test_heldout_values_never_appear_in_training() -> None:
    data = build_triplets(VALUES, DatasetConfig(heldout_fraction=0.3, train_size=500, eval_size=60))
    heldout = set(data.heldout_values)
    assert len(heldout) == 3
    for t in data.train:
        assert t.anchor not in heldout and t.positive not in heldout
        assert not any(h in t.negative for h in heldout)
    for t in data.eval_heldout:
        assert {t.anchor, t.positive} <= heldout
    for t in data.eval_seen:
        assert {t.anchor, t.positive} <= set(data.train_values)


def test_triplets_are_well_formed_and_mix_negative_kinds() -> None:
    config = DatasetConfig(train_size=1000, corruption_rate=0.4)
    data = build_triplets(VALUES, config)
    valid = set(VALUES)
    kinds = Counter(t.negative_kind for t in data.train)
    assert 0.3 < kinds[OUT_OF_DOMAIN] / 1000 < 0.7
    assert len(kinds) > 10
    assert not set(kinds) & set(HIDDEN_FROM_TOKENIZER)
    for t in data.train:
        assert t.anchor != t.positive and {t.anchor, t.positive} <= valid
        assert t.negative not in valid
        if t.negative_kind != OUT_OF_DOMAIN:
            assert t.negative_kind in CORRUPTION_KINDS


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = build_triplets(VALUES, DatasetConfig(seed=7, train_size=200))
    b = build_triplets(VALUES, DatasetConfig(seed=7, train_size=200))
    c = build_triplets(VALUES, DatasetConfig(seed=8, train_size=200))
    assert a.train == b.train and a.evaluation == b.evaluation
    assert a.train != c.train
    # A set's order follows its hashes, new each run: the same seed gave other data.
    for unordered in (set(VALUES), frozenset(VALUES)):
        d = build_triplets(unordered, DatasetConfig(seed=7, train_size=200))  # type: ignore[arg-type]
        assert (
            d.train == build_triplets(sorted(VALUES), DatasetConfig(seed=7, train_size=200)).train
        )


def test_out_of_domain_values_that_spell_a_valid_one_are_left_out() -> None:
    # 'SWEATERS' as an out-of-domain value taught the classifier to reject 'Sweaters'.
    given = ["SWEATERS", "cardigan", "Toaster", "Car Battery", "Blender", "Kettle"]
    dataset = build_triplets(VALUES, DatasetConfig(train_size=50), out_of_domain=given)
    assert set(dataset.out_of_domain_values) == set(given[2:])
    with pytest.raises(InputError, match=r"also one of the valid values \(case aside\)"):
        build_triplets(VALUES, out_of_domain=[v.lower() for v in VALUES])


def test_corruption_rate_zero_and_one() -> None:
    only_ood = build_triplets(VALUES, DatasetConfig(corruption_rate=0.0, train_size=100))
    assert {t.negative_kind for t in only_ood.train} == {OUT_OF_DOMAIN}
    only_broken = build_triplets(
        VALUES, DatasetConfig(corruption_rate=1.0, train_size=100, corruption_kinds=("markup",))
    )
    assert {t.negative_kind for t in only_broken.train} == {"markup"}
    assert all(t.negative.startswith("<") or t.negative.endswith(">") for t in only_broken.train)


def test_default_kinds_leave_out_what_the_tokenizer_cannot_see() -> None:
    assert set(DEFAULT_CORRUPTION_KINDS) == set(CORRUPTION_KINDS) - set(HIDDEN_FROM_TOKENIZER)
    assert tokenizer_view(" SWEA\u200bTERS\t") == tokenizer_view("Sweaters")
    assert tokenizer_view("#Sweaters") != tokenizer_view("Sweaters")


def test_tables_have_columns_and_parts() -> None:
    data = build_triplets(VALUES, DatasetConfig(train_size=50, eval_size=20))
    train = data.table("train")
    evaluation = data.table("eval")
    assert train.column_names == ["anchor", "positive", "negative", "negative_kind", "part"]
    assert train.num_rows == 50 and set(train.column("part").to_pylist()) == {"train"}
    assert Counter(evaluation.column("part").to_pylist()) == {"seen": 10, "heldout": 10}


def test_token_statistics_count_tokens_per_column(base_model) -> None:  # type: ignore[no-untyped-def]
    table = build_triplets(VALUES, DatasetConfig(train_size=100)).table("train")
    stats = token_statistics(table, base_model.tokenizer)
    assert set(stats) == {"anchor", "positive", "negative"}
    assert stats["anchor"]["min"] >= 3  # [CLS] word [SEP]
    assert stats["negative"]["max"] > stats["anchor"]["max"]


@pytest.mark.parametrize(
    ("values", "message"),
    [([], "empty"), (["Sweaters"], "at least 2"), (["  ", "Sweaters", "Sweaters "], "at least 2")],
)
def test_too_few_values_are_refused(values: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_triplets(values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_size": 0}, "train size"),
        ({"train_size": 100_000_000}, "train size must be 1 to 1,000,000 triplets"),
        ({"eval_size": 2_000_000}, "eval size must be 0 to 1,000,000"),
        ({"heldout_fraction": 1.0}, "held-out fraction"),
        ({"corruption_rate": 1.5}, "corruption rate"),
        ({"corruption_kinds": ("markup", "sparkles")}, "sparkles"),
        (
            {"corruption_kinds": ()},
            r"^no corruption kinds; known kinds: markup, ",
        ),  # was 'unknown []'
    ],
)
def test_invalid_config_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DatasetConfig(**kwargs)  # type: ignore[arg-type]


def test_valid_values_that_look_like_mistakes_are_named(caplog: pytest.LogCaptureFixture) -> None:
    listed = ["Sweaters", "sweaters", "N/A", "<b>Jeans</b>", "Caf\u00c3\u00a9", "Zero\u200bwidth"]
    with caplog.at_level("WARNING", logger="catembed"):
        build_triplets([*listed, "Cardigan", "Trousers", "C", "C++", "Yo-Yo"], DatasetConfig())
    (record,) = caplog.records
    assert record.getMessage() == (
        "5 of the valid values look like mistakes (kept as valid): 'N/A' (a placeholder), "
        "'<b>Jeans</b>' (markup), 'CafÃ©' (encoding damage), 'Zero\\u200bwidth' (control or "
        "invisible characters), 'sweaters' (spells 'Sweaters' again)"
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="catembed"):
        build_triplets(domain_values("apparel"), DatasetConfig())  # clean values: no warning
    assert not caplog.records


def test_values_that_are_not_texts_are_refused() -> None:
    with pytest.raises(TypeError, match="values must be texts, got Ellipsis"):
        build_triplets(["Sweaters", "Cardigan", ...])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not one string"):
        build_triplets("Sweaters")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config must be a DatasetConfig, got dict"):
        build_triplets(["Sweaters", "Cardigan"], {"train_size": 5})  # type: ignore[arg-type]


def test_text_that_is_not_utf8_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    # A lone surrogate (Python reads undecodable bytes so) built a dataset, then failed in the
    # tokenizer with 'TypeError: TextEncodeInput must be Union[...]' once the model had loaded.
    with pytest.raises(InputError, match=r"value 3 is not valid UTF-8 text \(character 4\)"):
        build_triplets(["Sweaters", "Cardigan", "Caf\udce9"])
    with pytest.raises(InputError, match="value 2 is not valid UTF-8 text"):
        build_triplets(["Sweaters", "Cardigan", "Jeans"], out_of_domain=["Toaster", "\ud800"])
    with pytest.raises(InputError, match="value 1 is not valid UTF-8 text"):
        train(["\udce9 Jeans", "Sweaters", "Cardigan"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_train_refuses_one_string_or_a_config_of_another_kind(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="valid must be a list of texts, not one string"):
        train("Sweaters", tmp_path / "out")
    with pytest.raises(TypeError, match="config must be a TrainingConfig, got DatasetConfig"):
        train(["Sweaters", "Cardigan"], tmp_path / "out", DatasetConfig())  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()
