"""Layouts: where a sample's positions go on screen. A layout is a small pure function from one step's
per-position fields (`StepFields`) to the cells shown (`Cell`: a position at a row and a column).

    token_strip               every position in order on one flowing row (the default)
    grid(rows, cols, skip)    a rows x cols board; positions whose final text is in `skip` (separators such
                              as "\\n") are not cells, the others fill the board row by row
    "sudoku"                  grid(9, 9, box=(3, 3)): 9 lines of 9 digits, the 3x3 boxes outlined

`get_layout(name_or_function, texts)` resolves the explorer's `layout=`: a registered name, a function, or
"auto", which picks the first registered layout whose detector accepts every sample's final text (a 9x9
board of characters: "sudoku") and the token strip otherwise. `register_layout` adds one.

A layout places positions by their text after the LAST step (`StepFields.final_text`), so cells keep
their places while the step moves; what a cell shows (label, state, colour, lambda, candidates) is the
step's own.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from .trace_view import SampleView
from smkit.core.errors import ConfigError


@dataclass(frozen=True)
class StepFields:
    """One step of one sample, one entry per position (L of them; k candidates kept by the trace)."""
    text: list[str]          # raw token text after the step ("[MASK]" where still masked)
    final_text: list[str]    # raw token text after the last step: where layouts find separators
    labels: list[str]        # what a cell shows: the token, a soft position's top candidate, "\u00b7" if masked
    states: list[str]        # one of data.STATES
    colours: list[str]       # background: by state, a soft position's shaded by lambda
    fixed: np.ndarray        # bool [L] given (prompt / infill template)
    masked: np.ndarray       # bool [L] still masked after the step
    revealed: np.ndarray     # bool [L] revealed at this step
    lam: np.ndarray          # [L] lambda fed back (0 where not masked)
    entropy: np.ndarray      # [L] nats
    topk_text: list[list[str]]  # [L][k] display text of the candidates, most likely first
    topk_probs: np.ndarray   # [L, k] their probabilities
    tips: list[str]          # hover text: state, lambda, entropy, the candidates with their probabilities

    @property
    def length(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Cell:
    """One position placed on screen."""
    position: int
    row: int
    col: int
    label: str
    state: str
    colour: str
    shade: float   # lambda fed back at a still-masked position (0 elsewhere): the cell's shading
    tip: str       # hover text, with the top-k candidates and their probabilities
    group: int = 0  # a border is drawn between cells of different groups (a sudoku box)

    def to_dict(self) -> dict:
        return asdict(self)


Layout = Callable[[StepFields], list]  # StepFields -> list[Cell]


def step_fields(view: SampleView, step: int) -> StepFields:
    """The fields of `view` after `step` that a layout sees."""
    ids, probs = view.topk_at(step)
    return StepFields(text=view.texts(step), final_text=view.final_text(),
                      labels=view.token_labels(step), states=view.states(step), colours=view.colours(step),
                      fixed=view.fixed[step].copy(), masked=view.masked_after(step), revealed=view.revealed[step].copy(),
                      lam=view.lam[step].copy(), entropy=view.entropy[step].copy(),
                      topk_text=view.label_array[ids].tolist(), topk_probs=probs.copy(),
                      tips=view.tips(step))


def cell(f: StepFields, position: int, row: int, col: int, group: int = 0, where: str = "") -> Cell:
    """The cell of `position` at (row, col); `where` prefixes its hover text."""
    shade = float(f.lam[position]) if f.masked[position] else 0.0
    return Cell(position=position, row=row, col=col, label=f.labels[position], state=f.states[position],
                colour=f.colours[position], shade=shade, tip=where + f.tips[position], group=group)


def token_strip(f: StepFields) -> list[Cell]:
    """Every position in order, on one row (the token strip: it wraps on screen)."""
    return [cell(f, p, 0, p) for p in range(f.length)]


def grid(rows: int, cols: int, skip=("\n",), box: tuple[int, int] | None = None) -> Layout:
    """A rows x cols board: positions whose final text is in `skip` are separators, not cells; the others
    fill the board row by row (the i-th at row i // cols, column i % cols; any past the board are left
    out). box=(h, w) groups the cells into h x w boxes, outlined on screen."""
    if not (isinstance(rows, int) and rows >= 1 and isinstance(cols, int) and cols >= 1):
        raise ConfigError(f"grid(rows={rows!r}, cols={cols!r}): give positive integers")
    skip = frozenset([skip] if isinstance(skip, str) else skip)
    per_row = 1 if box is None else -(-cols // box[1])

    def layout(f: StepFields) -> list[Cell]:
        cells = []
        for p in range(f.length):
            if f.final_text[p] in skip:
                continue
            r, c = divmod(len(cells), cols)
            if r >= rows:
                break
            group = 0 if box is None else (r // box[0]) * per_row + c // box[1]
            cells.append(cell(f, p, r, c, group, where=f"row {r + 1}, col {c + 1} \u00b7 "))
        return cells

    layout.__name__ = layout.__qualname__ = f"grid({rows}, {cols})"
    return layout


def is_board(rows: int, cols: int, sep: str = "\n") -> Callable[[str], bool]:
    """A detector: True for a text of exactly `rows` lines of `cols` characters each."""
    def detect(text: str) -> bool:
        lines = text.split(sep)
        return len(lines) == rows and all(len(line) == cols for line in lines)
    return detect


LAYOUTS: dict[str, Layout] = {}
DETECTORS: dict[str, Callable[[str], bool]] = {}


def register_layout(name: str, layout: Layout, detect: Callable[[str], bool] | None = None) -> None:
    """Make `layout` choosable by `name`; with `detect(text) -> bool`, "auto" picks it for a trace whose every
    sample's final text it accepts (layouts registered earlier are tried first)."""
    LAYOUTS[name] = layout
    if detect is not None:
        DETECTORS[name] = detect


register_layout("token_strip", token_strip)
register_layout("sudoku", grid(9, 9, box=(3, 3)), detect=is_board(9, 9))


def choose_layout(texts: list[str]) -> str:
    """The name "auto" resolves to for samples whose final texts are `texts`."""
    for name, detect in DETECTORS.items():
        if texts and all(detect(t) for t in texts):
            return name
    return "token_strip"


def get_layout(layout, texts: list[str] | None = None) -> tuple[str, Layout]:
    """(name, function) of `layout`: a registered name, "auto" (decided from `texts`), or a function."""
    if callable(layout):
        return getattr(layout, "__name__", "custom"), layout
    if layout == "auto":
        layout = choose_layout(list(texts or []))
    if layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r}: choose 'auto', one of {sorted(LAYOUTS)}, or a function "
                         f"StepFields -> list[Cell]")
    return layout, LAYOUTS[layout]
