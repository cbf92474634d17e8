"""notebooks/tasks.ipynb as a new user runs it: its default difficulty shows the shipped solvers solving puzzles
and the order effect; the sweep page draws offline and takes the width of its window; an answer with a newline
written into a cell keeps its grid."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import smkit
from smkit import tasks

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "tasks.py"


def notebook_defaults() -> dict:
    """The values of the notebook's parameters cell (jupytext text twin of tasks.ipynb)."""
    text = NOTEBOOK.read_text(encoding="utf-8")
    cell = re.search(r'# %% tags=\["parameters"\]\n(.*?)\n# %%', text, flags=re.S).group(1)
    values: dict = {}
    exec(cell, {}, values)
    return values


def test_the_default_difficulty_shows_the_order_effect_on_the_shipped_solvers():
    """At the notebook's defaults (task, task_params, models, n, seed), one cell per step: each shipped solver
    solves a share of the puzzles, and revealing the surest cell first (confidence) beats a random order."""
    d = notebook_defaults()
    assert d["task"] == "sudoku" and d["models"] == ["sudoku-binary", "sudoku-sm"]
    models = {name: smkit.load_pretrained(name) for name in d["models"]}
    frame = tasks.sweep(models, tasks.get(d["task"], **d["task_params"]), n=d["n"], cells_per_step=[1],
                        strategies=["random", "confidence"], seed=d["seed"])
    acc = frame.set_index(["model", "strategy"]).accuracy
    for name in d["models"]:
        assert acc[name, "random"] >= 0.05, f"{name} solves {acc[name, 'random']:.3f} in a random order"
        assert acc[name, "confidence"] > acc[name, "random"], acc.to_dict()


def _frame():
    import pandas as pd
    return pd.DataFrame([{"model": m, "soft_mask": m == "sm", "strategy": s, "cells_per_step": c, "steps": 9 // c,
                          "accuracy": 0.2, "ci_low": 0.15, "ci_high": 0.25}
                         for m in ("binary", "sm") for s in tasks.ORDER_STRATEGIES for c in (1, 2, 4, 8)])


def test_the_sweep_page_carries_plotly_and_sizes_to_its_window(tmp_path):
    import plotly.offline
    fig = tasks.sweep_figure(_frame())
    assert fig.layout.width is None and fig.layout.autosize and fig.layout.legend.orientation == "h"
    csv_path, html_path = tasks.write_sweep(_frame(), tmp_path / "new", title="t")
    assert csv_path.read_text().startswith("model,soft_mask,strategy")
    page = html_path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc=", page), "the page must not load a script from anywhere"
    assert plotly.offline.get_plotlyjs()[:2000] in page  # plotly.js itself is in the page


def test_an_answer_with_a_newline_in_a_cell_keeps_its_grid():
    task = tasks.get("sudoku", givens=72)
    ex = task.generate(1, seed=0)[0]
    cells = [i for i, c in enumerate(tasks.base.template(ex.puzzle)) if c is None]
    text = list(ex.answer)
    text[cells[0]], text[cells[1]] = "\n", " "  # what a weak model may write into two cells
    shown = tasks.shown_answer(ex.puzzle, "".join(text))
    rows = shown.split("\n")
    assert len(rows) == 9 and all(len(r) == 9 for r in rows), shown
    assert shown[cells[0]] == "\u21b5" and shown[cells[1]] == "\u2423"
    assert tasks.shown_answer(ex.puzzle, ex.answer) == ex.answer  # a valid answer is shown as it is
