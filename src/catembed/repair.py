"""String-level checks of categorical values: format profiles and repairs.

Everything here works on the text alone, no model: the validator combines it with the
embedding neighbourhood. A :class:`FormatProfile` is learned from the reference values (which
characters, casings and lengths a clean value of this column has) and lists what a new value
does differently; a :class:`Repairer` maps a broken spelling back to the reference value it
came from ('<b>Sweaters</b>', 'SWEATERS', 'Swaeters', 'Sweat' -> 'Sweaters').
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Container, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache, cached_property
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import OSA

from catembed.normalize import ENTITY, PLACEHOLDERS, TAG, canonical, clean, fix_mojibake, squashed
from catembed.spelling import SpellingIndex, one_edit_strings

SHORT_WORDS = frozenset(["a", "an", "of", "to", "in", "on", "at", "by", "or", "as", "up", "x", "s"])
# Lower-case words a title-cased value may hold ('Mortar and Pestle', "Chef's Pants").
CONNECTORS = frozenset(["a", "an", "and", "as", "at", "by", "de", "for", "from", "in", "into",
                        "n", "of", "on", "or", "s", "the", "to", "with"])  # fmt: skip
# What joins values: a value that starts or ends with one was cut or joined ('Riding Apparel
# &', ', Mugs'), unless reference values start or end that way too. Not 'or' ('Bend OR') or
# 'to' ('To Kill a Mockingbird').
JOINING_CHARACTERS = frozenset("&,/;:|+-")
JOINING_WORDS = {"start": frozenset(["and"]), "end": frozenset(["and", "with", "of", "for", "by"])}
MAX_RESPELLINGS = 4  # corrected spellings of a value tried as its suggestion
MAX_MISSPELT_WORDS = 2  # a value with more is too broken to respell
MIN_WORD_LENGTH = 3  # shorter words ('tv', 'pc') are not spell-checked
MAX_WORD_LENGTH = 40
FAR_KEY_COST = 1.0  # ``_one_edits``: a letter replaced by one from across the keyboard
_LETTERS = "abcdefghijklmnopqrstuvwxyz"  # what ``_one_edits`` puts in or replaces with
MAX_CHECKED_WORDS = 100_000  # words a profile remembers the spell check of
CLOSE_SPELLING = 0.8  # normalized OSA similarity of a reference value ``closest`` suggests
SUFFIX_WINDOW = 64  # version and copy suffixes are shorter than this
MAX_GLUED_SPAN = 32  # pieces of a value ``Repairer.glued`` compares with one reference value
MIN_TYPO_LENGTH = 4  # values shorter than this are never called a typo of another
# A value longer than this (let through by a reference value about as long) is compared with
# reference values in linear time: an edit distance costs the product of the two lengths
# (0.3 s for 100,000 and 50,000 characters). It gets no closest value in spelling, and is
# spell-checked (50 us a letter) in its first distinct words of SPELL_CHECKED_LETTERS letters.
LONG_TEXT = 2_000  # characters
SPELL_CHECKED_LETTERS = 2_000
# When this share of reference values lie one edit from another ('abp1', 'abp2'; 'marc',
# 'mark'), one edit from a reference value is no sign of a typo.
DENSE_SHARE = 0.1
# When this share of reference values are the start of another ('robert', 'roberta'; 'simon',
# 'simone'), starting a reference value is no sign of a value cut short.
PREFIXED_SHARE = 0.02
DENSITY_SAMPLE = 1000  # reference values the share is measured on
DENSITY_MAX_LENGTH = 200  # longer reference values are left out of it
WORD_CHECK_COVERAGE = 0.9  # spell-check only columns whose reference words are this often English
TYPO_REASON = "one edit away from a reference value"
TRUNCATION_REASON = "cut short"
# A reason names this many pieces or words of a value, each cut to this many characters, and
# counts the rest: a value of a thousand pieces gets a line, not a page.
MAX_NAMED = 5
MAX_NAMED_LENGTH = 80
# A short upper-case code after a value: 'Madison WI', 'Hoodies, XL', 'Jeans - UK'.
_APPENDED_CODE = re.compile(r"(?P<base>.*[^\W_])(?:\s*[,/]\s*|\s+-\s+|\s+)[A-Z]{2,3}")
_PREPENDED_CODE = re.compile(r"(?P<code>[A-Z]{2,3})(?:\s*[,/]\s*|\s+-\s+|\s+)(?P<base>[^\W_].*)")
# Codes written next to a value: US states, Canadian provinces, a few countries, clothing sizes.
# Other capitals there are read as acronyms of a name ('Smart TV', 'HD Monitors'), unless the
# rest is a reference value itself ('Monitors HD').
# fmt: off
PLACE_AND_SIZE_CODES = frozenset([
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ",
    "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT",
    "VA", "WA", "WV", "WI", "WY", "DC", "PR",
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
    "UK", "US", "USA", "EU", "GB", "XS", "XL", "XXL",
])
# fmt: on
# Acronyms that are also English words, which ``_acronym`` would otherwise take for shouting.
WORD_ACRONYMS = frozenset(["AC", "AI", "AM", "AR", "LED", "PA", "RAM", "ROM", "WAN"])
_WORD = re.compile(r"[^\W\d_]+")
_ELIDED = re.compile(r"(?<![^\W\d_])[^\W\d_]['\u2019]$")  # the "O'" of "O'Brien", "d'" of "d'Alene"
# Dots real names use: a short word abbreviated before the next ('St. Louis', 'Mt. Vernon')
# and initials ('Washington D.C.', 'J.R.R. Tolkien'); a dot at either end alone is noise.
# Initials take linear time: a run is taken whole (giving a letter back leaves a letter
# next, which fails) and not tried again from its later letters once tried from its first (it
# ends where it did). Trying every letter, each giving letters back one by one, took 0.5 s
# for 'A.' * 5000 + 'a'.
_ABBREVIATION = re.compile(r"\b(?:[A-Z][a-z]?\.(?= [A-Z])|(?<!\b[A-Z]\.)(?:[A-Z]\.){2,}+(?!\w))")
_INITIALISM = re.compile(r"(?:[A-Z]\.){2,}")  # a value that is initials alone: 'U.S.A.', 'D.C.'
# Punctuation real names use: 'Pull-Up Bar', "Chef's Pants", 'Saris & Lehengas', 'and/or'.
_BENIGN_PUNCTUATION = re.compile(r"(?<=[^\W\d_])[-'\u2019/](?=[^\W\d_])| & ")
_HYPHEN_JOINED = re.compile(r"[^\W\d_]{4,}(?:-[^\W\d_]{4,})+")  # 'Knife-Block': spaces replaced
# Atomic groups: each piece is matched once, so a long run of digits cannot backtrack.
_NOISE_SUFFIX = re.compile(
    r"(?>[\s_\-]+(?:copy|final|old|new)|[\s_\-]*(?:\(\s*\d+\s*\)|\(copy\)|v\d+(?:\.\d+)?"
    r"|(?<![\d.,/:])\d+))+$",  # not the last digits of a number ('1/2', '0.104')
    re.IGNORECASE,
)
_JOIN_SEPARATORS = (";", "|", ",", " / ", " + ")
# A qualifier in brackets after a name: "Shoes (Men's)", 'Tea [Loose Leaf]'; it starts with a
# letter ('(2)' is a copy's number).
_QUALIFIER = re.compile(
    r"(?<=[^\W_]) (?:\((?P<round>[^\W\d_][^()\[\]]*)\)"
    r"|\[(?P<square>[^\W\d_][^()\[\]]*)\])(?= |$)"
)
# One digit typed for a letter inside a word: 'St9ck', 'Pan6s'.
_DIGIT_IN_WORD = re.compile(r"(?<![\w])[^\W\d_]+(?P<digit>\d)[^\W\d_]+(?![\w])")
# Digits written for letters: 'T0y R0b0t', 'S0ldi3rs', 'Kn1fe 81ock' (a 1 is an l or an i).
_DIGIT_LETTERS = (str.maketrans("0134578", "oleastb"), str.maketrans("0134578", "oieastb"))
# Numbers with letters that real names hold even where no reference value does: '4K TVs',
# '3D Printers', '5G Routers', 'MP3 Players'. Not bare numbers ('3 Denim Shorts', '10234
# Sweaters': a count or an id added) nor digits written inside a word ('81ock').
_NAME_NUMBER = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?[A-Z]{1,2}|[A-Z]{1,4}\d{1,4})(?![\w.])")
# Acronyms, with a plural 's': 'TV', 'HDMI', 'SSDs' (``_acronym`` tells them from 'SHORTS').
_ACRONYM_WORD = re.compile(r"(?P<letters>[A-Z]{2,5})s?")
# The 'i' or 'e' of a name before a capitalised word: 'iPhone', 'eBook' (not 'sWeaters').
_PREFIXED_WORD = re.compile(r"[ie](?P<word>[A-Z][a-z]{2,})")


@cache
def english_counts() -> dict[str, int]:
    """Lower-case English words and how common each is (pyspellchecker's frequency list,
    about 160,000 words)."""
    from spellchecker import SpellChecker

    return dict(SpellChecker(language="en", distance=1).word_frequency.dictionary)


@cache
def english_words() -> frozenset[str]:
    """Lower-case English words (pyspellchecker's frequency list)."""
    return frozenset(english_counts())


ACRONYM_MAX_COUNT = 100  # pyspellchecker's counts: 'toy' 21,567; 'xl', 'usb' none; 's' 50


def _shape(word: str) -> str:
    """Case shape of a word: 'Sweaters' -> 'Ul', 'iPhone' -> 'lUl', 'USB' -> 'U3'."""
    out: list[str] = []
    for char in word:
        mark = "U" if char.isupper() else "l"
        if not out or out[-1] != mark:
            out.append(mark)
    shape = "".join(out)
    return "U3" if shape == "U" and len(word) <= 3 else shape


def _latin(char: str) -> bool:
    """Whether ``char`` is a Latin letter, accented or not ('é', 'ñ'; not a Cyrillic one)."""
    return char.isalpha() and unicodedata.normalize("NFD", char)[0].isascii()


def _ascii(text: str, keep_letters: bool = False) -> str:
    """``text`` less its non-ASCII characters; with ``keep_letters``, accented Latin letters
    lose only their accents ('Coupé' -> 'Coupe', not 'Coup')."""
    if keep_letters:
        text = "".join(unicodedata.normalize("NFD", c)[0] if _latin(c) else c for c in text)
    return "".join(c for c in text if c.isascii())


def _prefixed_name(word: str) -> bool:
    """Whether ``word`` is an 'i' or 'e' before a common English word ('iPhone', 'eBook'),
    not a shifted capital in a word commoner than that ('iRon', 'eVent')."""
    prefixed = _PREFIXED_WORD.fullmatch(word)
    if prefixed is None:
        return False
    counts = english_counts()
    common = counts.get(prefixed["word"].casefold(), 0)
    return common >= ACRONYM_MAX_COUNT and counts.get(word.casefold(), 0) < common


def _one_letter_prefix(text: str, match: re.Match[str]) -> bool:
    """Whether ``match``, a word of ``text``, is one letter that is part of a name: a capital
    before a hyphen, apostrophe or dot or after a hyphen or dot ('T-Shirts', "O'Fallon",
    'USB-C', 'D.C.'), or an elided article before a capital ("d'Alene")."""
    letter = match.group()
    if len(letter) != 1:
        return False
    after = text[match.end() : match.end() + 1]
    before = text[match.start() - 1 : match.start()]
    if letter.isupper() and (after in ("-", "'", "\u2019", ".") or before in ("-", ".")):
        return True
    return after in ("'", "\u2019") and text[match.end() + 1 : match.end() + 2].isupper()


def _after_capital_hyphen(text: str, match: re.Match[str], spaces: list[int]) -> bool:
    """Whether ``match`` follows a hyphen in a compound that starts with a capital: 'ray' of
    'Blu-ray', 'au' of 'Port-au-Prince' (not 'paid' of 'pre-paid'). ``spaces``: where
    ``text`` has spaces, in order (searching back for the last one is quadratic in a long
    text of hyphens)."""
    hyphen = match.start() - 1
    if text[hyphen : hyphen + 1] != "-":
        return False
    before = bisect.bisect_left(spaces, hyphen)
    start = spaces[before - 1] + 1 if before else 0  # of the compound
    part = text.rfind("-", start, hyphen) + 1 or start  # the compound's last part
    return text[start:hyphen][:1].isupper() and _WORD.fullmatch(text, part, hyphen) is not None


def _one_word(text: str) -> bool:
    """Whether ``text`` holds one word (``_WORD``), found without listing them all."""
    first = _WORD.search(text)
    return first is not None and _WORD.search(text, first.end()) is None


def _camel_case_name(word: str) -> str:
    """'name' when ``word`` is a 'Mc' or 'Mac' name ('McDonald'), 'words' when it is common
    words run together, the later ones capitalised ('PlayStation', 'FedEx', 'easyJet'), ''
    otherwise: a word with a shifted capital ('SweAters', 'BoArd') is neither."""
    parts = re.findall(r"[A-Z]?[a-z]+", word)
    if len(parts) < 2 or "".join(parts) != word or min(map(len, parts)) < 2:
        return ""
    if parts[0] in ("Mc", "Mac") and len(parts) == 2:
        return "name"
    counts = english_counts()
    return "words" if all(counts.get(p.casefold(), 0) >= ACRONYM_MAX_COUNT for p in parts) else ""


def _acronym(word: str) -> bool:
    """Whether a value of a few capitals is an acronym ('XL', 'USB'), not a common English
    word in capitals ('TOY'). Only for one-word values: 'LOS' in 'LOS ANGELES' is no word
    either."""
    return word in WORD_ACRONYMS or english_counts().get(word.lower(), 0) < ACRONYM_MAX_COUNT


@dataclass(frozen=True)
class FormatProfile:
    """What the clean reference values look like, to spot values that look different."""

    characters: str = ""  # every non-letter character used by a reference value
    non_ascii_letters: bool = False
    first_shapes: tuple[str, ...] = ()
    word_shapes: tuple[str, ...] = ()
    max_length: int = 0
    word_check: bool = False
    known_words: tuple[str, ...] = field(default=(), repr=False)
    irregular_spacing: bool = False  # a reference value has runs of spaces, tabs or newlines
    # Joiners reference values start or end with ('end:&'); None: not learned, not checked.
    edges: tuple[str, ...] | None = ()

    @classmethod
    def learn(cls, values: Sequence[str]) -> FormatProfile:
        chars = sorted({c for v in values for c in v if not c.isalpha()})
        first: set[str] = set()
        shapes: set[str] = set()
        words: set[str] = set()
        for value in values:
            tokens = _WORD.findall(value)
            if tokens:
                first.add(_shape(tokens[0]))
            shapes.update(_shape(t) for t in tokens)
            words.update(t.casefold() for t in tokens)
        long_words = [w for w in words if len(w) >= MIN_WORD_LENGTH]
        english = english_words()
        covered = sum(_is_word(w, english) for w in long_words)
        return cls(
            characters="".join(chars),
            non_ascii_letters=any(c.isalpha() and not c.isascii() for v in values for c in v),
            first_shapes=tuple(sorted(first)),
            word_shapes=tuple(sorted(shapes)),
            max_length=max((len(v) for v in values), default=0),
            word_check=bool(long_words) and covered / len(long_words) >= WORD_CHECK_COVERAGE,
            known_words=tuple(sorted(words)),
            irregular_spacing=any(_irregular_spacing(v.strip()) for v in values),
            edges=tuple(sorted({e for v in values for e in _edges(v)})),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FormatProfile:
        try:
            return cls(
                characters=str(data["characters"]),
                non_ascii_letters=bool(data["non_ascii_letters"]),
                first_shapes=_strings(data["first_shapes"]),
                word_shapes=_strings(data["word_shapes"]),
                max_length=int(data["max_length"]),
                word_check=bool(data["word_check"]),
                known_words=_strings(data["known_words"]),
                irregular_spacing=bool(data.get("irregular_spacing", False)),
                edges=_strings(data["edges"]) if data.get("edges") is not None else None,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            raise ValueError(f"bad format profile: {error}") from None

    def issues(self, text: str) -> list[str]:
        """Why ``text`` does not look like a reference value; empty when it does."""
        found: list[str] = []
        if any("\ud800" <= c <= "\udfff" for c in text):  # from bytes that were not UTF-8
            return ["not valid Unicode text: a lone surrogate"]
        if canonical(text) in PLACEHOLDERS or not clean(text):
            return ["placeholder"]
        if text != text.strip():
            found.append("leading or trailing whitespace")
        if any(unicodedata.category(c) in ("Cc", "Cf") and c not in self.characters for c in text):
            found.append("control or invisible character")
        if not self.irregular_spacing and _irregular_spacing(text.strip()):
            found.append("irregular whitespace")
        if TAG.search(text) and "<" not in self.characters:
            found.append("markup")
        if ENTITY.search(text) and "&" not in self.characters:
            found.append("HTML entity")
        if fix_mojibake(text) != text:
            found.append("mojibake")
        if self.edges is not None:
            dangling = [e for e in _edges(text) if e not in self.edges]
            if dangling:
                side, joiner = dangling[0].split(":", 1)
                found.append(f"{side}s with {joiner!r}, as no reference value does")
        if self.far_longer(text):
            found.append(self.length_issue(text))
        digits = any(c.isdigit() for c in self.characters)  # one digit allows them all
        checked = _ABBREVIATION.sub(lambda m: m.group().replace(".", ""), text)
        # A qualifier in brackets is a name's own punctuation; whether it is a reference value
        # is the Repairer's to say (``joined_in``).
        for match in reversed(qualifiers(checked)):
            inner = match["round"] or match["square"]
            checked = checked[: match.start()] + " " + inner + checked[match.end() :]
        if not self._spaces_replaced(text):
            checked = _BENIGN_PUNCTUATION.sub("", checked)
        if digits:  # a decimal point or comma in a number: '12.5 oz', '1,000 Pieces'
            checked = re.sub(r"(?<=\d)[.,](?=\d)", "", checked)
        else:  # numbers of names pass; a number after the value is a copy's suffix
            end = len(without_suffix(checked))
            checked = _NAME_NUMBER.sub("", checked[:end]) + checked[end:]
        strange = sorted(
            {
                c
                for c in checked
                if not c.isspace()
                and c not in self.characters
                and not (c.isalpha() and (c.isascii() or self.non_ascii_letters or _latin(c)))
                and not (c.isdigit() and digits)
            }
        )
        if strange:
            shown = "".join(strange[:5])
            found.append(f"characters never used in reference values: {shown!r}")
        # One-letter prefixes, initials and elided articles are no words to case-check
        # ('T-Shirts', 'USB-C', 'D.C.', "Coeur d'Alene"); nor is a lower-case word after a
        # hyphen in a capitalised compound: 'Blu-ray', 'Add-ons', 'Port-au-Prince'.
        cleaned = _NAME_NUMBER.sub(" ", clean(text))  # the 'K' of '4K' is no word
        every = list(_WORD.finditer(cleaned))
        prefixes = {m.start() for m in every if _one_letter_prefix(cleaned, m)}
        end = len(without_suffix(cleaned))  # not a copy's suffix: 'Tennis Racket-final'
        spaces = [i for i, c in enumerate(cleaned) if c == " "]
        compounds = {m.start() for m in every if m.end() <= end and m.group().islower()
                     and _after_capital_hyphen(cleaned, m, spaces)}  # fmt: skip
        # A value of initials alone ('U.S.A.') is cased as an acronym is, in any column.
        skipped = prefixes | compounds
        words = (
            []
            if _INITIALISM.fullmatch(text)
            else (
                [m.group() for m in every if m.start() not in skipped]
                or [m.group() for m in every if m.start() not in compounds]
                or [m.group() for m in every]
            )
        )
        alone = _one_word(text)
        if any(not self._cased_like_references(i, words, text, alone) for i in range(len(words))):
            found.append("unusual casing")
        unknown = self.unknown_words(text)
        if unknown:
            found.append("unknown word " + named(unknown, ", ", quoted=True))
        return found

    def _cased_like_references(
        self, position: int, words: list[str], text: str, alone: bool
    ) -> bool:
        """Whether ``words[position]``, a word of ``text`` (``alone``: its one word), is cased
        as the reference values' words are, or as acronyms and prefixed names are in any text
        ('HDMI Cables', 'iPhone Cases'). In a value all in capitals only a lone acronym is; a
        place or size code after a value is appended to it ('Canton MA', 'Hoodies XL'), not an
        acronym ('Smart TV')."""
        word = words[position]
        if _shape(word) in (self.word_shapes if position else self.first_shapes):
            return True
        if position and word in CONNECTORS:
            return True
        acronym = _ACRONYM_WORD.fullmatch(word)
        # Next to other words, short capitals are an acronym even when they spell a word
        # ('ID Cards', 'AV Receivers', 'MIDI Controllers'), not a word shouted.
        short = not alone and acronym and len(word) <= 4 and word.casefold() not in CONNECTORS
        if acronym and (short or _acronym(acronym["letters"])):
            if alone:  # 'TV'; not 'OSLO', a word in capitals
                return len(acronym["letters"]) <= 3
            appended = position == len(words) - 1 and word in PLACE_AND_SIZE_CODES
            return not text.isupper() and not appended
        if _prefixed_name(word):
            return True
        # Words run together in a name: 'PlayStation Consoles', 'MacBooks', 'FedEx'. Alone in a
        # column of English words, such a value is more likely a value with its spaces taken
        # out ('KnifeBlock'), and so is a name of one word that is no plain words joined.
        camel = _camel_case_name(word)
        return camel == "name" or (
            camel == "words" and (" " in text.strip() or not self.word_check)
        )

    def _spaces_replaced(self, text: str) -> bool:
        """Whether ``text`` is a value with its spaces replaced by hyphens ('Knife-Block'),
        not a hyphenated name ('Wilkes-Barre', 'Coca-Cola'): only in a column of English words,
        or when every piece is a word of the reference values."""
        if not _HYPHEN_JOINED.fullmatch(text):
            return False
        return self.word_check or all(p.casefold() in self._known for p in text.split("-"))

    @cached_property
    def _known(self) -> frozenset[str]:
        return frozenset(self.known_words)

    @cached_property
    def _misspelt(self) -> dict[str, bool]:
        """Words spell-checked so far and whether each looks misspelt: the values of a column
        share their words ('New York', 'York Harbor'), and each costs hundreds of edits to
        check. At most ``MAX_CHECKED_WORDS``; emptied when full."""
        return {}

    def in_reference_words(self, text: str) -> bool:
        """Whether ``text`` is written in the reference values' own words, each of them: 'Bock'
        next to 'Maibock / Helles Bock', 'Dark Green' next to 'Dark Blue' and 'Light Green'."""
        known = self._known
        words = [w.casefold() for w in _WORD.findall(text)]
        content = [w for w in words if w not in CONNECTORS]
        return bool(content) and all(w in known for w in content)

    def in_real_words(self, text: str) -> bool:
        """Whether every word of ``text`` is English or a reference value's own: 'Lightning
        Cable' is, 'hearx axxack' is not."""
        english, known = english_words(), self._known
        words = [w.casefold() for w in _WORD.findall(text)]
        return bool(words) and all(w in english or w in known for w in words)

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` that look misspelt: neither English nor used by a reference value,
        but one edit away from such a word. Rare real words ('Micellar', 'Yukata') pass."""
        return [m.group().casefold() for m in self._unknown_matches(clean(text), len(text))]

    def far_longer(self, text: str) -> bool:
        """Whether ``text`` is far longer than any reference value: no single value broke."""
        return len(text) > 2 * self.max_length + 20

    def length_issue(self, text: str) -> str:
        """The issue of a value that is ``far_longer``."""
        return f"{len(text)} characters, far longer than any reference value"

    def recased(self, text: str) -> str:
        """``text`` in the case of the reference values when they share one: Title Case
        ('SANDBOX TOYS' -> 'Sandbox Toys'; connectors kept, and codes: all short capitals in
        a value not all upper case, capital pairs ('TV') in one that is) or lower case.
        Only a value cased as a whole, or with a word cased at random ('ROckInG'), is
        recased: 'Toy oldiers' lost a letter, not its case."""
        words = _WORD.findall(text)
        if not (
            text.isupper()
            or text.islower()
            or any(_shape(w) not in ("Ul", "l", "U3") for w in words)
        ):
            return text
        if self.first_shapes == ("l",) and set(self.word_shapes) <= {"l"}:
            return text.lower()
        if "Ul" not in self.first_shapes:
            return text
        words = text.split(" ")
        shouting = text.isupper()
        for i, word in enumerate(words):
            short_capitals = word.isupper() and len(word) <= 3
            if short_capitals and (not shouting or (len(words) == 1 and _acronym(word))):
                continue  # a code or an acronym: 'Canton MA', 'Plainfield IN', 'TV Stands'
            if i and word.casefold() in CONNECTORS and "l" in self.word_shapes:
                words[i] = word.lower()
            elif short_capitals and len(word) <= 2 and "U3" in self.word_shapes:
                continue
            else:
                words[i] = "-".join(p[:1].upper() + p[1:].lower() for p in word.split("-"))
        return " ".join(words)

    def respellings(self, text: str) -> list[str]:
        """``text`` cleaned, with its misspelt words replaced by the known words one edit
        away, likeliest typo first (swapped letters, then doubled letters and neighbouring
        keys; then reference words, then common English words): 'Denim Shrots' -> 'Denim
        Shorts', 'Denim Shots'; at most ``MAX_RESPELLINGS``, empty when nothing is misspelt."""
        cleaned = clean(text)
        matches = self._unknown_matches(cleaned, len(text))
        if not matches or len(matches) > MAX_MISSPELT_WORDS:
            return []
        final = matches[-1].group().casefold()
        if not cleaned[matches[-1].end() :].strip() and (
            len(final) < MIN_WORD_LENGTH or _starts_a_word(final, self._known)
        ):
            return []  # cut short ('Board Ga', 'Jigsaw Puzz'), not misspelt
        counts = english_counts()
        known = self._known
        english = english_words()
        misspelt = {m.start() for m in matches}
        if any(
            m.start() not in misspelt
            and not _is_word(m.group().casefold(), english, known, compounds=False)
            for m in _WORD.finditer(cleaned)
        ):
            return []  # another word is no plain word either: too broken to guess
        options = []
        for match in matches:
            word = match.group()
            if len(word) > MAX_WORD_LENGTH:
                return []
            edits = _one_edits(word.casefold())
            found = [e for e in edits if e in known or e in counts]
            found.sort(key=lambda e: (edits[e], e not in known, -counts.get(e, 0), e))
            options.append([_like(word, e) for e in found[:MAX_RESPELLINGS]] or [word])
        texts = []
        for choice in itertools.islice(itertools.product(*options), MAX_RESPELLINGS):
            pieces, last = [], 0
            for match, word in zip(matches, choice, strict=True):
                pieces += [cleaned[last : match.start()], word]
                last = match.end()
            texts.append("".join([*pieces, cleaned[last:]]))
        return texts

    def _unknown_matches(self, cleaned: str, length: int) -> list[re.Match[str]]:
        """The misspelt words of ``cleaned``, a value of ``length`` characters cleaned."""
        if not self.word_check:
            return []
        budget = SPELL_CHECKED_LETTERS if length > LONG_TEXT else float("inf")
        spent = 0  # letters of the distinct words checked
        seen: set[str] = set()
        english = english_words()
        known = self._known
        matches = list(_WORD.finditer(cleaned))
        unknown = []
        misspelt = self._misspelt
        for position, match in enumerate(matches):
            word = match.group()
            if word.casefold() in known or not word.isascii() or _ACRONYM_WORD.fullmatch(word):
                continue
            if _prefixed_name(word):  # 'eBook'
                continue
            # "O'Brien", "d'Alene": a name (the three characters before the word decide)
            if _ELIDED.search(cleaned[max(0, match.start() - 3) : match.start()]):
                continue
            if len(word) < MIN_WORD_LENGTH:
                # 'Board Ga': a value cut short inside its last word ('Yo-Yo' is not)
                last = (
                    position == len(matches) - 1
                    and cleaned[match.start() - 1 : match.start()] == " "
                )
                if last and word.casefold() not in SHORT_WORDS and not word.isupper():
                    unknown.append(match)
            else:
                folded = word.casefold()
                if folded not in seen:  # letters of distinct words, cached or not
                    if spent >= budget:
                        break
                    seen.add(folded)
                    spent += len(folded)
                wrong = misspelt.get(folded)
                if wrong is None:
                    wrong = not _is_word(folded, english, known) and _misspells(
                        folded, english, known
                    )
                    if len(misspelt) >= MAX_CHECKED_WORDS:
                        misspelt.clear()
                    misspelt[folded] = wrong
                if wrong:
                    unknown.append(match)
        return unknown


def named(items: Sequence[str], joiner: str, quoted: bool = False) -> str:
    """``items`` joined for a reason: the first ``MAX_NAMED``, each cut to ``MAX_NAMED_LENGTH``
    characters, and how many more there are ('Jeans and Socks and ... (12 more)'; one more is
    named)."""
    shown = items if len(items) <= MAX_NAMED + 1 else items[:MAX_NAMED]
    cut = [
        item if len(item) <= MAX_NAMED_LENGTH else item[: MAX_NAMED_LENGTH - 3] + "..."
        for item in shown
    ]
    text = joiner.join(repr(item) if quoted else item for item in cut)
    more = len(items) - len(cut)
    return f"{text}{joiner}... ({more} more)" if more else text


def without_suffix(text: str) -> str:
    """``text`` less a version or copy suffix ('Toy Cars (copy)', 'Garlic Press_v1.0').
    Only the last ``SUFFIX_WINDOW`` characters are searched, so that a long run of separators
    costs linear time, not quadratic."""
    head, tail = text[:-SUFFIX_WINDOW], text[-SUFFIX_WINDOW:]
    return head + _NOISE_SUFFIX.sub("", tail)


def _split_words(text: str, known: Iterable[str] = (), segment: bool = False) -> str:
    """``text`` with words split at '_', '.', '-' (and at capitals when it is one token), and
    with ``segment``, each word that is none cut into English words: 'Salad_Spinner' ->
    'Salad Spinner', 'MeasuringSpoons' -> 'Measuring Spoons', 'badmintonracket' ->
    'badminton racket' (but 'Loungewear' is a word, so only hashtags are cut)."""
    text = " ".join(re.sub(r"(?<=[^\W\d_])-+(?=[^\W\d_])|[_.]+", " ", text).split())
    if " " not in text:  # one glued token
        text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    if not segment:
        return text
    return " ".join(_segment(word, known) for word in text.split())


def _segment(word: str, known: Iterable[str]) -> str:
    """``word`` cut into the fewest English or reference words of 3+ letters, if it is none."""
    english = english_words()
    extra = known if isinstance(known, set | frozenset) else set(known)
    lower = word.casefold()
    if len(word) < 2 * MIN_WORD_LENGTH or len(word) > MAX_WORD_LENGTH or not word.isalpha():
        return word
    if lower in english or lower in extra:
        return word
    best: list[list[str] | None] = [[]] + [None] * len(word)
    for end in range(MIN_WORD_LENGTH, len(word) + 1):
        for start in range(max(0, end - 20), end - MIN_WORD_LENGTH + 1):
            head, piece = best[start], lower[start:end]
            if head is not None and (piece in english or piece in extra):
                candidate = [*head, word[start:end]]
                if best[end] is None or len(candidate) < len(best[end] or []):
                    best[end] = candidate
    found = best[len(word)]
    return " ".join(found) if found else word


def without_joiners(text: str) -> str:
    """``text`` cleaned, less the joining words and characters it starts or ends with:
    'Shoes and' -> 'Shoes'."""
    words = clean(text).strip("".join(JOINING_CHARACTERS) + " ").split()
    while len(words) > 1 and words[0].casefold() in JOINING_WORDS["start"]:
        words.pop(0)
    while len(words) > 1 and words[-1].casefold() in JOINING_WORDS["end"]:
        words.pop()
    return " ".join(words)


def _edges(value: str) -> list[str]:
    """The joiners ``value`` starts or ends with, as 'start:&' or 'end:and'."""
    text = value.strip()
    found = [f"start:{text[0]}"] if text[:1] in JOINING_CHARACTERS else []
    if len(text) > 1 and text[-1] in JOINING_CHARACTERS:
        found.append(f"end:{text[-1]}")
    words = text.casefold().split()
    if len(words) > 1 and words[0] in JOINING_WORDS["start"]:
        found.append(f"start:{words[0]}")
    if len(words) > 1 and words[-1] in JOINING_WORDS["end"]:
        found.append(f"end:{words[-1]}")
    return found


def _strings(items: object) -> tuple[str, ...]:
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise TypeError(f"expected a list of strings, got {items!r:.60}")
    return tuple(items)


def _is_word(
    word: str, english: frozenset[str], known: Iterable[str] = (), compounds: bool = True
) -> bool:
    """English or a reference word, allowing plurals and two-word compounds ('kettlebell')."""
    if len(word) > 2 * MAX_WORD_LENGTH:
        return False  # not even two words joined; and trying every cut would take long
    extra = known if isinstance(known, set | frozenset) else set(known)

    def inside(candidate: str) -> bool:
        return candidate in english or candidate in extra

    if inside(word) or any(inside(stem) for stem in _stems(word)):
        return True
    if not compounds:
        return False
    for cut in range(MIN_WORD_LENGTH, len(word) - MIN_WORD_LENGTH + 1):
        head, tail = word[:cut], word[cut:]
        if inside(head) and (inside(tail) or any(inside(s) for s in _stems(tail))):
            return True
    return False


def _misspells(word: str, english: frozenset[str], known: frozenset[str]) -> bool:
    """Whether one edit (delete, swap, replace, insert) turns ``word`` into a known word: a
    reference word, an English word above the list's lowest count, or one at it ('quinol',
    'sapota', 'maori': two in three of its words) by a common slip only (not a far key:
    'quinoa', 'sapote', 'haori' are rare real words, not their typos)."""
    if len(word) > MAX_WORD_LENGTH:
        return True  # no real word is this long; and its edits would not fit in memory
    edits = _edit_strings(word)
    if not known.isdisjoint(edits):
        return True
    counts = english_counts()
    rarest = _rarest_count()
    # The few edits that are English words, found by the set rather than one by one; only
    # theirs are costed.
    return any(
        counts.get(e, rarest) > rarest or _common_slip(word, e) for e in english.intersection(edits)
    )


def _edit_strings(word: str) -> set[str]:
    """The strings of ``_one_edits(word)``, without their costs."""
    edits = one_edit_strings(word, _LETTERS)
    if len(word) - 1 < MIN_WORD_LENGTH:  # a letter deleted may make one too short
        edits = {e for e in edits if len(e) >= MIN_WORD_LENGTH}
    return edits


def _common_slip(word: str, edit: str) -> bool:
    """Whether ``edit``, one edit from ``word``, costs less than ``FAR_KEY_COST`` in
    ``_one_edits``: every edit does but a letter replaced by one far from it on the keyboard."""
    if len(edit) != len(word):
        return True  # a letter deleted or inserted
    at = next(i for i, (a, b) in enumerate(zip(word, edit, strict=True)) if a != b)
    if word[at + 1 :] != edit[at + 1 :]:
        return True  # two letters swapped: the only edit of the length changing two
    return edit[at] in _KEY_NEIGHBOURS.get(word[at], "")


@cache
def _rarest_count() -> int:
    return min(english_counts().values())


@cache
def _sorted_english() -> tuple[str, ...]:
    return tuple(sorted(english_words()))


def _starts_a_word(prefix: str, known: frozenset[str]) -> bool:
    """Whether ``prefix`` begins a longer English or reference word ('puzz': 'puzzle')."""
    words = _sorted_english()
    at = bisect.bisect_right(words, prefix)
    if at < len(words) and words[at].startswith(prefix):
        return True
    return any(w.startswith(prefix) and w != prefix for w in known)


def _one_edits(word: str) -> dict[str, float]:
    """Strings one delete, swap, replace or insert from ``word``, of ``MIN_WORD_LENGTH`` or
    more characters, each with how unlikely a typo it is: swapped or doubled letters and
    neighbouring keys are the common slips."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits: dict[str, float] = {}

    def add(text: str, cost: float) -> None:
        if len(text) >= MIN_WORD_LENGTH and text != word:
            edits[text] = min(cost, edits.get(text, cost))

    for a, b in splits:
        if b:  # a letter typed too many: cheap when it doubles its neighbour
            add(a + b[1:], 0.6 if b[0] in a[-1:] + b[1:2] else 0.9)
        if len(b) > 1:
            add(a + b[1] + b[0] + b[2:], 0.5)
        for c in _LETTERS:
            if b:
                add(a + c + b[1:], 0.7 if c in _KEY_NEIGHBOURS.get(b[0], "") else FAR_KEY_COST)
            add(a + c + b, 0.6 if c in a[-1:] + b[:1] else 0.7)  # a letter left out
    return edits


def _key_neighbours() -> dict[str, str]:
    """The keys next to each letter key on a QWERTY keyboard."""
    rows = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
    places = {k: (r, c + r / 2) for r, keys in enumerate(rows) for c, k in enumerate(keys)}
    return {
        key: "".join(
            other
            for other, (r2, c2) in places.items()
            if other != key and abs(r - r2) <= 1 and abs(c - c2) <= 1
        )
        for key, (r, c) in places.items()
    }


_KEY_NEIGHBOURS = _key_neighbours()


def _like(word: str, replacement: str) -> str:
    """``replacement`` in the case of ``word``: 'Shrots', 'shorts' -> 'Shorts'."""
    if word.isupper() and len(word) > 1:
        return replacement.upper()
    if word[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _stems(word: str) -> list[str]:
    stems = []
    if word.endswith("ies") and len(word) > 4:
        stems.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 4:
        stems.append(word[:-2])
    if word.endswith("s") and len(word) > 3 and not word.endswith("ss"):
        stems.append(word[:-1])  # 'toyss' is not the plural of 'toys
    # Agent nouns of English verbs and nouns: 'bronzer', 'frother', 'detanglers'.
    for noun in [word, *stems]:
        if noun.endswith("er") and len(noun) > 5:
            stems += [noun[:-1], noun[:-2]]
    return stems


@dataclass(frozen=True)
class Repair:
    """A confident repair: the reference value ``text`` was meant, for ``reason``."""

    suggestion: str
    reason: str


class Repairer:
    """Map broken spellings back to the reference values they came from."""

    def __init__(self, reference: Sequence[str], profile: FormatProfile) -> None:
        self.reference = list(reference)
        self.profile = profile
        self._canonical: dict[str, str] = {}
        self._squashed: dict[str, str] = {}
        for value in self.reference:
            self._canonical.setdefault(canonical(value), value)
            key = squashed(value)
            if key:
                self._squashed.setdefault(key, value)
        self._keys = list(self._canonical)
        self._sorted_keys = sorted(self._keys)  # keys sharing a prefix lie together
        self._order = {key: i for i, key in enumerate(self._keys)}
        self._spelling = SpellingIndex(self._keys)
        self._codes = any(_APPENDED_CODE.fullmatch(v) for v in self.reference)
        self._leading_codes = any(_PREPENDED_CODE.fullmatch(v) for v in self.reference)
        # More pieces than a reference value has words (a piece at either end of the value may
        # clean away to nothing) spell no reference value. One of more words than runs have
        # pieces is never found: it does not lengthen the runs (a paragraph made them 32).
        counts = [len(key.split()) for key in self._keys]
        words = max((n for n in counts if n <= MAX_GLUED_SPAN), default=0)
        self._glued_span = min(words + 2, MAX_GLUED_SPAN)
        self.dense = one_edit_share(self._keys) >= DENSE_SHARE
        self.prefixed = prefixed_share(self._sorted_keys) >= PREFIXED_SHARE

    def glued(self, text: str) -> list[str]:
        """The reference values (of 3 or more characters) glued into ``text`` at capitals,
        '_', '.' or '-' between letters ('JeansSocks', 'Jeans_Socks'), or []. Not at no
        boundary at all: 'Football' may be a value of its own next to 'Foot' and 'Ball'.
        Runs of up to ``MAX_GLUED_SPAN`` pieces are compared: comparing every run took hours
        for a long value beside a long reference value."""
        if len(text) > 4 * max(self.profile.max_length, 1) or any(c.isspace() for c in text):
            return []
        # Between letters only: '1.5' is no '1' glued to '5'.
        boundary = r"(?<=[^\W\d_])(?:[_.\-]+|(?<=[a-z])(?=[A-Z]))(?=[^\W\d_])"
        tokens = re.sub(boundary, " ", text).split()
        if len(tokens) < 2:
            return []
        # fewest[i]: the fewest reference values that make up tokens[:i]; last[i]: where the
        # last of them starts, and which it is (a list of them each copied took square time)
        fewest: list[int | None] = [0] + [None] * len(tokens)
        last: list[tuple[int, str]] = [(0, "")] * (len(tokens) + 1)
        for end in range(1, len(tokens) + 1):
            for start in range(max(0, end - self._glued_span), end):
                head, now = fewest[start], fewest[end]
                if head is None or (now is not None and head + 1 >= now):
                    continue  # no fewer values, whatever the run spells
                run = " ".join(tokens[start:end])
                plain = run.isascii() and run.replace(" ", "").isalnum()  # nothing to clean
                value = self._canonical.get(run.lower() if plain else canonical(run))
                if value is None or len(value) < MIN_WORD_LENGTH:  # 'US-CA': a code, maybe
                    continue
                fewest[end], last[end] = head + 1, (start, value)
        if (fewest[-1] or 0) < 2:
            return []
        found, at = [], len(tokens)
        while at:
            at, value = last[at]
            found.append(value)
        return found[::-1]

    def joined_in(self, text: str) -> list[str]:
        """A name and its bracketed qualifier that the format check lets pass, when the
        qualifier is or repairs to a reference value: two values joined ('Boots (Sandals)'
        next to 'Sandals'), not one name; a reference value qualified is a kind of it ('Boots
        (Kids)'). [] otherwise, and where reference values use the brackets themselves: their
        values are the evidence then."""
        for match in qualifiers(text):
            qualifier = match["round"] or match["square"]
            if match.group()[1] not in self.profile.characters and self._named(qualifier):
                return [text[: match.start()].strip(), qualifier]
        return []

    def _named(self, part: str) -> bool:
        """Whether ``part`` is a reference value or a broken spelling of one; not the start
        of a longer one: 'Austrian Energy' is no cut 'Austrian Energy Agency' in a name."""
        repair = self.repair(part)
        return repair is not None and repair.reason != TRUNCATION_REASON

    def without_code(self, text: str) -> str:
        """``text`` cleaned, less a short upper-case code appended to it ('Madison WI' ->
        'Madison'), unless reference values end in such codes themselves."""
        cleaned = clean(text)
        match = None if self._codes else _APPENDED_CODE.fullmatch(cleaned)
        return match["base"] if match else cleaned

    def rewrites(self, text: str) -> list[str]:
        """What ``text`` may have been before it broke, the plainest guess first, each also
        in the reference values' case ('SANDBOX TOYS' -> 'Sandbox Toys'): control characters
        dropped; cleaned; less a dangling joiner or suffix; words split at '_', '.', '-' or
        capitals, or joined again ('Barbel_l'), and a hashtag cut into English words
        ('#badmintonracket'); digits read as letters ('T0y R0b0t') and stray non-ASCII
        letters dropped where the reference values have neither; less a code ('Canton MA');
        each part of a joined value, longest first."""
        glued = self.glued(text)
        if glued:  # 'JeansJeans' -> 'Jeans'; 'JeansSocks': either one would drop the other
            return glued[:1] if len(set(glued)) == 1 else []
        profile = self.profile
        plain = clean(text)
        unsuffixed = clean(without_suffix(text.strip()))
        hashtag = text.lstrip().startswith("#")
        split = _split_words(plain, profile.known_words, segment=hashtag)
        forms = [
            clean("".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))),
            plain,
            without_joiners(text),
            unsuffixed,
            split,
            clean(re.sub(r"(?<=[^\W\d_])[_.](?=[^\W\d_])", "", plain)),  # 'Barbel_l'
        ]
        if hashtag or re.fullmatch(r"(?:[A-Z][a-z]+){2,}", plain):  # 'BroomballEquipment'
            forms.insert(0, split)
        everything = _split_words(unsuffixed, profile.known_words, segment=hashtag)
        lettered = any(c.isalpha() for c in plain)  # a bare number ('100') is no word ('Loo')
        if lettered and not any(c.isdigit() for c in profile.characters):
            forms += [clean(plain.translate(letters)) for letters in _DIGIT_LETTERS]
            forms += self._digit_typos(plain)
            everything = everything.translate(_DIGIT_LETTERS[0])
        if not profile.non_ascii_letters:  # before plain, which accented letters now pass
            at = forms.index(plain)
            forms[at:at] = [clean(_ascii(plain, keep_letters=True)), clean(_ascii(plain))]
            everything = _ascii(everything)
        forms += [clean(everything), self.without_code(text)]
        for separator in _JOIN_SEPARATORS:
            parts = [clean(p) for p in plain.split(separator)] if separator in plain else []
            if len({tuple(sorted(p.casefold().split())) for p in parts}) < len(set(parts)):
                continue  # the same words in another order: which is meant is anyone's guess
            words = [frozenset(p.casefold().split()) for p in parts]
            if words and any(not w <= max(words, key=len) for w in words):
                continue  # two values ('Jeans, Trousers'): either one would drop the other
            forms += sorted(parts, key=len, reverse=True)
        # Forms often repeat ('Sweaters' cleaned, unsuffixed, split): each is recased once.
        cased = [f for form in dict.fromkeys(forms) for f in (form, profile.recased(form))]
        return [form for form in dict.fromkeys(cased) if form and form != text]

    def _digit_typos(self, text: str) -> list[str]:
        """``text`` with a digit typed inside a word replaced by the letter that makes it a
        reference or English word ('Hockey St9ck' -> 'Hockey Stick'), commonest first."""
        match = _DIGIT_IN_WORD.search(text)
        if match is None or _DIGIT_IN_WORD.search(text, match.end()):
            return []  # none, or more than one: too broken to guess
        word, at = match.group(), match.start("digit") - match.start()
        known, counts = self.profile._known, english_counts()
        words = [word[:at] + c + word[at + 1 :] for c in "abcdefghijklmnopqrstuvwxyz"]
        words = [w for w in words if w.casefold() in known or w.casefold() in counts]
        words.sort(key=lambda w: (w.casefold() not in known, -counts.get(w.casefold(), 0)))
        return [text[: match.start()] + w + text[match.end() :] for w in words]

    def repair(self, text: str) -> Repair | None:
        """The reference value ``text`` is a broken spelling of, when there is a clear one."""
        form = canonical(text)
        if not form:
            return None
        if form in self._canonical:
            return Repair(self._canonical[form], "same value, different spelling")
        key = squashed(text)
        if key in self._squashed:
            return Repair(self._squashed[key], "same value, different spelling")
        stripped = canonical(without_suffix(clean(text)))
        if stripped and stripped != form and stripped in self._canonical:
            return Repair(self._canonical[stripped], "suffix added to a reference value")
        base = canonical(self.without_code(text))
        if base and base != form and base in self._canonical:
            return Repair(self._canonical[base], "code appended to a reference value")
        before = None if self._leading_codes else _PREPENDED_CODE.fullmatch(clean(text))
        if before and before["code"] in PLACE_AND_SIZE_CODES:  # not 'HD Monitors', a kind
            base = canonical(before["base"])
            if base and base != form and base in self._canonical:
                return Repair(self._canonical[base], "code put before a reference value")
        if len(form) > 4 * max(self.profile.max_length, 1):
            return None
        typo = self._typo(form, text)
        if typo is not None:
            return typo
        return self._truncation(form)

    def closest(self, text: str, min_ratio: float = CLOSE_SPELLING) -> str:
        """The reference value nearest in spelling when it is close enough, else ''; '' for a
        long value too (see ``LONG_TEXT``)."""
        return self.nearest([text], min_ratio)[0][1]

    def nearest(
        self, texts: Sequence[str], min_ratio: float = CLOSE_SPELLING
    ) -> list[tuple[str, str]]:
        """For each of ``texts``, the reference value nearest in spelling (normalized OSA
        similarity of the canonical forms; the first in the reference's order among equals),
        and that value again where it is close enough (``closest``), else ''. ('', '') for a
        text with no letters or digits, far longer than any reference value, or long (see
        ``LONG_TEXT``). Many texts are compared at once (on every core where they are many)."""
        limit = 4 * max(self.profile.max_length, 1)
        forms = [
            "" if min(len(text), len(form)) > LONG_TEXT or len(form) > limit else form
            for text, form in ((text, canonical(text)) for text in texts)
        ]
        asked = [form for form in forms if form]
        found = dict(zip(asked, self._spelling.nearest(asked), strict=True))
        nearest = []
        for form in forms:
            at = found.get(form, (-1, 0.0))[0]
            if at < 0:
                nearest.append(("", ""))
                continue
            key = self._keys[at]
            # Close enough by rapidfuzz's own cutoff, as extractOne's was: by its arithmetic
            # a similarity of exactly 0.8 falls short of a cutoff of 0.8.
            similarity = OSA.normalized_similarity(form, key, score_cutoff=min_ratio)
            close = min_ratio <= 0 or similarity > 0
            value = self._canonical[key]
            nearest.append((value, value if close else ""))
        return nearest

    def _typo(self, form: str, text: str) -> Repair | None:
        if len(form) < MIN_TYPO_LENGTH or self.dense:
            return None
        target = self._spelling.within_one_edit(form)
        if target is None:
            return None
        if digits_only_differ(form, target) or _siblings_in_a_series(form, target):
            return None  # 'Size 8' is not a typo of 'Size 9', nor 'Type I' of 'Type II'
        # A one-edit variant made of real words ('Garden Hoe' next to 'Garden Hose') is only
        # a typo when it is the reference's plural or singular; other words go on to the model.
        real_words = self.profile.word_check and not self.profile.unknown_words(text)
        plural = form.rstrip("s") == target.rstrip("s")
        if real_words and not plural:
            return None
        return Repair(self._canonical[target], TYPO_REASON)

    def _truncation(self, form: str) -> Repair | None:
        if len(form) < MIN_TYPO_LENGTH or self.prefixed:
            return None
        # The keys that start with ``form``, in the reference's order: the first that fits is
        # the repair.
        for key in sorted(_starting(self._sorted_keys, form), key=self._order.__getitem__):
            if _cut_of(form, key):
                return Repair(self._canonical[key], TRUNCATION_REASON)
        return None


def _starting(sorted_keys: list[str], form: str) -> list[str]:
    """The keys that start with ``form``, found by bisection rather than by trying them all."""
    found = []
    at = bisect.bisect_left(sorted_keys, form)
    while at < len(sorted_keys) and sorted_keys[at].startswith(form):
        found.append(sorted_keys[at])
        at += 1
    return found


def _cut_of(form: str, key: str) -> bool:
    """Whether ``form`` reads as ``key`` cut short: at least half of it, ending inside a word."""
    return (
        len(key) > len(form)
        and form[-1].isalnum()
        and key[len(form)].isalnum()
        and 2 * len(form) >= len(key)
        and not _siblings_in_a_series(form, key)  # 'Henry V', 'Henry VIII'; '0.04'
    )


def prefixed_share(sorted_keys: list[str]) -> float:
    """The share of ``sorted_keys`` (of ``MIN_TYPO_LENGTH`` or more characters) that read as
    another key cut short: in columns of names ('chris', 'christine') that is no sign of a cut."""
    long_keys = [k for k in sorted_keys if len(k) >= MIN_TYPO_LENGTH]
    if len(long_keys) < 2:
        return 0.0
    cut = sum(any(_cut_of(k, o) for o in _starting(sorted_keys, k)) for k in long_keys)
    return cut / len(long_keys)


def _irregular_spacing(text: str) -> bool:
    return "  " in text or any(c.isspace() and c != " " for c in text)


def one_edit_share(keys: Sequence[str]) -> float:
    """The share of ``keys`` (of ``MIN_TYPO_LENGTH`` or more characters) one edit from another
    key, measured on an evenly spaced sample of at most ``DENSITY_SAMPLE`` of them."""
    # Keys far longer than names or codes say nothing here, and cost quadratic time.
    long_keys = [k for k in keys if MIN_TYPO_LENGTH <= len(k) <= DENSITY_MAX_LENGTH]
    if len(long_keys) < 2:
        return 0.0
    step = max(1, len(long_keys) // DENSITY_SAMPLE)
    sample = long_keys[::step][:DENSITY_SAMPLE]
    distances = process.cdist(sample, long_keys, scorer=OSA.distance, score_cutoff=1, workers=-1)
    close = (distances <= 1).sum(axis=1) > 1  # each sampled key is at distance 0 from itself
    return float(close.mean())


# Tokens that number or size the values of a series: '12', 'IV', 'XL', 'M', '3XL'.
_SERIES_TOKEN = re.compile(
    r"\d+|(?=[ivxlcdm])m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
    r"|\d*x*[sml]|\d+x+l",
    re.IGNORECASE,
)


def _siblings_in_a_series(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ in one number, Roman numeral or size only: 'World War I'
    and 'World War II', 'Size M' and 'Size L', '0.04' and '0.045' are two values, not a value
    and its typo or truncation."""
    tokens_a, tokens_b = re.findall(r"[^\W_]+|[\W_]", a), re.findall(r"[^\W_]+|[\W_]", b)
    if len(tokens_a) != len(tokens_b):
        return False
    differ = [(x, y) for x, y in zip(tokens_a, tokens_b, strict=True) if x != y]
    return len(differ) == 1 and all(_SERIES_TOKEN.fullmatch(t) for t in differ[0])


def digits_only_differ(a: str, b: str) -> bool:
    has_digits = any(c.isdigit() for c in a) and any(c.isdigit() for c in b)
    return has_digits and re.sub(r"\d", "", a) == re.sub(r"\d", "", b)


def qualifiers(text: str) -> list[re.Match[str]]:
    """The qualifiers ``text`` holds in brackets after a name ("Shoes (Men's)", 'Tea [Loose
    Leaf]'), not a copy's mark ('(copy)', '(v2)'); each match's 'round' or 'square' group is
    the qualifier."""
    return [
        m
        for m in _QUALIFIER.finditer(text)
        if not _NOISE_SUFFIX.fullmatch(m.group())
        and not _NOISE_SUFFIX.fullmatch(" " + (m["round"] or m["square"]))
    ]


def split_joined(text: str, reference: Container[str]) -> list[str]:
    """The reference values joined into ``text`` ('Sweaters;Hoodies'), or [] if it is not such."""
    for separator in _JOIN_SEPARATORS:
        if separator in text:
            parts = [p.strip() for p in text.split(separator)]
            if len(parts) > 1 and all(p in reference for p in parts):
                return parts
    return []
