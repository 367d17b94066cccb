"""Corruption kinds: turn a clean categorical value into a malformed variant.

Each corruption is a pure function ``(value, rng) -> str``: ``rng`` is the only source of
randomness, so the same value with an equally seeded ``random.Random`` gives the same output.
Every kind returns a string different from its input, and every kind except ``whitespace`` and
``control_chars`` also differs after ``.strip()`` (the change is visible). Where the random choice
cannot apply (e.g. nothing to truncate in 'T'), a kind falls back to a documented variant.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

__all__ = ["CORRUPTIONS", "CORRUPTION_KINDS", "Corruption", "corrupt", "join_values"]

Corruption = Callable[[str, random.Random], str]

_LETTERS = string.ascii_lowercase
_TAGS = ("b", "td", "span", "p", "i", "div", "strong", "li", "em")
_BRACKETS = "[](){}<>"
_PUNCT_SUFFIXES = (".", "!!", ",", "?", "!", ":", ";", "...")
_PUNCT_PREFIXES = ("*", "-", ".", "~", "!", "?")
_LEET = dict(zip("aeiostlbg", ("4@", "3", "1!", "0", "5$", "7", "1", "8", "9"), strict=True))
_JOIN_SEPARATORS = (";", "|", ", ", " / ", ",", " | ", "; ", " + ")
_NUMERIC_FORMATS = ("{v}{n}", "{v} {n}", "{v}_{n:02d}", "{v} ({n})", "{v}-{n}", "{v}{n:02d}")
_VERSION_SUFFIXES = (" v{n}", "_v{n}.0", "-final", " (copy)", "_old", "_new", " - Copy", "_v{n}")
_ENTITIES = {"&": "&amp;", '"': "&quot;", "'": "&#39;", "<": "&lt;", ">": "&gt;", "\xa0": "&nbsp;"}
_MOJIBAKE = ("Ã©", "â€™", "Ã¤", "Ã¶", "Ã¼", "Ã¨", "â€œ", "â€“", "Ã±", "Â°", "ï¿½")
_EMOJI = ("👕", "👚", "🧥", "🔥", "✨", "⭐", "✅", "💥", "🛒", "👍")
_EMOJI_FORMATS = ("{v} {e}", "{e}{v}", "{v}{e}", "{e} {v}")
_QUOTES = (
    ('"', '"'), ("'", "'"), ("“", "”"), ("`", "`"), ("«", "»"), ("„", "“"), ("\u2018", "\u2019"),
    ('"', ""), ("", '"'), ("'", ""), ("“", ""),
)  # fmt: skip
_PLACEHOLDERS = (
    "N/A", "n/a", "null", "NULL", "None", "???", "-", "--", "TBD", "unknown", "#N/A", "NaN",
    "(blank)", "0", ".",
)  # fmt: skip
_CONTROL_CHARS = ("\u200b", "\ufeff", "\u00ad", "\x00", "\r", "\n", "\u200c", "\u200d", "\u2060")
_WORD_SEPARATORS = re.compile(r"[\s_\-./]+")
_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    # Each row sits about half a key right of the row above it.
    out: dict[str, str] = {}
    for r, row in enumerate(_KEYBOARD_ROWS):
        for i, key in enumerate(row):
            spots = ((r, i - 1), (r, i + 1), (r - 1, i), (r - 1, i + 1), (r + 1, i - 1), (r + 1, i))
            out[key] = "".join(
                _KEYBOARD_ROWS[rr][ii]
                for rr, ii in spots
                if 0 <= rr < len(_KEYBOARD_ROWS) and 0 <= ii < len(_KEYBOARD_ROWS[rr])
            )
    return out


_NEIGHBOURS = _keyboard_neighbours()


def _visible(value: str, out: str) -> bool:
    return out.strip() != value.strip()


def _solid(value: str) -> list[int]:
    """Positions of non-whitespace characters."""
    return [i for i, c in enumerate(value) if not c.isspace()]


def _other_letter(char: str, rng: random.Random) -> str:
    """A random ASCII letter other than `char` (case-insensitively), in `char`'s case."""
    letter = rng.choice([x for x in _LETTERS if x != char.lower()])
    return letter.upper() if char.isupper() else letter


