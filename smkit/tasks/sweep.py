"""Accuracy against decoding budget: every (model, strategy, cells revealed per step) of a task, with intervals.

`sweep(models, task, n, cells_per_step, strategies, seed)` -> a DataFrame, one row per point: model, soft_mask
(how it was decoded), strategy, cells_per_step, steps, accuracy, ci_low, ci_high (Wilson 95%), nfe,
cell_accuracy, n, seed, correct (per puzzle, a string of 0/1 in puzzle order: two rows decoded the same
puzzles, so they compare puzzle by puzzle). `models` maps a label to a model or to (model, soft_mask); a bare model is decoded with SM
when its config says it was trained with SM (`train_config.soft_mask`), binary otherwise.
`sweep_figure(frame)` plots it; `write_sweep(frame, folder)` writes the CSV and an offline HTML page of the figure.
"""
from __future__ import annotations

import math

from ..core.config import is_int
from .base import TaskError
from .evaluate import evaluate
from .registry import for_model, get

ORDER_STRATEGIES = ("random", "confidence", "margin", "entropy")


def _decoding(model) -> bool:
    return bool((getattr(model, "train_config", None) or {}).get("soft_mask", False))


def sweep(models: dict, task=None, n: int = 256, cells_per_step=(1, 2, 4, 8), strategies=ORDER_STRATEGIES,
          seed: int = 0, batch_size: int = 128, progress: bool = False, **decode_options):
    import pandas as pd
    if not isinstance(models, dict) or not models:
        raise TaskError("models: give a dict {label: model} or {label: (model, soft_mask)} with at least one entry")
    bad = [c for c in cells_per_step if not is_int(c) or c < 1]
    if bad or not cells_per_step:
        raise TaskError(f"cells_per_step={list(cells_per_step)!r}: integers >= 1, e.g. (1, 2, 4, 8)")
    rows = []
    for label, entry in models.items():
        model, soft = entry if isinstance(entry, tuple) else (entry, _decoding(entry))
        t = for_model(model) if task is None else get(task) if isinstance(task, str) else task
        for strategy in strategies:
            for cells in cells_per_step:
                steps = math.ceil(t.masked / cells)
                r = evaluate(model, t, n=n, steps=steps, strategy=strategy, soft_mask=soft, seed=seed,
                             batch_size=batch_size, progress=progress, **decode_options)
                rows.append({"model": label, "soft_mask": soft, "strategy": strategy, "cells_per_step": cells,
                             "steps": steps, "accuracy": r.accuracy, "ci_low": r.ci_low, "ci_high": r.ci_high,
                             "nfe": r.nfe, "cell_accuracy": r.cell_accuracy, "n": r.n, "seed": seed,
                             "correct": "".join("1" if c else "0" for c in r.correct)})
    return pd.DataFrame(rows)


def sweep_figure(frame, title: str = ""):
    """Accuracy (with its Wilson interval) against cells revealed per step: one panel per strategy, one line per
    model. A plotly Figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    strategies = list(dict.fromkeys(frame.strategy))
    fig = make_subplots(rows=1, cols=len(strategies), subplot_titles=strategies, shared_yaxes=True)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for i, label in enumerate(dict.fromkeys(frame.model)):
        for j, strategy in enumerate(strategies):
            d = frame[(frame.model == label) & (frame.strategy == strategy)].sort_values("cells_per_step")
            fig.add_trace(go.Scatter(
                x=d.cells_per_step, y=d.accuracy, mode="lines+markers", name=label, legendgroup=label,
                showlegend=j == 0, line={"color": colours[i % len(colours)]},
                error_y={"type": "data", "symmetric": False, "array": d.ci_high - d.accuracy,
                         "arrayminus": d.accuracy - d.ci_low}), row=1, col=j + 1)
            fig.update_xaxes(type="log", tickvals=list(d.cells_per_step), title_text="cells per step", row=1,
                             col=j + 1)
    fig.update_yaxes(title_text="puzzles solved (Wilson 95%)", range=[0, 1], row=1, col=1)
    # no fixed width: the figure takes the width of its page or output cell; the legend goes under the panels,
    # where it takes no width from them
    fig.update_layout(title=title, height=400, autosize=True, margin=dict(l=60, r=20, t=70, b=40),
                      legend=dict(orientation="h", x=0, xanchor="left", y=-0.22, yanchor="top"))
    return fig


def write_sweep(frame, folder, title: str = "") -> tuple:
    """Write `frame` as `tasks_sweep.csv` and its figure as `tasks_sweep.html` into `folder`; returns both paths.
    The page carries plotly.js itself (about 4.8 MB), so it draws offline and can be sent on as one file."""
    from pathlib import Path

    from ..io.outputs import writable_folder
    folder = writable_folder(Path(folder), "folder")
    csv_path, html_path = folder / "tasks_sweep.csv", folder / "tasks_sweep.html"
    frame.to_csv(csv_path, index=False)
    sweep_figure(frame, title).write_html(html_path, include_plotlyjs=True, full_html=True,
                                          default_width="100%", config={"responsive": True})
    return csv_path, html_path
