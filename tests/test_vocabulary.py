from __future__ import annotations

import re

import pytest

from catembed.errors import ConfigError
from catembed.vocabulary import DEFAULT_DOMAIN, domain_values, load_vocabulary, out_of_domain_values


def test_vocabulary_has_many_domains_of_clean_values() -> None:
    vocabulary = load_vocabulary()
    assert len(vocabulary) >= 20
    assert next(iter(vocabulary)) == DEFAULT_DOMAIN == "apparel"
    for domain, values in vocabulary.items():
        assert len(values) >= 30, domain
        assert len(set(values)) == len(values), domain
        for value in values:
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 &-]*[A-Za-z0-9]", value), value


def test_a_value_belongs_to_one_domain_only() -> None:
    owner: dict[str, str] = {}
    for domain, values in load_vocabulary().items():
        for value in values:
            key = value.casefold()
            assert owner.setdefault(key, domain) == domain, f"{value} in {owner[key]} and {domain}"


def test_out_of_domain_pool_skips_the_domains_of_the_valid_values() -> None:
    apparel = domain_values("apparel")
    pool = out_of_domain_values(list(apparel[:3]))
    assert pool and not set(pool) & set(apparel)
    assert set(domain_values("toys")) <= set(pool)


def test_unknown_domain_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown domain 'spaceships'"):
        domain_values("spaceships")
