"""count_joined is exact: a bundle's `tokens` comes from it instead of counting the rendered
string, and the budget invariant (tokens == count_tokens(rendered) <= budget) rests on it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.index.tokens import count_joined, count_tokens, get_encoding

from .conftest import CORPUS

CORPORA = CORPUS.parent
SPEC_FILES = sorted(CORPORA.glob("*/specs/**/*.md"))


def _exact(texts: list[str], separator: str = "\n\n") -> None:
    parts = [(text, count_tokens(text)) for text in texts]
    assert count_joined(parts, separator) == count_tokens(separator.join(texts)), texts


def _raw(text: str) -> int:
    return len(get_encoding().encode(text, disallowed_special=()))


# What the left side of a split can end with: the split must hold after each of them.
LEFT_ENDINGS = ["x\n", "x \n", "x.\n", "\n\n", "1\n", "'\n", " \n\n", "x\r\n", "\u00a0\n"]


# Unicode's White_Space (PropList.txt), what the pre-tokenizer's \\s matches.
WHITE_SPACE = [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028,
               0x2029, 0x202F, 0x205F, 0x3000]  # fmt: skip


def test_python_isspace_covers_unicode_white_space() -> None:
    assert all(chr(code).isspace() for code in WHITE_SPACE)


def _code_points() -> list[int]:
    # The whole BMP but its private use area, and a sample of the planes above (emoji whole).
    return [
        *range(0xE000),
        *range(0xF900, 0x10000),
        *range(0x1F000, 0x1FB00),
        *range(0x10000, 0x110000, 97),
    ]


@pytest.mark.parametrize("left", LEFT_ENDINGS)
def test_characters_python_calls_non_space_split_the_count(left: str) -> None:
    # A lone surrogate is encoded as U+FFFD: still not a space.
    encoding = get_encoding()
    base = _raw(left)
    wrong = []
    for code in _code_points():
        char = chr(code)
        if char.isspace():
            continue
        after = char + "a"
        joined = len(encoding.encode(left + after, disallowed_special=()))
        if joined != base + len(encoding.encode(after, disallowed_special=())):
            wrong.append(hex(code))
    assert not wrong


@pytest.mark.skipif(not SPEC_FILES, reason="no corpora beside the repo")
def test_paragraphs_of_every_corpus_spec_add_up_to_the_file() -> None:
    fast = 0
    for path in SPEC_FILES:
        text = path.read_text(encoding="utf-8")
        paragraphs = text.split("\n\n")
        _exact(paragraphs)
        for left, right in itertools.pairwise(paragraphs):
            _exact([left, right])
            fast += bool(right) and not right[0].isspace()
    assert fast > 1000  # the splits counted apart, not the fallback, are what was checked


@pytest.mark.skipif(not SPEC_FILES, reason="no corpora beside the repo")
def test_lines_of_corpus_specs_add_up_with_a_one_newline_separator() -> None:
    for path in SPEC_FILES[:200]:
        lines = path.read_text(encoding="utf-8").split("\n")
        for start in range(0, len(lines), 7):
            _exact(lines[start : start + 7], "\n")


ADVERSARIAL = st.sampled_from(
    [" ", "  ", "\n", "\r", "\r\n", "\t", ".", "'", "'s", "s", "a", "ab", "1", "123", "é", "中",
     "—", "…", "`", "#", "_", "-", "\u00a0", "\u2028", "\x1c", "\x85", "\u200b", "😀", "<|endoftext|>"]
)  # fmt: skip
PART = st.lists(ADVERSARIAL | st.characters(), max_size=12).map("".join)


@settings(max_examples=1000, deadline=None)
@given(
    parts=st.lists(PART, max_size=5),
    separator=st.sampled_from(["\n\n", "\n", " \n", "\r\n", ".\n\n", "\n\n\n", "\t\n"]),
)
def test_adversarial_parts_and_separators(parts: list[str], separator: str) -> None:
    _exact(parts, separator)


@pytest.mark.parametrize(
    "texts",
    [
        [],
        [""],
        ["", ""],
        ["a", ""],
        ["", "a"],
        ["end.", "# Next"],
        ["trailing   ", "x"],
        ["line\n", "x"],
        ["line\n\n\n", "x"],
        ["a", " leading space"],
        ["a", "\nleading newline"],
        ["crlf\r\n", "x"],
        ["why?", "'s"],
        ["12", "34"],
        ["## A\n_status · reason_\nsentence.", "## B\ntext", "History (newest first):\n- x"],
    ],
)
def test_edge_cases(texts: list[str]) -> None:
    _exact(texts)


def test_a_separator_not_ending_in_a_newline_is_refused() -> None:
    with pytest.raises(ValueError):
        count_joined([("a", 1), ("b", 1)], " ")
