"""smkit's warnings: a run that goes ahead, but not exactly as its settings literally say, says so once.

`notify(message, category)` points the warning at the user's own line (the first frame outside smkit), so that
Python shows it once per place it was caused and `warnings.filterwarnings` can silence it by category."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)


class SmkitWarning(UserWarning):
    """Something ran differently from what its settings literally say; the message says how and why."""


class SamplingWarning(SmkitWarning):
    """A sampling call runs fewer steps (or otherwise differs) from what its settings say."""


class TrainingWarning(SmkitWarning):
    """A training run differs from its config (a shortened warmup, a slower precision on this CPU)."""


def notify(message: str, category: type[Warning] = SmkitWarning) -> None:
    frame, level = sys._getframe(1), 2  # stacklevel 1 is this function, 2 its caller
    while frame is not None and frame.f_code.co_filename.startswith(_ROOT):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