def _key_typo(char: str, rng: random.Random) -> str:
    """A qwerty neighbour of `char`, or a random other letter for keys not on the map."""
    near = _NEIGHBOURS.get(char.lower())
    if near is None:
        return _other_letter(char, rng)
    key = rng.choice(near)
    return key.upper() if char.isupper() else key


def _markup(value: str, rng: random.Random) -> str:
    if rng.random() < 0.15:
        return value + "<br>"
    tag = rng.choice(_TAGS)
    return f"<{tag}>{value}</{tag}>"


def _hashtag(value: str, rng: random.Random) -> str:
    squashed = "".join(value.split())
    return "#" + rng.choice(list(dict.fromkeys((value, squashed, squashed.lower()))))


def _bracket(value: str, rng: random.Random) -> str:
    bracket = rng.choice(_BRACKETS)
    mode = rng.choice(("start", "end", "end", "replace_last"))
    if mode == "replace_last" and len(value) > 1 and value[-1] != bracket:
        return value[:-1] + bracket  # 'Sweaters' -> 'Sweater]'
    return bracket + value if mode == "start" else value + bracket


def _punctuation(value: str, rng: random.Random) -> str:
    if rng.random() < 0.65:
        return value + rng.choice(_PUNCT_SUFFIXES)
    return rng.choice(_PUNCT_PREFIXES) + value


def _case_noise(value: str, rng: random.Random) -> str:
    cased = [i for i, c in enumerate(value) if c.swapcase() != c]
    flips = [i for i in cased if rng.random() < 0.5]
    if cased and not flips:
        flips = [rng.choice(cased)]
    chars = list(value)
    for i in flips:
        chars[i] = chars[i].swapcase()
    options = [value.upper(), value.lower(), value.swapcase(), value.title(), "".join(chars)]
    options = [o for o in dict.fromkeys(options) if _visible(value, o)]
    # Caseless values ('123') have no case to disturb: append '_' instead.
    return rng.choice(options) if options else value + "_"


def _char_substitution(value: str, rng: random.Random) -> str:
    chars = list(value)
    leet = [i for i, c in enumerate(value) if c.lower() in _LEET]
    if leet:
        for i in rng.sample(leet, k=min(len(leet), rng.choice((1, 1, 2)))):
            chars[i] = rng.choice(_LEET[chars[i].lower()])
        return "".join(chars)
    # No look-alike available: replace a random character with another letter.
    pool = _solid(value) or list(range(len(value)))
    if not pool:
        return rng.choice(_LETTERS)
    i = rng.choice(pool)
    chars[i] = _other_letter(value[i], rng)
    return "".join(chars)


def _typo_replace(value: str, rng: random.Random) -> str:
    pool = [i for i, c in enumerate(value) if c.lower() in _NEIGHBOURS]
    pool = pool or _solid(value) or list(range(len(value)))
    if not pool:
        return rng.choice(_LETTERS)
    i = rng.choice(pool)
    return value[:i] + _key_typo(value[i], rng) + value[i + 1 :]


def _typo_insert(value: str, rng: random.Random) -> str:
    i = rng.randint(0, len(value))
    near = value[i - 1] if i > 0 else value[:1]
    return value[:i] + _key_typo(near or "a", rng) + value[i:]


def _typo_delete(value: str, rng: random.Random) -> str:
    solid = _solid(value)
    if len(solid) < 2:
        return _typo_replace(value, rng)  # deleting would leave nothing visible
    i = rng.choice(solid)
    return value[:i] + value[i + 1 :]


