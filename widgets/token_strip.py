"""TokenStrip: the sequence at one step as a row of coloured tokens (an anywidget with its own JavaScript).

Python sets `labels`, `colours`, `states` and `tips` (one entry per position) in one message per step; the
browser draws them, shows a position's `tips` entry on hover and writes a clicked position to `selected`.
The same JavaScript renders the strip in exported HTML (see `export.py`), with a small stand-in model.
"""
from __future__ import annotations

import anywidget
import traitlets

from .frame_js import FRAME_CSS, FRAME_JS
from .layouts import step_fields
from .trace_view import STATE_COLOURS, STATES

ESM = FRAME_JS + r"""
function render({ model, el }) {
  const { head, body: strip, tip } = frame(model, el, "smkit-strip", "tokens",
                                           "hover a position for its top-k candidates; click it to select", {});
  const spans = [];
  let hovered = -1;

  function showTip(i) {
    const tips = model.get("tips") || [];
    if (i >= 0 && i < tips.length) tip.textContent = tips[i];
  }
  function draw() {
    const labels = model.get("labels") || [];
    const colours = model.get("colours") || [];
    const states = model.get("states") || [];
    const sel = model.get("selected");
    head.textContent = model.get("title") || "";
    while (spans.length < labels.length) {
      const s = document.createElement("span");
      const i = spans.length;
      s.className = "smkit-tok";
      s.dataset.pos = String(i);
      s.addEventListener("mouseenter", () => { hovered = i; showTip(i); });
      s.addEventListener("mouseleave", () => { hovered = -1; });
      s.addEventListener("click", () => {
        model.set("selected", model.get("selected") === i ? -1 : i);
        model.save_changes();
      });
      strip.appendChild(s);
      spans.push(s);
    }
    while (spans.length > labels.length) strip.removeChild(spans.pop());
    for (let i = 0; i < labels.length; i++) {
      const s = spans[i];
      if (s.textContent !== labels[i]) s.textContent = labels[i];
      const bg = colours[i] || "#ffffff";
      s.style.background = bg;
      s.style.color = ink(bg);
      s.dataset.state = states[i] || "";
      s.classList.toggle("smkit-selected", i === sel);
    }
    if (hovered >= 0) showTip(hovered);
  }
  return redrawOn(model, ["labels", "colours", "states", "tips", "selected", "title"], draw);
}

export default { render };
"""

CSS = FRAME_CSS + """
.smkit-strip { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.smkit-strip-head { font-weight: 600; margin: 2px 0 4px 0; }
.smkit-strip-tokens { display: flex; flex-wrap: wrap; gap: 1px; line-height: 1.5; }
.smkit-tok { display: inline-block; min-width: 0.9em; padding: 0 2px; text-align: center; white-space: pre;
  border-radius: 2px; cursor: pointer; border: 1px solid transparent; }
.smkit-tok[data-state="soft"] { font-style: italic; }
.smkit-tok[data-state="revealed"] { font-weight: 700; }
.smkit-tok.smkit-selected { border: 1px solid #d62728; box-shadow: 0 0 0 1px #d62728; }
.smkit-strip-tip { min-height: 1.5em; margin-top: 4px; color: #333; white-space: pre-wrap; }
.smkit-strip-legend { margin-top: 2px; display: flex; gap: 4px; flex-wrap: wrap; font-size: 11px; }
"""


class TokenStrip(anywidget.AnyWidget):
    """The sequence at one step; one entry per position in each list trait."""
    _esm = ESM
    _css = CSS
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    colours = traitlets.List(traitlets.Unicode()).tag(sync=True)
    states = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tips = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)  # -1: nothing selected
    title = traitlets.Unicode("").tag(sync=True)
    palette = traitlets.Dict(dict(zip(STATES, (STATE_COLOURS[s] for s in STATES)))).tag(sync=True)

    def show(self, view, step: int, title: str = "") -> None:
        """Show `view` (a SampleView) after `step`, laid out by `layouts.token_strip`, in one message."""
        f = step_fields(view, step)   # the token strip places every position in order: its cells are the fields
        with self.hold_sync():
            self.labels, self.colours, self.states, self.tips = f.labels, f.colours, f.states, f.tips
            self.title = title

    def __repr__(self) -> str:
        return f"TokenStrip(positions={len(self.labels)}, selected={self.selected})"
