"""Sudoku: fill a 9x9 grid so that every row, column and 3x3 box holds 1..9 once.

Text: 9 rows of 9 digits joined by "\\n" (89 characters); blanks are `[MASK]` in the puzzle, newlines are
always given. Full grids come from randomised backtracking (every cell tries the digits in a fresh random
order), so they vary over all valid grids, not over the symmetries of one; then `81 - givens` cells chosen
uniformly are blanked. The puzzle need not have a unique solution: any valid completion counts.
"""
from __future__ import annotations

import numpy as np

from .base import Example, Task, check_int, mask_cells

DIGITS = "123456789"


RESTART_AFTER = 2000   # cells tried before a fill starts over with fresh random orders (cuts the rare long searches)


def random_grid(rng: np.random.Generator) -> list[int]:
    """A uniformly varied valid full grid (81 digits, row-major) by randomised backtracking."""
    while True:
        grid = _fill(rng)
        if grid is not None:
            return grid


def _fill(rng: np.random.Generator) -> list[int] | None:
    """One randomised backtracking search; None when it tried RESTART_AFTER cells without finishing."""
    grid = [0] * 81
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    orders = rng.permuted(np.tile(np.arange(1, 10), (81, 1)), axis=1).tolist()
    budget = [RESTART_AFTER]

    def fill(i: int) -> bool:
        if i == 81:
            return True
        budget[0] -= 1
        if budget[0] < 0:
            return False
        r, c = divmod(i, 9)
        b = (r // 3) * 3 + c // 3
        used = rows[r] | cols[c] | boxes[b]
        for d in orders[i]:
            bit = 1 << d
            if used & bit:
                continue
            grid[i] = d
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            if fill(i + 1):
                return True
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
        grid[i] = 0
        return False

    return grid if fill(0) else None


def grid_text(grid) -> str:
    """81 digits as the task's text: 9 rows joined by newlines."""
    digits = "".join(str(d) for d in grid)
    return "\n".join(digits[r * 9:(r + 1) * 9] for r in range(9))


def is_solved(text: str) -> bool:
    """True for a text of 9 rows of 9 digits where every row, column and box is a permutation of 1..9."""
    rows = text.split("\n")
    if len(rows) != 9 or any(len(r) != 9 for r in rows):
        return False
    full = set(DIGITS)
    for i in range(9):
        if set(rows[i]) != full or {rows[r][i] for r in range(9)} != full:
            return False
        br, bc = divmod(i, 3)
        if {rows[br * 3 + r][bc * 3 + c] for r in range(3) for c in range(3)} != full:
            return False
    return True


class Sudoku(Task):
    """9x9 sudoku with `givens` given cells (17..80)."""
    NAME = "sudoku"
    PARAMS = {"givens": 35}
    ALPHABET = DIGITS + "\n"

    def _validate_params(self) -> None:
        self.params["givens"] = check_int(self.NAME, "givens", self.params["givens"], 17, 80)

    @property
    def length(self) -> int:
        return 81 + 8

    @property
    def masked(self) -> int:
        return 81 - self.params["givens"]

    def _draw(self, rng: np.random.Generator) -> Example:
        answer = grid_text(random_grid(rng))
        blanks = rng.choice(81, size=self.masked, replace=False)
        hidden = [int(i) + int(i) // 9 for i in blanks]   # cell index -> character index (skip the newlines)
        return Example(mask_cells(answer, hidden), answer)

    def _valid(self, example: Example, text: str) -> bool:
        return is_solved(text)
