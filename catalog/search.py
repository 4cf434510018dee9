"""Search tokens for Chinese and Latin text, with no whitespace tokenisation.

Chinese has no spaces between words, so CJK text (Han, kana, Hangul, Bopomofo) is indexed as
overlapping character bigrams plus its single characters: a query of two or more characters is
found through its bigrams (every one must match) and a one-character query through the
character itself. Latin text and digits are indexed as lower-cased words plus their prefixes
(weighted lower), so ``park`` finds ``parking``. Text and queries go through the same
normalisation: NFKC (full-width ``ＡＢＣ１２３`` becomes ``abc123``), case folding, and the
variant ``台`` folded into ``臺`` (Taiwan's official form), so ``台中`` finds ``臺中``.

These are pure functions: the catalog stores their output in its token table, and the CKAN
``package_search`` reuses them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

#: How much a match in each searchable field counts: title > keywords > agency/category >
#: description/field names.
FIELD_WEIGHTS: Mapping[str, float] = {
    "title": 10.0,
    "title_en": 10.0,
    "keywords": 5.0,
    "agency": 3.0,
    "category": 3.0,
    "description": 1.0,
    "fields": 1.0,
}

#: A query word matching only the beginning of a word counts this much of a whole-word match.
PREFIX_FACTOR = 0.5

#: Latin words are cut to this many characters (in the index and in queries alike).
MAX_TOKEN_LENGTH = 32

_CJK = (
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005-\u3007"  # 々 〆 〇
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3100-\u312f\u31a0-\u31bf"  # bopomofo
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK unified ideographs (+ extension A)
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
_RUNS = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>(?:(?![{_CJK}])[^\W_])+)")
_VARIANTS = str.maketrans({"台": "臺"})


def normalize(text: str) -> str:
    """Normalise text for indexing and querying alike.

    Args:
        text: any text.

    Returns:
        The text in NFKC, case-folded, with ``台`` folded into ``臺``.
    """
    return unicodedata.normalize("NFKC", text).casefold().translate(_VARIANTS)


def runs(text: str) -> Iterable[tuple[bool, str]]:
    """Yield (is_cjk, run) for each CJK run and each Latin/digit word of normalised text."""
    for match in _RUNS.finditer(normalize(text)):
        cjk = match.group("cjk")
        if cjk is not None:
            yield True, cjk
        else:
            yield False, match.group("word")[:MAX_TOKEN_LENGTH]


def index_tokens(text: str | Iterable[str]) -> dict[str, float]:
    """The tokens under which a text is found, each with its match factor.

    Args:
        text: a text, or several (e.g. keywords), which are tokenised separately.

    Returns:
        token → factor: 1.0 for CJK bigrams, single CJK characters and whole words;
        ``PREFIX_FACTOR`` for proper prefixes of Latin words (a token that is both keeps 1.0).

    Example:
        >>> sorted(index_tokens("停車場"))
        ['停', '停車', '場', '車', '車場']
    """
    texts = [text] if isinstance(text, str) else list(text)
    tokens: dict[str, float] = {}
    for one in texts:
        for is_cjk, run in runs(one):
            if is_cjk:
                for i, char in enumerate(run):
                    tokens[char] = 1.0
                    if i + 1 < len(run):
                        tokens[run[i : i + 2]] = 1.0
                continue
            for end in range(1, len(run)):
                tokens.setdefault(run[:end], PREFIX_FACTOR)
            tokens[run] = 1.0
    return tokens


def query_tokens(query: str) -> list[str]:
    """The tokens a search query needs to match, every one of them (AND).

    Whitespace and punctuation separate terms; a CJK run becomes its overlapping bigrams (or
    the character itself when it is a single character); a Latin word becomes the lower-cased
    word, which matches whole words and word prefixes in the index.

    Args:
        query: what the user typed, e.g. ``"臺中 停車場"`` or ``"Parking"``.

    Returns:
        Distinct tokens in query order; empty when the query has no letters, digits or CJK.

    Example:
        >>> query_tokens("臺中 停車場 Parking")
        ['臺中', '停車', '車場', 'parking']
    """
    tokens: dict[str, None] = {}
    for is_cjk, run in runs(query):
        if is_cjk and len(run) > 1:
            tokens.update((run[i : i + 2], None) for i in range(len(run) - 1))
        else:
            tokens[run] = None
    return list(tokens)


def weighted_tokens(fields: Mapping[str, str | Iterable[str]]) -> list[tuple[str, str, float]]:
    """Index rows for a record's searchable fields.

    Args:
        fields: field name (a key of ``FIELD_WEIGHTS``) → its text or texts.

    Returns:
        (field, token, weight) rows, weight = field weight × match factor, one per distinct
        token of each field.

    Raises:
        KeyError: a field that is not in ``FIELD_WEIGHTS``.
    """
    rows: list[tuple[str, str, float]] = []
    for name, text in fields.items():
        weight = FIELD_WEIGHTS[name]
        rows.extend((name, token, weight * factor) for token, factor in index_tokens(text).items())
    return rows
