"""Tests of benchmarks.search_terms: title words and their typo-like mutations."""

import random

import pytest

from benchmarks.search_terms import (
    drop_letter,
    mutate,
    prefix,
    search_terms,
    swap_letters,
    title_words,
)

TITLES = ("Introduction to Machine Learning", "Rust for Beginners", "Practical Go", "Go 2 Rust")


def test_title_words_are_distinct_lower_case_and_long_enough() -> None:
    assert title_words(TITLES) == [
        "beginners",
        "introduction",
        "learning",
        "machine",
        "practical",
        "rust",
    ]


def test_swap_drop_and_prefix() -> None:
    assert swap_letters("python", 1) == "ptyhon"
    assert drop_letter("python", 5) == "pytho"
    assert prefix("python", 3) == "pyt"
    with pytest.raises(ValueError, match="no letters"):
        swap_letters("python", 5)
    with pytest.raises(ValueError, match="no letter"):
        drop_letter("python", 6)
    with pytest.raises(ValueError, match="proper prefix"):
        prefix("python", 6)


@pytest.mark.parametrize("seed", range(50))
def test_mutations_keep_the_first_letter_and_change_the_word_as_told(seed: int) -> None:
    rng = random.Random(seed)
    word = "statistics"
    assert mutate(word, "exact", rng) == word
    swapped = mutate(word, "swap", rng)
    assert swapped != word
    assert sorted(swapped) == sorted(word)
    assert swapped[0] == "s"
    dropped = mutate(word, "drop", rng)
    assert len(dropped) == len(word) - 1
    assert dropped[0] == "s"
    assert all(c in word for c in dropped)
    cut = mutate(word, "prefix", rng)
    assert 3 <= len(cut) < len(word)
    assert word.startswith(cut)


def test_a_word_whose_swaps_change_nothing_comes_back_unchanged() -> None:
    assert mutate("aaaa", "swap", random.Random(1)) == "aaaa"
    assert mutate("go", "drop", random.Random(1)) == "go"


def test_search_terms_are_repeatable_and_follow_the_shares() -> None:
    first = search_terms(TITLES, 2000, random.Random(7))
    assert first == search_terms(TITLES, 2000, random.Random(7))
    kinds = {k: sum(t.kind == k for t in first) / len(first) for k in ("exact", "swap")}
    assert kinds["exact"] == pytest.approx(0.4, abs=0.05)
    assert kinds["swap"] == pytest.approx(0.2, abs=0.05)
    words = set(title_words(TITLES))
    assert all(t.source in words for t in first)
    assert all(t.text == t.source for t in first if t.kind == "exact")
    only_prefixes = search_terms(TITLES, 50, random.Random(1), {"prefix": 1.0})
    assert all(t.source.startswith(t.text) and t.text != t.source for t in only_prefixes)


def test_search_terms_need_words() -> None:
    with pytest.raises(ValueError, match="no title words"):
        search_terms(("Go", "AI"), 5, random.Random(1))
