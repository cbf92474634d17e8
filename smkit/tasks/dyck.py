"""Dyck: complete a balanced bracket string of several types from some of its characters.

Text: `length` brackets from the first `types` pairs of "()[]{}<>". The answer is drawn uniformly among the
balanced shapes of that length (sequential sampling with exact path counts), each pair's type uniformly; then
`given` positions chosen uniformly are shown and the rest masked. Any balanced completion of the shown
characters counts, so puzzles usually have several answers.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..core.config import is_int
from .base import Example, Task, TaskError, check_int, mask_cells

PAIRS = ("()", "[]", "{}", "<>")


@lru_cache(maxsize=None)
def completions(steps: int, depth: int) -> int:
    """Ways to take `steps` more brackets from nesting `depth` and end balanced (never below 0)."""
    if depth < 0 or depth > steps:
        return 0
    if steps == 0:
        return 1
    return completions(steps - 1, depth + 1) + completions(steps - 1, depth - 1)


def is_balanced(text: str, pairs=PAIRS) -> bool:
    """True when every bracket of `text` belongs to `pairs` and each closes the latest open one of its type."""
    opening = {p[0]: p[1] for p in pairs}
    closing = set(opening.values())
    stack: list[str] = []
    for c in text:
        if c in opening:
            stack.append(opening[c])
        elif c not in closing or not stack or stack.pop() != c:
            return False
    return not stack


class Dyck(Task):
    """Balanced brackets: `length` even (2..256), `types` pairs (1..4), `given` positions shown (an integer
    count in [0, length - 1], or a fraction in [0, 1) of the length, rounded)."""
    NAME = "dyck"
    PARAMS = {"length": 16, "given": 0.5, "types": 4}
    ALPHABET = "".join(PAIRS)

    def _validate_params(self) -> None:
        p = self.params
        p["length"] = check_int(self.NAME, "length", p["length"], 2, 256)
        if p["length"] % 2:
            raise TaskError(f"task 'dyck': length={p['length']!r}: must be even (a balanced string pairs every "
                            f"bracket)")
        p["types"] = check_int(self.NAME, "types", p["types"], 1, len(PAIRS))
        given = p["given"]
        if is_int(given):
            p["given"] = check_int(self.NAME, "given", given, 0, p["length"] - 1)
        elif not isinstance(given, (float, np.floating)) or not 0 <= given < 1 or \
                round(given * p["length"]) >= p["length"]:
            raise TaskError(f"task 'dyck': given={given!r}: give a count of shown positions (an integer in "
                            f"[0, {p['length'] - 1}]) or a fraction in [0, 1) that leaves at least one masked")
        else:
            p["given"] = float(given)

    @property
    def shown(self) -> int:
        """Positions given in every puzzle."""
        g = self.params["given"]
        return g if is_int(g) else round(g * self.params["length"])

    @property
    def length(self) -> int:
        return self.params["length"]

    @property
    def masked(self) -> int:
        return self.length - self.shown

    def _draw(self, rng: np.random.Generator) -> Example:
        n, pairs = self.length, PAIRS[:self.params["types"]]
        stack, chars = [], []
        for i in range(n):
            left, depth = n - i, len(stack)
            p_open = completions(left - 1, depth + 1) / completions(left, depth)
            if rng.random() < p_open:
                pair = pairs[int(rng.integers(len(pairs)))]
                stack.append(pair[1])
                chars.append(pair[0])
            else:
                chars.append(stack.pop())
        answer = "".join(chars)
        hidden = rng.choice(n, size=self.masked, replace=False)
        return Example(mask_cells(answer, hidden), answer)

    def _valid(self, example: Example, text: str) -> bool:
        return is_balanced(text, PAIRS[:self.params["types"]])
