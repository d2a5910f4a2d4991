"""Search terms drawn from the seeded catalogue, some typed the way hurried people type them.

Words come from the seeded course titles; a share is kept as is and the rest mutated: two
neighbouring letters swapped, one letter dropped, or the word cut to a prefix (the search must
match all three by trigram similarity or prefix). The first letter is never touched, as in most
real typos. Everything is drawn from a seeded ``random.Random``, so a run's terms are repeatable.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Mutation = Literal["exact", "swap", "drop", "prefix"]
MUTATIONS: tuple[Mutation, ...] = ("exact", "swap", "drop", "prefix")
DEFAULT_SHARES: Mapping[Mutation, float] = {"exact": 0.4, "swap": 0.2, "drop": 0.2, "prefix": 0.2}
MIN_WORD = 4  # shorter words ("to", "for", "in") are stop words or too short to mutate
MIN_PREFIX = 3

_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class SearchTerm:
    """One query: its text, how it was made, and the title word it came from."""

    text: str
    kind: Mutation
    source: str


def title_words(titles: Iterable[str], min_length: int = MIN_WORD) -> list[str]:
    """The distinct words of ``titles`` (lower case, letters only, ``min_length`` or longer),
    sorted."""
    words = {w.lower() for title in titles for w in _WORD.findall(title) if len(w) >= min_length}
    return sorted(words)


def swap_letters(word: str, index: int) -> str:
    """``word`` with letters ``index`` and ``index + 1`` swapped."""
    if not 0 <= index < len(word) - 1:
        raise ValueError(f"no letters {index} and {index + 1} in {word!r}")
    return word[:index] + word[index + 1] + word[index] + word[index + 2 :]


def drop_letter(word: str, index: int) -> str:
    """``word`` without its letter ``index``."""
    if not 0 <= index < len(word):
        raise ValueError(f"no letter {index} in {word!r}")
    return word[:index] + word[index + 1 :]


def prefix(word: str, length: int) -> str:
    """The first ``length`` letters of ``word`` (a proper prefix)."""
    if not 0 < length < len(word):
        raise ValueError(f"{length} is not a proper prefix length of {word!r}")
    return word[:length]


def mutate(word: str, kind: Mutation, rng: random.Random) -> str:
    """``word`` changed by ``kind``; the first letter stays. A word too short for the change,
    or whose only swaps are of equal letters, comes back unchanged."""
    if kind == "exact" or len(word) < MIN_WORD:
        return word
    if kind == "swap":
        candidates = [i for i in range(1, len(word) - 1) if word[i] != word[i + 1]]
        return swap_letters(word, rng.choice(candidates)) if candidates else word
    if kind == "drop":
        return drop_letter(word, rng.randrange(1, len(word)))
    return prefix(word, rng.randrange(MIN_PREFIX, len(word)))


def search_terms(
    titles: Iterable[str],
    count: int,
    rng: random.Random,
    shares: Mapping[Mutation, float] = DEFAULT_SHARES,
) -> list[SearchTerm]:
    """``count`` terms: title words drawn uniformly, each mutated by a kind drawn by ``shares``."""
    words = title_words(titles)
    if not words:
        raise ValueError("no title words to draw search terms from")
    kinds = [k for k in MUTATIONS if shares.get(k, 0) > 0]
    weights = [shares[k] for k in kinds]
    terms = []
    for _ in range(count):
        word = rng.choice(words)
        kind = rng.choices(kinds, weights)[0]
        terms.append(SearchTerm(mutate(word, kind, rng), kind, word))
    return terms