def _typo_swap(value: str, rng: random.Random) -> str:
    def swapped(i: int) -> str:
        return value[:i] + value[i + 1] + value[i] + value[i + 2 :]

    # A swap inside the stripped value always shows; only one touching the whitespace at its
    # edges is built to tell (building every swap took 2 s a call on a 100 kB value).
    lead, end = len(value) - len(value.lstrip()), len(value.rstrip())
    pairs = [
        i
        for i in range(len(value) - 1)
        if value[i] != value[i + 1] and (lead <= i < end - 1 or _visible(value, swapped(i)))
    ]
    if not pairs:
        return _typo_replace(value, rng)  # 'T', 'aa': no two different neighbours to swap
    return swapped(rng.choice(pairs))


def _typo_double(value: str, rng: random.Random) -> str:
    solid = _solid(value)
    if not solid:
        return _typo_insert(value, rng)
    i = rng.choice(solid)
    return value[: i + 1] + value[i:]


def _truncate(value: str, rng: random.Random) -> str:
    core = value.strip()
    if len(core) < 2:
        return value.rstrip() + "."  # cannot shorten 'T': abbreviate as 'T.'
    lead = len(value) - len(value.lstrip())
    keep = rng.randint(max(1, len(core) // 2), len(core) - 1)
    return value[: lead + keep].rstrip()


def join_values(a: str, b: str, rng: random.Random) -> str:
    """Join two values with a random list separator ('A;B', 'A|B', 'A, B', 'A / B')."""
    return a + rng.choice(_JOIN_SEPARATORS) + b


def _join(value: str, rng: random.Random) -> str:
    # Only the value is known here; the dataset builder joins two real values via join_values.
    words = value.split()
    parts = [value]
    if len(words) > 1:
        parts += [words[0], words[-1], " ".join(reversed(words))]
    other = rng.choice(parts)
    first, second = (value, other) if rng.random() < 0.5 else (other, value)
    return join_values(first, second, rng)


def _numeric_suffix(value: str, rng: random.Random) -> str:
    return rng.choice(_NUMERIC_FORMATS).format(v=value, n=rng.randint(1, 9))


def _version_suffix(value: str, rng: random.Random) -> str:
    return value + rng.choice(_VERSION_SUFFIXES).format(n=rng.randint(1, 3))


def _entity(char: str) -> str:
    return _ENTITIES.get(char, f"&#{ord(char)};")


def _html_entity(value: str, rng: random.Random) -> str:
    if "&" in value:
        return value.replace("&", rng.choice(("&amp;", "&#38;")))
    special = [i for i, c in enumerate(value) if c in _ENTITIES or not c.isascii()]
    modes = ["quote", "nbsp_end", "nbsp_start"]
    modes += ["space", "space"] if " " in value else []
    modes += ["char", "char"] if special else []
    mode = rng.choice(modes)
    if mode == "quote":
        return f"&quot;{value}&quot;"
    if mode == "nbsp_end":
        return value + "&nbsp;"
    if mode == "nbsp_start":
        return "&nbsp;" + value
    if mode == "space":
        return value.replace(" ", rng.choice(("&nbsp;", "&#32;", "&#160;")))
    i = rng.choice(special)
    return value[:i] + _entity(value[i]) + value[i + 1 :]


def _misdecode(text: str) -> str:
    """UTF-8 bytes read as cp1252 (latin-1 where cp1252 has undefined bytes)."""
    raw = text.encode("utf-8", "surrogatepass")
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _mojibake(value: str, rng: random.Random) -> str:
    if value.isascii():
        i = rng.randint(0, len(value))
        return value[:i] + rng.choice(_MOJIBAKE) + value[i:]
    mode = rng.choice(("full", "full", "double", "char"))
    if mode == "char":
        i = rng.choice([i for i, c in enumerate(value) if not c.isascii()])
        return value[:i] + _misdecode(value[i]) + value[i + 1 :]
    out = _misdecode(value)
    return _misdecode(out) if mode == "double" else out


def _emoji(value: str, rng: random.Random) -> str:
    return rng.choice(_EMOJI_FORMATS).format(v=value, e=rng.choice(_EMOJI))


def _quotes(value: str, rng: random.Random) -> str:
    left, right = rng.choice(_QUOTES)
    return left + value + right


def _placeholder(value: str, rng: random.Random) -> str:
    return rng.choice([p for p in _PLACEHOLDERS if p != value.strip()])


def _whitespace(value: str, rng: random.Random) -> str:
    options = [" " + value, "  " + value, "\t" + value, "\xa0" + value]
    options += [value + " ", value + "  ", value + "\t", value + "\xa0"]
    spaces = [i for i, c in enumerate(value) if c == " "]
    if spaces:
        i = rng.choice(spaces)
        options += [value[:i] + gap + value[i + 1 :] for gap in ("  ", "\t", "\xa0", "   ")]
    return rng.choice(options)


def _control_chars(value: str, rng: random.Random) -> str:
    char = rng.choice(_CONTROL_CHARS)
    i = 0 if char == "\ufeff" else rng.randint(0, len(value))  # a BOM leads the text
    return value[:i] + char + value[i:]


def _underscore_join(value: str, rng: random.Random) -> str:
    words = [w for w in _WORD_SEPARATORS.split(value) if w]
    if len(words) > 1:
        joined = [sep.join(words) for sep in ("_", "-", "", ".")]
        options = list(dict.fromkeys(joined + [j.lower() for j in joined]))
        options = [o for o in options if _visible(value, o)]
        if options:
            return rng.choice(options)
    # Single word: split it at an inner position ('Sweaters' -> 'Swea_ters'); 'T' -> 'T_'.
    sep = rng.choice("_-")
    core = value.strip()
    if len(core) < 2:
        return value + sep
    cut = len(value) - len(value.lstrip()) + rng.randint(1, len(core) - 1)
    return value[:cut] + sep + value[cut:]


CORRUPTIONS: Mapping[str, Corruption] = MappingProxyType(
    {
        "markup": _markup,
        "hashtag": _hashtag,
        "bracket": _bracket,
        "punctuation": _punctuation,
        "case_noise": _case_noise,
        "char_substitution": _char_substitution,
        "typo_insert": _typo_insert,
        "typo_delete": _typo_delete,
        "typo_swap": _typo_swap,
        "typo_double": _typo_double,
        "typo_replace": _typo_replace,
        "truncate": _truncate,
        "join": _join,
        "numeric_suffix": _numeric_suffix,
        "version_suffix": _version_suffix,
        "html_entity": _html_entity,
        "mojibake": _mojibake,
        "emoji": _emoji,
        "quotes": _quotes,
        "placeholder": _placeholder,
        "whitespace": _whitespace,
        "control_chars": _control_chars,
        "underscore_join": _underscore_join,
    }
)
CORRUPTION_KINDS: tuple[str, ...] = tuple(CORRUPTIONS)


def corrupt(value: str, rng: random.Random, kinds: Sequence[str] | None = None) -> tuple[str, str]:
    """Pick a kind uniformly from `kinds` (default all) with rng and apply it.

    Returns (kind, corrupted). Raises ValueError if `kinds` is empty or names a kind not in
    CORRUPTIONS, TypeError if `kinds` is a bare str.
    """
    if isinstance(kinds, str):
        raise TypeError("kinds must be a sequence of kind names, not a single str")
    pool = list(CORRUPTION_KINDS if kinds is None else kinds)
    unknown = [k for k in pool if k not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruption kind(s): {', '.join(map(repr, unknown))}")
    if not pool:
        raise ValueError("kinds must not be empty")
    kind = rng.choice(pool)
    return kind, CORRUPTIONS[kind](value, rng)
