"""CellGrid: a sample at one step as a board of cells placed by a layout (an anywidget with its own JavaScript).

Python sends `cells` (one dict per cell, `layouts.Cell`: position, row, col, label, state, colour, shade,
tip, group) in one message per step; the browser places each cell at its row and column, colours it
(givens, revealed this step, still masked shaded by lambda; a soft cell's top guess is drawn small, dashed and
with a "?" so that it never reads as a decoded digit), shows its `tip` (the top-k candidates with
their probabilities) as its tooltip and in the line under the board, outlines groups (sudoku boxes) and
writes a clicked cell's position to `selected`. Each cell's element carries data-pos, data-row, data-col,
data-state and data-shade (lambda).
"""
from __future__ import annotations

import anywidget
import traitlets

from .frame_js import FRAME_CSS, FRAME_JS
from .layouts import Layout, step_fields
from .trace_view import STATE_COLOURS, STATES

ESM = FRAME_JS + r"""
function render({ model, el }) {
  const { head, body: board, tip } = frame(model, el, "smkit-grid", "cells",
                                           "hover a cell for its top-k candidates; click it to select",
                                           { fixed: "given" });
  const divs = [];
  let cells = [], hovered = -1;

  function showTip(i) { if (i >= 0 && i < cells.length) tip.textContent = cells[i].tip; }
  function draw() {
    cells = model.get("cells") || [];
    const sel = model.get("selected");
    head.textContent = model.get("title") || "";
    let cols = 1;
    const at = new Map();
    for (const c of cells) { cols = Math.max(cols, c.col + 1); at.set(c.row + "," + c.col, c); }
    board.style.gridTemplateColumns = "repeat(" + cols + ", 2em)";
    while (divs.length < cells.length) {
      const d = document.createElement("div");
      const i = divs.length;
      d.className = "smkit-cell";
      d.addEventListener("mouseenter", () => { hovered = i; showTip(i); });
      d.addEventListener("mouseleave", () => { hovered = -1; });
      d.addEventListener("click", () => {
        const p = cells[i].position;
        model.set("selected", model.get("selected") === p ? -1 : p);
        model.save_changes();
      });
      board.appendChild(d);
      divs.push(d);
    }
    while (divs.length > cells.length) board.removeChild(divs.pop());
    cells.forEach((c, i) => {
      const d = divs[i];
      d.dataset.pos = String(c.position);
      d.dataset.row = String(c.row);
      d.dataset.col = String(c.col);
      d.dataset.state = c.state;
      d.dataset.shade = String(c.shade);
      d.style.gridRow = String(c.row + 1);
      d.style.gridColumn = String(c.col + 1);
      if (d.textContent !== c.label) d.textContent = c.label;
      d.style.background = c.colour;
      d.style.color = ink(c.colour);
      d.title = c.tip;
      const right = at.get(c.row + "," + (c.col + 1)), below = at.get((c.row + 1) + "," + c.col);
      d.classList.toggle("smkit-edge-right", !!right && right.group !== c.group);
      d.classList.toggle("smkit-edge-bottom", !!below && below.group !== c.group);
      d.classList.toggle("smkit-selected", c.position === sel);
    });
    if (hovered >= 0) showTip(hovered);
  }
  return redrawOn(model, ["cells", "selected", "title"], draw);
}

export default { render };
"""

CSS = FRAME_CSS + """
.smkit-grid { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 15px; }
.smkit-grid-head { font-weight: 600; margin: 2px 0 4px 0; font-size: 13px; }
.smkit-grid-cells { display: grid; width: max-content; border: 2px solid #333; }
.smkit-cell { width: 2em; height: 2em; box-sizing: border-box; display: flex; align-items: center;
  justify-content: center; border: 1px solid #d0d0d0; cursor: pointer; }
.smkit-cell[data-state="fixed"] { font-weight: 700; }
.smkit-cell[data-state="revealed"] { font-weight: 700; box-shadow: inset 0 0 0 2px #1e7a46; }
/* a soft cell shows the model's top guess, not a decoded digit: small, light, dashed, with a "?" after it */
.smkit-cell[data-state="soft"] { font-style: italic; font-size: 0.72em; font-weight: 400;
  border: 1px dashed #4b1fa8; }
.smkit-cell[data-state="soft"]::after { content: "?"; font-size: 0.85em; margin-left: 1px; }
.smkit-cell.smkit-edge-right { border-right: 2px solid #333; }
.smkit-cell.smkit-edge-bottom { border-bottom: 2px solid #333; }
.smkit-cell.smkit-selected { outline: 2px solid #d62728; outline-offset: -3px; }
.smkit-grid-tip { min-height: 1.5em; margin-top: 4px; color: #333; white-space: pre-wrap; font-size: 13px; }
.smkit-grid-legend { margin-top: 2px; display: flex; gap: 4px; flex-wrap: wrap; font-size: 11px; }
"""


class CellGrid(anywidget.AnyWidget):
    """A board of cells placed by `place` (a layout function, see layouts.py); `show` moves it to a step."""
    _esm = ESM
    _css = CSS
    cells = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)  # a position; -1: nothing selected
    title = traitlets.Unicode("").tag(sync=True)
    palette = traitlets.Dict(dict(zip(STATES, (STATE_COLOURS[s] for s in STATES)))).tag(sync=True)

    def __init__(self, place: Layout, **kwargs):
        super().__init__(**kwargs)
        self.place = place

    def show(self, view, step: int, title: str = "") -> None:
        """Show `view` (a SampleView) after `step`, in one message to the browser."""
        with self.hold_sync():
            self.cells = [c.to_dict() for c in self.place(step_fields(view, step))]
            self.title = title

    def __repr__(self) -> str:
        return f"CellGrid(cells={len(self.cells)}, selected={self.selected})"
