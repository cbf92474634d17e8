"""Add: the sum of two n-digit numbers.

Text: both operands zero-padded to `digits` digits, the sum to `digits + 1`, e.g. "0123+0456=00579"
(digits 4). The sum's digits are masked; the operands, "+" and "=" are given. The answer is unique.
"""
from __future__ import annotations

import numpy as np

from .base import Example, Task, check_int, mask_cells


class Add(Task):
    """n-digit addition, `digits` in 1..30."""
    NAME = "add"
    PARAMS = {"digits": 4}
    ALPHABET = "0123456789+="

    def _validate_params(self) -> None:
        self.params["digits"] = check_int(self.NAME, "digits", self.params["digits"], 1, 30)

    @property
    def length(self) -> int:
        return 3 * self.params["digits"] + 3

    @property
    def masked(self) -> int:
        return self.params["digits"] + 1

    def _text(self, a: int, b: int) -> str:
        n = self.params["digits"]
        return f"{a:0{n}d}+{b:0{n}d}={a + b:0{n + 1}d}"

    def _draw(self, rng: np.random.Generator) -> Example:
        n = self.params["digits"]
        a, b = (int("".join(str(d) for d in rng.integers(0, 10, size=n))) for _ in range(2))
        answer = self._text(a, b)
        return Example(mask_cells(answer, range(len(answer) - n - 1, len(answer))), answer)

    def _valid(self, example: Example, text: str) -> bool:
        n = self.params["digits"]
        a, b = int(text[:n]), int(text[n + 1:2 * n + 1])
        return text == self._text(a, b)
