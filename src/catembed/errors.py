"""The exceptions catembed raises for problems a user can fix.

CatembedError
 ├── InputError       bad input data: missing file, unknown column, too few values, ...
 ├── ModelError       a model folder or base model that cannot be loaded or used
 └── ConfigError      an invalid option or configuration file

The CLI turns each into a one-line message and a non-zero exit; the HTTP API into a 4xx body.
"""

from __future__ import annotations


class CatembedError(Exception):
    """Base class of every error meant for the user rather than for a traceback."""


class InputError(CatembedError):
    """The input data cannot be used as given."""


class ModelError(CatembedError):
    """A model folder or base model is missing, unreadable or incomplete."""


class ConfigError(CatembedError):
    """An option or configuration value is invalid."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
