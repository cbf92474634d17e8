"""PlotMarkers: markers (plotly-style shapes) drawn OVER a plotly FigureWidget without touching the figure.

Why: plotly's FigureWidget front end tags every relayout/update it receives from Python with an extra
key (`_doNotReportToPy`) that plotly.js does not know, so ANY change, even one shape, replots the whole
figure: ~90 ms for two 256 x 256 heatmaps with colour bars, every slider step. Instead the heatmaps are
sent once and this small anywidget draws the step / position markers as absolutely positioned boxes on
top of the plot, placed with the plot's own axis mapping (`gd._fullLayout.<axis>.l2p`, `_offset`,
`_length`) and redrawn after every plotly redraw (resize, zoom). Moving a marker costs about a
millisecond in the browser. The shapes use plotly's own format (type rect/line, xref 'x'/'x2 domain',
x0..y1, line.color/width/dash, visible), so the same dicts draw real plotly shapes in exported HTML; one
extra type, "points" (x, y, text lists; size, color, ring), draws a set of dots with hover titles.
"""
from __future__ import annotations

import itertools

import anywidget
import plotly.graph_objects as go
import traitlets

ESM = r"""
const DASH = {solid: "solid", dot: "dotted", dash: "dashed", dashdot: "dashed"};

function axis(fl, ref, horizontal) {
  const name = ref.replace(" domain", "");
  return fl[(horizontal ? "xaxis" : "yaxis") + name.slice(1)];
}
function pos(fl, ref, v, horizontal) {
  const ax = axis(fl, ref, horizontal);
  if (!ax || ax._offset === undefined) return null;
  if (ref.endsWith(" domain")) return horizontal ? ax._offset + v * ax._length : ax._offset + (1 - v) * ax._length;
  const p = ax.l2p(v);
  return Number.isFinite(p) ? ax._offset + p : null;
}

function render({ model, el }) {
  el.style.display = "none";  // the widget itself takes no room; it draws into the target plot
  const layers = new Map();   // plot element -> overlay div
  let timer = null;

  function plots() {
    const out = [];
    for (const host of document.querySelectorAll("." + model.get("target"))) {
      const gd = host.classList.contains("js-plotly-plot") ? host : host.querySelector(".js-plotly-plot");
      if (gd && gd._fullLayout) out.push(gd);
    }
    return out;
  }
  function layerOf(gd) {
    let layer = layers.get(gd);
    if (!layer || !layer.isConnected) {
      const box = gd.querySelector(".svg-container") || gd;
      layer = document.createElement("div");
      layer.className = "smkit-plot-markers";
      layer.style.cssText = "position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none;z-index:5;";
      box.appendChild(layer);
      layers.set(gd, layer);
      gd.on && gd.on("plotly_afterplot", () => drawOne(gd));
    }
    return layer;
  }
  function drawOne(gd) {
    const fl = gd._fullLayout;
    if (!fl) return;
    const layer = layerOf(gd);
    const shapes = model.get("shapes") || [];
    while (layer.children.length < shapes.length) layer.appendChild(document.createElement("div"));
    while (layer.children.length > shapes.length) layer.removeChild(layer.lastChild);
    shapes.forEach((s, i) => {
      const div = layer.children[i];
      if (s.type === "points") { drawPoints(fl, div, s); return; }
      div.replaceChildren();
      const x0 = pos(fl, s.xref, s.x0, true), x1 = pos(fl, s.xref, s.x1, true);
      const y0 = pos(fl, s.yref, s.y0, false), y1 = pos(fl, s.yref, s.y1, false);
      if (s.visible === false || [x0, x1, y0, y1].some((v) => v === null)) { div.style.display = "none"; return; }
      const line = s.line || {};
      const w = line.width === undefined ? 2 : line.width;
      const border = w + "px " + (DASH[line.dash] || "solid") + " " + (line.color || "#d62728");
      div.className = "smkit-marker smkit-marker-" + (s.name || i);
      div.style.cssText = "position:absolute;box-sizing:border-box;display:block;";
      if (s.type === "line") {
        div.style.left = (Math.min(x0, x1) - w / 2) + "px";
        div.style.top = Math.min(y0, y1) + "px";
        div.style.width = "0px";
        div.style.height = Math.abs(y1 - y0) + "px";
        div.style.borderLeft = border;
      } else {
        div.style.left = Math.min(x0, x1) + "px";
        div.style.top = Math.min(y0, y1) + "px";
        div.style.width = Math.abs(x1 - x0) + "px";
        div.style.height = Math.abs(y1 - y0) + "px";
        div.style.border = border;
      }
    });
  }
  function drawPoints(fl, div, s) {
    // dots of `size` px at data (x[j], y[j]); `ring` draws circles; `text[j]` is the hover title
    div.className = "smkit-marker-points";
    div.style.cssText = "position:absolute;left:0;top:0;width:100%;height:100%;display:block;";
    const xs = s.x || [], ys = s.y || [], text = s.text || [], size = s.size || 6, r = size / 2;
    const colour = s.color || "#7a3ff0";
    while (div.children.length < xs.length) div.appendChild(document.createElement("div"));
    while (div.children.length > xs.length) div.removeChild(div.lastChild);
    for (let j = 0; j < xs.length; j++) {
      const dot = div.children[j], x = pos(fl, s.xref, xs[j], true), y = pos(fl, s.yref, ys[j], false);
      if (x === null || y === null) { dot.style.display = "none"; continue; }
      dot.style.cssText = "position:absolute;box-sizing:border-box;border-radius:50%;pointer-events:auto;" +
        "left:" + (x - r) + "px;top:" + (y - r) + "px;width:" + size + "px;height:" + size + "px;" +
        (s.ring ? "border:2px solid " + colour + ";" : "background:" + colour + ";opacity:" + (s.opacity || 0.75) + ";");
      dot.title = text[j] === undefined ? "" : String(text[j]);
    }
  }
  function draw() {
    const found = plots();
    for (const gd of found) drawOne(gd);
    if (!found.length && !timer) {  // the figure may render after this widget: look again shortly
      timer = setTimeout(() => { timer = null; draw(); }, 200);
    }
  }
  model.on("change:shapes", draw);
  draw();
  return () => { model.off("change:shapes", draw); if (timer) clearTimeout(timer); for (const l of layers.values()) l.remove(); };
}
export default { render };
"""

_ids = itertools.count()


def new_target() -> str:
    """A CSS class naming one figure widget for its PlotMarkers (unique in this kernel)."""
    return f"smkit-fig-{next(_ids)}"


class PlotMarkers(anywidget.AnyWidget):
    """Shapes drawn over the plotly FigureWidget that carries the CSS class `target` (see module docstring)."""
    _esm = ESM
    target = traitlets.Unicode("").tag(sync=True)
    shapes = traitlets.List(traitlets.Dict()).tag(sync=True)

    @classmethod
    def on(cls, fig, shapes: list[dict]) -> "PlotMarkers":
        """Markers for `fig` (a FigureWidget): tags the figure with a fresh class and returns the overlay."""
        target = new_target()
        fig.add_class(target)
        return cls(target=target, shapes=shapes)

    def __repr__(self) -> str:
        return f"PlotMarkers(shapes={len(self.shapes)})"


def overlaid(fig: go.Figure) -> tuple[go.FigureWidget, PlotMarkers]:
    """A FigureWidget of `fig` without its shapes, and an overlay drawing those shapes over it."""
    shapes = [sh.to_plotly_json() for sh in fig.layout.shapes]
    fig.layout.shapes = []
    widget = go.FigureWidget(fig)
    return widget, PlotMarkers.on(widget, shapes)
