"""Sort: write a list of numbers in ascending order.

Text: `length` numbers of `digits` digits (zero-padded) separated by spaces, then ">", then the same numbers
sorted, e.g. "5 3 9 1>1 3 5 9" (length 4, digits 1) or "07 31 02>02 07 31". The digits after ">" are masked;
the spaces and ">" are given. The answer is unique.
"""
from __future__ import annotations

import numpy as np

from .base import Example, Task, check_int, mask_cells

SEPARATOR = ">"


class Sort(Task):
    """Sort `length` numbers (2..64) of `digits` digits each (1..6)."""
    NAME = "sort"
    PARAMS = {"length": 8, "digits": 1}
    ALPHABET = "0123456789 " + SEPARATOR

    def _validate_params(self) -> None:
        self.params["length"] = check_int(self.NAME, "length", self.params["length"], 2, 64)
        self.params["digits"] = check_int(self.NAME, "digits", self.params["digits"], 1, 6)

    @property
    def _half(self) -> int:
        return self.params["length"] * (self.params["digits"] + 1) - 1

    @property
    def length(self) -> int:
        return 2 * self._half + 1

    @property
    def masked(self) -> int:
        return self.params["length"] * self.params["digits"]

    def _format(self, numbers) -> str:
        return " ".join(f"{int(x):0{self.params['digits']}d}" for x in numbers)

    def _draw(self, rng: np.random.Generator) -> Example:
        numbers = rng.integers(0, 10 ** self.params["digits"], size=self.params["length"])
        answer = self._format(numbers) + SEPARATOR + self._format(np.sort(numbers))
        start = self._half + 1
        hidden = [i for i in range(start, len(answer)) if answer[i] != " "]
        return Example(mask_cells(answer, hidden), answer)

    def _valid(self, example: Example, text: str) -> bool:
        given, _, written = text.partition(SEPARATOR)
        numbers = sorted(int(x) for x in given.split(" "))
        return written == self._format(numbers)
