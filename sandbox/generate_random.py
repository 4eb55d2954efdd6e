"""The generator's random draws: fast, and the same for the same seed on every run."""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import SupportsLenAndGetItem

T = TypeVar("T")


class Rng(random.Random):
    """``random.Random`` with cheaper ``randint`` and ``choice`` (one float draw each).

    The standard ones draw bits until a value falls in range, which is exact but took half
    the generator's time; a float draw is uniform enough for fake data and as deterministic.
    """

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: SupportsLenAndGetItem[T]) -> T:
        return seq[int(self.random() * len(seq))]


class Weighted(Generic[T]):
    """Pick from weighted choices with one random draw (``rng.choices`` is slower)."""

    def __init__(self, rng: random.Random, items: Sequence[tuple[T, float]]) -> None:
        self._random = rng.random
        self._items = [item for item, _ in items]
        cum = list(accumulate(w for _, w in items))
        self._cum = [c / cum[-1] for c in cum]

    def __call__(self) -> T:
        # The last cumulative weight is exactly 1.0 and random() < 1.0: always in range.
        return self._items[bisect(self._cum, self._random())]
