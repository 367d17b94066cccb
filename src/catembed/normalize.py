"""Canonical forms of category strings: what a value was meant to be, whatever its spelling.

:func:`clean` undoes encoding damage, markup, invisible characters and stray edge
punctuation; :func:`canonical` also folds case and accents; :func:`squashed` keeps only letters
and digits. Two spellings of one value share a canonical form ('<b>SWEATERS</b>', 'Sweaters').
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata

PLACEHOLDERS = frozenset(
    {
        "n/a", "na", "n.a.", "null", "none", "nil", "nan", "?", "??", "???", "-", "--", "---",
        "tbd", "tba", "unknown", "#n/a", "(blank)", "blank", "0", ".", "undefined", "missing",
        "empty", "xxx", "test", "todo", "#value!", "#ref!", "default", "other?",
    }
)  # fmt: skip
TAG = re.compile(r"</?\s*[A-Za-z][^<>]{0,200}>|<\s*/?\s*br\s*/?>", re.IGNORECASE)
ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]{2,8});")
_MOJIBAKE_MARKERS = frozenset("ÃÂâï")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 read as cp1252 or latin-1, up to twice ('CafÃ©' -> 'Café')."""
    for _ in range(2):
        if not _MOJIBAKE_MARKERS.intersection(text):
            break
        for codec in ("cp1252", "latin-1"):
            try:
                text = text.encode(codec).decode("utf-8")
                break
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
        else:
            break
    return text


def clean(text: str) -> str:
    """The value as it was meant to be written: entities decoded, tags, control characters,
    emoji and stray edge punctuation removed, whitespace collapsed; case is kept."""
    # Each string rule and rewrite cleans the value again: short texts are remembered.
    return _clean_short(text) if len(text) <= _REMEMBERED_LENGTH else _clean(text)


_REMEMBERED_LENGTH = 200  # characters; longer texts are cleaned each time


def _clean(text: str) -> str:
    text = fix_mojibake(text)
    for _ in range(2):
        text = html.unescape(text)
    text = TAG.sub(" ", text)
    text = unicodedata.normalize("NFKC", text).translate(_KEPT)
    return _strip_edges(" ".join(text.split()))


class _Kept(dict[int, str | None]):
    """``str.translate`` table of what :func:`clean` keeps of each character: whitespace as a
    space, nothing of control, private, unassigned characters and symbols (emoji, '^'), the
    rest as it is. Filled as characters are met, up to ``_KEPT_SIZE`` of them: a table lookup
    per character is several times faster than asking ``unicodedata`` each time (``clean``
    runs on every value and on each of its rewrites)."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        if char.isspace():
            kept: str | None = " "
        elif unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Cn", "So", "Sk"):
            kept = None
        else:
            kept = char
        if len(self) < _KEPT_SIZE:  # bounded: text in every script fills no more
            self[code] = kept
        return kept


_KEPT_SIZE = 65_536
_KEPT = _Kept()
_clean_short = functools.lru_cache(maxsize=65_536)(_clean)


def canonical(text: str) -> str:
    """Case- and accent-folded :func:`clean` form: what two spellings of one value share."""
    return _unaccented(clean(text).casefold())


def _unaccented(text: str) -> str:
    if text.isascii():  # no ASCII character decomposes or is a combining mark
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def squashed(text: str) -> str:
    """Only the letters and digits of :func:`canonical` ('Jigsaw_Puzzle' -> 'jigsawpuzzle')."""
    return "".join(c for c in canonical(text) if c.isalnum())


def _strip_edges(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _edge_noise(text[start]):
        start += 1
    while end > start and _edge_noise(text[end - 1]):
        end -= 1
    return text[start:end].strip()


def _edge_noise(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in ("P", "S")


def doubt(text: str) -> str:
    """Why a value given as valid looks broken itself ('' when it does not): a placeholder,
    markup, an HTML entity, encoding damage, or control or invisible characters."""
    if text.strip().casefold() in PLACEHOLDERS - {"0", "default", "other?"}:
        return "a placeholder"
    if TAG.search(text):
        return "markup"
    if ENTITY.search(text):
        return "an HTML entity"
    if fix_mojibake(text) != text:
        return "encoding damage"
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        return "control or invisible characters"
    return ""


def doubtful_values(values: list[str], shown: int = 5) -> str:
    """A one-line warning naming the valid values that look broken (see :func:`doubt`) or
    that spell another listed value again ('Sweaters' and 'sweaters'); '' when none do."""
    notes = [f"{v!r} ({why})" for v in values if (why := doubt(v))]
    first: dict[str, str] = {}
    for value in values:
        key = " ".join(_unaccented(value.casefold()).split())  # punctuation counts: 'C', 'C++'
        if key and first.setdefault(key, value) != value:
            notes.append(f"{value!r} (spells {first[key]!r} again)")
    if not notes:
        return ""
    more = f" and {len(notes) - shown} more" if len(notes) > shown else ""
    return (
        f"{len(notes)} of the valid values "
        f"{'looks like a mistake' if len(notes) == 1 else 'look like mistakes'} (kept as valid): "
        f"{', '.join(notes[:shown])}{more}"
    )
