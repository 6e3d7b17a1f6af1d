"""Words to index terms: the one analyzer that chunk texts and queries both go through.

Specs are technical prose full of identifiers (`lean-spec`, `CommanderJS`, `spec_dependencies`,
`v0.3`), so the analyzer splits on anything that is not a letter or digit and at lower-to-upper
case changes, lowercases, drops a short list of English function words, and strips common English
suffixes so that "validates", "validation" and "validating" meet. A light, predictable stemmer is
enough here: the terms only have to agree between the index and the query, never be real words.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["STOPWORDS", "stem", "terms"]

_WORD = re.compile(r"[A-Za-z]+|\d+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")

# Function words only: domain words such as "spec" or "add" carry signal in some queries, and BM25's
# IDF already discounts words that every chunk has.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "must",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "out",
        "over",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)

# Longest first, so "ations" wins over "s"; each maps to what replaces it. A stem keeps at least
# three letters. The replacements make verb and noun meet: "migration" and "migrate" -> "migrat".
_SUFFIXES = (
    ("izations", "iz"),
    ("ization", "iz"),
    ("ations", "at"),
    ("ation", "at"),
    ("ements", ""),
    ("ement", ""),
    ("ments", ""),
    ("ment", ""),
    ("ities", ""),
    ("ity", ""),
    ("ings", ""),
    ("ing", ""),
    ("ies", "i"),
    ("ied", "i"),
    ("ed", ""),
    ("es", ""),
    ("s", ""),
    ("e", ""),
    ("y", "i"),
)
_KEEP_ENDINGS = ("ss", "us", "is")
# Words whose "-ed" is not a past tense: "embed" must meet "embedded" and "embedding".
_KEEP_WORDS = frozenset({"embed", "speed", "feed", "need", "seed"})


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix-stripping stemmer for lowercase English words; digits pass through."""
    if len(word) <= 3 or not word.isalpha() or word.endswith(_KEEP_ENDINGS) or word in _KEEP_WORDS:
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            # "running" -> "runn" -> "run": undouble a final consonant left by a suffix.
            if (
                not replacement
                and len(base) > 3
                and base[-1] == base[-2]
                and base[-1] not in "aeiouls"
            ):
                base = base[:-1]
            return base + replacement
    return word


def terms(text: str, keep_stopwords: bool = False) -> list[str]:
    """Index terms of `text`, in order, repeated as often as they occur."""
    words = _WORD.findall(_CAMEL.sub(" ", text).lower())
    # A plain dict in front of the stemmer: indexing a corpus analyzes millions of words, and a
    # dict lookup is several times cheaper than the lru_cache wrapper.
    known = _STEMS
    if keep_stopwords:
        return [known.get(w) or _remember(w) for w in words]
    return [known.get(w) or _remember(w) for w in words if w not in STOPWORDS]


_STEMS: dict[str, str] = {}
_MAX_REMEMBERED = 200_000


def _remember(word: str) -> str:
    stemmed = stem(word)
    if len(_STEMS) < _MAX_REMEMBERED:
        _STEMS[word] = stemmed
    return stemmed
