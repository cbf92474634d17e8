"""A real sudoku decode for the layout tests: a tiny untrained char model fills an infill template.

The template is a valid 9x9 grid (9 lines of 9 digits joined by "\\n", 89 characters, the format of
`smkit.tasks.get("sudoku")`) with BLANKS cells replaced by "[MASK]"; the newlines and the givens are fixed.
A "logits" hook keeps the model to digits at masked positions (an untrained model would also write
newlines), so every sample ends as 9 lines of 9 digits. The model need not solve the puzzle.
"""
from __future__ import annotations

import numpy as np
import torch

import smkit
from tiny_model import tiny_char_model

SOLUTION = ("534678912\n672195348\n198342567\n859761423\n426853791\n"
            "713924856\n961537284\n287419635\n345286179")
DIGITS = "123456789"
BLANKS = 45
LENGTH = len(SOLUTION)  # 89


def puzzle(blanks: int = BLANKS, seed: int = 0) -> str:
    """SOLUTION with `blanks` digit cells (chosen by `seed`) written as [MASK]."""
    rows = [list(r) for r in SOLUTION.split("\n")]
    for cell in np.random.default_rng(seed).choice(81, size=blanks, replace=False):
        rows[cell // 9][cell % 9] = "[MASK]"
    return "\n".join("".join(r) for r in rows)


def sudoku_model():
    """An untrained char-level denoiser over the digits and "\\n", with lambda around 0.45 at its entropy (about ln 9)."""
    return tiny_char_model(SOLUTION, LENGTH, sm_centre=-2.2)


def digits_only(tokenizer):
    """A "logits" hook: at positions masked before the step, only the digits 1..9 keep probability."""
    ids = torch.tensor(tokenizer.convert_tokens_to_ids(list(DIGITS)))

    def hook(logp, state):
        allowed = torch.full(logp.shape[-1:], float("-inf"), dtype=logp.dtype, device=logp.device)
        allowed[ids.to(logp.device)] = 0.0
        digits = torch.log_softmax(logp + allowed, dim=-1)
        return torch.where(state.masked.unsqueeze(-1), digits, logp)
    return hook


def sudoku_decode(model, num_samples: int = 2, steps: int = 15, seed: int = 0):
    """`smkit.generate` on the puzzle template: a Generation whose trace has the givens as fixed positions."""
    return smkit.generate(model, infill=puzzle(), num_samples=num_samples, length=LENGTH, steps=steps,
                          soft_mask=True, seed=seed, hooks={"logits": digits_only(model.tokenizer)})


def board_positions(text: str) -> dict[int, tuple[int, int]]:
    """position -> (row, col) of every character of a text's lines (the newlines between them are not cells)."""
    out, pos = {}, 0
    for r, line in enumerate(text.split("\n")):
        for c in range(len(line)):
            out[pos + c] = (r, c)
        pos += len(line) + 1  # the newline after the line
    return out
