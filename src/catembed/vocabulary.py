"""The built-in vocabulary: clean category names of many product domains."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from catembed.errors import ConfigError, InputError

DEFAULT_DOMAIN = "apparel"


@cache
def load_vocabulary() -> dict[str, tuple[str, ...]]:
    """Return the built-in vocabulary as ``{domain: (category, ...)}``, in file order."""
    text = resources.files("catembed").joinpath("data/vocabulary.json").read_text("utf-8")
    raw: dict[str, list[str]] = json.loads(text)
    return {domain: tuple(values) for domain, values in raw.items()}


def domain_values(domain: str) -> tuple[str, ...]:
    """Return the clean values of one built-in domain."""
    vocabulary = load_vocabulary()
    if domain not in vocabulary:
        known = ", ".join(vocabulary)
        raise ConfigError(f"unknown domain {domain!r}; built-in domains are: {known}")
    return vocabulary[domain]


def out_of_domain_values(valid: list[str] | tuple[str, ...]) -> list[str]:
    """Return every built-in value of the domains that do not overlap ``valid``.

    A built-in domain sharing any value with ``valid`` (case-insensitively) is skipped
    entirely, so its other values are never used as negatives for the user's own domain.
    """
    folded = {value.casefold() for value in valid}
    pool: list[str] = []
    for values in load_vocabulary().values():
        if any(value.casefold() in folded for value in values):
            continue
        pool.extend(values)
    return pool


def negative_pool(valid: list[str], given: list[str] | None, purpose: str) -> list[str]:
    """The out-of-domain values to use against ``valid``: the ``given`` ones, or those of the
    built-in domains unlike ``valid``, less the valid values; an InputError saying what to do
    when none are left (``purpose``: what they were needed for)."""
    # 'jeans' against a listed 'Jeans' taught the domain classifier to reject the domain's own
    # value: a spelling of a valid value is no other domain's.
    listed = {v.casefold() for v in valid}
    candidates = out_of_domain_values(valid) if given is None else given
    pool = [v for v in candidates if v.casefold() not in listed]
    if pool:
        return pool
    if given == []:
        raise InputError("out_of_domain holds no values; leave it out for the built-in ones")
    if given:
        raise InputError(
            "every out-of-domain value given is also one of the valid values (case aside)"
        )
    raise InputError(
        f"{purpose} (the values overlap every built-in domain): give some, out_of_domain= or "
        "--out-of-domain"
    )
